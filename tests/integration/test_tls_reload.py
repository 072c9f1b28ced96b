"""SIGHUP re-reads the certificates of terminating listeners: the cert and key files (given
relative to the config file) are replaced in place, the proxy reloads, new handshakes present
the new certificate on every worker, and sessions that were live keep working. A broken
replacement (a key that does not match) changes nothing. Session tickets still work, and a
ticket from before a reload falls back to a full handshake with the new certificate.
"""

from __future__ import annotations

import signal
import time

import pytest

pytest.register_assert_rewrite("tls_support")

from tls_support import (TERM, Raw, backend_login, base_config, client_context, free_port,  # noqa: E402
                         login_plain, start_proxy, tls_login, workdir_for)

pytest_plugins = ["tls_support"]

CLIENT_IP = "127.0.0.3"


def handshake(port: int, ca, session=None, ctx=None) -> Raw:
    c = Raw(port, source=CLIENT_IP)
    c.starttls(TERM, ctx or client_context(ca), session=session)
    return c


def presented(port: int, ca, n: int = 6) -> set[bytes]:
    """The certificates `n` fresh STARTTLS handshakes were given (several, so that both workers
    answer some: SO_REUSEPORT spreads connections by their addresses)."""
    seen = set()
    for _ in range(n):
        c = handshake(port, ca)
        seen.add(c.peer_der)
        c.close()
    return seen


def ping(c: Raw, n: int) -> None:
    c.send(f"<iq type='get' id='ping{n}' to='{TERM}'><ping xmlns='urn:xmpp:ping'/></iq>")
    got = c.until(rf"<iq[^>]*id=['\"]ping{n}['\"][^>]*(?:/>|>.*?</iq>)")
    assert "type='result'" in got or 'type="result"' in got, got


def reloads(px, result: str) -> float:
    return px.metrics().val("xmpp_shard_config_reloads_total", result=result)


def reload_and_wait(px, result: str) -> None:
    before = reloads(px, result)
    px.px.signal(signal.SIGHUP)
    px.wait_metric(lambda m: m.val("xmpp_shard_config_reloads_total", result=result) == before + 1, 10,
                   f"a SIGHUP reload counted as {result}")


@pytest.mark.multiworker
@pytest.mark.timeout(120)
def test_sighup_rereads_certificates(proxies, term_backend, tls_ca):
    workdir = workdir_for(proxies, "tls-reload")
    certs = workdir / "certs"
    v1 = tls_ca.issue("reload-v1", [TERM], "reload v1", out_dir=certs,
                      cert_name="tls.test.crt", key_name="tls.test.key")
    cfg = base_config(workers=2)
    cfg.add_listener("starttls", f"127.0.0.1:{free_port()}", tls="terminate")
    cfg.add_backend("term", f"127.0.0.1:{term_backend.shard_port}", proxy_protocol="v2")
    cfg.add_route([TERM], ["term"], name="term")
    cfg.add_certificate("certs/tls.test.crt", "certs/tls.test.key", [TERM])   # relative to the file
    px = start_proxy(proxies, cfg, workdir=workdir)
    port = px.port("starttls")
    password = term_backend.passwords[f"alice@{TERM}"]

    assert presented(port, tls_ca.cert) == {v1.der}

    # A live, logged-in session on v1, and a TLS 1.3 session ticket that resumes.
    mark = term_backend.mark()
    ctx = client_context(tls_ca.cert)  # resumption needs the same client context
    live = handshake(port, tls_ca.cert, ctx=ctx)
    assert live.peer_der == v1.der
    login_plain(live, TERM, "alice", password)
    ping(live, 1)
    backend_login(term_backend, mark, f"alice@{TERM}", (CLIENT_IP, live.sockname[1]))
    ticket = live.tls.session
    assert ticket is not None and ticket.has_ticket, "no session ticket from the proxy"
    again = handshake(port, tls_ca.cert, session=ticket, ctx=ctx)
    assert again.tls.session_reused, "a ticket from this configuration did not resume"
    again.close()

    # Replace the files in place and reload.
    v2 = tls_ca.issue("reload-v2", [TERM], "reload v2", out_dir=certs,
                      cert_name="tls.test.crt", key_name="tls.test.key")
    assert v2.der != v1.der
    reload_and_wait(px, "success")
    assert presented(port, tls_ca.cert) == {v2.der}
    r = tls_login(port, f"alice@{TERM}", password, ca=tls_ca.cert)
    assert r.ok and r.peer_der == v2.der, str(r)
    # The old ticket no longer resumes (new ticket keys), but the handshake completes in full.
    old = handshake(port, tls_ca.cert, session=ticket, ctx=ctx)
    assert not old.tls.session_reused and old.peer_der == v2.der
    old.close()
    # The session from before the reload is untouched.
    ping(live, 2)

    # A broken replacement: a key that does not match the certificate. Nothing changes.
    v3 = tls_ca.issue("reload-v3", [TERM], "reload v3", out_dir=workdir / "v3")
    (certs / "tls.test.key").write_bytes(v3.key.read_bytes())
    reload_and_wait(px, "failure")
    time.sleep(0.2)
    assert "does not match" in px.log(), px.log()[-2000:]
    assert presented(port, tls_ca.cert) == {v2.der}
    ping(live, 3)

    # Fixed: the next reload takes it.
    (certs / "tls.test.crt").write_bytes(v3.cert.read_bytes())
    reload_and_wait(px, "success")
    assert presented(port, tls_ca.cert) == {v3.der}
    ping(live, 4)
    live.send("</stream:stream>")
    data, closed = live.read_to_eof(5)
    live.close()
    assert closed, data


def test_reload_with_a_missing_certificate_file_changes_nothing(proxies, term_backend, tls_ca):
    workdir = workdir_for(proxies, "tls-reload-missing")
    v1 = tls_ca.issue("missing-v1", [TERM], "missing v1", out_dir=workdir / "certs",
                      cert_name="tls.test.crt", key_name="tls.test.key")
    cfg = base_config()
    cfg.add_listener("starttls", f"127.0.0.1:{free_port()}", tls="terminate")
    cfg.add_backend("term", f"127.0.0.1:{term_backend.shard_port}", proxy_protocol="v2")
    cfg.add_route([TERM], ["term"], name="term")
    cfg.add_certificate("certs/tls.test.crt", "certs/tls.test.key", [TERM])
    px = start_proxy(proxies, cfg, workdir=workdir)
    v1_der = v1.der
    (workdir / "certs" / "tls.test.crt").rename(workdir / "certs" / "gone.crt")
    reload_and_wait(px, "failure")
    time.sleep(0.2)
    assert "proxy.toml:" in px.log() and "tls.test.crt" in px.log(), px.log()[-2000:]
    assert presented(px.port("starttls"), tls_ca.cert, n=2) == {v1_der}
    r = tls_login(px.port("starttls"), f"alice@{TERM}", term_backend.passwords[f"alice@{TERM}"], ca=tls_ca.cert)
    assert r.ok and r.peer_der == v1_der, str(r)
