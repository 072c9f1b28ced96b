"""TLS passthrough (the default `tls = "passthrough"`): the client does TLS with Prosody itself,
which has its own certificate (issued by the test's CA, O=prosody).

- STARTTLS through a plaintext listener to mod_xmpp_shard's port with `proxy_protocol = "v2"`:
  the proxy routes on the first header and relays; the PROXY header carries the client's
  address but no TLS TLV; the certificate the client verifies is Prosody's.
- Direct TLS (`direct_tls = true`) routed on the ClientHello's SNI, replayed byte for byte to
  Prosody's own c2s_direct_tls_ports (no PROXY header on that hop: Prosody must start TLS on the
  first byte). ALPN, when offered, must include xmpp-client; unknown SNI, no SNI and wrong ALPN
  are closed without a byte of XML.
"""

from __future__ import annotations

import re
import time

import pytest

pytest.register_assert_rewrite("tls_support")

from xs_clients import parse_stream_error, tls_client_hello  # noqa: E402
from tls_support import (PASS, RAW, Raw, SClient, backend_login, base_config, client_context,  # noqa: E402
                         der_subject_org, free_port, proxy_v2, start_proxy, stream_header, tls_login)

pytest_plugins = ["tls_support"]

CLIENT_IP = "127.0.0.3"


@pytest.fixture(scope="module")
def proxy(module_proxies, _pass_backend, fake):
    b = _pass_backend
    cfg = base_config()
    cfg.add_listener("plain", f"127.0.0.1:{free_port()}")                  # passthrough
    cfg.add_listener("direct-pass", f"127.0.0.1:{free_port()}", direct_tls=True)
    cfg.add_backend("pass", f"127.0.0.1:{b.shard_port}", proxy_protocol="v2")
    cfg.add_backend("pass-direct", f"127.0.0.1:{b.direct_port}")           # no PROXY header
    cfg.add_backend("fake", fake.address)
    cfg.add_route([PASS], ["pass"], name="pass", listeners=["plain"])
    cfg.add_route([PASS], ["pass-direct"], name="pass-direct", listeners=["direct-pass"])
    cfg.add_route([RAW], ["fake"], name="raw")
    return start_proxy(module_proxies, cfg, name="tls-pass")


@pytest.fixture
def px(proxy):
    assert proxy.alive(), proxy.log()[-3000:]
    yield proxy
    assert proxy.alive(), f"the proxy died:\n{proxy.log()[-5000:]}"


def carol(b) -> tuple[str, str]:
    return f"carol@{PASS}", b.passwords[f"carol@{PASS}"]


def test_passthrough_starttls_slixmpp(px, pass_backend, tls_ca):
    """slixmpp, verification on: STARTTLS with Prosody through the proxy; the certificate is
    Prosody's own; Prosody logs the login with the client's address and no TLS at the proxy."""
    mark = pass_backend.mark()
    r = tls_login(px.port("plain"), *carol(pass_backend), ca=tls_ca.cert, ping=True)
    assert r.ok and r.pinged, str(r)
    assert r.peer_der == pass_backend.cert.der, der_subject_org(r.peer_der)
    backend_login(pass_backend, mark, f"carol@{PASS}", ("127.0.0.1", r.sockname[1]), tls_at_proxy=False)
    m = px.metrics()
    assert m.val("xmpp_shard_tls_handshakes_total") == 0, "the proxy must not do TLS on passthrough listeners"
    assert m.val("xmpp_shard_sessions_total", listener="plain", route="pass") >= 1


def test_passthrough_starttls_s_client(px, pass_backend, tls_ca):
    mark = pass_backend.mark()
    port = px.port("plain")
    c = SClient(port, ca=tls_ca.cert, xmpphost=PASS, servername=PASS, verify_hostname=PASS)
    try:
        out = c.until(r"Verify return code: \d+ \([^)]*\)")
        assert "Verify return code: 0 (ok)" in out, out
        assert "subject=O = prosody, CN = pass.test" in out, out
        lport = c.local_port(port)
        jid = c.login_plain(PASS, "carol", pass_backend.passwords[f"carol@{PASS}"])
        assert jid.startswith(f"carol@{PASS}/")
    finally:
        c.close()
    backend_login(pass_backend, mark, f"carol@{PASS}", ("127.0.0.1", lport), tls_at_proxy=False)


def test_direct_tls_passthrough_by_sni(px, pass_backend, tls_ca):
    """Direct TLS with SNI pass.test goes to Prosody's own Direct TLS port: the client verifies
    Prosody's certificate and logs in (with and without ALPN xmpp-client)."""
    mark = pass_backend.mark()
    for alpn in (["xmpp-client"], None):
        r = tls_login(px.port("direct-pass"), *carol(pass_backend), ca=tls_ca.cert, direct=True, alpn=alpn)
        assert r.ok, str(r)
        assert r.peer_der == pass_backend.cert.der, der_subject_org(r.peer_der)
    auth = re.findall(r"Authenticated as carol@pass\.test", pass_backend.log(mark))
    assert len(auth) == 2, pass_backend.log(mark)
    # No PROXY header on this hop: Prosody knows the proxy's address only.
    assert "Client address" not in pass_backend.log(mark)

    # openssl s_client, ALPN offered with something else first.
    c = SClient(px.port("direct-pass"), ca=tls_ca.cert, servername=PASS, verify_hostname=PASS,
                extra=("-alpn", "h2,xmpp-client"))
    try:
        out = c.until(r"Verify return code: \d+ \([^)]*\)")
        assert "Verify return code: 0 (ok)" in out and "subject=O = prosody, CN = pass.test" in out, out
        c.login_plain(PASS, "carol", pass_backend.passwords[f"carol@{PASS}"])
    finally:
        c.close()
    m = px.metrics()
    assert m.val("xmpp_shard_sessions_total", listener="direct-pass", route="pass-direct") >= 3
    assert m.val("xmpp_shard_tls_handshakes_total") == 0


def test_direct_tls_passthrough_replays_the_client_hello(px, fake):
    """SNI raw.test: the ClientHello reaches raw.test's backend byte for byte, nothing before it."""
    n = fake.accepted
    hello = tls_client_hello(RAW)
    c = Raw(px.port("direct-pass"), source=CLIENT_IP)
    c.send(hello[:7])        # split inside the record header and the SNI extension
    time.sleep(0.05)
    c.send(hello[7:100])
    time.sleep(0.05)
    c.send(hello[100:])
    assert fake.wait_accepted(n + 1)
    deadline = time.monotonic() + 5
    while len(fake.data(n)) < len(hello) and time.monotonic() < deadline:
        time.sleep(0.02)
    c.close()
    assert fake.data(n) == hello


@pytest.mark.parametrize("case", ["unknown-sni", "no-sni", "alpn-h2-only", "not-tls"])
def test_direct_tls_passthrough_refusals_close_without_xml(px, pass_backend, fake, case):
    m0 = px.metrics()
    n, mark = fake.accepted, pass_backend.mark()
    if case == "unknown-sni":
        data_out = tls_client_hello("nowhere.example")
    elif case == "no-sni":
        data_out = tls_client_hello(None)
    elif case == "alpn-h2-only":
        import ssl
        ctx = client_context(None, alpn=["h2"])
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname=PASS)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        data_out = out.read()
    else:
        data_out = stream_header(PASS).encode()
    c = Raw(px.port("direct-pass"), source=CLIENT_IP)
    c.send(data_out)
    data, closed = c.read_to_eof(5)
    c.close()
    assert closed and data == b"", data
    time.sleep(0.2)
    assert fake.accepted == n
    assert pass_backend.log(mark) == "", pass_backend.log(mark)
    m1 = px.metrics()
    ends = {r: m1.val("xmpp_shard_session_ends_total", reason=r) - m0.val("xmpp_shard_session_ends_total", reason=r)
            for r in ("refused", "not_xmpp")}
    assert ends == ({"refused": 1, "not_xmpp": 0} if case in ("unknown-sni", "no-sni")
                    else {"refused": 0, "not_xmpp": 1}), ends


def test_client_sent_proxy_header_is_not_trusted_in_passthrough(px, pass_backend, tls_ca):
    forged = proxy_v2(("192.0.2.77", 7777), tls=True)
    mark = pass_backend.mark()
    # As the first bytes on the plaintext listener: refused by the proxy, nothing forwarded.
    c = Raw(px.port("plain"), source=CLIENT_IP)
    c.send(forged + stream_header(PASS).encode())
    data, closed = c.read_to_eof(5)
    c.close()
    assert parse_stream_error(data).condition == "not-well-formed" and closed, data

    # Inside TLS with Prosody (after the proxy's header and the client's STARTTLS): XML garbage.
    c = Raw(px.port("plain"), source=CLIENT_IP)
    c.starttls(PASS, client_context(tls_ca.cert))
    assert c.peer_der == pass_backend.cert.der
    c.send(stream_header(PASS))
    feats = c.until(r"</stream:features>")
    assert "<mechanism>PLAIN</mechanism>" in feats, feats
    c.send(forged)
    data, closed = c.read_to_eof(5)
    c.close()
    assert b"not-well-formed" in data, data
    line = pass_backend.wait_log(r"Client address (\S+) port (\d+) via xmpp-shard [^(]*\(no TLS at the proxy", mark)
    assert line and (line.group(1), int(line.group(2))) == (CLIENT_IP, c.sockname[1]), pass_backend.log(mark)
    time.sleep(0.2)
    assert "192.0.2.77" not in pass_backend.log(mark), pass_backend.log(mark)
    assert "Authenticated as" not in pass_backend.log(mark)
