"""Memory of idle TLS sessions in a terminating proxy: 400 sessions through STARTTLS, relaying,
then idle; the proxy's resident memory per session is recorded as a figure and bounded loosely
(a regression guard: buffers kept per idle session would show up as tens of KiB more). The
benchmark (loadgen/bench/tls-bench) measures the same at 5,000 sessions against the 12 KiB goal.
"""

from __future__ import annotations

import gc
import time

import pytest

pytest.register_assert_rewrite("tls_support")

from xs_fakes import FakeBackend  # noqa: E402
from tls_support import (RAW, Raw, base_config, client_context, free_port, rss_kib,  # noqa: E402
                         start_proxy, stream_header)

pytest_plugins = ["tls_support"]

SESSIONS = 400
BOUND_KIB = 40  # per idle TLS session; the goal is 12 (see docs/BENCHMARKS.md, "TLS")


@pytest.mark.no_sanitizer
@pytest.mark.timeout(120)
def test_idle_tls_session_memory(proxies, proxy_certs, tls_ca, figures):
    fb = FakeBackend("xmpp")
    conns: list[Raw] = []
    try:
        cfg = base_config(workers=1)
        cfg.add_listener("starttls", f"127.0.0.1:{free_port()}", tls="terminate")
        cfg.add_backend("fake", fb.address, proxy_protocol="v2")
        cfg.add_route([RAW], ["fake"], name="raw")
        for c in proxy_certs.values():
            cfg.add_certificate(c.cert, c.key, c.domains)
        px = start_proxy(proxies, cfg, name="tls-mem", log_level="warn")
        port = px.port("starttls")
        ctx = client_context(tls_ca.cert)

        def open_session() -> Raw:
            c = Raw(port)
            c.starttls(RAW, ctx)
            c.send(stream_header(RAW))
            c.until(r"<stream:features/>")
            return c

        # Warm up (allocator arenas, OpenSSL's lazily built tables), then measure from here.
        warm = [open_session() for _ in range(20)]
        for c in warm:
            c.close()
        px.wait_metric(lambda m: m.val("xmpp_shard_connections_active") == 0, 10, "warm-up sessions closed")
        time.sleep(0.3)
        base = rss_kib(px.px.proc.pid)
        for _ in range(SESSIONS):
            conns.append(open_session())
        px.wait_metric(lambda m: m.val("xmpp_shard_sessions_active", route="raw") == SESSIONS, 20,
                       f"{SESSIONS} sessions relaying")
        time.sleep(0.5)
        held = rss_kib(px.px.proc.pid)
        per = (held - base) / SESSIONS
        figures["tls: proxy RSS per idle TLS session (KiB, 400 sessions)"] = round(per, 1)
        assert per <= BOUND_KIB, f"{per:.1f} KiB per idle TLS session (RSS {base} -> {held} KiB)"
    finally:
        for c in conns:
            c.close()
        gc.collect()
        fb.close()
