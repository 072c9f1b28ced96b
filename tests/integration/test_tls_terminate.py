"""TLS terminated by the proxy (tls = "terminate"), STARTTLS and Direct TLS, in front of a Prosody
that has no certificate at all (mod_xmpp_shard, Prosody's default security settings): real
clients (`openssl s_client -starttls xmpp`, slixmpp with certificate verification against the
test's own CA) log in, and the backend's log shows the login and the client's real address.
Also: TLS 1.1 and non-AEAD ciphers refused, an unknown SNI refused with an alert, ALPN,
refusals after the handshake encrypted, a client skipping STARTTLS refused with no backend
connection, PROXY headers sent by clients never trusted, many logins over two workers.

Clients connect from 127.0.0.3 where it matters, so the backend's "Client address" (from the
proxy's PROXY v2 header) cannot be confused with the proxy's own connection from 127.0.0.1.
"""

from __future__ import annotations

import re
import ssl
import time

import pytest

pytest.register_assert_rewrite("tls_support")

from xs_clients import Exchange, assert_stream_error, parse_stream_error, tls_client_hello  # noqa: E402
from xs_fakes import FakeBackend  # noqa: E402
from tls_support import (PROXY_SIGNATURE, RAW, SUB, TERM, Raw, SClient, TestCA,  # noqa: E402
                         backend_login, base_config, client_context, der_subject_org, free_port,
                         login_plain, proxy_v2, s_client_once, start_proxy, stream_header, tls_login,
                         tls_login_many)

pytest_plugins = ["tls_support"]

CLIENT_IP = "127.0.0.3"
SASL_PLAIN_FEATURE = "<mechanism>PLAIN</mechanism>"


def make_config(term_backend, proxy_certs, fake: FakeBackend, **proxy_opts):
    cfg = base_config(**proxy_opts)
    cfg.add_listener("starttls", f"127.0.0.1:{free_port()}", tls="terminate")
    cfg.add_listener("direct", f"127.0.0.1:{free_port()}", tls="terminate", direct_tls=True)
    cfg.add_backend("term", f"127.0.0.1:{term_backend.shard_port}", proxy_protocol="v2")
    cfg.add_backend("fake", fake.address, proxy_protocol="v2")
    cfg.add_route([TERM, SUB], ["term"], name="term")
    cfg.add_route([RAW], ["fake"], name="raw")
    for c in proxy_certs.values():
        cfg.add_certificate(c.cert, c.key, c.domains)
    return cfg


@pytest.fixture(scope="module")
def proxy(module_proxies, _term_backend, proxy_certs, fake):
    return start_proxy(module_proxies, make_config(_term_backend, proxy_certs, fake), name="tls-term")


@pytest.fixture
def px(proxy):
    assert proxy.alive(), proxy.log()[-3000:]
    yield proxy
    assert proxy.alive(), f"the proxy died:\n{proxy.log()[-5000:]}"


# --------------------------------------------------------------------------------------------
# Logins through the terminating listener

def test_backend_has_no_certificate_and_offers_nothing_alone(term_backend):
    """The premise: the backend has no certificate and no `tls` module, and with Prosody's
    default security its own plaintext c2s port offers no SASL mechanism at all."""
    cfg = term_backend.inst.config_path.read_text()
    assert not any(term_backend.inst.paths.certs.iterdir())
    mods = re.search(r"^modules_enabled = \{([^}]*)\}", cfg, re.M).group(1)
    assert '"xmpp_shard"' in mods and '"tls"' not in mods, mods
    assert re.search(r"^c2s_require_encryption = true", cfg, re.M), cfg
    c = Raw(term_backend.inst.port)
    c.send(stream_header(TERM))
    data, closed = c.read_to_eof(5)
    c.close()
    text = data.decode()
    assert "<mechanism>" not in text and "starttls" not in text, text
    # Prosody 0.12: <undefined-condition/> "No stream features to proceed with", then closes.
    assert "<stream:error>" in text and closed, text


def test_s_client_starttls_login(px, term_backend, tls_ca, proxy_certs):
    """openssl s_client -starttls xmpp -xmpphost tls.test, no SNI (the certificate is chosen by
    the stream's `to`), verified against the test CA, then SASL PLAIN and bind inside TLS."""
    port = px.port("starttls")
    mark = term_backend.mark()
    ok0 = px.handshakes("starttls", "ok")
    c = SClient(port, ca=tls_ca.cert, xmpphost=TERM, verify_hostname=TERM)
    try:
        out = c.until(r"Verify return code: \d+ \([^)]*\)")
        assert "Verify return code: 0 (ok)" in out, out
        assert "subject=O = xmpp-shard proxy, CN = tls.test" in out, out
        assert re.search(r"New, TLSv1\.3, Cipher is TLS_", out), out
        assert "Compression: NONE" in out
        lport = c.local_port(port)
        assert lport, "could not find s_client's source port with ss"
        jid = c.login_plain(TERM, "alice", term_backend.passwords[f"alice@{TERM}"])
        assert jid.startswith(f"alice@{TERM}/"), jid
        c.send("</stream:stream>\n")
        assert c.wait_exit(10) is not None, "the session did not end after </stream:stream>"
    finally:
        c.close()
    backend_login(term_backend, mark, f"alice@{TERM}", ("127.0.0.1", lport))
    assert px.handshakes("starttls", "ok") == ok0 + 1
    assert re.search(rf"session_end client=127\.0\.0\.1:{lport} listener=starttls domain={re.escape(TERM)} "
                     r"route=term backend=term ", px.log()), px.log()[-3000:]


def test_slixmpp_starttls_verified_login(px, term_backend, tls_ca, proxy_certs):
    """slixmpp (verification on, check_hostname on, only the test CA trusted) logs in to both
    domains; SNI picks the exact certificate for tls.test and the wildcard for chat.tls.test."""
    port = px.port("starttls")
    mark = term_backend.mark()
    creds = [(f"alice@{TERM}", term_backend.passwords[f"alice@{TERM}"]),
             (f"bob@{SUB}", term_backend.passwords[f"bob@{SUB}"])]
    res = tls_login_many(port, creds, ca=tls_ca.cert, ping=True)
    for r in res:
        assert r.ok and r.pinged, str(r)
    assert res[0].peer_der == proxy_certs["main"].der, der_subject_org(res[0].peer_der)
    assert res[1].peer_der == proxy_certs["wild"].der, der_subject_org(res[1].peer_der)
    for (jid, _), r in zip(creds, res):
        backend_login(term_backend, mark, jid, ("127.0.0.1", r.sockname[1]))


def test_slixmpp_rejects_a_certificate_it_cannot_verify(px, term_backend, base_dir):
    """The control for the test above: the same client trusting another CA fails the handshake
    and nothing logs in."""
    other = TestCA(base_dir / "tls-other-ca", name="another CA")
    mark = term_backend.mark()
    r = tls_login(px.port("starttls"), f"alice@{TERM}", term_backend.passwords[f"alice@{TERM}"],
                  ca=other.cert, timeout=10)
    assert not r.ok, str(r)
    time.sleep(0.3)
    assert "Authenticated as" not in term_backend.log(mark), term_backend.log(mark)


def test_direct_tls_terminate_by_sni(px, term_backend, tls_ca, proxy_certs):
    """Direct TLS (XEP-0368) on a terminating listener: the proxy handshakes first, the SNI picks
    the certificate, ALPN xmpp-client is selected, the stream inside routes on its `to`."""
    port = px.port("direct")
    mark = term_backend.mark()
    ok0 = px.handshakes("direct", "ok")
    creds = [(f"alice@{TERM}", term_backend.passwords[f"alice@{TERM}"]),
             (f"bob@{SUB}", term_backend.passwords[f"bob@{SUB}"])]
    res = tls_login_many(port, creds, ca=tls_ca.cert, direct=True, alpn=["xmpp-client"])
    for r in res:
        assert r.ok, str(r)
        assert r.alpn == "xmpp-client", str(r)
    assert res[0].peer_der == proxy_certs["main"].der
    assert res[1].peer_der == proxy_certs["wild"].der
    for (jid, _), r in zip(creds, res):
        backend_login(term_backend, mark, jid, ("127.0.0.1", r.sockname[1]))

    # No SNI, no ALPN (s_client): the first certificate, the route from the stream's `to`.
    mark = term_backend.mark()
    c = SClient(port, ca=tls_ca.cert, verify_hostname=TERM)
    try:
        out = c.until(r"Verify return code: \d+ \([^)]*\)")
        assert "Verify return code: 0 (ok)" in out and "CN = tls.test" in out, out
        lport = c.local_port(port)
        c.login_plain(TERM, "alice", term_backend.passwords[f"alice@{TERM}"])
    finally:
        c.close()
    backend_login(term_backend, mark, f"alice@{TERM}", ("127.0.0.1", lport))
    assert px.handshakes("direct", "ok") == ok0 + 3


def test_direct_tls_alpn_without_xmpp_client_refused(px, fake, tls_ca):
    before = (px.handshakes("direct", "alpn"), fake.accepted)
    c = Raw(px.port("direct"), source=CLIENT_IP)
    with pytest.raises(ssl.SSLError, match="NO_APPLICATION_PROTOCOL|no application protocol"):
        c.wrap(client_context(tls_ca.cert, alpn=["h2", "http/1.1"]), RAW)
    c.close()
    px.wait_metric(lambda m: m.val("xmpp_shard_tls_handshakes_total", listener="direct", result="alpn")
                   == before[0] + 1, 5, "alpn refusal counted")
    assert fake.accepted == before[1]


# --------------------------------------------------------------------------------------------
# Refusals

@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_1_refused_tls_1_2_accepted(px, fake, tls_ca):
    """TLS 1.1 (a real TLS 1.1 ClientHello: OpenSSL at security level 0) gets a protocol_version
    alert on both listeners; TLS 1.2 works with an ECDHE AEAD suite; a TLS 1.2 client offering
    only CBC suites finds no shared cipher."""
    m0 = px.metrics()
    v0 = {l: m0.val("xmpp_shard_tls_handshakes_total", listener=l, result="version") for l in ("starttls", "direct")}
    accepted0 = fake.accepted

    rc, out = s_client_once(px.port("starttls"), ca=tls_ca.cert, xmpphost=RAW, servername=RAW,
                            extra=("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"))
    assert rc != 0 and "Cipher is (NONE)" in out, out
    assert re.search(r"alert protocol version", out, re.I), out

    ctx = client_context(tls_ca.cert, min_version=ssl.TLSVersion.TLSv1_1,
                         max_version=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0")
    c = Raw(px.port("direct"), source=CLIENT_IP)
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION|protocol version|UNSUPPORTED_PROTOCOL"):
        c.wrap(ctx, RAW)
    c.close()

    # TLS 1.2 with the default suites: accepted, forward-secret AEAD.
    rc, out = s_client_once(px.port("starttls"), ca=tls_ca.cert, xmpphost=RAW, servername=RAW,
                            verify_hostname=RAW, extra=("-tls1_2",))
    assert "Verify return code: 0 (ok)" in out, out
    m = re.search(r"New, TLSv1\.2, Cipher is (\S+)", out)
    assert m and m.group(1).startswith("ECDHE-") and ("GCM" in m.group(1) or "CHACHA20" in m.group(1)), out
    # TLS 1.2 offering only CBC suites: handshake failure.
    rc, out = s_client_once(px.port("direct"), ca=tls_ca.cert, servername=RAW,
                            extra=("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384"))
    assert rc != 0 and "Cipher is (NONE)" in out and re.search(r"handshake failure", out, re.I), out

    px.wait_metric(lambda m: all(m.val("xmpp_shard_tls_handshakes_total", listener=l, result="version")
                                 == v0[l] + 1 for l in v0), 5, "one version refusal per listener")
    m1 = px.metrics()
    assert m1.val("xmpp_shard_tls_handshakes_total", listener="direct", result="no-shared-cipher") >= 1
    assert fake.accepted == accepted0, "a refused handshake reached the backend"


def test_unknown_sni_gets_an_alert(px, term_backend, fake, tls_ca):
    """An SNI naming no certificate: unrecognized_name alert (STARTTLS and Direct TLS), counted
    as result="unknown-sni", nothing reaches a backend, and the next client is served."""
    m0 = px.metrics()
    u0 = {l: m0.val("xmpp_shard_tls_handshakes_total", listener=l, result="unknown-sni") for l in ("starttls", "direct")}
    failed0 = m0.val("xmpp_shard_session_ends_total", reason="tls_failed")
    accepted0, mark = fake.accepted, term_backend.mark()

    c = Raw(px.port("starttls"), source=CLIENT_IP)
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME|unrecognized name"):
        c.starttls(TERM, client_context(tls_ca.cert), sni="nowhere.example")
    data, closed = c.read_to_eof(3)
    c.close()
    assert closed and b"<" not in data, data  # no XML in clear after the handshake began

    c = Raw(px.port("direct"), source=CLIENT_IP)
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME|unrecognized name"):
        c.wrap(client_context(tls_ca.cert), "nowhere.example")
    c.close()

    rc, out = s_client_once(px.port("direct"), ca=tls_ca.cert, servername="other.example")
    assert rc != 0 and re.search(r"unrecognized name", out, re.I), out

    px.wait_metric(lambda m: m.val("xmpp_shard_tls_handshakes_total", listener="starttls", result="unknown-sni")
                   == u0["starttls"] + 1 and
                   m.val("xmpp_shard_tls_handshakes_total", listener="direct", result="unknown-sni")
                   == u0["direct"] + 2, 5, "unknown-sni counted per listener")
    assert px.metrics().val("xmpp_shard_session_ends_total", reason="tls_failed") >= failed0 + 3
    assert fake.accepted == accepted0
    assert "Client address" not in term_backend.log(mark)
    # Still serving.
    r = tls_login(px.port("starttls"), f"alice@{TERM}", term_backend.passwords[f"alice@{TERM}"], ca=tls_ca.cert)
    assert r.ok, str(r)


def test_refusal_after_the_handshake_is_encrypted(px, tls_ca, proxy_certs):
    """A domain the wildcard certificate covers but no route serves: the handshake succeeds
    (SNI other.tls.test) and <host-unknown/> comes inside TLS, with its own stream header."""
    c = Raw(px.port("starttls"), source=CLIENT_IP)
    c.starttls(TERM, client_context(tls_ca.cert), sni=f"other.{TERM}")  # before TLS: a routed domain
    assert c.peer_der == proxy_certs["wild"].der
    t0 = time.monotonic()
    c.send(stream_header(f"other.{TERM}"))
    data, closed = c.read_to_eof(5)
    c.close()
    ex = Exchange(data, closed, time.monotonic() - t0)
    doc = assert_stream_error(ex, "host-unknown")
    assert doc.root_attrs.get("from") == f"other.{TERM}", data


def test_pipelined_header_and_starttls(px, term_backend, tls_ca):
    """A client that sends its header and <starttls/> in one packet gets features and <proceed/>
    and completes the handshake; then logs in."""
    mark = term_backend.mark()
    c = Raw(px.port("starttls"), source=CLIENT_IP)
    c.send(stream_header(TERM) + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    got = c.until(r"<proceed[^>]*/>")
    assert "<required/>" in got, got
    c.wrap(client_context(tls_ca.cert), TERM)
    login_plain(c, TERM, "alice", term_backend.passwords[f"alice@{TERM}"])
    c.close()
    backend_login(term_backend, mark, f"alice@{TERM}", (CLIENT_IP, c.sockname[1]))


def test_client_hello_on_a_starttls_listener_is_closed_without_xml(px, fake):
    """Direct TLS sent to a STARTTLS-only terminating listener: closed, no XML, no backend."""
    n = fake.accepted
    c = Raw(px.port("starttls"), source=CLIENT_IP)
    c.send(tls_client_hello(RAW))
    data, closed = c.read_to_eof(5)
    c.close()
    assert closed and data == b"", data
    assert fake.accepted == n


@pytest.mark.parametrize("first", [
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>",
    "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
    "<message to='someone@raw.test'><body>hi</body></message>",
    "</stream:stream>",
], ids=["auth", "iq", "message", "close"])
def test_skipping_starttls_is_a_policy_violation(px, fake, first):
    """On a terminating listener TLS is required: anything but <starttls/> after the proxy's
    features gets <policy-violation/> (in clear: TLS never started) and no backend connection."""
    m0 = px.metrics()
    accepted0 = fake.accepted
    c = Raw(px.port("starttls"), source=CLIENT_IP)
    c.send(stream_header(RAW))
    feats = c.until(r"</stream:features>")
    assert "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" in feats, feats
    assert "<mechanism" not in feats
    t0 = time.monotonic()
    c.send(first)
    data, closed = c.read_to_eof(5)
    c.close()
    doc = parse_stream_error(feats.encode() + data)
    assert doc.condition == "policy-violation", (feats, data)
    assert doc.closed_stream and closed, data
    assert time.monotonic() - t0 < 5
    time.sleep(0.2)
    assert fake.accepted == accepted0, "a client that skipped STARTTLS reached the backend"
    m1 = px.metrics()
    assert m1.val("xmpp_shard_stream_errors_total", condition="policy-violation") == \
        m0.val("xmpp_shard_stream_errors_total", condition="policy-violation") + 1
    assert m1.val("xmpp_shard_sessions_total", route="raw") == m0.val("xmpp_shard_sessions_total", route="raw")


def test_skipping_starttls_towards_prosody(px, term_backend):
    """The same with the real backend's domain: Prosody sees no connection at all."""
    mark = term_backend.mark()
    c = Raw(px.port("starttls"), source=CLIENT_IP)
    c.send(stream_header(TERM))
    feats = c.until(r"</stream:features>")
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>")
    data, closed = c.read_to_eof(5)
    c.close()
    assert parse_stream_error(feats.encode() + data).condition == "policy-violation", data
    time.sleep(0.3)
    assert term_backend.log(mark) == "", term_backend.log(mark)


# --------------------------------------------------------------------------------------------
# PROXY v2: the proxy's header is the only one trusted

def test_proxy_header_carries_the_real_client(px, fake, tls_ca):
    """What the backend receives: the proxy's PROXY v2 header (client 127.0.0.3 and its port,
    the SSL TLV) and then the client's restarted stream in plaintext."""
    n = fake.accepted
    c = Raw(px.port("starttls"), source=CLIENT_IP)
    c.starttls(RAW, client_context(tls_ca.cert))
    c.send(stream_header(RAW))
    c.until(r"<stream:features/>")
    assert fake.wait_accepted(n + 1)
    data = fake.data(n)
    c.close()
    assert data.startswith(PROXY_SIGNATURE), data[:64]
    assert data[12] == 0x21 and data[13] == 0x11, data[:16]   # PROXY command, TCP over IPv4
    src = ".".join(str(b) for b in data[16:20])
    sport = int.from_bytes(data[24:26], "big")
    assert (src, sport) == (CLIENT_IP, c.sockname[1])
    length = int.from_bytes(data[14:16], "big")
    tlvs = parse_tlvs(data[16 + 12:16 + length])
    assert tlvs.get(0x02) == RAW.encode(), tlvs                # PP2_TYPE_AUTHORITY
    ssl_tlv = tlvs.get(0x20)                                    # PP2_TYPE_SSL
    assert ssl_tlv and ssl_tlv[0] & 0x01, tlvs                  # PP2_CLIENT_SSL
    sub = parse_tlvs(ssl_tlv[5:])
    assert sub.get(0x21) in (b"TLSv1.3", b"TLSv1.2"), sub       # PP2_SUBTYPE_SSL_VERSION
    assert sub.get(0x23), sub                                   # PP2_SUBTYPE_SSL_CIPHER
    assert data[16 + length:].startswith(stream_header(RAW).encode()), data[16 + length:][:200]


def parse_tlvs(b: bytes) -> dict:
    out, i = {}, 0
    while i + 3 <= len(b):
        t, n = b[i], int.from_bytes(b[i + 1:i + 3], "big")
        out.setdefault(t, b[i + 3:i + 3 + n])
        i += 3 + n
    assert i == len(b), f"TLVs do not add up: {b!r}"
    return out


def test_client_sent_proxy_header_is_never_trusted(px, term_backend, fake, tls_ca):
    forged = proxy_v2(("192.0.2.66", 4444), tls=True)
    mark = term_backend.mark()
    accepted0 = fake.accepted

    # 1. In clear, before the stream header: not XML, refused; no backend connection.
    c = Raw(px.port("starttls"), source=CLIENT_IP)
    c.send(forged + stream_header(TERM).encode())
    data, closed = c.read_to_eof(5)
    c.close()
    doc = parse_stream_error(data)
    assert doc.condition in ("not-well-formed", "restricted-xml", "invalid-xml"), data
    assert closed

    # 2. Inside TLS, before the restarted stream header: refused inside TLS.
    c = Raw(px.port("starttls"), source=CLIENT_IP)
    c.starttls(TERM, client_context(tls_ca.cert))
    c.send(forged + stream_header(TERM).encode())
    data, closed = c.read_to_eof(5)
    c.close()
    assert parse_stream_error(data).condition in ("not-well-formed", "restricted-xml", "invalid-xml"), data
    assert closed
    time.sleep(0.2)
    assert fake.accepted == accepted0
    assert term_backend.log(mark) == "", term_backend.log(mark)

    # 3. Inside an established session: relayed as stream data after the proxy's own header;
    #    Prosody's XML parser rejects it, and the forged address never shows up.
    c = Raw(px.port("starttls"), source=CLIENT_IP)
    c.starttls(TERM, client_context(tls_ca.cert))
    c.send(stream_header(TERM))
    feats = c.until(r"</stream:features>")
    assert SASL_PLAIN_FEATURE in feats, feats
    c.send(forged)
    data, closed = c.read_to_eof(5)
    c.close()
    assert b"not-well-formed" in data, data
    line = term_backend.wait_log(r"Client address (\S+) port (\d+) via xmpp-shard", mark)
    assert line and (line.group(1), int(line.group(2))) == (CLIENT_IP, c.sockname[1]), term_backend.log(mark)

    # 4. Straight to the backend's PROXY port from an address it does not trust: closed unread.
    c = Raw(term_backend.shard_port, source=CLIENT_IP)
    c.send(forged + stream_header(TERM).encode())
    data, closed = c.read_to_eof(5)
    c.close()
    assert closed and data == b"", data
    assert term_backend.wait_log(r"Closing connection from 127\.0\.0\.3 port \d+: not a trusted proxy", mark)

    time.sleep(0.2)
    assert "192.0.2.66" not in term_backend.log(mark), term_backend.log(mark)
    assert "Authenticated as" not in term_backend.log(mark)


# --------------------------------------------------------------------------------------------
# Two workers

@pytest.mark.multiworker
@pytest.mark.timeout(150)
def test_tls_logins_over_two_workers(proxies, term_backend, proxy_certs, tls_ca, figures):
    """40 verified logins at once (STARTTLS and Direct TLS, both domains) through workers = 2."""
    fb = FakeBackend("xmpp")
    try:
        px = start_proxy(proxies, make_config(term_backend, proxy_certs, fb, workers=2), name="tls-mw",
                         log_level="info")
        mark = term_backend.mark()
        creds = [(f"alice@{TERM}", term_backend.passwords[f"alice@{TERM}"]),
                 (f"bob@{SUB}", term_backend.passwords[f"bob@{SUB}"])] * 10
        t0 = time.monotonic()

        import asyncio
        from tls_support import atls_login

        async def run():
            return await asyncio.gather(
                *(atls_login(px.port("starttls"), j, p, ca=tls_ca.cert, timeout=60) for j, p in creds),
                *(atls_login(px.port("direct"), j, p, ca=tls_ca.cert, direct=True, timeout=60)
                  for j, p in creds))
        res = asyncio.run(run())
        elapsed = time.monotonic() - t0
        bad = [str(r) for r in res if not r.ok]
        assert not bad, "\n".join(bad)
        for r in res:
            want = proxy_certs["main" if r.jid.endswith(f"@{TERM}") else "wild"]
            assert r.peer_der == want.der, str(r)
        deadline = time.monotonic() + 10
        while len(term_backend.inst.authenticated(mark)) < len(res) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(term_backend.inst.authenticated(mark)) == len(res), term_backend.log(mark)[-3000:]
        lines = term_backend.client_address_lines(mark)
        assert sorted(p for _, p, _ in lines) == sorted(r.sockname[1] for r in res)
        m = px.metrics()
        assert m.val("xmpp_shard_tls_handshakes_total", result="ok") == len(res)
        figures["tls: 40 verified logins through 2 workers (s)"] = round(elapsed, 2)
    finally:
        fb.close()
