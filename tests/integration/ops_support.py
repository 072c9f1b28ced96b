"""Support for the operations tests (test_ops_*.py): scraping and parsing /metrics, promtool,
a real Prometheus server, anonymous XMPP sessions on raw sockets (from a chosen source
address), and a pool of Prosody instances of the ops tests' own (anonymous tenant domains, so
no account registration is needed and the instances' logs still tell where a login landed).

Read-only users of conftest.py, xs_clients.py and deploy/xs_local.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import pytest

from xs_clients import RawClient, header
from xs_local import InstanceSpec, ProsodyInstance, VirtualHost, free_port, wait_port
from xs_local import procs
from xs_local.prosody import AUTH_ANONYMOUS

# The ops pool: three instances serving the same anonymous tenant domains.
OPS_DOMAINS = [f"a{i:02d}.ops.test" for i in range(1, 13)]
OPS_NAMES = ["ops0", "ops1", "ops2"]
FEATURES_RX = rb"</(?:\w+:)?features>"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


# --------------------------------------------------------------------------------------------
# /metrics and /healthz

# Every family the proxy declares (proxy/metrics/exposition.cpp), with its type.
FAMILIES = {
    "xmpp_shard_build_info": "gauge",
    "xmpp_shard_start_time_seconds": "gauge",
    "xmpp_shard_connections_accepted_total": "counter",
    "xmpp_shard_connections_active": "gauge",
    "xmpp_shard_connections_rate_limited_total": "counter",
    "xmpp_shard_stream_header_seconds": "histogram",
    "xmpp_shard_sessions_active": "gauge",
    "xmpp_shard_sessions_total": "counter",
    "xmpp_shard_session_ends_total": "counter",
    "xmpp_shard_stream_errors_total": "counter",
    "xmpp_shard_bytes_total": "counter",
    "xmpp_shard_backend_up": "gauge",
    "xmpp_shard_backend_consecutive_failures": "gauge",
    "xmpp_shard_backend_draining": "gauge",
    "xmpp_shard_backend_sessions": "gauge",
    "xmpp_shard_backend_connecting": "gauge",
    "xmpp_shard_backend_connect_seconds": "histogram",
    "xmpp_shard_backend_connect_failures_total": "counter",
    "xmpp_shard_backend_queue_length": "gauge",
    "xmpp_shard_backend_queue_wait_seconds": "histogram",
    "xmpp_shard_admission_refusals_total": "counter",
    "xmpp_shard_config_reloads_total": "counter",
    "xmpp_shard_config_last_reload_success_timestamp_seconds": "gauge",
    "xmpp_shard_backend_connections_reused_total": "counter",
}
# Families of TLS termination (listeners with tls = "terminate"): checked when the build has them.
TLS_FAMILIES = {
    "xmpp_shard_tls_handshakes_total": "counter",
    "xmpp_shard_tls_handshake_seconds": "histogram",
}
# Families of HTTP listeners (protocol = "http"): present when the config has one.
HTTP_FAMILIES = {
    "xmpp_shard_http_responses_total": "counter",
    "xmpp_shard_websocket_sessions_active": "gauge",
    "xmpp_shard_bosh_sessions": "gauge",
    "xmpp_shard_backend_http_responses_total": "counter",
}
# Families of DNS SRV discovery ([[backend]] srv): always declared, with series per group.
DISCOVERY_FAMILIES = {
    "xmpp_shard_discovery_members": "gauge",
    "xmpp_shard_discovery_resolutions_total": "counter",
    "xmpp_shard_discovery_set_age_seconds": "gauge",
    "xmpp_shard_discovery_last_success_timestamp_seconds": "gauge",
}
ALL_FAMILIES = {**FAMILIES, **TLS_FAMILIES, **HTTP_FAMILIES, **DISCOVERY_FAMILIES}


def http_get(port: int, path: str, host: str = "127.0.0.1", timeout: float = 5.0) -> tuple[int, str]:
    """GET http://host:port/path -> (status, body). Errors with a status are returned, not raised."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


_SAMPLE_RX = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL_RX = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def _unescape(v: str) -> str:
    return v.replace(r"\\", "\x00").replace(r"\"", '"').replace(r"\n", "\n").replace("\x00", "\\")


class Metrics:
    """One scrape, parsed. m.get(name, **labels) sums the samples of `name` whose labels include
    the given ones (None when there is no such sample); m.types[name] is the # TYPE of a family."""

    def __init__(self, text: str):
        self.text = text
        self.samples: list[tuple[str, dict, float]] = []
        self.types: dict[str, str] = {}
        self.helps: dict[str, str] = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(None, 3)
                self.types[name] = typ.strip()
                continue
            if line.startswith("# HELP "):
                parts = line.split(None, 3)
                self.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
                continue
            if line.startswith("#"):
                continue
            m = _SAMPLE_RX.match(line)
            if not m:
                raise AssertionError(f"unparseable /metrics line: {line!r}")
            name, labels_text, value = m.group(1), m.group(2) or "", m.group(3)
            labels = {k: _unescape(v) for k, v in _LABEL_RX.findall(labels_text)}
            self.samples.append((name, labels, float(value)))

    def series(self, name: str, **labels) -> list[tuple[dict, float]]:
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == str(want) for k, want in labels.items())]

    def get(self, name: str, **labels) -> Optional[float]:
        s = self.series(name, **labels)
        return sum(v for _, v in s) if s else None

    def val(self, name: str, **labels) -> float:
        """Like get(), but 0 when there is no sample (a counter not created yet)."""
        v = self.get(name, **labels)
        return 0.0 if v is None else v

    def label_values(self, name: str, label: str) -> set[str]:
        return {l[label] for n, l, _ in self.samples if n == name and label in l}

    def bucket(self, name: str, le: float, **labels) -> float:
        """Cumulative count of histogram `name` (base name) at bound `le`, summed over series."""
        total = 0.0
        for l, v in self.series(name + "_bucket", **labels):
            b = l.get("le")
            if b is not None and (float("inf") if b == "+Inf" else float(b)) == le:
                total += v
        return total


def scrape(port: int, host: str = "127.0.0.1") -> Metrics:
    status, body = http_get(port, "/metrics", host)
    assert status == 200, f"/metrics answered {status}: {body[:500]!r}"
    return Metrics(body)


def wait_metric(port: int, pred: Callable[[Metrics], bool], timeout: float, what: str,
                interval: float = 0.05) -> tuple[Metrics, float]:
    """Scrape until pred(metrics) holds; returns (metrics, seconds waited). Fails with the last
    scrape's relevant lines otherwise."""
    t0 = time.monotonic()
    while True:
        m = scrape(port)
        if pred(m):
            return m, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            lines = [ln for ln in m.text.splitlines() if not ln.startswith("#") and "_bucket" not in ln]
            pytest.fail(f"within {timeout:g}s: {what}\nlast scrape:\n" + "\n".join(lines), pytrace=False)
        time.sleep(interval)


def promtool_check(text: str) -> tuple[int, str]:
    """`promtool check metrics` on `text` -> (exit code, output)."""
    if not os.access(PROMTOOL, os.X_OK):
        pytest.fail(f"{PROMTOOL} missing: apt-get install prometheus (scripts/setup.sh)", pytrace=False)
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).strip()


def with_metrics(cfg, host: str = "127.0.0.1") -> int:
    """Turn the metrics endpoint on (a free port) in a ProxyConfig; returns the port."""
    port = free_port(host)
    cfg.proxy["metrics"] = f"{host}:{port}"
    return port


def start_with_metrics(proxies, cfg, **kw):
    """proxies.start(cfg) with metrics on a free port; returns (ProxyProcess, metrics port)."""
    mport = with_metrics(cfg)
    px = proxies.start(cfg, **kw)
    wait_port("127.0.0.1", mport, timeout=5, proc=px.proc, what="the proxy's metrics endpoint")
    return px, mport


REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "xmpp-shard-dashboard.json"
PROMETHEUS_EXAMPLE = REPO / "deploy" / "prometheus" / "prometheus.yml"
# Grafana's variables, replaced by what they stand for when a query is sent to Prometheus itself.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$instance": ".*"}


def dashboard_panels(path: Path = DASHBOARD) -> list[dict]:
    """Every panel of the dashboard, rows' nested panels included."""
    doc = json.loads(path.read_text())
    out = []
    for p in doc.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def dashboard_queries(path: Path = DASHBOARD, raw: bool = False) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target, Grafana variables replaced unless `raw`."""
    out = []
    for p in dashboard_panels(path):
        for t in p.get("targets", []):
            expr = t.get("expr", "")
            if not raw:
                for k, v in sorted(GRAFANA_VARS.items(), key=lambda kv: -len(kv[0])):
                    expr = expr.replace(k, v)
            out.append((p.get("title", ""), expr))
    return out


# --------------------------------------------------------------------------------------------
# Kernel facts about client sockets

def tcp_total_retrans(sock: socket.socket) -> int:
    """tcpi_total_retrans of a TCP socket (struct tcp_info: 8 bytes of u8 fields, then u32s;
    total_retrans is the 24th u32). SYN retransmissions count too."""
    b = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", b, 100)[0]


@dataclass
class StormResult:
    domain: str
    start: float                      # monotonic time connect() was called
    connect: Optional[float] = None   # seconds until the TCP handshake completed
    answer: Optional[float] = None    # seconds until the stream features arrived
    retrans: int = 0                  # tcpi_total_retrans of the client socket
    error: Optional[str] = None
    data: bytes = b""


def storm(port: int, domains: list[str], n: int, *, over: float = 1.0, timeout: float = 30.0,
          host: str = "127.0.0.1") -> tuple[list[StormResult], list[socket.socket]]:
    """Open `n` streams (domains round-robin) spread evenly over `over` seconds from one thread
    with non-blocking sockets and epoll, so the times measured are the kernel's and the
    server's, not a busy event loop's. Each sends its header on connect and is done at
    </stream:features>. Returns the results and the open sockets (the caller closes them)."""
    import selectors
    sel = selectors.DefaultSelector()
    results: list[StormResult] = []
    socks: list[socket.socket] = []
    pending = 0
    rx = re.compile(FEATURES_RX)

    def handle(events):
        nonlocal pending
        now = time.monotonic()
        for key, mask in events:
            s, r = key.fileobj, key.data
            if r.connect is None:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    r.error = f"connect: {os.strerror(err)}"
                    sel.unregister(s)
                    pending -= 1
                    continue
                r.connect = now - r.start
                try:
                    s.send(header(r.domain))
                except OSError as e:
                    r.error = f"send: {e}"
                    sel.unregister(s)
                    pending -= 1
                    continue
                sel.modify(s, selectors.EVENT_READ, r)
                continue
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                chunk, r.error = b"", f"recv: {e}"
            if chunk:
                r.data += chunk
            if chunk and rx.search(r.data):
                r.answer = now - r.start
                r.retrans = tcp_total_retrans(s)
            elif chunk:
                continue
            elif not r.error:
                r.error = f"closed before the features: {r.data[-300:]!r}"
            sel.unregister(s)
            pending -= 1

    t_begin = time.monotonic()
    for i in range(n):
        due = t_begin + over * i / n
        while True:
            wait = due - time.monotonic()
            handle(sel.select(max(0.0, wait)) if pending else [])
            if wait <= 0:
                break
            if not pending:
                time.sleep(wait)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        r = StormResult(domains[i % len(domains)], time.monotonic())
        rc = s.connect_ex((host, port))
        if rc not in (0, errno.EINPROGRESS):
            r.error = f"connect: {os.strerror(rc)}"
            s.close()
            results.append(r)
            continue
        socks.append(s)
        results.append(r)
        sel.register(s, selectors.EVENT_WRITE, r)
        pending += 1
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        handle(sel.select(0.1))
    for r in results:
        if r.answer is None and r.error is None:
            r.error = f"no features within {timeout:g}s (connected: {r.connect is not None})"
    sel.close()
    return results, socks


def socket_retrans(pid: int, dports: Iterable[int]) -> tuple[int, list[str]]:
    """The established TCP sockets of process `pid` towards `dports`, from `ss -tinp`
    (iproute2; tcp_info over netlink). Returns (how many, descriptions of those with TCP
    retransmissions). ss prints `retrans:CUR/TOTAL` only when TOTAL is not 0."""
    ss = shutil.which("ss")
    if not ss:
        pytest.fail("ss (iproute2) not found: apt-get install iproute2", pytrace=False)
    filt = "( " + " or ".join(f"dport = :{p}" for p in dports) + " )"
    out = subprocess.run([ss, "-tinpH", "state", "established", filt], capture_output=True,
                         text=True, timeout=30).stdout
    n, bad = 0, []
    current = None
    for line in out.splitlines():
        if not line[:1].isspace():
            current = line if f"pid={pid}," in line else None
            continue
        if current is None:
            continue
        n += 1
        m = re.search(r"\bretrans:(\d+)/(\d+)", line)
        if m and int(m.group(2)) > 0:
            bad.append(f"{current.split()[2:4]} retrans:{m.group(1)}/{m.group(2)}")
    return n, bad


def raise_nofile(want: int = 65536) -> None:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = want if hard == resource.RLIM_INFINITY else min(hard, want)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


# --------------------------------------------------------------------------------------------
# Raw XMPP sessions

async def open_stream(port: int, domain: str, *, host: str = "127.0.0.1",
                      source: Optional[str] = None, timeout: float = 10.0) -> RawClient:
    """Connect (from `source` if given, e.g. 127.0.0.2), send a header for `domain`, read the
    features. Raises EOFError with what was received if the peer closed instead."""
    local = (source, 0) if source else None
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=local), timeout)
    c = RawClient(r, w, domain)
    w.write(header(domain))
    await w.drain()
    await c.read_until(FEATURES_RX, timeout)
    return c


def open_stream_blocking(port: int, domain: str, host: str = "127.0.0.1",
                         timeout: float = 10.0) -> socket.socket:
    """A blocking socket with a stream open to `domain` (features received)."""
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(header(domain))
    buf = b""
    while not re.search(FEATURES_RX, buf):
        chunk = s.recv(65536)
        if not chunk:
            s.close()
            raise EOFError(f"closed before the features: {buf!r}")
        buf += chunk
    return s


def close_stream_blocking(s: socket.socket, timeout: float = 3.0) -> None:
    try:
        s.sendall(b"</stream:stream>")
        s.settimeout(timeout)
        while s.recv(65536):
            pass
    except OSError:
        pass
    s.close()


async def anon_login(c: RawClient, timeout: float = 10.0) -> str:
    """SASL ANONYMOUS on an open stream, restart, bind. Returns the bound full JID."""
    await c.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
    got = await c.read_until(rb"<success[^>]*?(?:/>|>.*?</success>)|</failure>", timeout)
    if b"<success" not in got:
        raise RuntimeError(f"SASL ANONYMOUS failed on {c.domain}: {got!r}")
    await c.send(header(c.domain, decl=False))
    await c.read_until(FEATURES_RX, timeout)
    await c.send(b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    got = await c.read_until(rb"</iq>", timeout)
    m = re.search(rb"<jid>([^<]+)</jid>", got)
    if not m:
        raise RuntimeError(f"bind failed on {c.domain}: {got!r}")
    return m.group(1).decode()


async def anon_session(port: int, domain: str, **kw) -> tuple[RawClient, str]:
    c = await open_stream(port, domain, **kw)
    try:
        jid = await anon_login(c)
    except BaseException:
        await c.aclose()
        raise
    return c, jid


async def close_stream(c: RawClient, timeout: float = 3.0) -> None:
    """Close politely (</stream:stream>, wait for the peer's close), then the socket."""
    try:
        await c.send(b"</stream:stream>")
        await c.wait_closed(timeout)
    except (ConnectionError, OSError):
        pass
    await c.aclose()


# --------------------------------------------------------------------------------------------
# The ops pool of Prosody instances

class OpsPool:
    """Three Prosody instances (ops0..ops2) serving OPS_DOMAINS with anonymous authentication."""

    def __init__(self, base: Path):
        cpus = sorted(os.sched_getaffinity(0))
        self.instances = [
            ProsodyInstance(InstanceSpec(name, free_port(), cpu=cpus[i % len(cpus)],
                                         hosts=[VirtualHost(d, AUTH_ANONYMOUS) for d in OPS_DOMAINS]),
                            base)
            for i, name in enumerate(OPS_NAMES)]

    def __getitem__(self, name: str) -> ProsodyInstance:
        return next(i for i in self.instances if i.name == name)

    def start(self) -> None:
        for inst in self.instances:
            inst.prepare()
        for inst in self.instances:
            inst.start()

    def stop(self) -> None:
        for inst in self.instances:
            inst.stop()

    def ensure_running(self) -> None:
        for inst in self.instances:
            if not inst.running():
                inst.start()

    def marks(self) -> dict[str, int]:
        return {i.name: i.log_mark() for i in self.instances}

    def where(self, jid: str, since: dict[str, int], timeout: float = 5.0) -> list[str]:
        """Instances whose log shows the bare JID of `jid` authenticating since `since`."""
        bare = jid.split("/", 1)[0].lower()
        deadline = time.monotonic() + timeout
        while True:
            hits = [i.name for i in self.instances
                    if any(j.lower() == bare for j in i.authenticated(since.get(i.name, 0)))]
            if hits or time.monotonic() > deadline:
                return hits
            time.sleep(0.05)

    def proxy_config(self, proxy_opts: dict, *, check: Optional[str] = None, **backend_opts):
        """Every OPS domain hashed over the three instances."""
        from conftest import DEFAULT_PROXY_OPTS
        from xs_local import ProxyConfig
        cfg = ProxyConfig(proxy={**DEFAULT_PROXY_OPTS, **proxy_opts})
        for inst in self.instances:
            extra = dict(backend_opts)
            if check:
                extra["check"] = check
            cfg.add_backend(inst.name, inst.address, **extra)
        cfg.add_route(OPS_DOMAINS, OPS_NAMES, name="ops", balance="hash")
        return cfg


def placement(pool: OpsPool, port: int, domains: Iterable[str] = OPS_DOMAINS) -> dict[str, str]:
    """domain -> the ops instance an anonymous login through the proxy reached (checked in the
    instances' logs; exactly one must show it)."""
    domains = list(domains)
    since = pool.marks()

    async def run():
        out = await asyncio.gather(*(anon_session(port, d) for d in domains), return_exceptions=True)
        for r in out:
            if not isinstance(r, BaseException):
                await close_stream(r[0], 1)
        return out

    results = asyncio.run(run())
    bad = [f"{d}: {r!r}" for d, r in zip(domains, results) if isinstance(r, BaseException)]
    assert not bad, "anonymous logins through the proxy failed:\n" + "\n".join(bad)
    placed = {}
    for d, (_, jid) in zip(domains, results):
        hits = pool.where(jid, since)
        assert len(hits) == 1, f"{jid} authenticated on {hits or 'no instance'}"
        placed[d] = hits[0]
    return placed


# --------------------------------------------------------------------------------------------
# A real Prometheus server

@dataclass
class PrometheusServer:
    workdir: Path
    targets: list[str]
    scrape_interval: str = "1s"
    job: str = "xmpp-shard"
    port: int = 0
    proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 30.0) -> "PrometheusServer":
        if not os.access(PROMETHEUS, os.X_OK):
            pytest.fail(f"{PROMETHEUS} missing: apt-get install prometheus (scripts/setup.sh)",
                        pytrace=False)
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "prometheus.yml"
        cfg.write_text(
            "global:\n"
            f"  scrape_interval: {self.scrape_interval}\n"
            f"  evaluation_interval: {self.scrape_interval}\n"
            "scrape_configs:\n"
            f"  - job_name: {json.dumps(self.job)}\n"
            f"    scrape_interval: {self.scrape_interval}\n"
            f"    scrape_timeout: {self.scrape_interval}\n"
            "    static_configs:\n"
            f"      - targets: {json.dumps(self.targets)}\n")
        self.port = free_port()
        self.log_path = self.workdir / "prometheus.log"
        self._log = open(self.log_path, "ab")
        self.proc = procs.spawn(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=str(self.workdir))
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"prometheus exited with {self.proc.returncode}:\n{self.log_tail()}",
                            pytrace=False)
            try:
                status, _ = http_get(self.port, "/-/ready", timeout=1)
                if status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"prometheus not ready within {timeout:g}s:\n{self.log_tail()}", pytrace=False)
            time.sleep(0.1)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}{path}?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read() or b"{}") | {"http_status": e.code}

    def query(self, expr: str) -> dict:
        """/api/v1/query -> the parsed JSON answer (status, data or error)."""
        return self.api("/api/v1/query", query=expr)

    def wait_query(self, expr: str, pred: Callable[[list], bool], timeout: float, what: str) -> list:
        deadline = time.monotonic() + timeout
        while True:
            ans = self.query(expr)
            result = ans.get("data", {}).get("result", []) if ans.get("status") == "success" else None
            if result is not None and pred(result):
                return result
            if time.monotonic() > deadline:
                targets = self.api("/api/v1/targets")
                pytest.fail(f"prometheus: {what} within {timeout:g}s; query {expr!r} -> {ans}\n"
                            f"targets: {json.dumps(targets)[:2000]}\nlog:\n{self.log_tail()}",
                            pytrace=False)
            time.sleep(0.25)

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc, timeout=5)
            if self.proc.poll() is None:
                procs.kill(self.proc)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None


def values(result: list) -> dict[tuple, float]:
    """A Prometheus vector result -> {tuple(sorted(labels without __name__)): value}."""
    out = {}
    for r in result:
        labels = tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__"))
        out[labels] = float(r["value"][1])
    return out
