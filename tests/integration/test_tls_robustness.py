"""A terminating listener under awkward clients: megabytes both ways through TLS (integrity and
backpressure), TLS 1.2 renegotiation refused, close_notify, a client silent after the handshake
(encrypted <connection-timeout/>), a client stalling inside its ClientHello (closed without XML
within header_timeout). The backend is an echoing fake behind PROXY v2.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

pytest.register_assert_rewrite("tls_support")

from xs_clients import Exchange, assert_stream_error, tls_client_hello  # noqa: E402
from xs_fakes import FakeBackend  # noqa: E402
from tls_support import (RAW, Raw, base_config, client_context, free_port, start_proxy,  # noqa: E402
                         stream_header)

pytest_plugins = ["tls_support"]


@pytest.fixture(scope="module")
def echo():
    fb = FakeBackend("echo")
    yield fb
    fb.close()


@pytest.fixture(scope="module")
def proxy(module_proxies, proxy_certs, echo):
    cfg = base_config(header_timeout="2s")
    cfg.add_listener("starttls", f"127.0.0.1:{free_port()}", tls="terminate")
    cfg.add_listener("direct", f"127.0.0.1:{free_port()}", tls="terminate", direct_tls=True)
    cfg.add_backend("echo", echo.address, proxy_protocol="v2")
    cfg.add_route([RAW], ["echo"], name="raw")
    for c in proxy_certs.values():
        cfg.add_certificate(c.cert, c.key, c.domains)
    return start_proxy(module_proxies, cfg, name="tls-robust")


@pytest.fixture
def px(proxy):
    assert proxy.alive(), proxy.log()[-3000:]
    yield proxy
    assert proxy.alive(), f"the proxy died:\n{proxy.log()[-5000:]}"


def relaying(px, tls_ca) -> Raw:
    c = Raw(px.port("starttls"))
    c.starttls(RAW, client_context(tls_ca.cert))
    c.send(stream_header(RAW))
    c.until(r"<stream:features/>")
    return c


@pytest.mark.timeout(120)
def test_megabytes_both_ways_through_tls(px, tls_ca):
    """6 MiB sent in 64 KiB writes while reading: everything comes back, in order."""
    c = relaying(px, tls_ca)
    payload = b"<message><body>" + os.urandom(3 << 20).hex().encode() + b"</body></message>"
    got = bytearray()
    sent, t0 = 0, time.monotonic()
    while len(got) < len(payload) and time.monotonic() - t0 < 60:
        if sent < len(payload):
            c.send(payload[sent:sent + 65536])
            sent += 65536
        try:
            d = c._recv(0.01 if sent < len(payload) else 1.0)
        except (socket.timeout, TimeoutError):
            continue
        if not d:
            break
        got += d
    c.close()
    assert len(got) == len(payload), f"{len(got)} of {len(payload)} bytes came back"
    assert bytes(got) == payload


def test_tls12_renegotiation_refused(px, tls_ca):
    """s_client's `R` asks for a renegotiation: refused (no_renegotiation), session ends, the
    proxy keeps serving."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{px.port('direct')}",
                          "-servername", RAW, "-tls1_2", "-CAfile", str(tls_ca.cert)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        p.stdin.write(b"R\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    text = out.decode(errors="replace")
    assert "RENEGOTIATING" in text and "no renegotiation" in text, text
    c = relaying(px, tls_ca)
    c.close()


def test_close_notify_ends_the_session(px, tls_ca):
    c = relaying(px, tls_ca)
    try:
        c.tls.unwrap()
    except Exception:  # noqa: BLE001  (SSLWantReadError: the peer's close_notify is not in yet)
        pass
    c._flush()
    t0 = time.monotonic()
    data, closed = c.read_to_eof(5)
    c.close()
    assert closed and time.monotonic() - t0 < 3, data


def test_silent_after_the_handshake_gets_an_encrypted_timeout(px, tls_ca):
    c = Raw(px.port("direct"))
    c.wrap(client_context(tls_ca.cert), RAW)
    t0 = time.monotonic()
    data, closed = c.read_to_eof(6)
    c.close()
    assert_stream_error(Exchange(data, closed, time.monotonic() - t0), "connection-timeout", close_within=4)


def test_stalled_client_hello_is_closed_without_xml(px):
    c = Raw(px.port("direct"))
    c.send(tls_client_hello(RAW)[:50])
    t0 = time.monotonic()
    data, closed = c.read_to_eof(6)
    c.close()
    assert closed and data == b"", data
    assert 1.5 < time.monotonic() - t0 < 4
