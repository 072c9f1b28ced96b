"""The proxy on the wire, with raw sockets: header variants are replayed byte for byte, and
every refusal in docs/CONFIG.md's stream-error table is the proxy's own header +
<stream:error> + </stream:stream> + close, with nothing reaching a backend.

One proxy for the module (header_timeout = 1s), routing only known.test to a fake backend that
records every byte it receives; there is no "*" route."""

import socket
import struct
import time

import pytest

from xs_clients import assert_stream_error, exchange, header, tls_client_hello
from xs_local import ProxyConfig

from conftest import DEFAULT_PROXY_OPTS

KNOWN = "known.test"
STREAM = "http://etherx.jabber.org/streams"
FEATURES = b"<stream:features/>"


@pytest.fixture(scope="module")
def px(module_proxies, fake):
    cfg = ProxyConfig(proxy={**DEFAULT_PROXY_OPTS, "header_timeout": "1s", "max_header_bytes": 4096})
    cfg.add_backend("fake", fake.address)
    cfg.add_route([KNOWN], ["fake"])
    return module_proxies.start(cfg)


@pytest.fixture
def nothing_forwarded(fake, px):
    """Asserts after the test that no connection reached the backend during it."""
    before = fake.accepted
    yield
    time.sleep(0.2)
    assert fake.accepted == before, \
        f"{fake.accepted - before} connection(s) reached the backend: {fake.data()!r}"
    assert px.alive(), f"proxy died:\n{px.stderr_tail()}"


# -------------------------------------------------------------------------------------------
# accepted headers: routed, replayed verbatim, answered by the backend

VARIANTS = {
    "customary": header(KNOWN),
    "double-quotes": header(KNOWN, quote='"'),
    "no-xml-declaration": header(KNOWN, decl=False),
    "other-prefix": header(KNOWN, prefix="s"),
    "upper-case-domain": header("Known.TEST"),
    "trailing-dot": header(KNOWN + "."),
    "component-namespace": header(KNOWN, ns="jabber:component:accept"),
    "whitespace-and-lang": b"<?xml version='1.0' encoding='UTF-8'?>\n <stream:stream\n  "
                           b"xmlns='jabber:client'  xml:lang='en'\txmlns:stream='" + STREAM.encode()
                           + b"' to = 'known.test' version='1.0' >",
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_header_is_routed_and_replayed_verbatim(px, fake, name):
    sent = VARIANTS[name]
    before = fake.accepted
    ex = exchange(px.port, sent, timeout=3, until=FEATURES)
    assert b"<stream:features/>" in ex.data, f"no backend answer relayed; got {ex.data!r}"
    assert fake.accepted == before + 1
    assert fake.data(before) == sent, f"backend got {fake.data(before)!r}, client sent {sent!r}"


def test_header_sent_slowly_within_the_timeout_succeeds(px, fake):
    sent = header(KNOWN)
    n = 6
    pieces = [sent[i * len(sent) // n:(i + 1) * len(sent) // n] for i in range(n)]
    before = fake.accepted
    t0 = time.monotonic()
    ex = exchange(px.port, pieces, gap=0.12, timeout=3, until=FEATURES)      # 0.6 s in total, timeout 1 s
    assert time.monotonic() - t0 >= 0.6
    assert b"<stream:features/>" in ex.data, f"got {ex.data!r}"
    assert fake.data(before) == sent


def test_bytes_after_the_header_are_relayed(px, fake):
    sent = header(KNOWN) + b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"
    before = fake.accepted
    exchange(px.port, sent, timeout=3, until=FEATURES)
    deadline = time.monotonic() + 2
    while fake.data(before) != sent and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.data(before) == sent


# -------------------------------------------------------------------------------------------
# refusals

def test_unknown_domain_is_host_unknown(px, nothing_forwarded):
    ex = exchange(px.port, header("unknown.test"))
    assert_stream_error(ex, "host-unknown", from_domain="unknown.test")


def test_missing_to_is_host_unknown(px, nothing_forwarded):
    ex = exchange(px.port, header(None))
    assert_stream_error(ex, "host-unknown")


def test_subdomain_of_a_known_domain_is_not_known(px, nothing_forwarded):
    ex = exchange(px.port, header("a." + KNOWN))
    assert_stream_error(ex, "host-unknown", from_domain="a." + KNOWN)


def test_http_request_is_not_well_formed(px, nothing_forwarded):
    ex = exchange(px.port, b"GET / HTTP/1.1\r\nHost: known.test\r\n\r\n")
    assert_stream_error(ex, "not-well-formed")


def test_broken_xml_is_not_well_formed(px, nothing_forwarded):
    ex = exchange(px.port, b"<stream:stream to='known.test' xmlns:stream='" + STREAM.encode()
                  + b"' xmlns='jabber:client' version='1.0' to=>")
    assert_stream_error(ex, "not-well-formed")


RESTRICTED = {
    "doctype": b"<?xml version='1.0'?><!DOCTYPE stream:stream>" + header(KNOWN, decl=False),
    "entity": b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]>" + header(KNOWN, decl=False),
    "comment": b"<?xml version='1.0'?><!-- hello -->" + header(KNOWN, decl=False),
    "processing-instruction": b"<?xml version='1.0'?><?foo bar?>" + header(KNOWN, decl=False),
}


@pytest.mark.parametrize("name", list(RESTRICTED))
def test_restricted_xml(px, nothing_forwarded, name):
    ex = exchange(px.port, RESTRICTED[name])
    assert_stream_error(ex, "restricted-xml")


INVALID_NS = {
    "wrong-stream-namespace": b"<stream:stream to='known.test' xmlns='jabber:client' "
                              b"xmlns:stream='http://example.com/streams' version='1.0'>",
    "root-not-stream": b"<stream:session to='known.test' xmlns='jabber:client' "
                       b"xmlns:stream='" + STREAM.encode() + b"' version='1.0'>",
    "content-namespace-jabber-server": header(KNOWN, ns="jabber:server"),
}


@pytest.mark.parametrize("name", list(INVALID_NS))
def test_invalid_namespace(px, nothing_forwarded, name):
    ex = exchange(px.port, INVALID_NS[name])
    assert_stream_error(ex, "invalid-namespace")


def test_oversize_header_is_policy_violation(px, nothing_forwarded):
    big = header(KNOWN, extra=" x='" + "a" * 5000 + "'")
    assert len(big) > 4096
    ex = exchange(px.port, big)
    assert_stream_error(ex, "policy-violation")


def test_large_header_under_the_limit_is_accepted(px, fake):
    base = header(KNOWN, extra=" x=''")
    big = header(KNOWN, extra=" x='" + "a" * (4000 - len(base)) + "'")
    assert len(big) == 4000
    before = fake.accepted
    ex = exchange(px.port, big, timeout=3, until=FEATURES)
    assert FEATURES in ex.data, f"a {len(big)}-byte header (max_header_bytes = 4096): {ex.data[:300]!r}"
    assert fake.data(before) == big


def test_oversize_unfinished_header_is_policy_violation(px, nothing_forwarded):
    ex = exchange(px.port, b"<stream:stream to='known.test' x='" + b"a" * 6000)
    assert_stream_error(ex, "policy-violation")


def test_tls_client_hello_is_closed_without_xml(px, nothing_forwarded):
    hello = tls_client_hello(KNOWN)
    assert hello[:3] in (b"\x16\x03\x01", b"\x16\x03\x03"), hello[:8]
    ex = exchange(px.port, hello, timeout=5)
    assert ex.closed, f"still open after {ex.elapsed:.1f}s"
    assert ex.data == b"", f"proxy answered a ClientHello with {ex.data!r}"
    assert ex.elapsed < 2.0


def test_unfinished_header_times_out(px, nothing_forwarded):
    ex = exchange(px.port, b"<?xml version='1.0'?><stream:stream to='known.test' xmlns='jab", timeout=5)
    assert_stream_error(ex, "connection-timeout", close_within=3.0)
    assert ex.elapsed >= 0.7, f"timed out after {ex.elapsed:.2f}s, header_timeout is 1s"


def test_silent_client_times_out(px, nothing_forwarded):
    ex = exchange(px.port, b"", timeout=5)
    assert_stream_error(ex, "connection-timeout", close_within=3.0)


def test_header_dribbled_past_the_timeout_times_out(px, nothing_forwarded):
    """The deadline is for the whole header, not per read."""
    sent = header(KNOWN)
    pieces = [sent[i:i + 8] for i in range(0, len(sent) - 1, 8)]   # never the final '>'
    ex = exchange(px.port, pieces[:12], gap=0.15, timeout=3)        # 1.65 s of dribbling
    assert_stream_error(ex, "connection-timeout", close_within=3.0)


# -------------------------------------------------------------------------------------------
# listener namespaces

def test_listener_serving_only_jabber_client(proxies, fake):
    cfg = ProxyConfig(proxy=dict(DEFAULT_PROXY_OPTS))
    cfg.add_backend("fake", fake.address)
    cfg.add_route([KNOWN], ["fake"])
    p = proxies.start(cfg, namespaces=["jabber:client"])
    before = fake.accepted
    ex = exchange(p.port, header(KNOWN, ns="jabber:component:accept"))
    assert_stream_error(ex, "invalid-namespace")
    time.sleep(0.2)
    assert fake.accepted == before
    ex = exchange(p.port, header(KNOWN), timeout=3, until=FEATURES)
    assert b"<stream:features/>" in ex.data, ex.data


# -------------------------------------------------------------------------------------------
# clients that vanish at awkward moments

def test_abrupt_clients_leave_the_proxy_serving(px, fake):
    def rst_close(s):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

    for i in range(60):
        s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
        kind = i % 4
        if kind == 1:
            s.sendall(header(KNOWN)[:20])           # half a header
        elif kind == 2:
            s.sendall(header(KNOWN))                # a full header, gone before the answer
        elif kind == 3:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")    # refused, but not there to read it
        (rst_close if i % 2 else socket.socket.close)(s)
    time.sleep(0.3)
    assert px.alive(), f"proxy died:\n{px.stderr_tail()}"
    ex = exchange(px.port, header(KNOWN), timeout=3, until=FEATURES)
    assert FEATURES in ex.data, ex.data
