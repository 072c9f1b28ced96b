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
    g = goals(res)
    if g:
        out.append("### Goals")
        out.append("")
        out.append(table(["goal", "measured", "status"], g))
        out.append("")
    out.append(f"Total bench time: {res.get('bench_secs', 0):.0f} s.")
    return "\n".join(out) + "\n"
