"""The results of one run as Markdown tables (appended to a results file)."""
from __future__ import annotations

import math


def f(v, nd=1, unit="") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{nd}f}{unit}"


def table(head: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def goals(res: dict) -> list[list]:
    rows = []
    st = res.get("storm", {})
    if "A" in st.get("search", {}) and "C" in st.get("search", {}):
        a = st["search"]["A"]["largest_participants"]
        c = st["search"]["C"]["largest_participants"]
        ratio = c / a if a else float("nan")
        capped = st["search"]["A"]["capped"] or st["search"]["C"]["capped"]
        ia, ic = st["search"]["A"].get("at_2s_interpolated"), st["search"]["C"].get("at_2s_interpolated")
        interp = f"; interpolated at p99 = 2 s: {f(ic, 0)} vs {f(ia, 0)} = {f(ic / ia, 2)}x" if ia and ic else ""
        rows.append(["C completes a storm >= 1.6x A's at p99 < 2 s",
                     f"ladder: {c} vs {a} participants = {f(ratio, 2)}x" + interp
                     + (" (ladder cap reached)" if capped else ""),
                     "met" if ratio >= 1.6 and (not interp or ic / ia >= 1.6) else "missed"])
    for backend in ("stub", "prosody"):
        o = res.get("overhead", {}).get(backend)
        if not o:
            continue
        s, h = o["xmpp-shard"], o["HAProxy"]
        ok = s["added_p50"] <= h["added_p50"] and s["added_p99"] <= h["added_p99"]
        rows.append([f"added round trip <= HAProxy's ({backend} backend)",
                     f"p50 +{f(s['added_p50'], 3)} vs +{f(h['added_p50'], 3)} ms; "
                     f"p99 +{f(s['added_p99'], 3)} vs +{f(h['added_p99'], 3)} ms", "met" if ok else "missed"])
        if s.get("cpu_s_per_million") and h.get("cpu_s_per_million"):
            ok = s["cpu_s_per_million"] <= h["cpu_s_per_million"]
            rows.append([f"CPU per relayed stanza <= HAProxy's ({backend} backend)",
                         f"{f(s['cpu_s_per_million'], 2)} vs {f(h['cpu_s_per_million'], 2)} CPU s per million",
                         "met" if ok else "missed"])
    m = res.get("memory")
    if m:
        def slope(name):
            for pt in m[name]:
                if "slope_kb_per_session" in pt:
                    return pt["slope_kb_per_session"]
            return None
        s, h = slope("xmpp-shard"), slope("HAProxy")
        if s is not None and h:
            rows.append(["memory per idle session <= 0.6x HAProxy's", f"{f(s, 2)} vs {f(h, 2)} KB = {f(s / h, 2)}x",
                         "met" if s <= 0.6 * h else "missed"])
    for backend in ("stub", "prosody"):
        su = res.get("setup", {}).get(backend)
        if su:
            s, h = su["xmpp-shard"]["sessions_per_s"], su["HAProxy"]["sessions_per_s"]
            rows.append([f"session set-up rate >= HAProxy's, 1 thread each ({backend} backend)",
                         f"{f(s, 0)} vs {f(h, 0)} /s", "met" if s >= h else "missed"])
    return rows


def render(res: dict) -> str:
    out = [f"## Run {res['started']} ({res['mode']})", ""]
    m = res["machine"]
    out.append(table(["machine", "value"], [[k, v] for k, v in m.items()]))
    out.append("")
    for key, title in (("storm", "Join storm, jitsi scenario (client storm while the brewery is busy)"),
                       ("tenants", "Join storm over 16 tenant domains (hashed by xmpp-shard in D)")):
        st = res.get(key)
        if not st:
            continue
        prm = res["params"]
        out.append(f"### {title}")
        out.append("")
        out.append(f"Rooms of {prm['room_size']}; {prm['reps']} interleaved runs per size and topology"
                   + (f"; brewery: {prm['bridges']} bridges, stats every {prm['interval']} s" if key == "storm" else "")
                   + ". Cells: median p99 join ms over the runs (x: a run failed: p99 >= 2 s or an error).")
        out.append("")
        tops = list(st["search"].keys())
        sizes = sorted({n for t in tops for n in st["search"][t]["by_size"]})
        rows = []
        for n in sizes:
            row = [n]
            for t in tops:
                v = st["search"][t]["by_size"].get(n)
                row.append("" if v is None else f"{v['join_p99_median']:.0f}" + ("" if v["ok"] else " x"))
            rows.append(row)
        rows.append(["largest with p99 < 2 s"] + [("≥ " if st["search"][t]["capped"] else "")
                                                  + str(st["search"][t]["largest_participants"]) for t in tops])
        rows.append(["size at p99 = 2 s (interpolated)"] + [f(st["search"][t].get("at_2s_interpolated"), 0)
                                                            for t in tops])
        out.append(table(["participants"] + tops, rows))
        if st.get("spread"):
            out.append("")
            out.append("Tenant domains per instance in D: " +
                       "; ".join(f"{k}: {len(v)}" for k, v in st["spread"].items()))
        out.append("")
    for backend, o in res.get("overhead", {}).items():
        out.append(f"### Message round trip, {backend} backend")
        out.append("")
        rows = [[n, f(o[n]["p50"], 3), f(o[n]["p99"], 3), f(o[n].get("added_p50"), 3),
                 f(o[n].get("added_p99"), 3), f(o[n].get("cpu_s_per_million"), 2), o[n]["errors"]]
                for n in ("direct", "xmpp-shard", "HAProxy")]
        out.append(table(["path", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms",
                          "front CPU s / 1M stanzas", "errors"], rows))
        out.append("")
    for backend, su in res.get("setup", {}).items():
        out.append(f"### Session set-up, {backend} backend")
        out.append("")
        rows = [[n, f(su[n]["sessions_per_s"], 0), f(su[n]["setup_p50"], 2), f(su[n]["setup_p99"], 2),
                 f(su[n]["front_cpu_us_per_session"], 0), f(su[n]["front_cpu_pct"], 0),
                 f(su[n]["loadgen_cpu_pct"], 0), su[n]["errors"]] for n in ("direct", "xmpp-shard", "HAProxy")]
        out.append(table(["path", "sessions/s", "set-up p50 ms", "p99 ms", "front CPU us/session",
                          "front CPU %", "loadgen CPU %", "errors"], rows))
        out.append("")
        if len(su["direct"].get("rounds", [])) > 1:
            per = "; ".join(f"{n} " + " / ".join(f(r["sessions_per_s"], 0) for r in su[n]["rounds"])
                            for n in ("direct", "xmpp-shard", "HAProxy"))
            out.append(f"Medians of {len(su['direct']['rounds'])} interleaved rounds; sessions/s by round: {per}.")
            out.append("")
    mem = res.get("memory")
    if mem:
        out.append("### Resident memory of idle passthrough sessions")
        out.append("")
        rows = []
        for name, pts in mem.items():
            for pt in pts:
                if "sessions" in pt:
                    rows.append([name, pt["sessions"], pt["held"], f(pt["rss_start_mb"]), f(pt["rss_held_mb"]),
                                 f(pt["kb_per_session"], 2), pt["errors"]])
                else:
                    rows.append([name, "slope", "", "", "", f(pt["slope_kb_per_session"], 2), ""])
        out.append(table(["front", "sessions", "held", "RSS start MB", "RSS held MB", "KB/session", "errors"], rows))
        out.append("")
    if res.get("web"):
        out.append(render_web(res))
    if res.get("bosh"):
        out.append(render_bosh(res["bosh"], res["params"]))
        out.append(table(["goal", "measured", "status"], bosh_goals(res["bosh"])))
        out.append("")
    if res.get("web_memory"):
        out.append(render_web_memory(res["web_memory"]))
    g = goals(res)
    if g:
        out.append("### Goals")
        out.append("")
        out.append(table(["goal", "measured", "status"], g))
        out.append("")
    out.append(f"Total bench time: {res.get('bench_secs', 0):.0f} s.")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# part "web"

WEB_TOPS = ("A-web", "F", "G", "H")


def _median(vals):
    vals = sorted(v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v)))
    if not vals:
        return None
    n = len(vals)
    return vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2


def _cpu_pct(row: dict, name: str):
    w = row.get("window_s") or 0
    v = row.get(f"cpu_window_{name}")
    return 100.0 * v / w if w > 0 and v is not None else None


def _at2s(r: dict):
    """The size at p99 = 2 s: interpolated, else (never crossed) the largest size passed."""
    v = r.get("at_2s_interpolated")
    return v if v else None


def _ratio(a, b):
    return a / b if a and b else None


def web_ratios(wb: dict) -> dict:
    se = wb["search"]
    at = {t: _at2s(se[t]) for t in se}
    lg = {t: se[t]["largest_participants"] for t in se}
    out = {"at_2s": at, "largest": lg}
    for other in ("A-web", "G", "H"):
        out[f"F/{other}"] = _ratio(at.get("F"), at.get(other))
        out[f"F/{other} largest"] = _ratio(lg.get("F"), lg.get(other))
    return out


def web_loadgen_share(wb: dict) -> dict:
    """The loadgen's CPU during the storm window, in % of one core, over every storm trial."""
    out = {}
    for t, r in wb["search"].items():
        vals = [_cpu_pct(row, "loadgen") for row in r["trials"]]
        mach = [_cpu_pct(row, "machine") for row in r["trials"]]
        vals = [v for v in vals if v is not None]
        per100 = [100 * row["cpu_window_loadgen"] / row["joined"] for row in r["trials"]
                  if row.get("joined") and row.get("cpu_window_loadgen") is not None]
        out[t] = {"median_pct": _median(vals), "max_pct": max(vals) if vals else None,
                  "machine_median_pct": _median(mach),
                  "cpu_s_per_100_joins": _median(per100)}
    return out


def render_web(res: dict) -> str:
    wb = res["web"]
    prm = res["params"]
    tr = wb["params"].get("transports", "websocket")
    tr = "websocket" if tr in (["websocket"], "websocket") else tr
    out = ["### One meeting domain over WebSocket" + ("" if tr == "websocket" else f" and BOSH ({tr})")
           + ": A-web, F, G, H", ""]
    lgv = res.get("web_loadgen", {})
    arg = "--transport websocket" if tr == "websocket" else f"--transport-mix {tr}"
    out.append(f"`jitsi` with `{arg}` (participants to the http port with ?room=, rooms of "
               f"{prm['room_size']}; the brewery, {prm['bridges']} bridges and the focus, on TCP), "
               f"{prm['web_reps']} interleaved runs per size and topology; F, G, H over the same 2 "
               f"instances (w1 on core 0, w2 on core 1; the brewery on its own instance wb, not pinned). Cells: median p99 join ms "
               f"(x: a run failed: p99 >= 2 s or an error). Loadgen: BOSH "
               f"{'available' if lgv.get('bosh') else 'not available (WebSocket only)'}, scenario jitsi-web "
               f"{'available' if lgv.get('jitsi-web') else 'not available (jitsi --transport websocket)'}.")
    out.append("")
    se = wb["search"]
    tops = [t for t in WEB_TOPS if t in se]
    sizes = sorted({n for t in tops for n in se[t]["by_size"]})
    rows = []
    for n in sizes:
        row = [n]
        for t in tops:
            v = se[t]["by_size"].get(n)
            row.append("" if v is None else f"{v['join_p99_median']:.0f}" + ("" if v["ok"] else " x"))
        rows.append(row)
    rows.append(["largest passing every run"] + [("≥ " if se[t]["capped"] else "") + str(se[t]["largest_participants"])
                                                  for t in tops])
    rows.append(["size at p99 = 2 s (interpolated)"] + [f(se[t].get("at_2s_interpolated"), 0) for t in tops])
    out.append(table(["participants"] + tops, rows))
    out.append("")
    r = web_ratios(wb)
    out.append("Ratios at p99 = 2 s (interpolated): " + "; ".join(
        f"{k} {f(r[k], 2)}x (largest passing: {f(r[k + ' largest'], 2)}x)" for k in ("F/A-web", "F/G", "F/H")) + ".")
    out.append("")
    # CPU per process at the fixed size (the charted run) and the placement of logins.
    out.append(f"CPU during the storm window (% of one core, the run at {prm['web_fixed_rooms'] * prm['room_size']} "
               "participants with the chart; `machine`: both cores, 200 = all):")
    out.append("")
    names = ["prosody", "prosody-1", "prosody-2", "brewery", "proxy", "haproxy", "nginx", "loadgen", "machine"]
    rows = []
    for t in tops:
        fx = [row for row in se[t]["trials"] if row["name"].endswith("-fixed")]
        if not fx:
            continue
        row0 = fx[0]
        rows.append([t, row0["participants"], f(row0["join_p99"], 0)] + [f(_cpu_pct(row0, n), 0) for n in names])
    out.append(table(["topology", "participants", "p99 join ms"] + names, rows))
    out.append("")
    rows = []
    for t in tops:
        tot: dict = {}
        for row in se[t]["trials"]:
            for n, k in (row.get("logins_by_instance") or {}).items():
                tot[n] = tot.get(n, 0) + k
        if tot:
            allk = sum(v for n, v in tot.items() if n != "wb") or 1
            rows.append([t, ", ".join(f"{n}: {v} ({100 * v / allk:.0f} %)" if n != "wb" else f"{n} (brewery): {v}"
                                      for n, v in sorted(tot.items()))])
    if rows:
        out.append("Logins per instance over all storm runs (Prosody's `Authenticated as` lines):")
        out.append("")
        out.append(table(["topology", "logins"], rows))
        out.append("")
    ls = web_loadgen_share(wb)
    out.append(table(["topology", "loadgen CPU % of a core (median / max over runs)", "loadgen CPU s per 100 joins",
                      "machine busy % (median)"],
                     [[t, f"{f(ls[t]['median_pct'], 1)} / {f(ls[t]['max_pct'], 1)}", f(ls[t]["cpu_s_per_100_joins"], 3),
                       f(ls[t]["machine_median_pct"], 0)] for t in tops]))
    out.append("")
    o = wb.get("overhead")
    if o:
        out.append(f"### WebSocket round trip and front CPU per relayed frame (to w1; {prm['overhead_clients']} "
                   f"sessions, {prm['web_rate']} messages/s to themselves, {prm['overhead_secs']} s, "
                   f"{prm['web_overhead_rounds']} interleaved rounds)")
        out.append("")
        rows = [[n, f(o[n]["p50"], 3), f(o[n]["p99"], 3), f(o[n].get("added_p50"), 3), f(o[n].get("added_p99"), 3),
                 f(o[n].get("cpu_us_per_frame"), 2), o[n]["errors"]] for n in ("direct", "xmpp-shard", "HAProxy", "nginx")]
        out.append(table(["path", "p50 ms", "p99 ms", "added p50 ms", "added p99 ms", "front CPU us / frame", "errors"], rows))
        out.append("")
    m = wb.get("memory")
    if m:
        out.append("### Resident memory of idle WebSocket sessions (upgrade, <open/>, features; to w1)")
        out.append("")
        rows = []
        for name, pts in m.items():
            for pt in pts:
                if "sessions" in pt:
                    rows.append([name, pt["sessions"], pt["held"], f(pt["rss_start_mb"]), f(pt["rss_held_mb"]),
                                 f(pt["kb_per_session"], 2), pt["errors"]])
                else:
                    rows.append([name, "slope", "", "", "", f(pt["slope_kb_per_session"], 2), ""])
        out.append(table(["front", "sessions", "held", "RSS start MB", "RSS held MB", "KB/session", "errors"], rows))
        out.append("")
    sc = wb.get("scaling")
    if sc:
        out.append("### F over N instances (one run per size; N = 2 from the interleaved storm above)")
        out.append("")
        allf = dict(sc)
        allf["F2"] = se.get("F")
        rows = []
        base = _at2s(se["A-web"]) if "A-web" in se else None
        for t in sorted(k for k in allf if allf[k]):
            rr = allf[t]
            sizes_ = ", ".join(f"{n}: {v['join_p99_median']:.0f}" + ("" if v["ok"] else " x")
                               for n, v in sorted(rr["by_size"].items()))
            rows.append([t[1:], ("≥ " if rr["capped"] else "") + str(rr["largest_participants"]),
                         f(rr.get("at_2s_interpolated"), 0), f(_ratio(_at2s(rr), base), 2), sizes_])
        out.append(table(["N", "largest passing", "size at p99 = 2 s", "vs A-web", "p99 join ms by size"], rows))
        out.append("")
    if wb.get("bosh"):
        out.append(render_bosh(wb["bosh"], prm))
    out.append("#### Goals (issue 16)")
    out.append("")
    out.append(table(["goal", "measured", "status"], web_goals(res)))
    out.append("")
    return "\n".join(out)


def web_goals(res: dict) -> list[list]:
    wb = res["web"]
    r = web_ratios(wb)
    ls = web_loadgen_share(wb)
    at = r["at_2s"]
    rows = []
    v = r["F/A-web"]
    rows.append(["F completes a one-domain storm >= 1.8x A-web's at p99 join = 2 s",
                 f"{f(at.get('F'), 0)} vs {f(at.get('A-web'), 0)} = {f(v, 2)}x (largest passing "
                 f"{r['largest'].get('F')} vs {r['largest'].get('A-web')})",
                 "met" if v and v >= 1.8 else ("not measured" if v is None else "missed")])
    for o in ("G", "H"):
        v = r[f"F/{o}"]
        rows.append([f"F at least as good as {o} on that storm", f"{f(at.get('F'), 0)} vs {f(at.get(o), 0)} = {f(v, 2)}x",
                     "met" if v and v >= 1.0 else ("not measured" if v is None else "missed")])
    o = wb.get("overhead")
    if o:
        s = o["xmpp-shard"]
        for peer in ("HAProxy", "nginx"):
            h = o[peer]
            rows.append([f"added WebSocket round trip p50 <= {peer}'s", f"+{f(s['added_p50'], 3)} vs +{f(h['added_p50'], 3)} ms",
                         "met" if s["added_p50"] <= h["added_p50"] else "missed"])
            if s.get("cpu_us_per_frame") and h.get("cpu_us_per_frame"):
                rows.append([f"front CPU per relayed frame <= {peer}'s",
                             f"{f(s['cpu_us_per_frame'], 2)} vs {f(h['cpu_us_per_frame'], 2)} us",
                             "met" if s["cpu_us_per_frame"] <= h["cpu_us_per_frame"] else "missed"])
    m = wb.get("memory")
    if m:
        def slope(name):
            return next((pt["slope_kb_per_session"] for pt in m.get(name, []) if "slope_kb_per_session" in pt), None)
        s = slope("xmpp-shard")
        for peer in ("HAProxy", "nginx"):
            h = slope(peer)
            if s is not None and h:
                rows.append([f"memory per idle WebSocket session <= 0.5x {peer}'s",
                             f"{f(s, 2)} vs {f(h, 2)} KB = {f(s / h, 2)}x", "met" if s <= 0.5 * h else "missed"])
    if wb.get("bosh"):
        rows += bosh_goals(wb["bosh"])
    elif not res.get("web_loadgen", {}).get("bosh"):
        rows.append(["BOSH requests/s >= nginx's", "the loadgen had no --transport bosh at this commit", "not measured"])
    worst = max((x["max_pct"] or 0) for x in ls.values()) if ls else None
    med = _median([x["median_pct"] for x in ls.values()])
    rows.append(["loadgen under 10 % of a core during the storm", f"median {f(med, 1)} %, max {f(worst, 1)} %",
                 "met" if worst is not None and worst < 10 else "missed"])
    return rows


def render_bosh(b: dict, prm: dict) -> str:
    out = [f"### BOSH through each front (to w1; {prm['web_bosh_clients']} sessions, {prm['web_bosh_rate']} "
           f"messages/s to themselves, {prm['web_bosh_secs']} s after a 2 s warm-up; counts over the whole run)", ""]
    rows = [[n, r["requests"], f(r["requests_per_s"], 0), r["connections"], f(r["p50"], 2), f(r["p99"], 2),
             f(r["front_cpu_us_per_request"], 1),
             f(1e6 / r["front_cpu_us_per_request"], 0) if r.get("front_cpu_us_per_request") else "n/a",
             r["errors"]] for n, r in b.items()]
    out.append(table(["path", "BOSH requests", "requests/s", "TCP connections", "round trip p50 ms", "p99 ms",
                      "front CPU us / request", "requests/s one front thread could serve (1 / CPU)", "errors"], rows))
    out.append("")
    return "\n".join(out)


def bosh_goals(b: dict) -> list[list]:
    s, n = b.get("xmpp-shard", {}), b.get("nginx", {})
    cs, cn = s.get("front_cpu_us_per_request"), n.get("front_cpu_us_per_request")
    if not cs or not cn:
        return [["BOSH requests/s >= nginx's", "no CPU figure", "not measured"]]
    return [["BOSH requests/s >= nginx's (one thread each: 1 / CPU per request)",
             f"{1e6 / cs:.0f} vs {1e6 / cn:.0f} requests/s per core ({cs:.1f} vs {cn:.1f} us per request; "
             f"offered {s.get('requests_per_s') or 0:.0f} vs {n.get('requests_per_s') or 0:.0f}/s; "
             f"errors {s.get('errors')} vs {n.get('errors')})",
             "met" if cs <= cn and not s.get("errors") else "missed"]]


def render_web_memory(wm: dict) -> str:
    """Part web-memory: idle WebSocket sessions through each front up to the descriptor limit."""
    lim = wm["limits"]
    out = ["### Memory per idle WebSocket session at the descriptor limit (upgrade, <open/>, features; to w1)", "",
           f"RLIMIT_NOFILE {lim['nofile_soft']} (hard {lim['nofile_hard']}, fs.nr_open {lim['nr_open']}); "
           f"w1 Prosody {lim['w1_nofile']} with {lim['w1_fds_idle']} open idle; "
           f"{lim['ports_per_destination']} ephemeral ports per loopback destination.", ""]
    rows = []
    for name, fr in wm["fronts"].items():
        for pt in fr["points"]:
            rows.append([name, pt["sessions"], pt["held"], f(pt["rss_start_mb"]), f(pt["rss_held_mb"]),
                         f(pt["kb_per_session"], 2), f(pt["w1_rss_held_mb"]), f(pt["wall_s"], 0),
                         pt["errors"] or "", ", ".join(f"{k} {v}" for k, v in (pt.get("error_kinds") or {}).items())
                         + ("; nginx: worker_connections are not enough" if pt.get("worker_connections_warnings")
                            else "")])
    out.append(table(["front", "sessions", "held", "RSS start MB", "RSS held MB", "KB/session", "w1 RSS MB",
                      "run s", "errors", "error kinds"], rows))
    out.append("")
    rows = [[name, fr.get("limit"), fr.get("bound_by"), f(fr.get("slope_kb_per_session"), 2)]
            for name, fr in wm["fronts"].items()]
    out.append(table(["front", "sessions at the limit", "limit that binds", "KB/session (slope, first point to limit)"],
                     rows))
    out.append("")
    out.append(table(["goal", "measured", "status"], web_memory_goals(wm)))
    out.append("")
    return "\n".join(out)


def web_memory_goals(wm: dict) -> list[list]:
    fr = wm["fronts"]
    s = fr["xmpp-shard"].get("slope_kb_per_session")
    held = {n: (x["points"][-1]["held"] if x["points"] else 0) for n, x in fr.items()}
    rows = []
    for peer in ("HAProxy", "nginx"):
        h = fr[peer].get("slope_kb_per_session")
        if s is None or not h:
            rows.append([f"memory per idle WebSocket session <= 0.5x {peer}'s", "no slope", "not measured"])
            continue
        rows.append([f"memory per idle WebSocket session <= 0.5x {peer}'s (at the limit)",
                     f"{f(s, 2)} vs {f(h, 2)} KB = {f(s / h, 2)}x, holding {held['xmpp-shard']} vs {held[peer]} sessions",
                     "met" if s <= 0.5 * h else "missed"])
    return rows
