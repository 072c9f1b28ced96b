"""The local runner: a shard plan -> N Prosody instances, each pinned to its own core, behind
the proxy. Foreground; Ctrl-C or SIGTERM stops everything. Entry point: deploy/run-local.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

from . import procs
from .plan import PlanError, expand, load_plan
from .ports import free_port, port_is_free, wait_port
from .prosody import ProsodyInstance, make_base_dir

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PLAN = REPO / "deploy" / "plans" / "local.toml"
DEFAULT_PROXY = REPO / "build" / "bin" / "xmpp-shard-proxy"


class Output:
    """Prefixed, line-atomic output shared by the log pumps."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()

    def line(self, prefix: str, text: str) -> None:
        with self.lock:
            self.stream.write(f"{prefix} {text}\n" if prefix else f"{text}\n")
            self.stream.flush()

    def banner(self, text: str) -> None:
        bar = "!" * 78
        with self.lock:
            self.stream.write(f"\n{bar}\n{text}\n{bar}\n\n")
            self.stream.flush()


def _pump_pipe(pipe, prefix: str, out: Output) -> None:
    for raw in iter(pipe.readline, b""):
        out.line(prefix, raw.decode("utf-8", "replace").rstrip("\n"))
    pipe.close()


def _tail_file(path: Path, prefix: str, out: Output, stop: threading.Event) -> None:
    """Follow a file from its current end (Prosody writes its own log file)."""
    pos = 0
    buf = b""
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            pos += len(chunk)
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                out.line(prefix, raw.decode("utf-8", "replace"))
        elif stop.is_set():
            if buf:
                out.line(prefix, buf.decode("utf-8", "replace"))
            return
        else:
            stop.wait(0.2)


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="run-local",
        description="Run local Prosody instances (one per core) behind xmpp-shard-proxy, "
                    "in the foreground. Ctrl-C stops everything.")
    ap.add_argument("plan", nargs="?", default=str(DEFAULT_PLAN),
                    help=f"shard plan (default: {DEFAULT_PLAN.relative_to(REPO)})")
    ap.add_argument("--port", type=int, default=None,
                    help="proxy port (default: the plan's, 5222, if free, else a free port)")
    ap.add_argument("--proxy", default=str(DEFAULT_PROXY),
                    help=f"proxy binary (default: {DEFAULT_PROXY.relative_to(REPO)})")
    ap.add_argument("--out", default=None,
                    help="directory for configs, data and logs (default: a temporary one, "
                         "removed on exit)")
    ap.add_argument("--instances", default=None,
                    help='override the plan\'s instance count ("auto" or a number)')
    ap.add_argument("--quiet-logs", action="store_true", help="do not stream Prosody logs")
    return ap.parse_args(argv)


def choose_proxy_port(listen: str, wanted: Optional[int], plan_port: int) -> int:
    host = "127.0.0.1" if listen in ("0.0.0.0", "", "::", "[::]") else listen.strip("[]")
    if wanted is not None:
        if wanted and not port_is_free(wanted, host):
            raise SystemExit(f"run-local: port {wanted} on {host} is taken")
        return wanted or free_port(host)
    if plan_port and port_is_free(plan_port, host):
        return plan_port
    return free_port(host)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = Output()
    proxy_bin = Path(args.proxy)
    if not (proxy_bin.is_file() and os.access(proxy_bin, os.X_OK)):
        print(f"run-local: proxy binary {proxy_bin} not found or not executable; build it with\n"
              f"  cmake -S {REPO} -B {REPO}/build -DCMAKE_BUILD_TYPE=Release && "
              f"cmake --build {REPO}/build -j2\nor pass --proxy BIN", file=sys.stderr)
        return 2
    try:
        plan = load_plan(args.plan, instances=args.instances)
    except (PlanError, OSError, ValueError) as e:
        print(f"run-local: {e}", file=sys.stderr)
        return 2

    temp = args.out is None
    base = make_base_dir("xs-run-local-") if temp else Path(args.out).resolve()
    if not temp:
        base.mkdir(parents=True, exist_ok=True)
        os.chmod(base, 0o711)

    stop_evt = threading.Event()
    signals = {"count": 0}

    def on_signal(signum, _frame):
        signals["count"] += 1
        stop_evt.set()
        if signals["count"] > 1:
            out.line("[run-local]", "second signal: killing everything now")

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    instances: list[ProsodyInstance] = []
    proxy: Optional[subprocess.Popen] = None
    proxy_pump: Optional[threading.Thread] = None
    pumps: list[threading.Thread] = []
    tail_stop = threading.Event()
    rc = 0
    try:
        listen_port = choose_proxy_port(plan.listen, args.port, plan.port)
        ports = [free_port() for _ in range(plan.instances)]
        layout = expand(plan, ports, listen_port=listen_port)
        host = "127.0.0.1" if plan.listen in ("0.0.0.0", "::", "[::]") else plan.listen.strip("[]")
        if "metrics" not in plan.proxy:
            layout.proxy.proxy["metrics"] = (
                "127.0.0.1:9464" if port_is_free(9464) else f"127.0.0.1:{free_port()}")

        accounts_file = base / "accounts.txt"
        with open(os.open(accounts_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write("# jid password   (generated by run-local)\n")
            for a in layout.accounts:
                f.write(f"{a.jid} {a.password}\n")
        proxy_cfg = layout.proxy.write(base / "proxy.toml")

        chk = subprocess.run([str(proxy_bin), "--config", str(proxy_cfg), "--check"],
                             capture_output=True, text=True, timeout=30)
        if chk.returncode != 0:
            print(f"run-local: the proxy rejects the generated config {proxy_cfg}:\n"
                  f"{chk.stdout}{chk.stderr}", file=sys.stderr)
            return 1

        for spec in layout.instances:
            inst = ProsodyInstance(spec, base)
            instances.append(inst)
            inst.prepare(fresh=True)
        for inst in instances:
            if stop_evt.is_set():
                return 130
            inst.start()
            if not args.quiet_logs:
                for path, tag in ((inst.log_path, inst.name), (inst.stdout_path, inst.name + "/out")):
                    t = threading.Thread(target=_tail_file, args=(path, f"[{tag}]", out, tail_stop),
                                         daemon=True)
                    t.start()
                    pumps.append(t)

        proxy = procs.spawn([str(proxy_bin), "--config", str(proxy_cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        proxy_pump = threading.Thread(target=_pump_pipe, args=(proxy.stdout, "[proxy]", out),
                                      daemon=True)
        proxy_pump.start()
        pumps.append(proxy_pump)
        wait_port(host, listen_port, timeout=10, proc=proxy, what="xmpp-shard-proxy")

        lines = ["xmpp-shard local run is up. Ctrl-C stops everything.",
                 f"  proxy      {host}:{listen_port}   (pid {proxy.pid}, config {proxy_cfg})",
                 f"  metrics    http://{layout.proxy.proxy.get('metrics')}/metrics"
                 if layout.proxy.proxy.get("metrics") else "  metrics    off"]
        for inst in instances:
            doms = ", ".join(inst.spec.domains) or "-"
            mucs = ", ".join(m.domain for m in inst.spec.mucs)
            lines.append(f"  {inst.name:<10} {inst.address:<16} core {inst.spec.cpu}  pid {inst.pid}  "
                         f"hosts: {doms}" + (f"  muc: {mucs}" if mucs else ""))
        for r in layout.proxy.routes:
            lines.append(f"  route {r.get('name', r['domains'][0])}: {', '.join(r['domains'])} -> "
                         f"{', '.join(r['backends'])}" + (f" ({r['balance']})" if 'balance' in r else ""))
        ncpu = len(os.sched_getaffinity(0))
        if len(instances) > ncpu:
            lines.append(f"  note       {len(instances)} instances on {ncpu} cores: some share a core")
        lines.append(f"  accounts   {accounts_file}  ({len(layout.accounts)} accounts)")
        lines.append(f"  files      {base}" + ("  (temporary, removed on exit)" if temp else ""))
        out.line("", "\n".join(lines))

        reported: set[str] = set()
        while not stop_evt.is_set():
            for inst in instances:
                if inst.name not in reported and not inst.running():
                    reported.add(inst.name)
                    out.banner(f"PROSODY INSTANCE {inst.name} ({inst.address}, core {inst.spec.cpu}) "
                               f"DIED with exit code {inst.proc.returncode}.\n"
                               f"Its domains are unserved now: {', '.join(inst.spec.domains)}\n"
                               f"Log: {inst.log_path}\n--- last lines ---\n{inst.log_tail(15)}")
            if proxy.poll() is not None:
                out.banner(f"xmpp-shard-proxy DIED with exit code {proxy.returncode}; stopping.")
                rc = 1
                break
            stop_evt.wait(0.25)
    except (RuntimeError, TimeoutError, OSError) as e:
        out.banner(f"run-local: {e}")
        rc = 1
    finally:
        out.line("[run-local]", "stopping ...")
        if proxy is not None and proxy.poll() is None:
            prc = procs.stop(proxy, timeout=0.5 if signals["count"] > 1 else 10)
            if proxy_pump is not None:
                proxy_pump.join(timeout=2)      # its last lines before ours
            out.line("[run-local]", f"proxy exited with code {prc}")
        for inst in instances:
            if inst.running():
                irc = inst.kill() if signals["count"] > 1 else inst.stop(timeout=10)
                out.line("[run-local]", f"{inst.name} exited with code {irc}")
        tail_stop.set()
        for t in pumps:
            t.join(timeout=2)
        if temp:
            shutil.rmtree(base, ignore_errors=True)
        else:
            out.line("[run-local]", f"files kept in {base}")
    if signals["count"] and rc == 0:
        return 0
    return rc
