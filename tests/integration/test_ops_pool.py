"""Health checks, failover, hot reload and drain against real Prosody instances of this module's
own (ops0..ops2, serving a01..a12.ops.test with anonymous logins): a killed instance is marked
down within the fall time and only its hash domains move, and move back when it returns; a
refused live connection marks a checked backend down at once; SIGHUP moves new sessions to new
routes while 200 live ones keep working, and a broken file changes nothing; drain = true sends
new sessions elsewhere and keeps the live ones."""

import asyncio
import os
import re
import signal
import time

import pytest

from conftest import DEFAULT_PROXY_OPTS
from ops_support import (OPS_DOMAINS, OPS_NAMES, OpsPool, anon_session, close_stream, placement,
                         scrape, start_with_metrics, wait_metric)
from xs_local import ProxyConfig


@pytest.fixture(scope="module")
def ops_pool(base_dir):
    d = base_dir / "ops-pool"
    d.mkdir()
    os.chmod(d, 0o711)
    pool = OpsPool(d)
    try:
        pool.start()
    except Exception as e:  # noqa: BLE001
        pool.stop()
        pytest.fail(f"could not start the ops Prosody instances: {e}", pytrace=False)
    yield pool
    pool.stop()


@pytest.fixture
def pool(ops_pool) -> OpsPool:
    """The ops instances, all running before the test and again after it (a test may kill one)."""
    ops_pool.ensure_running()
    yield ops_pool
    ops_pool.ensure_running()


def all_up(m, names=OPS_NAMES):
    return all(m.get("xmpp_shard_backend_up", backend=n) == 1 for n in names)


def login_where(pool, port, domain):
    """One anonymous login through the proxy; the instance whose log shows it."""
    since = pool.marks()

    async def one():
        c, jid = await anon_session(port, domain)
        await close_stream(c, 1)
        return jid
    jid = asyncio.run(one())
    hits = pool.where(jid, since)
    assert len(hits) == 1, f"{jid} authenticated on {hits or 'no instance'}"
    return hits[0]


def reload_with(px, cfg):
    """Write `cfg` (keeping the running listeners and metrics address) and send SIGHUP."""
    cfg.listeners = px.cfg.listeners
    cfg.proxy["metrics"] = px.cfg.proxy.get("metrics", "")
    px.config_path.write_text(cfg.render())
    px.signal(signal.SIGHUP)


def wait_reloads(mport, result, n, timeout=5.0):
    m, _ = wait_metric(mport, lambda m: m.val("xmpp_shard_config_reloads_total", result=result) >= n,
                       timeout, f"config_reloads_total{{result={result}}} reaching {n}")
    return m


# --------------------------------------------------------------------------------------------
# Health

INTERVAL, TIMEOUT, FALL, RISE = 0.2, 0.2, 2, 2


@pytest.mark.parametrize("check", ["stream", "tcp"])
@pytest.mark.timeout(60)
def test_killed_backend_is_marked_down_within_fall_time_and_only_its_domains_move(pool, proxies, figures,
                                                                                 check):
    cfg = pool.proxy_config({}, check=check, check_interval=f"{int(INTERVAL * 1000)}ms",
                            check_timeout=f"{int(TIMEOUT * 1000)}ms", rise=RISE, fall=FALL)
    px, mport = start_with_metrics(proxies, cfg)
    wait_metric(mport, all_up, 5, "every ops backend up")
    full = placement(pool, px.port)
    counts = {n: sum(1 for v in full.values() if v == n) for n in OPS_NAMES}
    victim = max(counts, key=counts.get)
    assert 0 < counts[victim] < len(OPS_DOMAINS), f"hash placement degenerate: {full}"
    failures_before = scrape(mport).val("xmpp_shard_backend_connect_failures_total", backend=victim)

    # Down: no session is opened meanwhile, so only the active check can notice.
    pool[victim].kill()
    fall_time = FALL * INTERVAL + TIMEOUT
    m, waited = wait_metric(mport, lambda m: m.get("xmpp_shard_backend_up", backend=victim) == 0,
                            fall_time + 2.0, f"{victim} marked down (fall time {fall_time:.1f}s)")
    figures[f"health ({check} check): killed backend marked down after"] = f"{waited:.2f}s (fall {FALL} x interval " \
        f"{INTERVAL}s + timeout {TIMEOUT}s = {fall_time:.1f}s)"
    assert waited <= fall_time + 1.0, f"marked down only {waited:.2f}s after the kill"
    assert all_up(m, [n for n in OPS_NAMES if n != victim]), "a healthy backend was marked down"
    assert m.get("xmpp_shard_backend_consecutive_failures", backend=victim) >= FALL
    assert re.search(rf"backend {victim} is DOWN", px.stderr_text()), px.stderr_tail()

    # New sessions: every login works; the victim's domains moved, nobody else's did.
    degraded = placement(pool, px.port)
    moved = {d for d in OPS_DOMAINS if degraded[d] != full[d]}
    assert moved == {d for d in OPS_DOMAINS if full[d] == victim}, \
        f"victim {victim}: before {full}\nafter {degraded}"
    assert victim not in degraded.values()
    # A down backend is skipped, not tried: no connection attempt failed on it.
    m = scrape(mport)
    assert m.val("xmpp_shard_backend_connect_failures_total", backend=victim) == failures_before, \
        "sessions still tried the backend marked down"
    assert m.val("xmpp_shard_stream_errors_total", condition="remote-connection-failed") == 0

    # Back: passes `rise` checks, takes its domains back.
    pool[victim].start()
    m, waited = wait_metric(mport, lambda m: m.get("xmpp_shard_backend_up", backend=victim) == 1,
                            RISE * INTERVAL + 3.0, f"{victim} back up after restart")
    figures[f"health ({check} check): restarted backend up again after"] = f"{waited:.2f}s"
    assert re.search(rf"backend {victim} is UP", px.stderr_text()), px.stderr_tail()
    assert placement(pool, px.port) == full, "domains did not move back after recovery"


@pytest.mark.timeout(60)
def test_refused_live_connection_marks_checked_backend_down_at_once(pool, proxies):
    def cfg_with(check):
        cfg = ProxyConfig(proxy=dict(DEFAULT_PROXY_OPTS))
        for inst in pool.instances:
            # The active check runs once at start, then not again during the test.
            cfg.add_backend(inst.name, inst.address, check=check, check_interval="60s")
        cfg.add_route([OPS_DOMAINS[0]], ["ops0", "ops1"], name="first")
        return cfg

    px, mport = start_with_metrics(proxies, cfg_with("tcp"))
    wait_metric(mport, all_up, 5, "every ops backend up")
    assert login_where(pool, px.port, OPS_DOMAINS[0]) == "ops0"
    pool["ops0"].kill()
    # The next session finds ops0 refusing: it fails over to ops1 and ops0 is down at once.
    assert login_where(pool, px.port, OPS_DOMAINS[0]) == "ops1"
    m = scrape(mport)
    assert m.get("xmpp_shard_backend_up", backend="ops0") == 0, "passive check did not mark ops0 down"
    assert m.val("xmpp_shard_backend_connect_failures_total", backend="ops0") == 1
    assert login_where(pool, px.port, OPS_DOMAINS[0]) == "ops1"
    assert scrape(mport).val("xmpp_shard_backend_connect_failures_total", backend="ops0") == 1, \
        "a backend marked down by the passive check was tried again"

    # Without health checks the proxy keeps no state: each session tries ops0 first, then fails over.
    px2, mport2 = start_with_metrics(proxies, cfg_with("none"))
    for _ in range(2):
        assert login_where(pool, px2.port, OPS_DOMAINS[0]) == "ops1"
    m = scrape(mport2)
    assert m.get("xmpp_shard_backend_up", backend="ops0") == 1
    assert m.val("xmpp_shard_backend_connect_failures_total", backend="ops0") == 2


# --------------------------------------------------------------------------------------------
# Reload and drain

LIVE = 200


def routed_cfg(pool, target, **backend_extra):
    """a01 -> `target` (a list, failover), the other ops domains hashed over all three."""
    cfg = ProxyConfig(proxy={**DEFAULT_PROXY_OPTS, "workers": 2})
    for inst in pool.instances:
        cfg.add_backend(inst.name, inst.address, **backend_extra.get(inst.name, {}))
    cfg.add_route([OPS_DOMAINS[0]], list(target), name="a01")
    cfg.add_route(OPS_DOMAINS[1:], OPS_NAMES, name="rest", balance="hash")
    return cfg


async def open_live(port, n, domain, parallel=50):
    sem = asyncio.Semaphore(parallel)

    async def one():
        async with sem:
            return await anon_session(port, domain)
    out = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    bad = [repr(r) for r in out if isinstance(r, BaseException)]
    ok = [r for r in out if not isinstance(r, BaseException)]
    if bad:
        for c, _ in ok:
            await c.aclose()
        raise AssertionError(f"{len(bad)} of {n} sessions failed, e.g. {bad[:3]}")
    return ok


async def ping_all(live) -> int:
    async def one(c):
        try:
            return await c.ping(timeout=10)
        except (EOFError, TimeoutError, ConnectionError, OSError):
            return False
    return sum(await asyncio.gather(*(one(c) for c, _ in live)))


@pytest.mark.multiworker
@pytest.mark.timeout(90)
def test_sighup_reroutes_new_sessions_keeps_200_live_and_ignores_a_broken_file(pool, proxies, figures):
    px, mport = start_with_metrics(proxies, routed_cfg(pool, ["ops0"]))
    t_start = scrape(mport).get("xmpp_shard_config_last_reload_success_timestamp_seconds")

    async def scenario():
        since = pool.marks()
        live = await open_live(px.port, LIVE, OPS_DOMAINS[0])
        try:
            # They all live on ops0.
            on_ops0 = [j for j in pool["ops0"].authenticated(since["ops0"])]
            assert len(on_ops0) >= LIVE, f"{len(on_ops0)} of {LIVE} logins on ops0"
            m = await asyncio.to_thread(scrape, mport)
            assert m.get("xmpp_shard_sessions_active", route="a01", backend="ops0") == LIVE

            # 1. A reload that moves a01 to ops1.
            reload_with(px, routed_cfg(pool, ["ops1"]))
            await asyncio.to_thread(wait_reloads, mport, "success", 1)
            assert await asyncio.to_thread(login_where, pool, px.port, OPS_DOMAINS[0]) == "ops1", \
                "a new session after the reload did not follow the new route"
            alive = await ping_all(live)
            assert alive == LIVE, f"only {alive} of {LIVE} live sessions answered a ping after SIGHUP"
            m = await asyncio.to_thread(scrape, mport)
            assert m.get("xmpp_shard_sessions_active", route="a01", backend="ops0") == LIVE
            assert m.get("xmpp_shard_config_last_reload_success_timestamp_seconds") >= t_start
            assert m.val("xmpp_shard_config_reloads_total", result="failure") == 0

            # 2. Broken files change nothing: TOML syntax, an unknown backend, a listener change.
            px.config_path.write_text("[proxy\nworkers = 2\n")
            px.signal(signal.SIGHUP)
            await asyncio.to_thread(wait_reloads, mport, "failure", 1)
            bad = routed_cfg(pool, ["ops9"])
            reload_with(px, bad)
            await asyncio.to_thread(wait_reloads, mport, "failure", 2)
            moved = routed_cfg(pool, ["ops2"])
            moved.listeners = [dict(px.cfg.listeners[0], name="renamed")]
            moved.proxy["metrics"] = px.cfg.proxy["metrics"]
            px.config_path.write_text(moved.render())
            px.signal(signal.SIGHUP)
            m = await asyncio.to_thread(wait_reloads, mport, "failure", 3)
            assert m.val("xmpp_shard_config_reloads_total", result="success") == 1
            assert await asyncio.to_thread(login_where, pool, px.port, OPS_DOMAINS[0]) == "ops1", \
                "a rejected reload changed the routes"
            alive = await ping_all(live)
            assert alive == LIVE, f"only {alive} of {LIVE} live sessions answered after the bad reloads"
        finally:
            await asyncio.gather(*(close_stream(c, 2) for c, _ in live))

    t0 = time.monotonic()
    asyncio.run(scenario())
    figures[f"reload: {LIVE} live sessions through 4 SIGHUPs"] = f"all answered ({time.monotonic() - t0:.1f}s)"
    err = px.stderr_text()
    assert re.search(r"reload: .*proxy\.toml:\d+:\d+: ", err), f"no located error for the broken file:\n{px.stderr_tail()}"
    assert "ops9" in err, "the unknown backend was not named in the reload error"
    assert re.search(r"restart", err), "the listener change was not refused as needing a restart"
    assert err.count("configuration unchanged") == 3, px.stderr_tail()
    wait_metric(mport, lambda m: m.val("xmpp_shard_sessions_active") == 0, 10, "all sessions closed")


@pytest.mark.timeout(60)
def test_drain_true_sends_new_sessions_elsewhere_and_keeps_live_ones(pool, proxies):
    px, mport = start_with_metrics(proxies, routed_cfg(pool, ["ops0", "ops1"]))
    n = 5

    async def scenario():
        live = await open_live(px.port, n, OPS_DOMAINS[0])
        try:
            m = await asyncio.to_thread(scrape, mport)
            assert m.get("xmpp_shard_backend_sessions", backend="ops0") == n
            reload_with(px, routed_cfg(pool, ["ops0", "ops1"], ops0={"drain": True}))
            m = await asyncio.to_thread(wait_reloads, mport, "success", 1)
            assert m.get("xmpp_shard_backend_draining", backend="ops0") == 1
            assert m.get("xmpp_shard_backend_draining", backend="ops1") == 0
            for _ in range(3):
                assert await asyncio.to_thread(login_where, pool, px.port, OPS_DOMAINS[0]) == "ops1", \
                    "a new session went to the draining backend"
            assert await ping_all(live) == n, "live sessions on the draining backend stopped working"
            m = await asyncio.to_thread(scrape, mport)
            assert m.get("xmpp_shard_backend_sessions", backend="ops0") == n
            assert m.get("xmpp_shard_sessions_active", route="a01", backend="ops0") == n
            # Undrain: new sessions come back.
            reload_with(px, routed_cfg(pool, ["ops0", "ops1"]))
            m = await asyncio.to_thread(wait_reloads, mport, "success", 2)
            assert m.get("xmpp_shard_backend_draining", backend="ops0") == 0
            assert await asyncio.to_thread(login_where, pool, px.port, OPS_DOMAINS[0]) == "ops0"
        finally:
            await asyncio.gather(*(close_stream(c, 2) for c, _ in live))

    asyncio.run(scenario())
