"""Backends that are down, hung, or die under a live session."""

import asyncio
import itertools
import time

import pytest

from conftest import CLIENT, DEFAULT_PROXY_OPTS, dead_address, pwgen
from xs_clients import RawClient, assert_stream_error, exchange, header, login
from xs_local import Account, InstanceSpec, ProsodyInstance, ProxyConfig, VirtualHost, free_port


def client_route_via(cluster, backends, **proxy_opts):
    """The standard config, except that meet.test goes to `backends` (names or
    (name, address) pairs for extra backends)."""
    cfg = cluster.proxy_config(**proxy_opts)
    names = []
    for b in backends:
        if isinstance(b, tuple):
            cfg.add_backend(*b)
            names.append(b[0])
        else:
            names.append(b)
    cfg.routes[0]["backends"] = names
    return cfg


def test_failover_past_a_dead_backend(cluster, proxies):
    px = proxies.start(client_route_via(cluster, [("dead", dead_address()), "client"]))
    jid = f"alice@{CLIENT}"
    mark = cluster.marks()
    r = login(px.port, jid, cluster.password(jid))
    assert r.ok, str(r)
    assert cluster.who_authenticated(jid, mark) == ["client"]


def test_all_backends_dead_is_remote_connection_failed(cluster, proxies):
    px = proxies.start(client_route_via(cluster, [("dead1", dead_address()), ("dead2", dead_address())]))
    ex = exchange(px.port, header(CLIENT), timeout=8)
    assert_stream_error(ex, "remote-connection-failed", from_domain=CLIENT, close_within=8)


def test_failover_past_a_silent_backend(cluster, proxies, fake_backends):
    silent = fake_backends("silent")
    px = proxies.start(client_route_via(cluster, [("silent", silent.address), "client"],
                                        backend_timeout="1s"))
    jid = f"alice@{CLIENT}"
    mark = cluster.marks()
    t0 = time.monotonic()
    r = login(px.port, jid, cluster.password(jid), timeout=15)
    assert r.ok, str(r)
    assert silent.accepted == 1, "the silent backend was not tried first"
    assert silent.data(0).startswith(b"<?xml") or b"stream" in silent.data(0)
    assert cluster.who_authenticated(jid, mark) == ["client"]
    assert time.monotonic() - t0 < 8


def test_only_a_silent_backend_is_remote_connection_failed(cluster, proxies, fake_backends):
    silent = fake_backends("silent")
    px = proxies.start(client_route_via(cluster, [("silent", silent.address)], backend_timeout="1s"))
    t0 = time.monotonic()
    ex = exchange(px.port, header(CLIENT), timeout=8)
    assert_stream_error(ex, "remote-connection-failed", from_domain=CLIENT, close_within=8)
    took = time.monotonic() - t0
    assert 0.7 <= took <= 4, f"refused after {took:.2f}s with backend_timeout = 1s"
    assert silent.accepted == 1


def test_dead_then_silent_is_remote_connection_failed(cluster, proxies, fake_backends):
    silent = fake_backends("silent")
    px = proxies.start(client_route_via(
        cluster, [("dead", dead_address()), ("silent", silent.address)], backend_timeout="1s"))
    ex = exchange(px.port, header(CLIENT), timeout=8)
    assert_stream_error(ex, "remote-connection-failed", from_domain=CLIENT, close_within=8)
    assert silent.accepted == 1, "the second backend was not tried"


# -------------------------------------------------------------------------------------------
# a backend dying under a live, logged-in session

_victims = itertools.count()


@pytest.fixture
def victim(base_dir):
    """A Prosody instance of its own, for this test only (victim.test, one account)."""
    n = next(_victims)
    acc = Account("bob", "victim.test", pwgen())
    spec = InstanceSpec(f"victim{n}", free_port(), hosts=[VirtualHost("victim.test")], accounts=[acc])
    d = base_dir / "victims"
    d.mkdir(exist_ok=True, mode=0o711)
    inst = ProsodyInstance(spec, d)
    inst.prepare()
    inst.start()
    inst.account = acc
    yield inst
    inst.kill()


def victim_proxy(proxies, victim):
    cfg = ProxyConfig(proxy=dict(DEFAULT_PROXY_OPTS))
    cfg.add_backend("victim", victim.address)
    cfg.add_route(["victim.test"], ["victim"])
    return proxies.start(cfg)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_backend_death_closes_the_client_promptly(proxies, victim, how, figures):
    px = victim_proxy(proxies, victim)

    async def scenario():
        c = await RawClient.open(px.port, "victim.test")
        bound = await c.login_plain(victim.account.user, victim.account.password)
        assert bound.startswith("bob@victim.test/"), bound
        assert await c.ping(), "ping through the proxy failed before the backend died"
        assert victim.wait_authenticated("bob@victim.test")
        if how == "SIGKILL":
            victim.kill()
        else:
            victim.stop()
        closed_after = await c.wait_closed(timeout=10)
        await c.aclose()
        return closed_after

    closed_after = asyncio.run(scenario())
    assert closed_after is not None, f"client still connected 10 s after the backend's {how}"
    figures[f"client closed after backend {how}"] = f"{closed_after:.3f}s"
    assert closed_after < 3.0, f"client closed only {closed_after:.2f}s after the backend's {how}"
    assert px.alive()
