"""Tenant domains hashed over a pool (route domains=["*"], balance="hash").

Every tenant account exists on ALL pool instances with one password, so any routing logs in;
the instances' logs tell which one the hash picked. Checked: each domain lands on exactly one
instance, the same one on repeated logins and across proxy restarts, domains spread over more
than one instance, and (rendezvous hashing) removing a backend moves only the domains that lived
on it, as does a backend that is down."""

import pytest

from conftest import TENANTS, dead_address
from xs_clients import login_many


def placement(cluster, port):
    """domain -> the pool instance that authenticated its user, via one concurrent round."""
    jids = [f"user@{d}" for d in TENANTS]
    mark = cluster.marks()
    rs = login_many(port, [(j, cluster.password(j)) for j in jids])
    bad = [str(r) for r in rs if not r.ok]
    assert not bad, "logins through the proxy failed:\n" + "\n".join(bad)
    out = {}
    for d, j in zip(TENANTS, jids):
        hits = cluster.who_authenticated(j, mark)
        assert len(hits) == 1, f"{j} authenticated on {hits or 'no instance'}"
        assert hits[0].startswith("pool"), f"{j} landed on {hits[0]}, outside the pool"
        out[d] = hits[0]
    return out


@pytest.mark.timeout(120)
def test_hash_is_stable_and_spreads(cluster, proxies, figures):
    px = proxies.start(cluster.proxy_config())
    first = placement(cluster, px.port)
    again = placement(cluster, px.port)
    assert again == first, f"same proxy, different placement:\n{first}\n{again}"

    px2 = proxies.start(cluster.proxy_config())       # a fresh process, same config
    after_restart = placement(cluster, px2.port)
    assert after_restart == first, f"placement changed across restarts:\n{first}\n{after_restart}"

    used = sorted(set(first.values()))
    figures["hash placement (12 tenant domains over 3 instances)"] = {
        n: sum(1 for v in first.values() if v == n) for n in used}
    assert len(used) > 1, f"all {len(TENANTS)} domains on one instance: {first}"


@pytest.mark.timeout(120)
def test_removing_a_backend_moves_only_its_domains(cluster, proxies):
    px = proxies.start(cluster.proxy_config())
    full = placement(cluster, px.port)
    victim = max(set(full.values()), key=lambda n: sum(1 for v in full.values() if v == n))

    cfg = cluster.proxy_config()
    cfg.routes[-1]["backends"] = [p.name for p in cluster.pool if p.name != victim]
    px2 = proxies.start(cfg)
    reduced = placement(cluster, px2.port)
    for d in TENANTS:
        if full[d] != victim:
            assert reduced[d] == full[d], f"{d} moved from {full[d]} to {reduced[d]} though " \
                                          f"only {victim} was removed"
        else:
            assert reduced[d] != victim


@pytest.mark.timeout(120)
def test_a_down_backend_moves_only_its_domains(cluster, proxies):
    px = proxies.start(cluster.proxy_config())
    full = placement(cluster, px.port)
    victim = max(set(full.values()), key=lambda n: sum(1 for v in full.values() if v == n))

    cfg = cluster.proxy_config()
    for b in cfg.backends:
        if b["name"] == victim:
            b["address"] = dead_address()          # same name, nothing listening
    px2 = proxies.start(cfg)
    degraded = placement(cluster, px2.port)
    for d in TENANTS:
        if full[d] != victim:
            assert degraded[d] == full[d], f"{d} moved from {full[d]} to {degraded[d]} though " \
                                           f"only {victim} is down"
        else:
            assert degraded[d] != victim
