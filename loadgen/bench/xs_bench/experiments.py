"""The benchmark's measurements (docs/BENCHMARKS.md explains each):

  storm      jitsi scenario (client-side join storm while the brewery is busy) on A, B, C, E:
             p99 at a fixed size with CPU charts, and the largest storm with p99 join < 2 s
  tenants    join storm spread over hashed tenant domains: A against D
  overhead   message round trip and front CPU per relayed stanza: direct, xmpp-shard, HAProxy
             (to Prosody, and to the echo stub to see the proxy alone)
  setup      new sessions per second: direct, xmpp-shard, HAProxy (stub, and Prosody)
  memory     resident memory per idle passthrough session: xmpp-shard against HAProxy
  web        one meeting domain's join storm, participants over WebSocket with ?room=: A-web
             (one Prosody) against F (xmpp-shard's http listener hashing rooms over 2
             instances), G (HAProxy http, url_param room) and H (nginx, hash $arg_room); the
             WebSocket round trip and front CPU per relayed frame, memory per idle WebSocket
             session, and F over N = 1..4 instances
  web-memory memory per idle WebSocket session at the descriptor limit: as many sessions per
             front as RLIMIT_NOFILE (and the backend's, the loadgen's, the port range) allow
"""
from __future__ import annotations

import math
import os
import re
import resource
import time
from dataclasses import dataclass

from .loadgen import Loadgen, count, lat, proc
from .stack import (AUTH, BREWERY, CONFERENCE, GUEST, PASSWORDS, STUB_DISCARD, STUB_ECHO,
                    TENANTS, Stack, Topology)

P99_LIMIT_MS = 2000.0


@dataclass
class Params:
    room_size: int = 10
    fixed_rooms: int = 30            # "p99 at a fixed size": 300 participants
    ladder: tuple = (10, 20, 30, 40, 60, 80, 100)   # storm sizes in rooms
    reps: int = 3                    # each size, each topology, interleaved
    fresh_instances: bool = True     # restart a storm's Prosody instances before each storm run
    bridges: int = 30
    interval: float = 1.0
    stay: float = 2.0
    overhead_rounds: int = 2
    overhead_clients: int = 200
    prosody_rate: int = 500
    stub_rate: int = 5000
    overhead_secs: float = 10
    setup_secs: float = 8
    setup_concurrency: int = 100
    setup_rounds: int = 3
    memory_sessions: tuple = (1000, 4000, 9000)
    # part "web"
    web_fixed_rooms: int = 30        # CPU charts for A-web and F at 300 participants
    web_ladder: tuple = (10, 20, 30, 40, 50, 60)
    web_reps: int = 3
    web_scaling: tuple = (1, 3, 4)   # F over N instances (N = 2 is the ladder's F)
    web_scaling_ladder: tuple = (20, 30, 40, 50, 60)
    web_overhead_rounds: int = 2
    web_rate: int = 500
    web_memory_sessions: tuple = (1000, 4000)
    web_memory_limit_points: tuple = (1000, 5000)   # then the limit itself (part web-memory)
    web_memory_limit_cap: int = 0                    # 0: none
    transports: tuple = ("websocket",)
    web_transport_mix: str = ""      # storm participants: "" = all WebSocket, else --transport-mix
    web_bosh_clients: int = 100
    web_bosh_rate: int = 200
    web_bosh_secs: float = 10

    @classmethod
    def quick(cls) -> "Params":
        return cls(fixed_rooms=5, ladder=(2, 5, 10), reps=1, bridges=5,
                   stay=1, overhead_rounds=1, overhead_clients=20, prosody_rate=100,
                   stub_rate=500, overhead_secs=2, setup_secs=2, setup_rounds=1, memory_sessions=(200, 500),
                   web_fixed_rooms=5, web_ladder=(2, 5), web_reps=1, web_scaling=(1, 3, 4),
                   web_scaling_ladder=(5,), web_overhead_rounds=1, web_rate=100,
                   web_memory_sessions=(100, 300), web_memory_limit_points=(100,),
                   web_memory_limit_cap=1000, web_bosh_clients=20, web_bosh_rate=50, web_bosh_secs=2)


# --------------------------------------------------------------------------------------------
# join storms

def storm_args(t: Topology, kind: str, rooms: int, p: Params) -> tuple[str, list]:
    common = ["--server", t.server, "--rooms", rooms, "--room-size", p.room_size, "--stay", p.stay,
              "--messages", 1, "--join-timeout", 15, "--concurrency", 100]
    if kind == "jitsi":
        return "jitsi", common + [
            "--domain", GUEST, "--muc", CONFERENCE, "--brewery-server", t.brewery_server,
            "--brewery-domain", AUTH, "--brewery-muc", BREWERY, "--bridges", p.bridges,
            "--interval", p.interval, "--bridge-password", PASSWORDS["jvb"],
            "--focus-password", PASSWORDS["focus"], "--brewery-auth", "scram"]
    if kind == "web":
        transport = (["--transport-mix", p.web_transport_mix] if p.web_transport_mix
                     else ["--transport", "websocket"])
        return "jitsi", common + transport + [
            "--domain", GUEST, "--muc", CONFERENCE, "--brewery-server", t.brewery_server,
            "--brewery-domain", AUTH, "--brewery-muc", BREWERY, "--bridges", p.bridges,
            "--interval", p.interval, "--bridge-password", PASSWORDS["jvb"],
            "--focus-password", PASSWORDS["focus"], "--brewery-auth", "scram"]
    return "join-storm", common + ["--domain", ",".join(TENANTS), "--muc", "conference.{domain}"]


def storm_ok(rep: dict, rooms: int, p: Params) -> bool:
    return (rep["errors_total"] == 0 and count(rep, "participants_joined") == rooms * p.room_size
            and lat(rep, "join") < P99_LIMIT_MS)


def storm_row(rep: dict, rooms: int, p: Params) -> dict:
    row = {"rooms": rooms, "participants": rooms * p.room_size, "ok": storm_ok(rep, rooms, p),
           "join_p50": lat(rep, "join", "p50"), "join_p99": lat(rep, "join"),
           "join_max": lat(rep, "join", "max"), "joined": count(rep, "participants_joined"),
           "wall_s": rep["wall_s"],
           "errors": rep["errors_total"], "error_kinds": rep["errors"],
           "storm_s": rep["rates"].get("storm_s", float("nan")),
           "msg_p99": lat(rep, "message_rtt"), "brewery_delivery_p99": lat(rep, "brewery_delivery"),
           "secs": rep["_secs"], "name": rep["_name"], "foreign_cpu_s": rep["_foreign_cpu_s"],
           "busy_before_pct": rep["_busy_before"],
           "window_s": rep.get("window_end_s", 0) - rep.get("window_start_s", 0)}
    for pr in rep["processes"]:
        row[f"cpu_window_{pr['name']}"] = pr["cpu_s_window"]
        row[f"cpu_total_{pr['name']}"] = pr["cpu_s_total"]
    return row


def storm_trial(lg: Loadgen, t: Topology, kind: str, rooms: int, p: Params, chart=False, tag="") -> dict:
    scenario, args = storm_args(t, kind, rooms, p)
    name = f"{kind}-{t.name}-{rooms * p.room_size}{tag}"
    rep = lg.run(name, scenario, args, watch=t.watch, chart=chart, timeout=150)
    row = storm_row(rep, rooms, p)
    lg.log(f"  {name}: joined {row['joined']}/{rooms * p.room_size} p50 {row['join_p50']:.0f} ms "
           f"p99 {row['join_p99']:.0f} ms errors {row['errors']} ({row['secs']:.0f} s; other work "
           f"{row['foreign_cpu_s'] / max(row['wall_s'], 0.001):.2f} cores)")
    return row


def interpolate_2s(per_size: dict) -> float | None:
    """The storm size at which the median p99 join time crosses 2 s, interpolated linearly
    between the last size below and the first size above (None if it never crosses)."""
    pts = sorted((n, v["join_p99_median"]) for n, v in per_size.items())
    for (n0, y0), (n1, y1) in zip(pts, pts[1:]):
        if y0 < P99_LIMIT_MS <= y1:
            return n0 + (P99_LIMIT_MS - y0) * (n1 - n0) / (y1 - y0)
    return None


def fresh_start(stack: Stack, topology: str, p: Params) -> None:
    """With p.fresh_instances, restart the Prosody instances topology `topology` storms, so that
    no storm runs on an instance that served earlier ones: the same storm was measured costing an
    instance up to 2x more CPU after other storms (docs/BENCHMARKS.md, "A run on a quiet
    machine"), and the ladder gives the shards of F, G and H three times as many storms as
    A-web's instance."""
    if p.fresh_instances:
        stack.restart_instances(stack.storm_instances(topology))


def storm_ladder(lg: Loadgen, stack: Stack, topologies, kind: str, p: Params, ladder=None,
                 reps=None, fixed_rooms=None, marks=None) -> dict:
    """Storms of growing size; at each size every topology still in the race runs `reps` times,
    interleaved (rotating the order), so that slow drifts of the machine hit all alike. A
    topology "completes" a size when every repetition joined everyone without an error and with
    p99 join < 2 s. It stays in the race until the median p99 of its repetitions reaches 2 s (or
    a repetition fails to join everyone), so that the size at p99 = 2 s can be interpolated
    between two measured sizes even when one repetition of a size went over. The fixed size gets
    charts. Each run starts on restarted instances unless p.fresh_instances is off."""
    ladder = ladder or p.ladder
    reps = reps or p.reps
    fixed_rooms = p.fixed_rooms if fixed_rooms is None else fixed_rooms
    trials: dict[str, list] = {t: [] for t in topologies}
    racing = list(topologies)
    for rooms in ladder:
        if not racing:
            break
        for rep in range(reps):
            order = racing[rep % len(racing):] + racing[:rep % len(racing)]
            for t in order:
                chart = rooms == fixed_rooms and rep == 0
                fresh_start(stack, t, p)
                before = instance_marks(stack) if marks else None
                row = storm_trial(lg, stack.topology(t), kind, rooms, p, chart=chart,
                                  tag=f"-r{rep}" + ("-fixed" if chart else ""))
                if before is not None:
                    row["logins_by_instance"] = logins_since(stack, before)
                row["rep"] = rep
                trials[t].append(row)
        for t in list(racing):
            rows = [r for r in trials[t] if r["rooms"] == rooms]
            p99s = sorted(r["join_p99"] for r in rows)
            if (any(r["joined"] < rooms * p.room_size or r["errors"] for r in rows)
                    or p99s[len(p99s) // 2] >= P99_LIMIT_MS):
                racing.remove(t)
    # Every topology gets its CPU chart at the fixed size, even one that left the race earlier
    # (that run does not change its result: a smaller size already failed).
    for t in topologies:
        if fixed_rooms and not any(r["rooms"] == fixed_rooms for r in trials[t]):
            fresh_start(stack, t, p)
            row = storm_trial(lg, stack.topology(t), kind, fixed_rooms, p, chart=True, tag="-r0-fixed")
            row["rep"] = 0
            trials[t].append(row)
    out = {}
    for t, rows in trials.items():
        sizes = sorted({r["rooms"] for r in rows})
        passed = [s for s in sizes if all(r["ok"] for r in rows if r["rooms"] == s)]
        failed = [s for s in sizes if s not in passed]
        largest = 0
        for s in sizes:                      # contiguous from the bottom of the ladder
            if s in passed:
                largest = s
            else:
                break
        per_size = {}
        for s in sizes:
            rs = [r for r in rows if r["rooms"] == s]
            per_size[s * p.room_size] = {
                "join_p99_median": sorted(r["join_p99"] for r in rs)[len(rs) // 2] if len(rs) % 2 else
                sum(r["join_p99"] for r in rs) / len(rs),
                "join_p99_max": max(r["join_p99"] for r in rs),
                "join_p50_mean": sum(r["join_p50"] for r in rs) / len(rs),
                "ok": all(r["ok"] for r in rs)}
        out[t] = {"topology": t, "kind": kind, "largest_participants": largest * p.room_size,
                  "at_2s_interpolated": interpolate_2s(per_size),
                  "first_failing_participants": failed[0] * p.room_size if failed else None,
                  "capped": not failed, "by_size": per_size, "trials": rows}
    return out


def tenant_spread(stack: Stack, marks: dict) -> dict:
    """Which instance served which tenant domain (from the instances' logs)."""
    out = {}
    for n in ("p0", "p1"):
        text = stack.instances[n].log_text(marks[n])
        doms = re.findall(r"Authenticated as \S+@(t\d\d\.tenant\.test)", text)
        out[n] = sorted(set(doms))
    return out


# --------------------------------------------------------------------------------------------
# proxy overhead, set-up rate, memory

def overhead(lg: Loadgen, stack: Stack, p: Params, backend: str) -> dict:
    """Message round trip through nothing / xmpp-shard / HAProxy to the same backend."""
    if backend == "prosody":
        direct = stack.instances["p0"].address
        base = ["--domain", GUEST, "--rate", p.prosody_rate, "--warmup", 2]
    else:
        direct = stack.stub("echo")
        base = ["--domain", STUB_ECHO, "--auth", "none", "--rate", p.stub_rate, "--warmup", 1]
    px, hx = f"127.0.0.1:{stack.ports['proxy']}", f"127.0.0.1:{stack.ports['haproxy']}"
    backend_pid = {"backend": stack.instances["p0"].pid if backend == "prosody" else stack.stubs["stub-echo"].pid}
    paths = [("direct", direct, {}), ("xmpp-shard", px, {"front": stack.proxy_proc.pid}),
             ("HAProxy", hx, {"front": stack.haproxy.pid})]
    runs: dict[str, list] = {n: [] for n, _, _ in paths}
    for rnd in range(p.overhead_rounds):
        for name, server, watch in paths:
            w = dict(watch)
            w.update(backend_pid)
            rep = lg.run(f"overhead-{backend}-{name}-{rnd}", "steady",
                         ["--server", server, "--clients", p.overhead_clients,
                          "--duration", p.overhead_secs, *base], watch=w, timeout=120)
            f = proc(rep, "front")
            stanzas = 2 * count(rep, "messages_measured")
            runs[name].append({"p50": lat(rep, "message_rtt", "p50"), "p99": lat(rep, "message_rtt"),
                               "mean": lat(rep, "message_rtt", "mean"), "errors": rep["errors_total"],
                               "front_cpu_s": f.get("cpu_s_window", float("nan")),
                               "stanzas": stanzas, "rate": rep["rates"].get("messages_per_s"),
                               "foreign_cpu_s": rep["_foreign_cpu_s"]})
            lg.log(f"  overhead {backend} {name} round {rnd}: p50 {runs[name][-1]['p50']:.3f} "
                   f"p99 {runs[name][-1]['p99']:.3f} ms, front CPU {runs[name][-1]['front_cpu_s']}")
    summary = {}
    for name, rs in runs.items():
        s = {"p50": sum(r["p50"] for r in rs) / len(rs), "p99": sum(r["p99"] for r in rs) / len(rs),
             "errors": sum(r["errors"] for r in rs), "rounds": rs}
        cpu = sum(r["front_cpu_s"] for r in rs)
        st = sum(r["stanzas"] for r in rs)
        s["cpu_s_per_million"] = cpu / st * 1e6 if st and not math.isnan(cpu) else None
        summary[name] = s
    for name in ("xmpp-shard", "HAProxy"):
        summary[name]["added_p50"] = summary[name]["p50"] - summary["direct"]["p50"]
        summary[name]["added_p99"] = summary[name]["p99"] - summary["direct"]["p99"]
    return summary


def setup_rate(lg: Loadgen, stack: Stack, p: Params, backend: str) -> dict:
    """Session set-up (connect, stream header, the backend's header and features back, close) by
    `churn`, direct / xmpp-shard / HAProxy, `setup_rounds` interleaved rounds in rotating order;
    each figure is the median over the rounds (the rounds are kept too)."""
    if backend == "prosody":
        direct, dom = stack.instances["p0"].address, GUEST
    else:
        direct, dom = stack.stub("discard"), STUB_DISCARD
    px, hx = f"127.0.0.1:{stack.ports['proxy']}", f"127.0.0.1:{stack.ports['haproxy']}"
    bpid = stack.instances["p0"].pid if backend == "prosody" else stack.stubs["stub-discard"].pid
    paths = [("direct", direct, {}), ("xmpp-shard", px, {"front": stack.proxy_proc.pid}),
             ("HAProxy", hx, {"front": stack.haproxy.pid})]
    rounds: dict[str, list] = {name: [] for name, _, _ in paths}
    for rnd in range(p.setup_rounds):
        for name, server, watch in paths[rnd % len(paths):] + paths[:rnd % len(paths)]:
            watch = {**watch, "backend": bpid}
            rep = lg.run(f"setup-{backend}-{name}-{rnd}", "churn",
                         ["--server", server, "--domain", dom, "--auth", "none", "--concurrency",
                          p.setup_concurrency, "--duration", p.setup_secs], watch=watch, timeout=90)
            n = count(rep, "sessions_completed")
            f = proc(rep, "front")
            r = {"sessions_per_s": rep["rates"].get("sessions_per_s", 0), "sessions": n,
                 "errors": rep["errors_total"], "setup_p50": lat(rep, "session_setup", "p50"),
                 "setup_p99": lat(rep, "session_setup"),
                 "front_cpu_us_per_session": f["cpu_s_window"] / n * 1e6 if f and n else None,
                 "front_cpu_pct": f.get("cpu_pct_avg"), "loadgen_cpu_pct": proc(rep, "loadgen").get("cpu_pct_avg"),
                 "backend_cpu_pct": proc(rep, "backend").get("cpu_pct_avg"),
                 "foreign_cpu_s": rep["_foreign_cpu_s"]}
            rounds[name].append(r)
            lg.log(f"  setup {backend} {name} round {rnd}: {r['sessions_per_s']:.0f}/s, "
                   f"front CPU {r['front_cpu_us_per_session'] or 0:.0f} us/session, errors {r['errors']}")
    out = {}
    for name, rs in rounds.items():
        def median(key):
            vals = sorted(r[key] for r in rs if r[key] is not None)
            return vals[len(vals) // 2] if vals else None
        out[name] = {k: median(k) for k in rs[0] if k not in ("errors", "sessions", "foreign_cpu_s")}
        out[name].update(errors=sum(r["errors"] for r in rs), sessions=sum(r["sessions"] for r in rs),
                         foreign_cpu_s=sum(r["foreign_cpu_s"] for r in rs), rounds=rs)
    return out


def memory(lg: Loadgen, stack: Stack, p: Params) -> dict:
    """Idle passthrough sessions (stream open, nothing more) held through each front, against
    the discard stub; the front process is restarted before each point so the heap starts clean."""
    px, hx = f"127.0.0.1:{stack.ports['proxy']}", f"127.0.0.1:{stack.ports['haproxy']}"
    out: dict[str, list] = {"xmpp-shard": [], "HAProxy": []}
    for n in p.memory_sessions:
        for name, server in (("xmpp-shard", px), ("HAProxy", hx)):
            stack.restart_front()
            pid = stack.proxy_proc.pid if name == "xmpp-shard" else stack.haproxy.pid
            rep = lg.run(f"memory-{name}-{n}", "steady",
                         ["--server", server, "--domain", STUB_DISCARD, "--auth", "none", "--clients", n,
                          "--rate", 0, "--warmup", 1, "--duration", 2, "--concurrency", 200],
                         watch={"front": pid}, timeout=120)
            f = proc(rep, "front")
            held = count(rep, "sessions_ready")
            delta = f["rss_mb_window_end"] - f["rss_mb_start"]
            out[name].append({"sessions": n, "held": held, "errors": rep["errors_total"],
                              "rss_start_mb": f["rss_mb_start"], "rss_held_mb": f["rss_mb_window_end"],
                              "kb_per_session": delta * 1024 / held if held else None})
            lg.log(f"  memory {name} {n}: {held} held, RSS {f['rss_mb_start']:.1f} -> "
                   f"{f['rss_mb_window_end']:.1f} MB")
    for name, pts in out.items():
        if len(pts) >= 2 and pts[-1]["held"] > pts[0]["held"]:
            slope = (pts[-1]["rss_held_mb"] - pts[0]["rss_held_mb"]) * 1024 / (pts[-1]["held"] - pts[0]["held"])
            out[name].append({"slope_kb_per_session": slope})
    return out


# --------------------------------------------------------------------------------------------
# part "web": room shards of one meeting domain behind xmpp-shard, HAProxy and nginx

WEB_INSTANCES = ("web", "w1", "w2", "w3", "w4", "wb")


def instance_marks(stack: Stack) -> dict:
    return {n: stack.instances[n].log_mark() for n in WEB_INSTANCES if n in stack.instances}


def logins_since(stack: Stack, marks: dict) -> dict:
    """Logins per instance since `marks` (Prosody logs "Authenticated as" at info)."""
    out = {}
    for n, m in marks.items():
        k = stack.instances[n].log_text(m).count("Authenticated as ")
        if k:
            out[n] = k
    return out


def web_storm(lg: Loadgen, stack: Stack, p: Params) -> dict:
    """The one-domain storm on A-web, F, G, H (K = 2 shards), interleaved, `web_reps` each."""
    return storm_ladder(lg, stack, ["A-web", "F", "G", "H"], "web", p, ladder=p.web_ladder,
                        reps=p.web_reps, fixed_rooms=p.web_fixed_rooms, marks=True)


def web_scaling(lg: Loadgen, stack: Stack, p: Params) -> dict:
    """F over N instances: one repetition per size (N = 2 comes from web_storm)."""
    tops = [f"F{n}" for n in p.web_scaling if n <= stack.web_shards]
    return storm_ladder(lg, stack, tops, "web", p, ladder=p.web_scaling_ladder, reps=1,
                        fixed_rooms=0, marks=True)


def web_paths(stack: Stack) -> list[tuple[str, str, dict]]:
    """Every front over ONE shard (w1), so that the direct path reaches the same Prosody."""
    return [("direct", stack.http_address("w1"), {}),
            ("xmpp-shard", f"127.0.0.1:{stack.ports['proxy-web1']}", {"front": stack.proxy_proc.pid}),
            ("HAProxy", stack.web_fronts["haproxy"].port("rooms1"), {"front": stack.web_fronts["haproxy"].pid}),
            ("nginx", stack.web_fronts["nginx"].port("rooms1"), {"front": stack.web_fronts["nginx"].pid})]


def web_overhead(lg: Loadgen, stack: Stack, p: Params) -> dict:
    """Message round trip over WebSocket (each message to the sender's own full JID) straight
    to w1 and through each front to w1; rounds interleaved in rotating order. Each message is
    two relayed WebSocket frames (in and back)."""
    bpid = stack.instances["w1"].pid
    paths = web_paths(stack)
    runs: dict[str, list] = {n: [] for n, _, _ in paths}
    for rnd in range(p.web_overhead_rounds):
        for name, server, watch in paths[rnd % len(paths):] + paths[:rnd % len(paths)]:
            rep = lg.run(f"wsrtt-{name}-{rnd}", "steady",
                         ["--server", server, "--transport", "websocket", "--domain", GUEST,
                          "--clients", p.overhead_clients, "--rate", p.web_rate, "--warmup", 2,
                          "--duration", p.overhead_secs], watch={**watch, "backend": bpid}, timeout=120)
            f = proc(rep, "front")
            frames = 2 * count(rep, "messages_measured")
            runs[name].append({"p50": lat(rep, "message_rtt", "p50"), "p99": lat(rep, "message_rtt"),
                               "errors": rep["errors_total"], "front_cpu_s": f.get("cpu_s_window", float("nan")),
                               "frames": frames, "rate": rep["rates"].get("messages_per_s"),
                               "backend_cpu_s": proc(rep, "backend").get("cpu_s_window"),
                               "loadgen_cpu_pct": proc(rep, "loadgen").get("cpu_pct_avg"),
                               "foreign_cpu_s": rep["_foreign_cpu_s"]})
            r = runs[name][-1]
            lg.log(f"  ws round trip {name} round {rnd}: p50 {r['p50']:.3f} p99 {r['p99']:.3f} ms, "
                   f"front CPU {r['front_cpu_s']}, errors {r['errors']}")
    out = {}
    for name, rs in runs.items():
        s = {"p50": sum(r["p50"] for r in rs) / len(rs), "p99": sum(r["p99"] for r in rs) / len(rs),
             "errors": sum(r["errors"] for r in rs), "rounds": rs}
        cpu, fr = sum(r["front_cpu_s"] for r in rs), sum(r["frames"] for r in rs)
        s["cpu_us_per_frame"] = cpu / fr * 1e6 if fr and not math.isnan(cpu) else None
        out[name] = s
    for name in ("xmpp-shard", "HAProxy", "nginx"):
        out[name]["added_p50"] = out[name]["p50"] - out["direct"]["p50"]
        out[name]["added_p99"] = out[name]["p99"] - out["direct"]["p99"]
    return out


def web_memory(lg: Loadgen, stack: Stack, p: Params) -> dict:
    """Idle WebSocket sessions (upgrade, <open/>, features; no login) held through each front
    to w1; each front restarted before each point so its heap starts clean."""
    fronts = {"xmpp-shard": "proxy", "HAProxy": "haproxy", "nginx": "nginx"}
    out: dict[str, list] = {n: [] for n in fronts}
    for n in p.web_memory_sessions:
        for name, kind in fronts.items():
            stack.restart_web_front(kind)
            server, watch = next((s, w) for nm, s, w in web_paths(stack) if nm == name)
            rep = lg.run(f"wsmem-{name}-{n}", "steady",
                         ["--server", server, "--transport", "websocket", "--domain", GUEST, "--auth", "none",
                          "--clients", n, "--rate", 0, "--warmup", 1, "--duration", 2, "--concurrency", 200],
                         watch=watch, timeout=150)
            f = proc(rep, "front")
            held = count(rep, "sessions_ready")
            delta = f["rss_mb_window_end"] - f["rss_mb_start"]
            out[name].append({"sessions": n, "held": held, "errors": rep["errors_total"],
                              "error_kinds": rep["errors"],
                              "rss_start_mb": f["rss_mb_start"], "rss_held_mb": f["rss_mb_window_end"],
                              "kb_per_session": delta * 1024 / held if held else None})
            lg.log(f"  ws memory {name} {n}: {held} held, RSS {f['rss_mb_start']:.1f} -> "
                   f"{f['rss_mb_window_end']:.1f} MB, errors {rep['errors_total']}")
    for name, pts in out.items():
        if len(pts) >= 2 and pts[-1]["held"] > pts[0]["held"]:
            slope = (pts[-1]["rss_held_mb"] - pts[0]["rss_held_mb"]) * 1024 / (pts[-1]["held"] - pts[0]["held"])
            out[name].append({"slope_kb_per_session": slope})
    return out


def fd_state(pid: int) -> tuple[int, int]:
    """(open descriptors, soft RLIMIT_NOFILE) of a process."""
    soft = 0
    with open(f"/proc/{pid}/limits") as fh:
        for line in fh:
            if line.startswith("Max open files"):
                soft = int(line.split()[3])
    return len(os.listdir(f"/proc/{pid}/fd")), soft


def port_range() -> int:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
        lo, hi = map(int, fh.read().split())
    return hi - lo + 1


def web_memory_limit(lg: Loadgen, stack: Stack, p: Params) -> dict:
    """Idle WebSocket sessions through each front's one-shard entry to w1, as many as the limits
    allow: a front holds 2 descriptors per session (client and w1), w1 and the loadgen one, and
    each loopback destination (the front's port; w1's http port) has one ephemeral port range.
    Points `web_memory_limit_points`, then the limit; each front restarted before each point
    (HAProxy and nginx configured for the whole RLIMIT_NOFILE), and w1 left to close the previous
    point's sessions first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    w1 = stack.instances["w1"]
    w1_base = fd_state(w1.pid)[0]
    limits = {"nofile_soft": soft, "nofile_hard": hard, "nr_open": int(open("/proc/sys/fs/nr_open").read()),
              "ports_per_destination": port_range(), "w1_fds_idle": w1_base, "w1_nofile": fd_state(w1.pid)[1]}
    reserve = 16                                          # descriptors a process may open meanwhile
    fronts = {"xmpp-shard": "proxy", "HAProxy": "haproxy", "nginx": "nginx"}
    out: dict = {"limits": limits, "fronts": {n: {"points": []} for n in fronts}}
    caps_common = {"loadgen (1 fd per session)": soft - 64,
                   "w1 Prosody (1 fd per session)": limits["w1_nofile"] - w1_base - 64,
                   "ephemeral ports per destination": limits["ports_per_destination"] - 64}
    if p.web_memory_limit_cap:
        caps_common["--quick cap"] = p.web_memory_limit_cap
    for point in [*p.web_memory_limit_points, None]:
        for name, kind in fronts.items():
            for _ in range(60):                           # w1 closing the last point's sessions
                if fd_state(w1.pid)[0] <= w1_base + 32:
                    break
                time.sleep(0.5)
            stack.restart_web_front(kind, nofile=soft)
            server, watch = next((s, w) for nm, s, w in web_paths(stack) if nm == name)
            fds, nofile = fd_state(watch["front"])
            caps = {f"{name} RLIMIT_NOFILE {nofile} (2 fds per session, {fds} open idle)": (nofile - fds - reserve) // 2,
                    **caps_common}
            if kind == "haproxy":
                caps[f"HAProxy maxconn {stack.web_fronts['haproxy'].maxconn}"] = stack.web_fronts["haproxy"].maxconn
            bound = min(caps, key=caps.get)
            n = caps[bound] if point is None else min(point, caps[bound])
            rep = lg.run(f"wslimit-{name}-{n}", "steady",
                         ["--server", server, "--transport", "websocket", "--domain", GUEST, "--auth", "none",
                          "--clients", n, "--rate", 0, "--warmup", 1, "--duration", 2, "--concurrency", 200],
                         watch={**watch, "backend": w1.pid}, timeout=90 + n // 40)
            f, b = proc(rep, "front"), proc(rep, "backend")
            held = count(rep, "sessions_ready")
            delta = f["rss_mb_window_end"] - f["rss_mb_start"]
            pt = {"sessions": n, "held": held, "errors": rep["errors_total"], "error_kinds": rep["errors"],
                  "front_fds_idle": fds, "front_nofile": nofile, "wall_s": rep["wall_s"],
                  "rss_start_mb": f["rss_mb_start"], "rss_held_mb": f["rss_mb_window_end"],
                  "kb_per_session": delta * 1024 / held if held else None,
                  "w1_rss_start_mb": b.get("rss_mb_start"), "w1_rss_held_mb": b.get("rss_mb_window_end")}
            if kind == "nginx":                         # nginx says when its slots ran out
                log = stack.web_fronts["nginx"].dir / "error.log"
                pt["worker_connections_warnings"] = (log.read_text().count("worker_connections are not enough")
                                                     if log.exists() else 0)
            if point is None:
                out["fronts"][name].update({"limit": n, "bound_by": bound, "caps": caps})
            out["fronts"][name]["points"].append(pt)
            lg.log(f"  ws memory at the limit {name} {n}{' (limit: ' + bound + ')' if point is None else ''}: "
                   f"{held} held, RSS {pt['rss_start_mb']:.1f} -> {pt['rss_held_mb']:.1f} MB, "
                   f"{pt['kb_per_session'] or 0:.2f} KB/session, errors {rep['errors_total']}")
    for name, fr in out["fronts"].items():
        a, z = fr["points"][0], fr["points"][-1]
        if z["held"] > a["held"]:
            fr["slope_kb_per_session"] = (z["rss_held_mb"] - a["rss_held_mb"]) * 1024 / (z["held"] - a["held"])
    stack.restart_web_front("haproxy")                    # back to the web part's configuration
    stack.restart_web_front("nginx")
    return out


def web_bosh(lg: Loadgen, stack: Stack, p: Params) -> dict:
    """BOSH through each front: `steady --transport bosh` (anonymous login, messages to the
    sender's own full JID at a fixed rate), straight to w1 and through each front's one-shard
    entry, in that order. Every count is over the whole run (login included): requests
    (`bosh_requests`) per second of the run, and the front's CPU per request, whose inverse is
    what one front thread could serve."""
    out = {}
    for name, server, watch in web_paths(stack):
        rep = lg.run(f"bosh-{name}", "steady",
                     ["--server", server, "--transport", "bosh", "--domain", GUEST,
                      "--clients", p.web_bosh_clients, "--rate", p.web_bosh_rate, "--warmup", 2,
                      "--duration", p.web_bosh_secs], watch={**watch, "backend": stack.instances["w1"].pid},
                     timeout=150)
        f = proc(rep, "front")
        n = count(rep, "bosh_requests")
        r = {"requests": n, "connections": count(rep, "bosh_connections"), "wall_s": rep["wall_s"],
             "requests_per_s": n / rep["wall_s"] if rep["wall_s"] else None,
             "p50": lat(rep, "message_rtt", "p50"), "p99": lat(rep, "message_rtt"),
             "errors": rep["errors_total"], "error_kinds": rep["errors"],
             "front_cpu_s": f.get("cpu_s_total"),
             "front_cpu_us_per_request": f["cpu_s_total"] / n * 1e6 if f and n else None,
             "front_rss_mb": f.get("rss_mb_peak"),
             "loadgen_cpu_pct": proc(rep, "loadgen").get("cpu_pct_avg")}
        out[name] = r
        lg.log(f"  bosh {name}: {n} requests ({r['requests_per_s'] or 0:.0f}/s), {r['connections']} connections, "
               f"p50 {r['p50']:.2f} ms, front CPU {r['front_cpu_us_per_request'] or 0:.1f} us/request, "
               f"errors {r['errors']}")
    return out
