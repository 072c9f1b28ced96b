"""Route matching (exact, then the longest *.suffix, then *) and SIGHUP reloads, observed on
fake backends that record what reaches them."""

import signal
import socket
import time

import pytest

from conftest import DEFAULT_PROXY_OPTS
from xs_clients import assert_stream_error, exchange, header
from xs_local import ProxyConfig, free_port

FEATURES = b"<stream:features/>"


def reached(port, domain, fakes) -> str:
    """Open a stream for `domain`; return the name of the fake backend that got it."""
    before = {n: f.accepted for n, f in fakes.items()}
    ex = exchange(port, header(domain), timeout=3, until=FEATURES)
    assert FEATURES in ex.data, f"{domain}: no backend answered: {ex.data!r}"
    hit = [n for n, f in fakes.items() if f.accepted > before[n]]
    assert len(hit) == 1, f"{domain} reached {hit}"
    return hit[0]


def test_route_precedence(proxies, fake_backends):
    fakes = {n: fake_backends() for n in ("exact", "wild", "deeper", "star")}
    cfg = ProxyConfig(proxy=dict(DEFAULT_PROXY_OPTS))
    for n, f in fakes.items():
        cfg.add_backend(n, f.address)
    cfg.add_route(["*"], ["star"])                     # listed first on purpose: order must not matter
    cfg.add_route(["*.example.test"], ["wild"])
    cfg.add_route(["*.b.example.test"], ["deeper"])
    cfg.add_route(["a.example.test", "b.example.test"], ["exact"])
    px = proxies.start(cfg)
    want = {
        "a.example.test": "exact",
        "B.Example.Test.": "exact",
        "x.example.test": "wild",
        "x.y.example.test": "wild",
        "c.b.example.test": "deeper",
        "d.c.b.example.test": "deeper",
        "example.test": "star",
        "other.test": "star",
    }
    got = {d: reached(px.port, d, fakes) for d in want}
    assert got == want


@pytest.mark.timeout(60)
def test_sighup_applies_new_routes_to_new_sessions_only(proxies, fake_backends):
    old, new = fake_backends(), fake_backends()
    fakes = {"old": old, "new": new}

    def cfg_to(target):
        cfg = ProxyConfig(proxy=dict(DEFAULT_PROXY_OPTS))
        cfg.add_backend("old", old.address)
        cfg.add_backend("new", new.address)
        cfg.add_route(["r.test"], [target])
        return cfg

    px = proxies.start(cfg_to("old"))
    assert reached(px.port, "r.test", fakes) == "old"

    live = socket.create_connection(("127.0.0.1", px.port), timeout=5)
    try:
        live.sendall(header("r.test"))
        buf = b""
        while FEATURES not in buf:
            buf += live.recv(4096)
        live_idx = old.accepted - 1

        cfg = cfg_to("new")
        cfg.listeners = px.cfg.listeners
        px.config_path.write_text(cfg.render())
        px.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while reached(px.port, "r.test", fakes) != "new":
            assert time.monotonic() < deadline, "SIGHUP did not apply the new route within 5 s"
            time.sleep(0.2)

        # The live session kept its backend and still relays.
        live.sendall(b"<presence/>")
        deadline = time.monotonic() + 3
        while not old.data(live_idx).endswith(b"<presence/>"):
            assert time.monotonic() < deadline, f"live session stopped relaying: {old.data(live_idx)!r}"
            time.sleep(0.05)

        # A bad file changes nothing.
        px.config_path.write_text("[[route]\nthis is not toml")
        px.signal(signal.SIGHUP)
        time.sleep(0.5)
        assert px.alive(), f"a bad config on SIGHUP killed the proxy:\n{px.stderr_tail()}"
        assert reached(px.port, "r.test", fakes) == "new"
        ex = exchange(px.port, header("unknown.test"))
        assert_stream_error(ex, "host-unknown")
    finally:
        live.close()


def test_route_listeners_and_an_ipv6_listener(proxies, fake_backends):
    """A route with `listeners = [...]` applies only there; a listener may bind [::1]."""
    fb = fake_backends()
    v6_port = free_port()
    cfg = ProxyConfig(proxy=dict(DEFAULT_PROXY_OPTS))
    cfg.add_listener("v4", f"127.0.0.1:{free_port()}")
    cfg.add_listener("v6", f"[::1]:{v6_port}")
    cfg.add_backend("fake", fb.address)
    cfg.add_route(["only-v6.test"], ["fake"], listeners=["v6"])
    cfg.add_route(["both.test"], ["fake"])
    px = proxies.start(cfg)

    ex = exchange(px.port, header("only-v6.test"))
    assert_stream_error(ex, "host-unknown", from_domain="only-v6.test")
    ex = exchange(px.port, header("both.test"), timeout=3, until=FEATURES)
    assert FEATURES in ex.data, ex.data
    for domain in ("only-v6.test", "both.test"):
        ex = exchange(v6_port, header(domain), host="::1", timeout=3, until=FEATURES)
        assert FEATURES in ex.data, f"{domain} on [::1]: {ex.data!r}"
    assert fb.accepted == 3
