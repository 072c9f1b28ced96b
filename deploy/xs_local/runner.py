"""`run`: the local, no-systemd runner. A shard plan -> N Prosody instances, each pinned to its
own core as the prosody user, behind the proxy; foreground, logs streamed with a prefix;
Ctrl-C or SIGTERM stops everything; a crashed instance is reported loudly and restarted with
back-off. It generates the shard (generate.py, the same files `generate` writes) into --out or a
temporary directory, registers the accounts, then starts the processes. Its banner says where
everything is and how a real client logs in through the proxy (client_lines(): the CA to trust
and go-sendxmpp commands to paste).

Entry points: `xmpp-shard-deploy run` and its alias deploy/run-local (scripts/run.sh).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from . import procs
from .certs import make_certs
from .focus import start_focuses
from .jitsi import client_proxy_found, drop_focus_components
from .generate import GenerateError, generate
from .plan import DEFAULT_PATHS, PlanError, load_plan
from .ports import free_port, port_is_free, wait_port
from .prosody import PROSODY_USER, ProsodyInstance, _check_reachable, make_base_dir, require_prosody
from .tls import proxy_cert_dir, tls_profile

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PLAN = REPO / "deploy" / "plans" / "local.toml"
DEFAULT_PROXY = REPO / "build" / "bin" / "xmpp-shard-proxy"

BACKOFF_FIRST = 1.0       # seconds before the first restart of a crashed instance
BACKOFF_MAX = 30.0        # doubling up to this
BACKOFF_RESET = 60.0      # up this long: the next crash starts again at BACKOFF_FIRST


def default_proxy_bin() -> Path:
    """build/bin/ of this checkout, else the one on PATH (the Debian package's)."""
    if DEFAULT_PROXY.exists():
        return DEFAULT_PROXY
    found = shutil.which("xmpp-shard-proxy")
    return Path(found) if found else DEFAULT_PROXY


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
    """Follow a file from its start (the runner truncates the logs before starting)."""
    pos = 0
    buf = b""
    while True:
        try:
            with open(path, "rb") as f:
                if f.seek(0, 2) < pos:      # truncated underneath us
                    pos = 0
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


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("plan", nargs="?", default=str(DEFAULT_PLAN),
                    help=f"shard plan (default: {DEFAULT_PLAN})")
    ap.add_argument("--port", type=int, default=None,
                    help="proxy port (default: the plan's, 5222, if free, else a free port)")
    ap.add_argument("--proxy", default=None,
                    help=f"proxy binary (default: {DEFAULT_PROXY} if built, else xmpp-shard-proxy on PATH)")
    ap.add_argument("--out", default=None,
                    help="directory for the generated shard, data and logs (default: a temporary "
                         "one, removed on exit)")
    ap.add_argument("--instances", default=None,
                    help='override the plan\'s instance count ("auto" or a number)')
    ap.add_argument("--free-ports", action="store_true",
                    help="give the instances free ports instead of the plan's")
    ap.add_argument("--force", action="store_true",
                    help="overwrite files in --out that generate did not write")
    ap.add_argument("--quiet-logs", action="store_true", help="do not stream Prosody logs")


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="run-local",
        description="Run local Prosody instances (one per core) behind xmpp-shard-proxy, "
                    "in the foreground. Ctrl-C stops everything.")
    add_arguments(ap)
    return ap.parse_args(argv)


def _connect_host(listen: str) -> str:
    return "127.0.0.1" if listen in ("0.0.0.0", "", "::", "[::]") else listen.strip("[]")


def choose_proxy_port(listen: str, wanted: Optional[int], plan_port: int) -> int:
    host = _connect_host(listen)
    if wanted is not None:
        if wanted and not port_is_free(wanted, host):
            raise SystemExit(f"run-local: port {wanted} on {host} is taken")
        return wanted or free_port(host)
    if plan_port and port_is_free(plan_port, host):
        return plan_port
    return free_port(host)


def choose_instance_ports(plan, free: bool, avoid: set[int]) -> tuple[list[int], bool]:
    """The plan's ports if every one is free, else free ones. Returns (ports, planned)."""
    wanted = plan.instance_ports()
    if not free and all(p not in avoid and port_is_free(p, plan.interface) for p in wanted):
        return wanted, True
    ports: list[int] = []
    while len(ports) < plan.instances:
        p = free_port(plan.interface)
        if p not in avoid and p not in ports:
            ports.append(p)
    return ports, False


def choose_shard_http_ports(plan, free: bool, avoid: set[int]) -> bool:
    """[jitsi] shards: the proxy's HTTP port, the shards' (consecutive) HTTP ports and, with
    [jitsi] jicofo_port, their jicofo ports, on loopback: the plan's when free, else free ones
    (written into plan.jitsi). Returns planned."""
    jp = plan.jitsi
    if jp is None or not jp.shards:
        return True
    wanted = ([jp.http_port] + jp.shard_http_ports() + jp.visitor_http_ports() + jp.jicofo_ports()
              + jp.visitor_jicofo_ports())
    if not free and all(p not in avoid and port_is_free(p, "127.0.0.1") for p in wanted):
        return True
    while True:
        jp.http_port = free_port("127.0.0.1")
        if jp.http_port not in avoid:
            break
    taken = set(avoid) | {jp.http_port}

    def block() -> int:     # the shards', then the visitor nodes' ports
        for _ in range(500):
            b = free_port("127.0.0.1")
            cand = [b + k for k in range(jp.shards + jp.visitors)]
            if all(c <= 65535 and c not in taken and port_is_free(c, "127.0.0.1") for c in cand):
                taken.update(cand)
                return b
        raise RuntimeError(f"no {jp.shards} consecutive free ports on 127.0.0.1 for the shards")
    jp.shard_http_port = block()
    if jp.jicofo_port:
        jp.jicofo_port = block()
    return False


def choose_host_http_ports(plan, free: bool, avoid: set[int]) -> bool:
    """[[host]] http: the proxy's HTTP port ([plan] http_port) and the instances' loopback HTTP
    ports (http_base_port + i): the plan's when free, else free ones (written into the plan).
    Returns planned."""
    insts = plan.http_instances()
    if not insts:
        return True
    wanted = [plan.http_port] + [plan.instance_http_port(i) for i in insts]
    host = _connect_host(plan.listen) if tls_profile(plan).terminate else "127.0.0.1"
    if (not free and plan.http_port not in avoid and port_is_free(plan.http_port, host)
            and all(p not in avoid and port_is_free(p, "127.0.0.1") for p in wanted[1:])):
        return True
    while True:
        plan.http_port = free_port(host)
        if plan.http_port not in avoid:
            break
    taken = set(avoid) | {plan.http_port}
    for _ in range(500):
        b = free_port("127.0.0.1")
        cand = [b + i for i in insts]
        if all(c <= 65535 and c not in taken and port_is_free(c, "127.0.0.1") for c in cand):
            plan.http_base_port = b
            return False
    raise RuntimeError("no free ports on 127.0.0.1 for the instances' HTTP ports")


def web_lines(layout, host: str, ca: Optional[Path]) -> list[str]:
    """The banner's browser-side part for [[host]] http: the WebSocket and BOSH URLs of the
    proxy's HTTP listener (wss:// and https:// when it terminates TLS), and what to trust."""
    plan = layout.plan
    terminate = tls_profile(plan).terminate
    http = next(l for l in layout.proxy.listeners if l["name"] == "http")
    lhost = str(http["bind"]).rpartition(":")[0].strip("[]")
    lhost = "127.0.0.1" if lhost in ("0.0.0.0", "::", "") else lhost
    port = plan.http_port
    web = [h for h in plan.hosts if h.http]
    name = web[0].domain
    ws, bosh = ("wss", "https") if terminate else ("ws", "http")
    where = ", ".join(f"{h.domain}{' (anonymous)' if h.auth == 'anonymous' else ''}" for h in web)
    lines = [f"  web        {ws}://{name}:{port}/xmpp-websocket   (XMPP over WebSocket, RFC 7395)",
             f"             {bosh}://{name}:{port}/http-bind        (BOSH)",
             f"             the proxy's HTTP listener on {lhost}:{port} "
             + ("(TLS terminated there, certificate by SNI)" if terminate else "(plaintext)")
             + f" routes by Host to the instance of {where}; the stream's `to` picks the domain"]
    if name.endswith(".localhost") or name == "localhost":
        lines.append(f"             browsers resolve *.localhost to loopback; other clients connect to "
                     f"{lhost}:{port} with Host" + (" and SNI" if terminate else "")
                     + f" {name} (or add {name} to /etc/hosts)")
    else:
        lines.append(f"             {name} must resolve to {lhost} (e.g. in /etc/hosts)")
    if terminate and ca is not None:
        lines.append("             trust the CA above in the browser: Firefox: Settings > Privacy & "
                     "Security > Certificates > View Certificates > Authorities > Import; Chromium: "
                     "chrome://settings/certificates > Authorities > Import (trust for websites); "
                     f"Node.js: NODE_EXTRA_CA_CERTS={shlex.quote(str(ca))}")
    return lines


DEMO_MESSAGE = "hello through xmpp-shard"


def demo_accounts(layout):
    """Two accounts of one domain for the client commands of the banner (the [tenants] domains
    first: the quick start's alice and bob), else one account that writes to itself; None
    without accounts."""
    by_domain: dict[str, list] = {}
    for a in layout.accounts:
        by_domain.setdefault(a.domain, []).append(a)
    tenants = set(layout.plan.tenant_domains or [])
    for d in sorted(by_domain, key=lambda d: d not in tenants):     # stable: plan order
        if len(by_domain[d]) >= 2:
            return by_domain[d][0], by_domain[d][1]
    return (layout.accounts[0], layout.accounts[0]) if layout.accounts else None


def client_lines(layout, host: str, port: int, ca: Optional[Path]) -> list[str]:
    """The banner's client part: the CA to trust, go-sendxmpp commands to paste that log in
    through the proxy (verifying its certificate against the local CA) and send a message, the
    doors for other clients, and what a browser client can use."""
    q = shlex.quote
    plan = layout.plan
    terminate = tls_profile(plan).terminate
    lines: list[str] = []
    if terminate and ca is not None:
        lines.append(f"  CA         {ca}  (what clients trust; system-wide: cp {q(str(ca))} "
                     f"/usr/local/share/ca-certificates/xmpp-shard-local.crt && update-ca-certificates)")
    pair = demo_accounts(layout)
    server = f"{host}:{port}"
    if pair is None:
        lines.append("  try it     the plan has no accounts: add some ([[host]] or [tenants] accounts) "
                     "to log in with a client")
    elif not terminate:
        lines.append(f"  try it     plaintext ([plan] tls = \"none\"): go-sendxmpp, Gajim, Conversations and "
                     f"Dino refuse to authenticate without TLS; use a client that allows it (slixmpp with "
                     f"unencrypted_plain, sendxmpp without -t) at {server}, or the default plan "
                     f"({DEFAULT_PLAN}: TLS with a local CA)")
    else:
        sender, rcpt = pair
        if ca is not None:
            env, skip, why = f"SSL_CERT_FILE={q(str(ca))} ", "", "verifying the proxy's certificate against the CA"
        elif plan.certs.mode == "existing":
            env, skip, why = "", "", "verifying the proxy's certificate against this machine's CAs"
        else:
            env, skip = "", " -n"
            why = ("-n: no verification, [certs] mode = \"self-signed\" leaves nothing to verify "
                   "against; mode = \"ca\" makes a CA to trust")

        def sendxmpp(a, *extra: str) -> str:
            return (f"{env}go-sendxmpp{skip} " + "".join(x + " " for x in extra)
                    + f"-u {q(a.jid)} -p {q(a.password)} -j {q(server)}")

        whom = "itself" if rcpt.jid == sender.jid else rcpt.jid
        lines.append(f"  try it     {sender.jid} sends {whom} a message through the proxy (STARTTLS, "
                     f"go-sendxmpp {why}):")
        lines.append(f"    echo {q(DEMO_MESSAGE)} | {sendxmpp(sender)} {q(rcpt.jid)}")
        if rcpt.jid != sender.jid:
            lines.append("             to watch it arrive, run this first in another terminal (Ctrl-C ends it):")
            lines.append(f"    {sendxmpp(rcpt, '-l')}")
        doors = f"STARTTLS on {server}" + (f", Direct TLS on {host}:{layout.direct_tls_port}"
                                           if layout.direct_tls_port else "")
        lines.append(f"  clients    Gajim, Dino, Conversations ...: {doors}, set by hand (the domains are "
                     f"not in DNS)" + ("; trust the CA above" if ca is not None else ""))
    jp = plan.jitsi
    if jp is not None and jp.shards:
        names = [layout.instances[k].name for k in range(jp.shards)]
        doms = " and ".join([jp.domain] + list(jp.tenants))
        if terminate:
            lines.append(f"  web        wss://{jp.domain}:{jp.http_port}/xmpp-websocket?room=ROOM and "
                         f"https://{jp.domain}:{jp.http_port}/http-bind?room=ROOM ({doms}): the proxy's "
                         f"HTTP listener on {host}, TLS terminated there (trust the CA; the domain must "
                         f"resolve to {host}, e.g. in /etc/hosts)")
        else:
            lines.append(f"  web        ws://127.0.0.1:{jp.http_port}/xmpp-websocket?room=ROOM and "
                         f"http://127.0.0.1:{jp.http_port}/http-bind?room=ROOM ({doms}): the proxy's "
                         f"HTTP listener, plaintext on loopback (a web server in front does TLS)")
        lines.append("  rooms      each room on one of the shards "
                     + ", ".join(f"{n} (127.0.0.1:{jp.shard_http_port + k})" for k, n in enumerate(names))
                     + f"; which one: xmpp-shard-deploy where {plan.source or 'PLAN'} ROOM")
        if jp.visitors:
            lines.append("  visitors   " + ", ".join(
                f"{jp.vnode(v)} ({layout.instances[i].name}, 127.0.0.1:{jp.visitor_http_ports()[v]}, "
                f"domain {jp.visitor_domain(v)})" for v, i in enumerate(layout.jitsi.visitors))
                + ": add &vnode=vN to the URL; rooms there are not linked to the main room "
                  "(jicofo and Jitsi's fmuc are not run)")
        lines.append(f"  focus      simulated, one per shard and domain (jicofo is not run): a room is "
                     f"created when asked with Jitsi's conference IQ <conference xmlns='"
                     f"http://jitsi.org/protocol/focus' room='ROOM@conference.{jp.domain}'/> sent to "
                     f"focus@auth.{jp.domain}/focus; only the focus creates rooms")
    elif plan.http_instances():
        lines += web_lines(layout, host, ca)
    elif jp is not None and jp.http_port:
        lines.append(f"  web        ws://127.0.0.1:{jp.http_port}/xmpp-websocket and "
                     f"http://127.0.0.1:{jp.http_port}/http-bind for {jp.domain}: Prosody's HTTP "
                     f"listener on the client instance ([jitsi] http_port), plaintext on loopback, not "
                     f"through the proxy; a web server in front does TLS")
    else:
        lines.append("  web        no WebSocket or BOSH URL: this plan has no HTTP listener (XMPP over TCP "
                     "only); browsers need one, e.g. Prosody's ([jitsi] http_port) behind a web server")
    return lines


class Supervised:
    """One instance under the runner: restarts with back-off after a crash."""

    def __init__(self, inst: ProsodyInstance, cpu: Optional[int]):
        self.inst = inst
        self.cpu = cpu
        self.started_at = 0.0
        self.backoff = BACKOFF_FIRST
        self.restart_at: Optional[float] = None
        self.crashes = 0

    def spawn(self) -> None:
        self.inst.spawn(cpu=self.cpu)
        self.started_at = time.monotonic()


def main(argv=None) -> int:
    return run(parse_args(sys.argv[1:] if argv is None else argv), prog="run-local")


def run(args, prog: str = "xmpp-shard-deploy run") -> int:
    out = Output()
    t_start = time.monotonic()
    proxy_bin = Path(args.proxy) if args.proxy else default_proxy_bin()
    if not (proxy_bin.is_file() and os.access(proxy_bin, os.X_OK)):
        print(f"{prog}: proxy binary {proxy_bin} not found or not executable; build it with\n"
              f"  cmake -S {REPO} -B {REPO}/build -DCMAKE_BUILD_TYPE=Release && "
              f"cmake --build {REPO}/build -j2\nor pass --proxy BIN", file=sys.stderr)
        return 2
    try:
        plan = load_plan(args.plan, instances=args.instances)
        require_prosody()
    except (PlanError, OSError, ValueError, RuntimeError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2

    # A local run keeps everything under its own directory: the plan's data, log and pidfile
    # paths are for the deployment (/var/lib, /var/log, /run), not for a trial run.
    relocated = plan.paths != DEFAULT_PATHS or any(ip.paths for ip in plan.instance_plans.values())
    # Jitsi's focus.D component needs jitsi-meet-prosody's mod_client_proxy: without it Prosody
    # logs an error at start, so a local run leaves the component out (and says so).
    no_focus = []
    if plan.jitsi is not None and plan.jitsi.focus_component and not client_proxy_found(plan.jitsi):
        no_focus = drop_focus_components(plan)
    plan.paths = dict(DEFAULT_PATHS)
    for ip in plan.instance_plans.values():
        ip.paths = {}

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

    sup: list[Supervised] = []
    proxy: Optional[subprocess.Popen] = None
    proxy_pump: Optional[threading.Thread] = None
    pumps: list[threading.Thread] = []
    tail_stop = threading.Event()
    focus_stop = threading.Event()
    focuses = []
    rc = 0
    try:
        listen_port = choose_proxy_port(plan.listen, args.port, plan.port)
        ports, planned = choose_instance_ports(plan, args.free_ports, {listen_port})
        planned = choose_shard_http_ports(plan, args.free_ports,
                                          {listen_port, 9464} | set(ports)) and planned
        planned = choose_host_http_ports(plan, args.free_ports,
                                         {listen_port, 9464, plan.direct_tls_port} | set(ports)) and planned
        host = _connect_host(plan.listen)
        overrides = {"drain_timeout": "5s"}
        if "metrics" not in plan.proxy:
            overrides["metrics"] = ("127.0.0.1:9464" if port_is_free(9464) and 9464 not in ports
                                    else f"127.0.0.1:{free_port()}")
        terminate = tls_profile(plan).terminate
        direct_port = None
        if terminate and plan.direct_tls_port:
            direct_port = plan.direct_tls_port
            busy = set(ports) | {listen_port, plan.http_port}
            if (args.port == 0 or args.free_ports or direct_port in busy
                    or not port_is_free(direct_port, host)):
                direct_port = free_port(host)
                while direct_port in busy:
                    direct_port = free_port(host)
        try:
            layout, _res, _notes = generate(plan, base, force=args.force, ports=ports,
                                            listen_port=listen_port, proxy_overrides=overrides,
                                            direct_tls_port=direct_port)
        except GenerateError as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return 1
        ca_note = ""
        ca_path: Optional[Path] = None
        if terminate:
            # The proxy loads its certificates at start: make them (kept across runs in --out).
            certs = make_certs(layout)
            if certs.missing:
                print(f"{prog}: [plan] tls = \"terminate\": missing certificates (with their "
                      f".key): {', '.join(certs.missing)}", file=sys.stderr)
                return 1
            if certs.ca:
                ca_path = certs.ca
                ca_note = f", CA {certs.ca}"
        proxy_cfg = base / "proxy.toml"
        accounts_file = base / "accounts.txt"

        chk = subprocess.run([str(proxy_bin), "--config", str(proxy_cfg), "--check"],
                             capture_output=True, text=True, timeout=30)
        if chk.returncode != 0:
            print(f"{prog}: the proxy rejects the generated config {proxy_cfg}:\n"
                  f"{chk.stdout}{chk.stderr}", file=sys.stderr)
            return 1

        ncpu = len(os.sched_getaffinity(0))
        cores = sorted(os.sched_getaffinity(0))
        for spec in layout.instances:
            inst = ProsodyInstance(spec, base / "prosody")
            cpu = spec.cpu if spec.cpu is None or spec.cpu in cores else cores[spec.cpu % ncpu]
            sup.append(Supervised(inst, cpu))
            _check_reachable(inst.root, PROSODY_USER)
            for f in (inst.log_path, inst.stdout_path):     # each run's logs start empty
                if f.exists():
                    f.write_bytes(b"")
            inst.paths.pidfile.unlink(missing_ok=True)
        with ThreadPoolExecutor(max_workers=4) as ex:
            list(ex.map(lambda s: s.inst.ensure_accounts(s.inst.spec.accounts), sup))
        if stop_evt.is_set():
            return 130
        for s in sup:
            s.spawn()
            if not args.quiet_logs:
                for path, tag in ((s.inst.log_path, s.inst.name), (s.inst.stdout_path, s.inst.name + "/out")):
                    t = threading.Thread(target=_tail_file, args=(path, f"[{tag}]", out, tail_stop),
                                         daemon=True)
                    t.start()
                    pumps.append(t)
        for s in sup:
            s.inst.wait_ready()
        # Prosody opens its HTTP port (WebSocket, BOSH) after its XMPP one: wait for it too, so
        # that the proxy's first health check of NAME-http does not find it closed.
        procs_of = {s.inst.name: s.inst.proc for s in sup}
        for b in layout.proxy.backends:
            if b["name"].endswith("-http") and b["name"][:-5] in procs_of:
                bhost, _, bport = str(b["address"]).rpartition(":")
                wait_port(bhost, int(bport), timeout=15, proc=procs_of[b["name"][:-5]],
                          what=f"prosody {b['name'][:-5]}'s HTTP port")
        if plan.jitsi is not None and plan.jitsi.shards:
            focuses = start_focuses(layout, lambda u, t: out.line(f"[focus {u}]", t), focus_stop)
        focus_deadline = time.monotonic() + 20

        proxy = procs.spawn([str(proxy_bin), "--config", str(proxy_cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        proxy_pump = threading.Thread(target=_pump_pipe, args=(proxy.stdout, "[proxy]", out),
                                      daemon=True)
        proxy_pump.start()
        pumps.append(proxy_pump)
        wait_port(host, listen_port, timeout=10, proc=proxy, what="xmpp-shard-proxy")
        for l in layout.proxy.listeners:
            if l.get("protocol") == "http":
                http_host, _, http_port = str(l["bind"]).rpartition(":")
                wait_port(_connect_host(http_host), int(http_port), timeout=10, proc=proxy,
                          what="xmpp-shard-proxy's HTTP listener")
        for f in focuses:
            if not f.ready.wait(max(0.1, focus_deadline - time.monotonic())):
                raise RuntimeError(f"the simulated focus {f.jid} did not log in on "
                                   f"{f.host}:{f.port} (shard {f.label})")
        up_secs = time.monotonic() - t_start

        metrics = layout.proxy.proxy.get("metrics")
        lines = [f"xmpp-shard local run is up in {up_secs:.1f}s. Ctrl-C stops everything.",
                 f"  proxy      {host}:{listen_port}   (pid {proxy.pid}, config {proxy_cfg})",
                 f"  metrics    http://{metrics}/metrics" if metrics else "  metrics    off"]
        if terminate:
            lines.append(f"  tls        terminated by the proxy: STARTTLS required on {listen_port}"
                         + (f", Direct TLS on {host}:{layout.direct_tls_port}" if layout.direct_tls_port else "")
                         + f"; certificates in {proxy_cert_dir(plan, base)}{ca_note}")
        else:
            lines.append("  tls        none: plaintext ([plan] tls = \"none\")")
        for s in sup:
            inst = s.inst
            doms = ", ".join(inst.spec.domains) or "-"
            mucs = ", ".join(m.domain for m in inst.spec.mucs)
            lines.append(f"  {inst.name:<10} {inst.address:<16} core {s.cpu}  pid {inst.pid}  "
                         f"hosts: {doms}" + (f"  muc: {mucs}" if mucs else ""))
        for r in layout.proxy.routes:
            lines.append(f"  route {r.get('name', r['domains'][0])}: {', '.join(r['domains'])} -> "
                         f"{', '.join(r['backends'])}" + (f" ({r['balance']})" if 'balance' in r else ""))
        if len(sup) > ncpu:
            lines.append(f"  note       {len(sup)} instances on {ncpu} cores: some share a core")
        if relocated:
            lines.append("  note       the plan's data, log and pidfile paths are for the deployment: "
                         "this run keeps them under its own directory")
        if not planned:
            lines.append("  note       the plan's instance ports were taken (or --free-ports): "
                         "free ones are used")
        if no_focus:
            lines.append(f"  note       {', '.join(no_focus)} (Jitsi's client_proxy component) left out: "
                         f"mod_client_proxy is not in {plan.jitsi.prosody_plugins} (jitsi-meet-prosody)")
        lines.append(f"  accounts   {accounts_file}  ({len(layout.accounts)} accounts, mode 0600: "
                     f"a JID and its password per line)")
        lines += client_lines(layout, host, listen_port, ca_path)
        if layout.jitsi is not None:
            lines.append(f"  jitsi      snippets in {base / 'jitsi'}")
        lines.append(f"  files      {base}" + ("  (temporary, removed on exit)" if temp else "")
                     + f"; what goes where: {base / 'REPORT.txt'}")
        out.line("", "\n".join(lines))

        while not stop_evt.is_set():
            now = time.monotonic()
            for s in sup:
                inst = s.inst
                if s.restart_at is None and not inst.running():
                    s.crashes += 1
                    if now - s.started_at > BACKOFF_RESET:
                        s.backoff = BACKOFF_FIRST
                    s.restart_at = now + s.backoff
                    out.banner(f"PROSODY INSTANCE {inst.name} ({inst.address}, core {s.cpu}) "
                               f"DIED with exit code {inst.proc.returncode}.\n"
                               f"Its domains are unserved now: {', '.join(inst.spec.domains)}\n"
                               f"Restarting it in {s.backoff:g}s (crash #{s.crashes}).\n"
                               f"Log: {inst.log_path}\n--- last lines ---\n{inst.log_tail(15)}")
                    s.backoff = min(s.backoff * 2, BACKOFF_MAX)
                elif s.restart_at is not None and now >= s.restart_at:
                    s.restart_at = None
                    try:
                        s.spawn()
                        out.line("[run-local]", f"restarted {inst.name} (pid {inst.pid})")
                    except OSError as e:
                        out.line("[run-local]", f"could not restart {inst.name}: {e}")
                        s.started_at = now
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
        focus_stop.set()
        for f in focuses:
            f.thread.join(timeout=2)
        if proxy is not None and proxy.poll() is None:
            prc = procs.stop(proxy, timeout=0.5 if signals["count"] > 1 else 10)
            if proxy_pump is not None:
                proxy_pump.join(timeout=2)      # its last lines before ours
            out.line("[run-local]", f"proxy exited with code {prc}")
        for s in sup:
            if s.inst.running():
                irc = s.inst.kill() if signals["count"] > 1 else s.inst.stop(timeout=10)
                out.line("[run-local]", f"{s.inst.name} exited with code {irc}")
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
