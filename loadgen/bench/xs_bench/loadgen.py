"""Running xmpp-shard-loadgen: one call per measurement, every command line and report kept."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Optional


def machine_busy(interval: float = 1.0) -> float:
    """Busy CPU of the whole machine over `interval` seconds, in percent of one core."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        return busy, busy + v[3] + v[4]
    b0, t0 = read()
    time.sleep(interval)
    b1, t1 = read()
    ncpu = os.cpu_count() or 1
    return 100.0 * ncpu * (b1 - b0) / max(1, t1 - t0)


class Loadgen:
    """Runs the loadgen; before each run waits (bounded) until the machine is quiet, since other
    work on a small machine distorts every figure; each report records the CPU that went to
    processes nobody watched ("foreign")."""

    def __init__(self, binary: Path, outdir: Path, log=print, quiet_pct: float = 15.0,
                 quiet_wait: float = 60.0, total_wait: float = 300.0):
        self.binary = Path(binary)
        self.outdir = Path(outdir)
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.commands: list[str] = []
        self.log = log
        self.quiet_pct = quiet_pct
        self.quiet_wait = quiet_wait
        self.waited = 0.0
        self.total_wait = total_wait   # over the whole bench; then runs go ahead regardless

    def wait_quiet(self) -> float:
        t0 = time.monotonic()
        busy = machine_busy(0.5)
        limit = min(self.quiet_wait, max(0.0, self.total_wait - self.waited))
        while busy > self.quiet_pct and time.monotonic() - t0 < limit:
            busy = machine_busy(1.0)
        waited = time.monotonic() - t0
        if waited > 2:
            self.log(f"  (waited {waited:.0f} s for a quiet machine; now {busy:.0f}% busy)")
        self.waited += waited
        return busy

    def run(self, name: str, scenario: str, args: list[str], watch: Optional[dict[str, int]] = None,
            chart: bool = False, timeout: float = 120) -> dict:
        js = self.outdir / f"{name}.json"
        cmd = [str(self.binary), scenario, *map(str, args), "--json", str(js), "--quiet",
               "--max-time", str(int(timeout - 10)), "--label", name]
        for k, pid in (watch or {}).items():
            cmd += ["--watch", f"{k}={pid}"]
        if chart:
            cmd += ["--csv", str(self.outdir / f"{name}.csv"), "--svg", str(self.outdir / f"{name}.svg")]
        self.commands.append(shlex.join(cmd))
        busy_before = self.wait_quiet()
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        (self.outdir / f"{name}.txt").write_text(f"$ {shlex.join(cmd)}\n{r.stdout}\n{r.stderr}")
        if r.returncode != 0 or not js.exists():
            raise RuntimeError(f"loadgen failed ({r.returncode}): {shlex.join(cmd)}\n{r.stdout}\n{r.stderr}")
        rep = json.loads(js.read_text())
        rep["_name"] = name
        rep["_secs"] = time.monotonic() - t0
        rep["_busy_before"] = busy_before
        # CPU seconds that went to processes nobody watched (other work on the machine).
        procs_ = rep.get("processes", [])
        machine = next((p["cpu_s_total"] for p in procs_ if p["name"] == "machine"), 0.0)
        ours = sum(p["cpu_s_total"] for p in procs_ if p["name"] != "machine")
        rep["_foreign_cpu_s"] = max(0.0, machine - ours)
        return rep


def lat(rep: dict, key: str, q: str = "p99") -> float:
    return rep.get("latency_ms", {}).get(key, {}).get(q, float("nan"))


def count(rep: dict, key: str) -> int:
    return int(rep.get("counts", {}).get(key, 0))


def proc(rep: dict, name: str) -> dict:
    for p in rep.get("processes", []):
        if p["name"] == name:
            return p
    return {}
