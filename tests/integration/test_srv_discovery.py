"""Backends discovered by DNS SRV (`[[backend]] srv`): a dnsmasq on loopback serves the test
zone's SRV and A records; proxies follow them.

- two proxy replicas, each asking its own DNS server (the same records in another order, other
  TTLs), route 1,000 domains and 1,000 rooms alike;
- a target added moves about 1/N of the keys, all to it; a target removed moves only its own;
  the proxy follows within the records' TTL;
- a failing resolver keeps the last set (counted, its age exported), and recovers;
- with real Prosody instances: a removed target's live session keeps working while new
  sessions for its domain go to the remaining instance.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import DEFAULT_PROXY_OPTS, TENANTS
from http_support import KeepAliveHttp, bosh_body
from ops_support import DISCOVERY_FAMILIES, promtool_check, scrape, start_with_metrics, wait_metric
from srv_support import (SRV_HTTP, SRV_XMPP, Dnsmasq, HttpBackend, accepted_counts,
                         backend_of_domains, target)
from xs_clients import RawClient, header
from xs_local import ProxyConfig, free_port

KEYS = 1000
ROOM_HOST = "meet.test"
NAMES = ["shard-1", "shard-2", "shard-3"]


def srv_config(dns: Dnsmasq, *, http: bool = False, max_interval: str = "3s") -> ProxyConfig:
    cfg = ProxyConfig(proxy={**DEFAULT_PROXY_OPTS, "resolvers": [dns.address]})
    cfg.add_listener("c2s", f"127.0.0.1:{free_port()}")
    cfg.backends.append({"name": "shards", "srv": SRV_XMPP, "srv_min_interval": "500ms",
                         "srv_max_interval": max_interval})
    cfg.add_route(["*"], ["shards"], name="domains", balance="hash", listeners=["c2s"])
    if http:
        cfg.add_listener("web", f"127.0.0.1:{free_port()}", protocol="http",
                         shard_header="X-Jitsi-Shard")
        cfg.backends.append({"name": "web", "srv": SRV_HTTP, "member_suffix": "-http",
                             "srv_min_interval": "500ms", "srv_max_interval": max_interval})
        cfg.add_route([ROOM_HOST], ["web"], name="rooms", balance="hash", hash_key="room",
                      listeners=["web"])
    return cfg


def http_port(cfg: ProxyConfig) -> int:
    return int(next(l for l in cfg.listeners if l["name"] == "web")["bind"].rsplit(":", 1)[1])


def open_stream(port: int, domain: str) -> None:
    """A stream header for `domain`; returns once the backend's answer came back through."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(header(domain))
        got = b""
        while b"features" not in got:
            d = s.recv(4096)
            assert d, f"{domain}: the proxy closed before the backend's header: {got!r}"
            got += d


def route_domains(port: int, fakes: dict, domains: list[str]) -> dict[str, str]:
    since = accepted_counts(fakes)
    with ThreadPoolExecutor(max_workers=8) as ex:
        list(ex.map(lambda d: open_stream(port, d), domains))
    got = backend_of_domains(fakes, domains, since)
    return {d: got[d] for d in domains}


def route_rooms(port: int, rooms: list[str]) -> dict[str, str]:
    """Each room's backend, as the proxy's shard header names it, over one keep-alive connection."""
    c = KeepAliveHttp(port)
    out = {}
    try:
        for r in rooms:
            status, fields, _ = c.post(f"/http-bind?room={r}", bosh_body(1, to=ROOM_HOST), host=ROOM_HOST)
            assert status == 200, f"room {r}: {status}"
            out[r] = fields["x-jitsi-shard"].removesuffix(f".{target('')[1:]}-http")
    finally:
        c.close()
    return out


def members(mport: int, group: str = "shards") -> set[str]:
    m = scrape(mport)
    ups = {l["backend"] for l, _ in m.series("xmpp_shard_backend_up")}
    return {b.split(".")[0] for b in ups if b != group and not b.endswith("-http")}


def spread(placement: dict[str, str]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(collections.Counter(placement.values()).items()))


@pytest.fixture
def shards(fake_backends):
    """Three fake XMPP backends and three HTTP backends, by target name."""
    xmpp = {n: fake_backends("xmpp") for n in NAMES}
    web = {n: HttpBackend() for n in NAMES}
    yield xmpp, web
    for w in web.values():
        w.close()


_dns_count = iter(range(1 << 30))


@pytest.fixture
def dns_servers(base_dir):
    """dns_servers(name, ttl) -> a Dnsmasq (not started); all are stopped after the test."""
    made: list[Dnsmasq] = []

    def make(name: str, ttl: int = 1) -> Dnsmasq:
        d = Dnsmasq(base_dir / "dns" / f"{name}-{next(_dns_count)}", ttl)
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()


@pytest.mark.timeout(120)
def test_two_replicas_agree_on_1000_domains_and_rooms(proxies, shards, dns_servers, figures):
    xmpp, web = shards
    ports = {n: fb.port for n, fb in xmpp.items()}
    wports = {n: w.port for n, w in web.items()}
    # The same records, in another order and with other TTLs, from two servers.
    dns_a = dns_servers("a", ttl=1).start(ports, wports, order=NAMES)
    dns_b = dns_servers("b", ttl=30).start(ports, wports, order=list(reversed(NAMES)))
    cfg_a, cfg_b = srv_config(dns_a, http=True), srv_config(dns_b, http=True, max_interval="60s")
    pa, pb = proxies.start(cfg_a), proxies.start(cfg_b)
    domains = [f"d{i:04d}.tenant.test" for i in range(KEYS)]
    rooms = [f"room{i:04d}" for i in range(KEYS)]

    da = route_domains(pa.port, xmpp, domains)
    db = route_domains(pb.port, xmpp, domains)
    ra, rb = route_rooms(http_port(cfg_a), rooms), route_rooms(http_port(cfg_b), rooms)

    differ_d = [d for d in domains if da[d] != db[d]]
    differ_r = [r for r in rooms if ra[r] != rb[r]]
    figures["srv replicas: 1000 domains"] = (f"replica A {{{spread(da)}}}, replica B {{{spread(db)}}}, "
                                             f"{len(differ_d)} differ")
    figures["srv replicas: 1000 rooms"] = (f"replica A {{{spread(ra)}}}, replica B {{{spread(rb)}}}, "
                                           f"{len(differ_r)} differ")
    assert not differ_d, f"{len(differ_d)} domains placed differently, e.g. {differ_d[:5]}"
    assert not differ_r, f"{len(differ_r)} rooms placed differently, e.g. {differ_r[:5]}"
    # Every target serves a fair share (rendezvous over three names).
    for placement in (da, ra):
        counts = collections.Counter(placement.values())
        assert set(counts) == set(NAMES), counts
        assert min(counts.values()) > KEYS / 3 * 0.7, counts


@pytest.mark.timeout(120)
def test_added_and_removed_targets_move_about_one_in_n(proxies, shards, dns_servers, figures):
    xmpp, web = shards
    ports = {n: fb.port for n, fb in xmpp.items()}
    wports = {n: w.port for n, w in web.items()}
    dns = dns_servers("follow", ttl=1).start({n: ports[n] for n in NAMES[:2]}, {n: wports[n] for n in NAMES[:2]})
    cfg = srv_config(dns, http=True)
    px, mport = start_with_metrics(proxies, cfg)
    # The first answers come before the workers accept; the metrics endpoint is up earlier.
    m, _ = wait_metric(mport, lambda m: m.val("xmpp_shard_discovery_members", backend="shards") == 2
                       and m.val("xmpp_shard_discovery_members", backend="web") == 2, 10,
                       "both groups resolved at start-up")
    assert members(mport) == {"shard-1", "shard-2"}
    for name, typ in DISCOVERY_FAMILIES.items():
        assert m.types.get(name) == typ, f"{name}: TYPE {m.types.get(name)!r}"
        assert {l["backend"] for l, _ in m.series(name)} == {"shards", "web"}, name
    assert m.val("xmpp_shard_discovery_resolutions_total", backend="shards", result="success") >= 1
    rc, out = promtool_check(m.text)
    assert rc == 0, out
    domains = [f"d{i:04d}.tenant.test" for i in range(KEYS)]
    rooms = [f"room{i:04d}" for i in range(KEYS)]
    d2, r2 = route_domains(px.port, xmpp, domains), route_rooms(http_port(cfg), rooms)

    def follow(names: list[str], what: str) -> float:
        """New records with `names` only (dnsmasq restarts); seconds from the restart until both
        groups have that many members."""
        t0 = time.monotonic()
        dns.set({n: ports[n] for n in names}, {n: wports[n] for n in names})
        wait_metric(mport, lambda m: m.val("xmpp_shard_discovery_members", backend="shards") == len(names)
                    and m.val("xmpp_shard_discovery_members", backend="web") == len(names), 15,
                    f"the proxy follows the {what} SRV target")
        return time.monotonic() - t0

    # Added: shard-3. Only keys moving to it move.
    added_after = follow(NAMES, "added")
    d3, r3 = route_domains(px.port, xmpp, domains), route_rooms(http_port(cfg), rooms)
    moved_d = [k for k in domains if d2[k] != d3[k]]
    moved_r = [k for k in rooms if r2[k] != r3[k]]
    assert all(d3[k] == "shard-3" for k in moved_d), "a key moved between the old targets"
    assert all(r3[k] == "shard-3" for k in moved_r), "a room moved between the old targets"

    # Removed: shard-1. Only its keys move.
    removed_after = follow(NAMES[1:], "removed")
    d4, r4 = route_domains(px.port, xmpp, domains), route_rooms(http_port(cfg), rooms)
    gone_d = [k for k in domains if d3[k] != d4[k]]
    gone_r = [k for k in rooms if r3[k] != r4[k]]
    assert all(d3[k] == "shard-1" for k in gone_d) and all(d3[k] != "shard-1" or k in gone_d for k in domains)
    assert all(r3[k] == "shard-1" for k in gone_r) and all(r3[k] != "shard-1" or k in gone_r for k in rooms)
    assert members(mport) == {"shard-2", "shard-3"}

    figures["srv add shard-3 (2 -> 3)"] = (f"moved {len(moved_d)}/{KEYS} domains, {len(moved_r)}/{KEYS} rooms "
                                           f"(expected ~{KEYS // 3}), followed {added_after:.1f} s after the "
                                           f"DNS server restarted with the new records (TTL 1 s)")
    figures["srv remove shard-1 (3 -> 2)"] = (f"moved {len(gone_d)}/{KEYS} domains, {len(gone_r)}/{KEYS} rooms "
                                              f"(shard-1's share), followed {removed_after:.1f} s after")
    # About 1/N: the added target takes about a third, binomial bounds far outside chance.
    for moved in (moved_d, moved_r):
        assert KEYS / 3 * 0.7 < len(moved) < KEYS / 3 * 1.3, len(moved)


@pytest.mark.timeout(90)
def test_a_failing_resolver_keeps_the_last_set(proxies, shards, dns_servers, figures):
    xmpp, _web = shards
    ports = {n: fb.port for n, fb in xmpp.items()}
    dns = dns_servers("failing", ttl=1).start({n: ports[n] for n in NAMES[:2]})
    cfg = srv_config(dns)
    px, mport = start_with_metrics(proxies, cfg)
    wait_metric(mport, lambda m: m.val("xmpp_shard_discovery_members", backend="shards") == 2, 10,
                "the group resolved at start-up")
    domains = [f"d{i:03d}.tenant.test" for i in range(200)]
    before = route_domains(px.port, xmpp, domains)
    fails0 = scrape(mport).val("xmpp_shard_discovery_resolutions_total", backend="shards", result="failure")

    dns.stop()
    m, _ = wait_metric(mport, lambda m: m.val("xmpp_shard_discovery_resolutions_total", backend="shards",
                                                  result="failure") >= fails0 + 2, 15,
                       "resolutions fail while the DNS server is down")
    age = m.val("xmpp_shard_discovery_set_age_seconds", backend="shards")
    assert m.val("xmpp_shard_discovery_members", backend="shards") == 2
    during = route_domains(px.port, xmpp, domains)
    assert during == before, "a failed resolution changed where domains go"
    assert members(mport) == {"shard-1", "shard-2"}
    assert "keeping the last set (2 member(s)" in px.stderr_text()

    dns.start({n: ports[n] for n in NAMES[:2]})
    m, _ = wait_metric(mport, lambda m: m.val("xmpp_shard_discovery_set_age_seconds", backend="shards") < 2,
                       15, "resolutions succeed again once the DNS server is back")
    # A reload keeps the groups' members (no moment without them) and their placement.
    px.signal(signal.SIGHUP)
    wait_metric(mport, lambda m: m.val("xmpp_shard_config_reloads_total", result="success") >= 1, 10,
                "SIGHUP reloads")
    assert members(mport) == {"shard-1", "shard-2"}
    assert route_domains(px.port, xmpp, domains) == before, "a reload moved domains"
    figures["srv resolver down"] = (f"{int(m.val('xmpp_shard_discovery_resolutions_total', backend='shards', result='failure') - fails0)} "
                                    f"failed resolutions, set age reached {age:.1f} s, 200 domains unchanged")


@pytest.mark.timeout(90)
def test_removed_target_keeps_live_sessions_new_ones_move(cluster, proxies, dns_servers, figures):
    pool = {f"p{i}": inst for i, inst in enumerate(cluster.pool[:2])}
    ports = {n: inst.port for n, inst in pool.items()}
    dns = dns_servers("prosody", ttl=1).start(ports)
    cfg = srv_config(dns)
    cfg.proxy["workers"] = 2
    cfg.backends[0].update({"check": "stream", "check_interval": "500ms", "max_sessions": 100})
    px, mport = start_with_metrics(proxies, cfg)
    # Health checks apply to the members as to fixed backends (a stream check to each Prosody).
    wait_metric(mport, lambda m: m.val("xmpp_shard_backend_up", backend=target("p0")) == 1
                and m.val("xmpp_shard_backend_up", backend=target("p1")) == 1, 10,
                "the stream checks pass on both discovered members")
    # A tenant domain whose first choice is p0 (rendezvous over the two names).
    where = {}
    domain, user = None, "user"

    async def scenario():
        nonlocal domain
        for d in TENANTS:
            marks = cluster.marks()
            c = await RawClient.open(px.port, d)
            await c.login_plain(user, cluster.password(f"{user}@{d}"))
            hits = cluster.who_authenticated(f"{user}@{d}", marks)
            where[d] = hits
            if hits == [pool["p0"].name]:
                domain = d
                break
            await c.aclose()
        assert domain, f"no tenant domain lands on {pool['p0'].name}: {where}"
        assert await c.ping()
        m = scrape(mport)
        assert m.val("xmpp_shard_backend_sessions", backend=target("p0")) == 1
        assert m.val("xmpp_shard_sessions_active", backend=target("p0"), route="domains") == 1
        # p0 leaves the SRV answer.
        dns.set({"p1": ports["p1"]})
        await asyncio.to_thread(wait_metric, mport,
                                lambda m: m.val("xmpp_shard_discovery_members", backend="shards") == 1,
                                15, "the proxy drops the removed target")
        for _ in range(3):
            assert await c.ping(), "the live session on the removed target stopped working"
            await asyncio.sleep(0.2)
        marks = cluster.marks()
        c2 = await RawClient.open(px.port, domain)
        await c2.login_plain(user, cluster.password(f"{user}@{domain}"))
        assert await c2.ping()
        new_where = cluster.who_authenticated(f"{user}@{domain}", marks)
        assert new_where == [pool["p1"].name], new_where
        assert await c.ping(), "the old session stopped when the new one started"
        await c.aclose()
        await c2.aclose()
        return new_where

    new_where = asyncio.run(scenario())
    figures["srv removed target"] = (f"{domain}: live session on {pool['p0'].name} kept working after its "
                                     f"record went; a new login went to {new_where[0]}")
