"""Failing backends (the robustness issue): refused, black-holed (connect never completes),
accepts and never answers, closes after the header, answers then closes, resets mid-stanza, a
very slow reader, and a real Prosody restarted under load.

Each yields the contract's behaviour within its timeout (remote-connection-failed after every
candidate failed; a live session's client flushed and closed), with an honest client served at
the same time, and leaves nothing behind: the proxy's open descriptors return to their baseline
and xmpp_shard_connections_active / xmpp_shard_sessions_active to 0.

Black hole without iptables: xs_robust.BlackHole, a loopback listener with listen(0) that never
accepts and whose accept queue we fill ourselves; Linux then drops further SYNs, so a connect()
to it stays in SYN_SENT until the connecting side gives up.
"""

import asyncio
import itertools
import socket
import threading
import time

import pytest

from conftest import CLIENT, GUEST, dead_address
from xs_clients import assert_stream_error, exchange, header
from xs_local import InstanceSpec, ProsodyInstance, VirtualHost, free_port
from xs_local.prosody import AUTH_ANONYMOUS
from xs_robust import (BadBackend, BlackHole, HonestProbe, Resources, Tally, anonymous_session,
                       family_sum, read_until, rss_kib, rst_close, scrape, wait_closed,
                       with_metrics)

MB = 1 << 20


def start(cluster, proxies, backends, domain="fail.test", **opts):
    """The standard layout plus `domain` routed to `backends` ((name, address) pairs, or names
    of the cluster's instances), metrics on. Returns (px, Resources)."""
    cfg = cluster.proxy_config(**opts)
    if domain == GUEST:       # served by the real Prosody 'client': take it off the standard route
        cfg.routes[0]["domains"] = [CLIENT]
    names = []
    for b in backends:
        if isinstance(b, tuple):
            cfg.add_backend(*b)
            names.append(b[0])
        else:
            names.append(b)
    cfg.add_route([domain], names)
    mport = with_metrics(cfg)
    px = proxies.start(cfg)
    return px, Resources(px, mport)


def refusals(port: int, n: int, domain: str = "fail.test", timeout: float = 8.0) -> list[tuple]:
    """`n` clients at once; each one's (Exchange, seconds from connect to close)."""
    out = [None] * n

    def one(i):
        t0 = time.monotonic()
        ex = exchange(port, header(domain), timeout=timeout)
        out[i] = (ex, time.monotonic() - t0)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout + 5)
    return out


def check_all_refused(results, within: float, at_least: float = 0.0) -> str:
    times = sorted(t for _, t in results)
    for ex, took in results:
        assert_stream_error(ex, "remote-connection-failed", from_domain="fail.test", close_within=within)
        assert at_least <= took <= within, f"refused after {took:.2f}s (expected {at_least}..{within}s)"
    return f"{len(times)} refused after {times[0]:.2f}..{times[-1]:.2f}s"


# -------------------------------------------------------------------------------------------

@pytest.mark.timeout(40)
def test_refused(cluster, proxies, figures):
    px, res = start(cluster, proxies, [("dead", dead_address())])
    with HonestProbe(px.port, CLIENT) as probe:
        fig = check_all_refused(refusals(px.port, 20), within=1.0)
    figures["failing backend: refused"] = f"{fig}; honest {probe.summary()}"
    probe.check()
    res.assert_back()


@pytest.mark.timeout(40)
def test_black_holed(cluster, proxies, figures):
    black = BlackHole()
    try:
        px, res = start(cluster, proxies, [("black", black.address)], connect_timeout="1s")
        with HonestProbe(px.port, CLIENT) as probe:
            fig = check_all_refused(refusals(px.port, 20), within=3.0, at_least=0.9)
            # With a good backend behind it, the route still works after connect_timeout.
            px2, res2 = start(cluster, proxies, [("black", black.address), "client"],
                              domain=GUEST, connect_timeout="1s")
            t0 = time.monotonic()
            ex = exchange(px2.port, header(GUEST), timeout=5, until=b"features")
            took = time.monotonic() - t0
            assert b"features" in ex.data, ex.data
            assert 0.9 <= took <= 3.0, f"failover past a black hole took {took:.2f}s (connect_timeout 1s)"
        figures["failing backend: black-holed (connect_timeout 1s)"] = \
            f"{fig}; failover to the next backend after {took:.2f}s; honest {probe.summary()}"
        assert black.is_black(), "the black hole stopped being one during the test"
        probe.check()
        res.assert_back()
        res2.assert_back()
    finally:
        black.close()


@pytest.mark.timeout(40)
def test_accepts_and_never_answers(cluster, proxies, fake_backends, figures):
    silent = fake_backends("silent")
    px, res = start(cluster, proxies, [("silent", silent.address)], backend_timeout="1s")
    with HonestProbe(px.port, CLIENT) as probe:
        fig = check_all_refused(refusals(px.port, 20), within=3.0, at_least=0.9)
    figures["failing backend: accepts, never answers (backend_timeout 1s)"] = f"{fig}; honest {probe.summary()}"
    assert silent.accepted == 20
    probe.check()
    res.assert_back()


@pytest.mark.timeout(40)
def test_closes_after_the_header(cluster, proxies, figures):
    closer = BadBackend("close_after_header")
    try:
        px, res = start(cluster, proxies, [("closer", closer.address)], backend_timeout="5s")
        with HonestProbe(px.port, CLIENT) as probe:
            # A backend that closes instead of answering has failed: no need to wait 5 s.
            fig = check_all_refused(refusals(px.port, 20), within=1.5)
        figures["failing backend: closes after the header"] = f"{fig}; honest {probe.summary()}"
        assert closer.accepted == 20
        probe.check()
        res.assert_back()
    finally:
        closer.close()


@pytest.mark.timeout(40)
def test_answers_then_closes(cluster, proxies, figures):
    fb = BadBackend("answer_then_close")
    try:
        px, res = start(cluster, proxies, [("fb", fb.address)])
        delays = []
        with HonestProbe(px.port, CLIENT) as probe:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
                s.sendall(header("fail.test"))
                t0 = time.monotonic()
                data, closed = read_until(s, rb"<stream:features/>", 5)
                assert b"<stream:features/>" in data, data
                left = 0.0 if closed else wait_closed(s, 5)
                assert left is not None, "the client stayed connected after its backend closed"
                delays.append(time.monotonic() - t0)
                s.close()
        figures["failing backend: answers then closes"] = \
            f"client closed within {max(delays):.2f}s; honest {probe.summary()}"
        assert max(delays) < 1.0
        probe.check()
        res.assert_back()
    finally:
        fb.close()


@pytest.mark.timeout(40)
def test_resets_mid_stanza(cluster, proxies, figures):
    fb = BadBackend("reset_mid_stanza")
    try:
        px, res = start(cluster, proxies, [("rst", fb.address)])
        got_half = 0
        delays = []
        with HonestProbe(px.port, CLIENT) as probe:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
                s.sendall(header("fail.test"))
                t0 = time.monotonic()
                data, closed = read_until(s, rb"half a sta", 5)
                got_half += b"half a sta" in data
                left = 0.0 if closed else wait_closed(s, 5)
                assert left is not None, "the client stayed connected after its backend reset"
                delays.append(time.monotonic() - t0)
                s.close()
        figures["failing backend: resets mid-stanza"] = \
            (f"{got_half}/20 clients got the half stanza before the close, closed within "
             f"{max(delays):.2f}s; honest {probe.summary()}")
        assert got_half == 20, "bytes the backend sent before its reset were lost"
        assert max(delays) < 1.5
        probe.check()
        res.assert_back()
    finally:
        fb.close()


@pytest.mark.no_sanitizer
@pytest.mark.timeout(60)
def test_very_slow_reader(cluster, proxies, figures):
    """The backend reads 4 KiB/s: the proxy stops reading the client (backpressure) instead of
    buffering what the client sends; its memory stays flat."""
    slow = BadBackend("slow_reader", read_rate=4096)
    try:
        px, res = start(cluster, proxies, [("slow", slow.address)])
        base = rss_kib(px.proc.pid)
        total = 32 * MB
        sent = [0]
        with HonestProbe(px.port, CLIENT) as probe:
            s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            s.sendall(header("fail.test"))
            read_until(s, rb"<stream:features/>", 5)
            s.setblocking(False)
            chunk = b"<message><body>" + b"x" * 65000 + b"</body></message>"
            peak = base
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5 and sent[0] < total:
                try:
                    sent[0] += s.send(chunk)
                except BlockingIOError:
                    time.sleep(0.02)
                peak = max(peak, rss_kib(px.proc.pid))
            m = scrape(res.mport)
            s.close()
            # The proxy is not reading this client (backpressure), so it cannot see it go (see
            # the xfail test below); the session ends when its backend goes.
            slow.close()
        grown = peak - base
        figures["failing backend: very slow reader (4 KiB/s)"] = \
            (f"client got {sent[0] // 1024} KiB of {total // 1024} in 5 s, backend read "
             f"{slow.received // 1024} KiB, proxy RSS +{grown} KiB; honest {probe.summary()}")
        assert sent[0] < total, "32 MiB went through to a backend reading 4 KiB/s: no backpressure?"
        assert grown < 30 * 1024, f"proxy RSS grew by {grown} KiB"
        # The slow backend's one session (the honest probe's logins come and go on another).
        slow_active = sum(v for k, v in m.items()
                          if k.startswith("xmpp_shard_sessions_active{") and 'backend="slow"' in k)
        assert slow_active == 1, {k: v for k, v in m.items() if k.startswith("xmpp_shard_sessions_active")}
        probe.check()
        res.assert_back()
    finally:
        slow.close()


@pytest.mark.timeout(60)
def test_every_failure_in_turn_then_a_good_backend(cluster, proxies, fake_backends, figures):
    """Failover tries every candidate in turn: refused, black hole, silent, closer, then the
    real Prosody answers; the time is about connect_timeout + backend_timeout."""
    black = BlackHole()
    closer = BadBackend("close_after_header")
    silent = fake_backends("silent")
    try:
        px, res = start(cluster, proxies,
                        [("dead", dead_address()), ("black", black.address),
                         ("silent", silent.address), ("closer", closer.address), "client"],
                        domain=GUEST, connect_timeout="1s", backend_timeout="1s")
        t0 = time.monotonic()
        ex = exchange(px.port, header(GUEST), timeout=8, until=b"features>")
        took = time.monotonic() - t0
        assert b"features>" in ex.data, ex.data
        assert silent.accepted == 1 and closer.accepted == 1, "a candidate was skipped"
        figures["failover past refused, black hole, silent, closer"] = f"Prosody answered after {took:.2f}s"
        assert 1.8 <= took <= 4.5, took
        res.assert_back()
    finally:
        black.close()
        closer.close()


@pytest.mark.timeout(40)
def test_client_gone_while_backend_reads_slowly_is_released(cluster, proxies):
    """A client fills every buffer towards a 4 KiB/s backend, so the proxy stops reading it
    (backpressure), then resets: the proxy probes paused peers (TCP_INFO) and releases the
    session within about a second instead of waiting for the backend to drain the queue.
    (A plain FIN is not detectable in this position: it waits in the client's kernel behind
    data the proxy's full receive window does not accept, as with any proxy; the client's
    kernel resets the connection when it gives up.)"""
    slow = BadBackend("slow_reader", read_rate=4096)
    try:
        px, res = start(cluster, proxies, [("slow", slow.address)], close_linger="1s")
        s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
        s.sendall(header("fail.test"))
        read_until(s, rb"<stream:features/>", 5)
        s.setblocking(False)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2:                 # fill every buffer on the way
            try:
                s.send(b"x" * 65536)
            except BlockingIOError:
                pass
            time.sleep(0.01)
        rst_close(s)
        res.assert_back(timeout=3.0, what="after the paused client's RST (probe every 1 s)")
    finally:
        slow.close()


# -------------------------------------------------------------------------------------------
# a real Prosody restarted under load

_victims = itertools.count()


@pytest.fixture
def victim(base_dir):
    """A Prosody of this test's own: victim.test, anonymous logins (no accounts to register)."""
    n = next(_victims)
    spec = InstanceSpec(f"fvictim{n}", free_port(), hosts=[VirtualHost("victim.test", AUTH_ANONYMOUS)])
    d = base_dir / "fail-victims"
    d.mkdir(exist_ok=True, mode=0o711)
    inst = ProsodyInstance(spec, d)
    inst.prepare()
    inst.start()
    yield inst
    inst.kill()


LIVE = 40


@pytest.mark.timeout(90)
def test_backend_restart_under_load(cluster, proxies, victim, figures):
    cfg = cluster.proxy_config(connect_timeout="1s", backend_timeout="3s")
    cfg.add_backend("victim", victim.address)
    cfg.add_route(["victim.test"], ["victim"])
    mport = with_metrics(cfg)
    px = proxies.start(cfg)
    res = Resources(px, mport)
    phases = {"before": Tally(), "down": Tally(), "after": Tally()}
    phase = ["before"]

    async def scenario():
        stop = asyncio.Event()
        live = await asyncio.gather(*(anonymous_session(px.port, "victim.test") for _ in range(LIVE)))

        async def churn():
            # New logins all along, 10 a second, each held for a moment.
            while not stop.is_set():
                p = phase[0]
                t0 = time.monotonic()
                try:
                    c = await anonymous_session(px.port, "victim.test", timeout=6)
                    await c.ping()
                    await c.aclose()
                    phases[p].ok += 1
                except Exception as e:  # noqa: BLE001
                    took = time.monotonic() - t0
                    if phase[0] != p:       # the restart began while this login was under way
                        p = "down"
                    phases[p].fail(f"{type(e).__name__} after {took:.1f}s: "
                                   f"{'remote-connection-failed' if 'remote-connection-failed' in str(e) else str(e)[:60]}")
                await asyncio.sleep(0.1)
        churners = [asyncio.ensure_future(churn()) for _ in range(3)]
        await asyncio.sleep(1.5)
        assert all([await c.ping() for c in live[:5]])

        # Restart: stop (SIGTERM), a moment down, start again.
        phase[0] = "down"
        t_stop = time.monotonic()
        await asyncio.to_thread(victim.stop)
        closed = await asyncio.gather(*(c.wait_closed(5) for c in live))
        down_for = time.monotonic() - t_stop
        await asyncio.sleep(max(0.0, 2.0 - down_for))
        await asyncio.to_thread(victim.start)
        phase[0] = "after"
        t_up = time.monotonic()
        await asyncio.sleep(3)
        stop.set()
        await asyncio.gather(*churners)
        for c in live:
            await c.aclose()
        return closed, time.monotonic() - t_up

    closed, _ = asyncio.run(scenario())
    never = sum(c is None for c in closed)
    worst = max((c for c in closed if c is not None), default=0.0)
    figures["Prosody restarted under load"] = \
        (f"{LIVE} live sessions closed within {worst:.2f}s of the stop ({never} never); churn "
         f"before: {phases['before']}; while down: {phases['down']}; after restart: {phases['after']}")
    assert never == 0, f"{never} live sessions stayed open after their Prosody stopped"
    assert worst < 3.0
    assert phases["before"].failed == 0 and phases["before"].ok > 0, phases["before"]
    assert phases["after"].ok > 0, f"no login worked after the restart: {phases['after']}"
    # After the restart logins work again (allowing the first second while Prosody comes up).
    assert phases["after"].failed <= 3, phases["after"]
    # While down, logins failed fast with the contract's refusal, not by hanging.
    for why in phases["down"].errors:
        assert "remote-connection-failed" in why or "EOFError" in why, phases["down"]
    # Every refusal was counted as a failed backend connect (a login that was already through
    # when Prosody stopped ends with EOFError instead: its session had reached the backend).
    refused = sum(n for why, n in phases["down"].errors.items() if "remote-connection-failed" in why)
    m = scrape(mport)
    assert family_sum(m, "xmpp_shard_backend_connect_failures_total") >= refused, phases["down"]
    res.assert_back(timeout=8)
