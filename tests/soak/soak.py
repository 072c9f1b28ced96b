"""Soak run: the proxy (2 workers) in front of three real Prosody instances for DURATION, under a
mix of logins, MUC join storms, backend restarts and SIGHUP reloads. At the end:

- every long-lived session (held on the instance that is never restarted, pinging all along) is
  still alive: no session was lost that should have lived;
- logins and joins worked, except those that met a backend while it was being restarted;
- the proxy's RSS is back near its start value, and its descriptors and the
  connections_active / sessions_active gauges back to what the long-lived sessions account for;
- the proxy is still alive and every reload was counted as a success.

Run by scripts/soak.sh [DURATION] (default 1h; CI: 2m) under Debian's /usr/bin/python3. Start and
end memory are printed; the exit code is 0 only if every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import re
import shutil
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "deploy"))
sys.path.insert(0, str(REPO / "tests" / "integration"))

from xs_local import (Account, InstanceSpec, Muc, ProsodyInstance, ProxyConfig,  # noqa: E402
                      VirtualHost, free_port, wait_port)
from xs_local import procs  # noqa: E402
from xs_local.prosody import AUTH_ANONYMOUS, make_base_dir  # noqa: E402
from xs_clients import alogin  # noqa: E402
from xs_robust import (Tally, anonymous_session, family_sum, fd_count, rss_kib,  # noqa: E402
                       scrape)

MAIN = "meet.soak"
CONF = "conference.meet.soak"
TENANTS = [f"t{i}.soak" for i in range(1, 7)]
MUC_NS = "http://jabber.org/protocol/muc"


def parse_duration(s: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", s.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {s!r} (e.g. 90s, 2m, 1h)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Soak:
    def __init__(self, args):
        self.args = args
        self.base = make_base_dir("xs-soak-")
        os.chmod(self.base, 0o711)
        cpus = sorted(os.sched_getaffinity(0))
        self.password = os.urandom(9).hex()
        self.main = ProsodyInstance(InstanceSpec(
            "main", free_port(), cpu=cpus[0], hosts=[VirtualHost(MAIN, AUTH_ANONYMOUS)],
            mucs=[Muc(CONF)]), self.base)
        # The registered user lives on the pool (both instances: the hash decides which one).
        self.pool = [ProsodyInstance(InstanceSpec(
            f"pool{i}", free_port(), cpu=cpus[(1 + i) % len(cpus)],
            hosts=[VirtualHost(d, AUTH_ANONYMOUS) for d in TENANTS[1:]] + [VirtualHost(TENANTS[0])],
            accounts=[Account("user", TENANTS[0], self.password)]), self.base) for i in range(2)]
        self.instances = [self.main] + self.pool
        self.proxy = None
        self.port = free_port()
        self.mport = free_port()
        self.cfg_path = self.base / "proxy.toml"
        self.reload_flip = False
        self.t = {k: Tally() for k in ("login", "slixmpp", "join", "login_during_restart",
                                       "join_during_restart")}
        self.restarting: set[str] = set()  # pool instance names being restarted
        self.restarts = 0
        self.reloads = 0
        self.problems: list[str] = []
        self.samples: list[tuple[float, int, int]] = []  # (t, rss KiB, fds)

    # -- setup ---------------------------------------------------------------------------

    def render(self) -> str:
        cfg = ProxyConfig(proxy={
            "workers": 2, "metrics": f"127.0.0.1:{self.mport}", "header_timeout": "5s",
            "connect_timeout": "1s", "backend_timeout": "3s", "drain_timeout": "5s",
            "session_log_rate": 5})
        cfg.add_listener("c2s", f"127.0.0.1:{self.port}")
        for inst in self.instances:
            cfg.add_backend(inst.name, inst.address)
        cfg.add_route([MAIN, CONF], ["main"], name="main")
        # A reload flips between two equivalent layouts (route names and an extra domain),
        # so each reload really changes the table.
        if self.reload_flip:
            cfg.add_route(["*"], ["pool0", "pool1"], name="tenants-b", balance="hash")
            cfg.add_route(["spare.soak"], ["main"], name="spare")
        else:
            cfg.add_route(["*"], ["pool0", "pool1"], name="tenants", balance="hash")
        return cfg.render()

    def start(self) -> None:
        log(f"base dir {self.base}")
        for inst in self.instances:
            inst.prepare()
        for inst in self.instances:
            inst.start()
        self.cfg_path.write_text(self.render())
        self.proxy_err = open(self.base / "proxy.stderr", "ab")
        self.proxy = procs.spawn([str(self.args.proxy), "--config", str(self.cfg_path)],
                                 stdout=self.proxy_err, stderr=self.proxy_err)
        wait_port("127.0.0.1", self.port, timeout=10, proc=self.proxy, what="xmpp-shard-proxy")
        wait_port("127.0.0.1", self.mport, timeout=10, proc=self.proxy, what="metrics")
        log(f"proxy pid {self.proxy.pid} on 127.0.0.1:{self.port}, metrics :{self.mport}; "
            f"Prosody: " + ", ".join(f"{i.name}={i.address}" for i in self.instances))

    def stop(self) -> None:
        if self.proxy is not None and self.proxy.poll() is None:
            procs.stop(self.proxy, timeout=10)
        for inst in self.instances:
            inst.stop()
        if not self.args.keep:
            shutil.rmtree(self.base, ignore_errors=True)
        else:
            log(f"files kept in {self.base}")

    def proxy_alive(self) -> bool:
        return self.proxy.poll() is None

    def mem(self) -> tuple[int, int]:
        return rss_kib(self.proxy.pid), fd_count(self.proxy.pid)

    # -- activities ----------------------------------------------------------------------

    async def one_login(self, domain: str) -> None:
        during = bool(self.restarting) and domain != MAIN
        tally = self.t["login_during_restart" if during else "login"]
        try:
            c = await anonymous_session(self.port, domain, timeout=8)
            ok = await c.ping(timeout=5)
            await c.aclose()
            if not ok:
                raise RuntimeError("ping failed")
            tally.ok += 1
        except Exception as e:  # noqa: BLE001
            if not during and self.restarting and domain != MAIN:
                tally = self.t["login_during_restart"]  # a restart began meanwhile
            tally.fail(f"{type(e).__name__}: {str(e)[:70]}")

    async def logins(self, n: int) -> None:
        domains = [MAIN] + TENANTS[1:]
        await asyncio.gather(*(self.one_login(random.choice(domains)) for _ in range(n)))

    async def slixmpp_login(self) -> None:
        during = bool(self.restarting)
        r = await alogin(self.port, f"user@{TENANTS[0]}", self.password, timeout=10)
        tally = self.t["login_during_restart" if during or self.restarting else "slixmpp"]
        if r.ok:
            tally.ok += 1
        else:
            tally.fail(f"slixmpp: {r.error}")

    async def join_storm(self, n: int) -> None:
        room = f"soak{random.randrange(1000)}@{CONF}"

        async def one(k: int):
            try:
                c = await anonymous_session(self.port, MAIN, timeout=10)
                await c.send(f"<presence to='{room}/n{k}'><x xmlns='{MUC_NS}'/></presence>".encode())
                got = await c.read_until(rb"<status code=['\"]110['\"]", 20)
                assert b"110" in got
                await c.send(f"<presence type='unavailable' to='{room}/n{k}'/>".encode())
                await c.aclose()
                self.t["join"].ok += 1
            except Exception as e:  # noqa: BLE001
                self.t["join"].fail(f"{type(e).__name__}: {str(e)[:70]}")
        await asyncio.gather(*(one(k) for k in range(n)))

    async def restart_one(self) -> None:
        inst = random.choice(self.pool)
        self.restarting.add(inst.name)
        try:
            await asyncio.to_thread(inst.stop)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(inst.start)
            self.restarts += 1
            await asyncio.sleep(1.0)          # the tally's "during restart" window ends here
        finally:
            self.restarting.discard(inst.name)

    def reload(self) -> None:
        self.reload_flip = not self.reload_flip
        self.cfg_path.write_text(self.render())
        self.proxy.send_signal(signal.SIGHUP)
        self.reloads += 1

    async def keepers(self, n: int, stop: asyncio.Event) -> list[str]:
        """`n` sessions on the never-restarted instance, pinging every few seconds until the
        end. Returns the problems (a keeper that died)."""
        sessions = await asyncio.gather(*(anonymous_session(self.port, MAIN) for _ in range(n)))
        self.keepers_open = n
        problems = []

        async def keep(i, c):
            while not stop.is_set():
                try:
                    if not await c.ping(timeout=10):
                        problems.append(f"keeper {i}: ping failed")
                        return
                except Exception as e:  # noqa: BLE001
                    problems.append(f"keeper {i}: {type(e).__name__}: {str(e)[:80]}")
                    return
                try:
                    await asyncio.wait_for(stop.wait(), 3 + random.random() * 4)
                except asyncio.TimeoutError:
                    pass
        await asyncio.gather(*(keep(i, c) for i, c in enumerate(sessions)))
        # One last ping each, then the scenario closes them.
        for i, c in enumerate(sessions):
            try:
                if not await c.ping(timeout=10):
                    problems.append(f"keeper {i}: final ping failed")
            except Exception as e:  # noqa: BLE001
                problems.append(f"keeper {i}: final: {type(e).__name__}")
        self.keeper_sessions = sessions
        return problems

    # -- the run -------------------------------------------------------------------------

    async def run(self) -> int:
        a = self.args
        stop = asyncio.Event()
        # Warm-up: a round of everything, so that the start figure includes what the proxy
        # keeps once it has served (allocator arenas, per-worker buffers).
        await self.logins(20)
        await self.join_storm(10)
        await asyncio.sleep(1)
        keeper_task = asyncio.ensure_future(self.keepers(a.keepers, stop))
        await asyncio.sleep(2)
        rss0, fds0 = self.mem()
        m0 = scrape(self.mport)
        log(f"start: proxy RSS {rss0} KiB, {fds0} descriptors, {a.keepers} long-lived sessions")
        t_start = time.monotonic()
        end = t_start + a.duration
        next_restart = t_start + a.restart_every
        next_reload = t_start + a.reload_every / 2
        next_sample = t_start
        cycle = 0
        while time.monotonic() < end:
            cycle += 1
            jobs = [self.logins(a.logins), self.slixmpp_login()]
            if cycle % 2 == 0:
                jobs.append(self.join_storm(a.storm))
            now = time.monotonic()
            if now >= next_restart:
                jobs.append(self.restart_one())
                next_restart = now + a.restart_every
            if now >= next_reload:
                self.reload()
                next_reload = now + a.reload_every
            await asyncio.gather(*jobs)
            if not self.proxy_alive():
                self.problems.append(f"the proxy exited with code {self.proxy.returncode}")
                break
            if time.monotonic() >= next_sample:
                rss, fds = self.mem()
                self.samples.append((time.monotonic() - t_start, rss, fds))
                log(f"cycle {cycle}: RSS {rss} KiB, {fds} fds; logins {self.t['login']}; "
                    f"joins {self.t['join']}; restarts {self.restarts}, reloads {self.reloads}")
                next_sample = time.monotonic() + max(10.0, a.duration / 30)
            await asyncio.sleep(a.pause)
        stop.set()
        keeper_problems = await keeper_task
        self.problems += keeper_problems
        # Settle: everything transient is gone; only the keepers remain.
        m_live = None
        for _ in range(100):
            m_live = scrape(self.mport)
            if family_sum(m_live, "xmpp_shard_connections_active") == a.keepers:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        rss1, fds1 = self.mem()
        m1 = scrape(self.mport)
        for c in self.keeper_sessions:
            await c.aclose()
        return self.report(rss0, fds0, rss1, fds1, m0, m1, time.monotonic() - t_start)

    def report(self, rss0, fds0, rss1, fds1, m0, m1, took) -> int:
        a = self.args
        conns = family_sum(m1, "xmpp_shard_connections_active")
        sess = family_sum(m1, "xmpp_shard_sessions_active")
        reload_ok = sum(v for k, v in m1.items()
                        if k.startswith("xmpp_shard_config_reloads_total") and 'result="success"' in k)
        reload_fail = sum(v for k, v in m1.items()
                          if k.startswith("xmpp_shard_config_reloads_total") and 'result="failure"' in k)
        total = family_sum(m1, "xmpp_shard_sessions_total") - family_sum(m0, "xmpp_shard_sessions_total")
        grown = rss1 - rss0
        allowed = max(a.rss_slack_kib, rss0 * a.rss_slack_pct // 100)
        log(f"end after {took:.0f}s: proxy RSS {rss1} KiB (start {rss0} KiB, {grown:+d} KiB; "
            f"allowed +{allowed}), {fds1} descriptors (start {fds0})")
        log(f"sessions through the proxy: {total:g}; logins {self.t['login']}; slixmpp "
            f"{self.t['slixmpp']}; joins {self.t['join']}; during restarts: logins "
            f"{self.t['login_during_restart']}; restarts {self.restarts}; reloads {self.reloads} "
            f"(counted: {reload_ok:g} success, {reload_fail:g} failure); peak RSS "
            f"{max((s[1] for s in self.samples), default=rss1)} KiB")
        checks = []

        def check(ok: bool, what: str) -> None:
            checks.append((ok, what))
            if not ok:
                self.problems.append(what)
        check(self.proxy_alive(), "the proxy is alive")
        check(grown <= allowed, f"RSS back near its start: {rss1} vs {rss0} KiB (+{allowed} allowed)")
        check(fds1 <= fds0 + 2, f"descriptors back to the start: {fds1} vs {fds0}")
        check(conns == a.keepers and sess == a.keepers,
              f"gauges: connections_active {conns:g}, sessions_active {sess:g} == {a.keepers} keepers")
        # Short-lived logins and joins: "away from restarts" is decided by time, and a restart's
        # edge or a saturated 2-core machine can fail a few; more than 2 % is a finding. What
        # must not happen at all is checked strictly: memory, descriptors, the long-lived
        # sessions (gauges above), reloads.
        def few(t) -> bool:
            return t.failed <= max(2, (t.ok + t.failed) // 50)
        check(few(self.t["login"]), f"logins away from restarts worked (<= 2 % failed): {self.t['login']}")
        check(few(self.t["slixmpp"]), f"slixmpp logins away from restarts (<= 2 % failed): {self.t['slixmpp']}")
        check(few(self.t["join"]), f"MUC joins worked (<= 2 % failed): {self.t['join']}")
        check(self.t["login"].ok > 0 and self.t["join"].ok > 0, "the mix actually ran")
        check(reload_ok >= self.reloads and reload_fail == 0,
              f"every reload applied: {reload_ok:g} of {self.reloads}")
        check(self.restarts >= 1 or a.duration < a.restart_every, f"backends restarted: {self.restarts}")
        for ok, what in checks:
            log(f"{'ok  ' if ok else 'FAIL'} {what}")
        for p in self.problems:
            if not any(p == w for _, w in checks):
                log(f"FAIL {p}")
        summary = {"duration_s": round(took), "rss_start_kib": rss0, "rss_end_kib": rss1,
                   "fds_start": fds0, "fds_end": fds1, "sessions": total,
                   "restarts": self.restarts, "reloads": self.reloads,
                   "tallies": {k: str(v) for k, v in self.t.items()},
                   "problems": self.problems, "samples": self.samples}
        (self.base / "summary.json").write_text(json.dumps(summary, indent=1))
        if a.summary:
            Path(a.summary).write_text(json.dumps(summary, indent=1))
        passed = sum(ok for ok, _ in checks)
        print(f"soak: {passed} passed, {len(checks) - passed} failed")
        return 0 if not self.problems else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("duration", nargs="?", type=parse_duration, default=parse_duration("1h"))
    p.add_argument("--proxy", type=Path, default=Path(os.environ.get(
        "XS_PROXY_BIN", REPO / "build" / "bin" / "xmpp-shard-proxy")))
    p.add_argument("--keepers", type=int, default=50, help="long-lived sessions")
    p.add_argument("--logins", type=int, default=20, help="anonymous logins per cycle")
    p.add_argument("--storm", type=int, default=30, help="joins per storm (every other cycle)")
    p.add_argument("--restart-every", type=float, default=30.0, help="seconds between restarts")
    p.add_argument("--reload-every", type=float, default=20.0, help="seconds between SIGHUPs")
    p.add_argument("--pause", type=float, default=0.5, help="seconds between cycles")
    p.add_argument("--rss-slack-kib", type=int, default=6144)
    p.add_argument("--rss-slack-pct", type=int, default=20)
    p.add_argument("--summary", help="also write the JSON summary here")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    # slixmpp leaves a filter task behind on every disconnect; asyncio would log each one.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    soak = Soak(args)
    try:
        soak.start()
        return asyncio.run(soak.run())
    finally:
        soak.stop()


if __name__ == "__main__":
    sys.exit(main())
