"""Helpers for test_http_front.py: Prosody instances serving XMPP over WebSocket and BOSH, the
strophe.js participants of tests/web (Node), a stdlib-only WebSocket XMPP client, raw HTTP.

Instances (xs_local.ProsodyInstance, the same code as every other fixture): N "shards" that all
host meet.example.com (anonymous, as Jitsi's guests) and the MUC conference.meet.example.com
(unlocked, public rooms), each with its own c2s port and its own HTTP port on 127.0.0.1 serving
mod_websocket (/xmpp-websocket) and mod_bosh (/http-bind). Prosody 0.12.3 facts this relies on
(its modules' source): the HTTP server strips the query and a :port from Host, serves a Host
that is a VirtualHost or else `http_default_host`, and refuses a WebSocket upgrade whose
Sec-WebSocket-Protocol lacks "xmpp" with 501; mod_websocket takes only whole (FIN) text frames.
A session's placement shows in the instance's log: "Authenticated as <jid>".
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from xs_local import InstanceSpec, Muc, ProsodyInstance, ProxyConfig, VirtualHost, free_port
from xs_local.prosody import AUTH_ANONYMOUS

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WEB = REPO / "tests" / "web"
PARTICIPANT = WEB / "participant.mjs"

MEET = "meet.example.com"
MUC = f"conference.{MEET}"
WS_PATH = "/xmpp-websocket"
BOSH_PATH = "/http-bind"

FRAMING_NS = "urn:ietf:params:xml:ns:xmpp-framing"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND_NS = "urn:ietf:params:xml:ns:xmpp-bind"
MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"

_AUTH_RE = re.compile(r"Authenticated as (\S+)")


# --------------------------------------------------------------------------------------------
# Prosody shards with an HTTP port

def http_lua(http_port: int) -> str:
    """Global settings for an instance's HTTP side (mod_http, mod_websocket, mod_bosh)."""
    return "\n".join([
        f"http_ports = {{ {int(http_port)} }}",
        'http_interfaces = { "127.0.0.1" }',
        f'http_default_host = "{MEET}"',
        'trusted_proxies = { "127.0.0.1" }',
        "consider_websocket_secure = true",   # plain ws:// behind a proxy: allow SASL
        "consider_bosh_secure = true",
        "cross_domain_websocket = true",
        "cross_domain_bosh = true",
        "bosh_max_inactivity = 30",
    ])


class HttpShard(ProsodyInstance):
    """A ProsodyInstance that also serves WebSocket and BOSH on `http_port`."""

    def __init__(self, spec: InstanceSpec, base_dir: Path, http_port: int):
        super().__init__(spec, base_dir)
        self.http_port = http_port

    @property
    def http_address(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    def wait_ready(self, timeout: float = 15.0) -> None:
        super().wait_ready(timeout)
        from xs_local import wait_port
        wait_port("127.0.0.1", self.http_port, timeout=timeout, proc=self.proc,
                  what=f"prosody {self.name} http")

    def authenticated_since(self, since: int) -> set[str]:
        return {j.lower() for j in _AUTH_RE.findall(self.log_text(since))}


class HttpShards:
    """N Prosody instances (shard-1..shard-N) hosting the same meeting domain."""

    def __init__(self, base: Path, n: int = 2):
        cpus = sorted(os.sched_getaffinity(0))
        self.instances: list[HttpShard] = []
        for i in range(n):
            hp = free_port()
            spec = InstanceSpec(
                f"shard-{i + 1}", free_port(), cpu=cpus[i % len(cpus)],
                hosts=[VirtualHost(MEET, AUTH_ANONYMOUS)],
                mucs=[Muc(MUC, options={"muc_room_default_public": True})],
                modules=["websocket", "bosh"], lua=http_lua(hp))
            self.instances.append(HttpShard(spec, base, hp))

    def __getitem__(self, name: str) -> HttpShard:
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

    def placement(self, jids: Iterable[str], since: dict[str, int], timeout: float = 5.0) -> dict[str, list[str]]:
        """bare JID -> the instances whose log shows it authenticating since `since`."""
        want = {j.split("/", 1)[0].lower() for j in jids if j}
        deadline = time.monotonic() + timeout
        while True:
            seen = {i.name: i.authenticated_since(since.get(i.name, 0)) for i in self.instances}
            out = {j: [n for n, s in seen.items() if j in s] for j in want}
            if all(out.values()) or time.monotonic() > deadline:
                return out
            time.sleep(0.1)

    def room_instances(self, joined: list[dict], since: dict[str, int]) -> dict[str, set[str]]:
        """room -> the set of instances its participants (events from run_plan) landed on."""
        where = self.placement([e["jid"] for e in joined if e.get("jid")], since)
        rooms: dict[str, set[str]] = {}
        for e in joined:
            bare = (e.get("jid") or "").split("/", 1)[0].lower()
            rooms.setdefault(e["room"], set()).update(where.get(bare, []) or ["?"])
        return rooms

    def proxy_config(self, proxy_opts: dict, *, names: Optional[list[str]] = None,
                     **route_opts) -> ProxyConfig:
        """An http listener is added by the caller (ProxyFactory.start with listener opts);
        this gives the backends (the instances' HTTP ports) and the hashed rooms route."""
        cfg = ProxyConfig(proxy=dict(proxy_opts))
        names = names or [i.name for i in self.instances]
        for n in names:
            cfg.add_backend(n, self[n].http_address)
        cfg.add_route([MEET], names, name="rooms", balance="hash", hash_key="room",
                      listeners=["web"], **route_opts)
        return cfg


# --------------------------------------------------------------------------------------------
# strophe.js participants (tests/web/participant.mjs under Node)

def node_ready() -> Optional[str]:
    """None if Node and the npm packages are there, else what is missing."""
    if not shutil.which("node"):
        return "node not on PATH (Debian's nodejs; scripts/setup.sh installs it)"
    if not (WEB / "node_modules" / "strophe.js").is_dir():
        return f"{WEB}/node_modules missing: run scripts/setup.sh (npm ci --prefix tests/web)"
    return None


def wait_http(port: int, proc: Optional[subprocess.Popen] = None, timeout: float = 10.0) -> None:
    """Until something accepts on 127.0.0.1:port (a web server just started)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"exited with {proc.returncode}: {err[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def ws_url(host: str, port: int, room: Optional[str] = None) -> str:
    return f"ws://{host}:{port}{WS_PATH}" + (f"?room={room}" if room else "")


def bosh_url(host: str, port: int, room: Optional[str] = None) -> str:
    return f"http://{host}:{port}{BOSH_PATH}" + (f"?room={room}" if room else "")


def participants(port: int, rooms: dict[str, int], *, bosh_every: int = 0, host: str = MEET,
                 nick: str = "p") -> list[dict]:
    """A plan's participants: `rooms` maps room -> count; every `bosh_every`-th participant (of
    the whole plan, 1-based) uses BOSH, the others WebSocket. URLs name `host` (the Host
    header); the plan's `resolve` makes them connect to 127.0.0.1."""
    out = []
    k = 0
    for room, count in rooms.items():
        for i in range(count):
            k += 1
            bosh = bosh_every and k % bosh_every == 0
            url = bosh_url(host, port, room) if bosh else ws_url(host, port, room)
            out.append({"id": f"{room}/{nick}{i}", "url": url, "room": room, "nick": f"{nick}{i}",
                        "expect": count})
    return out


def make_plan(parts: list[dict], *, chat: bool = False, hold: bool = False, timeout: float = 20,
              resolve: str = "127.0.0.1") -> dict:
    return {"domain": MEET, "muc": MUC, "timeout": timeout, "resolve": resolve, "chat": chat,
            "hold": hold, "participants": parts}


@dataclass
class PlanResult:
    rc: Optional[int]
    events: list[dict]
    stderr: str

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e.get("event") == kind]

    @property
    def joined(self) -> list[dict]:
        return self.of("joined")

    def failures(self) -> list[dict]:
        return [e for e in self.of("joined") + self.of("chat") if not e.get("ok")]

    def summary(self, n: int = 12) -> str:
        bad = self.failures()
        lines = [f"rc={self.rc}, {len(self.joined)} joined events, {len(bad)} failures"]
        lines += [json.dumps(e) for e in bad[:n]]
        if self.stderr.strip():
            lines.append("stderr: " + self.stderr.strip()[-2000:])
        return "\n".join(lines)


def _node_cmd(plan_file: Path) -> list[str]:
    return ["node", str(PARTICIPANT), "--plan-file", str(plan_file)]


def run_plan(plan: dict, workdir: Path, timeout: float = 60) -> PlanResult:
    """Run one Node process for the plan to its end; every JSON line it printed."""
    workdir.mkdir(parents=True, exist_ok=True)
    n = len(list(workdir.glob("plan-*.json")))
    pf = workdir / f"plan-{n:03d}.json"
    pf.write_text(json.dumps(plan, indent=1))
    try:
        r = subprocess.run(_node_cmd(pf), capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, cwd=str(WEB))
        rc, so, se = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        rc = None
        so = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        se = ((e.stderr or b"").decode() if isinstance(e.stderr, bytes) else (e.stderr or "")) \
            + f"\n(killed after {timeout}s)"
    (workdir / f"plan-{n:03d}.out").write_text(so + "\n--- stderr ---\n" + se)
    return PlanResult(rc, _parse_lines(so), se)


def _parse_lines(text: str) -> list[dict]:
    events = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return events


class Meeting:
    """A held plan (hold = true): a Node process that stays in its rooms and obeys commands."""

    def __init__(self, plan: dict, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        n = len(list(workdir.glob("meeting-*.json")))
        self.plan_file = workdir / f"meeting-{n:03d}.json"
        self.plan_file.write_text(json.dumps({**plan, "hold": True}, indent=1))
        self.err_path = workdir / f"meeting-{n:03d}.stderr"
        self._err = open(self.err_path, "w")
        self.proc = subprocess.Popen(_node_cmd(self.plan_file), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, text=True,
                                     cwd=str(WEB), bufsize=1, start_new_session=True)
        self.events: list[dict] = []
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            for e in _parse_lines(line):
                with self._cv:
                    self.events.append(e)
                    self._cv.notify_all()
        with self._cv:
            self.events.append({"event": "eof"})
            self._cv.notify_all()

    def wait_event(self, kind: str, after: int = 0, timeout: float = 30) -> tuple[int, dict]:
        """The first event of `kind` at index >= after: (index, event). Raises on EOF/timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for i in range(after, len(self.events)):
                    if self.events[i].get("event") == kind:
                        return i, self.events[i]
                    if self.events[i].get("event") == "eof":
                        raise RuntimeError(f"participant process ended before {kind!r}: "
                                           f"rc={self.proc.poll()} stderr={self.stderr()[-1500:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind!r} event within {timeout}s")
                self._cv.wait(left)

    def since(self, i: int, kind: str) -> list[dict]:
        with self._cv:
            return [e for e in self.events[i:] if e.get("event") == kind]

    def ready(self, timeout: float = 40) -> list[dict]:
        i, _ = self.wait_event("ready", 0, timeout)
        return self.since(0, "joined")

    def command(self, cmd: dict, until: str, timeout: float = 30) -> tuple[int, dict]:
        with self._cv:
            start = len(self.events)
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        i, e = self.wait_event(until, start, timeout)
        return start, e

    def chat(self, ids: Optional[list[str]] = None, timeout: float = 30) -> tuple[bool, list[dict]]:
        start, e = self.command({"cmd": "chat", "ids": ids}, "chat-done", timeout)
        return e["ok"], self.since(start, "chat")

    def status(self) -> dict[str, bool]:
        _, e = self.command({"cmd": "status"}, "status", 10)
        return {p["id"]: p["connected"] for p in e["participants"]}

    def join(self, parts: list[dict], timeout: float = 40) -> tuple[bool, list[dict]]:
        start, e = self.command({"cmd": "join", "participants": parts}, "join-done", timeout)
        return e["ok"], self.since(start, "joined")

    def stderr(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self, timeout: float = 15) -> Optional[int]:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "leave"}) + "\n")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._err.close()
        return self.proc.returncode


# --------------------------------------------------------------------------------------------
# Raw HTTP and a stdlib WebSocket XMPP client

@dataclass
class HttpReply:
    status: Optional[int]          # None: closed without a status line
    head: bytes
    body: bytes
    closed: bool
    elapsed: float                 # seconds from the last byte sent to the reply (or close)

    def header(self, name: str) -> Optional[str]:
        for line in self.head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == name.lower().encode():
                return v.strip().decode("latin-1")
        return None


def _read_reply(s: socket.socket, timeout: float, t_sent: float) -> HttpReply:
    buf = b""
    status = None
    closed = False
    deadline = time.monotonic() + timeout
    s.setblocking(False)
    elapsed = None
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            data = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        except BlockingIOError:
            continue
        if not data:
            closed = True
            break
        if elapsed is None:
            elapsed = time.monotonic() - t_sent
        buf += data
        if b"\r\n\r\n" in buf:
            head, _, body = buf.partition(b"\r\n\r\n")
            m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
            status = int(m.group(1)) if m else None
            clen = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if clen and len(body) >= int(clen.group(1)):
                break
            if status in (101,):
                break
    if elapsed is None:
        elapsed = time.monotonic() - t_sent
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return HttpReply(int(m.group(1)) if m else status, head, body, closed, elapsed)


def http_raw(port: int, pieces, *, host: str = "127.0.0.1", gap: float = 0.0,
             timeout: float = 10.0) -> HttpReply:
    """Send raw bytes (one piece or several, `gap` seconds apart; stops sending if the peer
    answers or closes), then read one reply."""
    if isinstance(pieces, (bytes, bytearray)):
        pieces = [bytes(pieces)]
    s = socket.create_connection((host, port), timeout=5)
    try:
        t_sent = time.monotonic()
        for i, p in enumerate(pieces):
            if i and gap:
                r, _, _ = select.select([s], [], [], gap)
                if r:                     # answered (or closed) early: read that
                    break
            try:
                s.sendall(p)
            except (BrokenPipeError, ConnectionResetError):
                break
            t_sent = time.monotonic()
        return _read_reply(s, timeout, t_sent)
    finally:
        s.close()


def ws_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(path: str, host: str = MEET, protocol: Optional[str] = "xmpp",
                    extra: str = "") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {ws_key()}", "Sec-WebSocket-Version: 13"]
    if protocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


class WsXmpp:
    """A minimal XMPP-over-WebSocket client (RFC 6455 + RFC 7395) on a blocking socket: enough
    for an anonymous login, a MUC join, pings and raw frames. Every server frame is one whole
    top-level element (Prosody sends it so)."""

    def __init__(self, port: int, room: Optional[str] = None, *, host: str = "127.0.0.1",
                 host_header: str = MEET, domain: str = MEET, timeout: float = 10.0,
                 tls: Optional["ssl.SSLContext"] = None):
        self.domain = domain
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:  # wss://: SNI and certificate check on the Host's name
            self.sock = tls.wrap_socket(self.sock, server_hostname=host_header)
        self.buf = b""
        self.jid: Optional[str] = None
        self._n = 0
        path = WS_PATH + (f"?room={room}" if room else "")
        self.sock.sendall(upgrade_request(path, host_header))
        head = self._read_head()
        m = re.match(rb"HTTP/1\.1 (\d{3})", head)
        self.status = int(m.group(1)) if m else None
        if self.status != 101:
            raise ConnectionError(f"upgrade refused: {head[:300]!r}")
        proto = re.search(rb"(?im)^sec-websocket-protocol:\s*(\S+)", head)
        if not proto or proto.group(1).lower() != b"xmpp":
            raise ConnectionError(f"no Sec-WebSocket-Protocol: xmpp in {head!r}")

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        return data

    def _read_head(self) -> bytes:
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        return head

    def send_frame(self, payload: bytes, opcode: int = 1, fin: bool = True) -> None:
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            hdr = bytes([b0, 0x80 | n])
        elif n < 65536:
            hdr = bytes([b0, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            hdr = bytes([b0, 0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(hdr + mask + masked)

    def send(self, xml: str) -> None:
        self.send_frame(xml.encode())

    def recv_frame(self, timeout: Optional[float] = None) -> tuple[int, bytes]:
        self.sock.settimeout(timeout or self.timeout)
        while True:
            if len(self.buf) >= 2:
                b0, b1 = self.buf[0], self.buf[1]
                n = b1 & 0x7F
                off = 2
                if n == 126:
                    if len(self.buf) < 4:
                        n = None
                    else:
                        n, off = int.from_bytes(self.buf[2:4], "big"), 4
                elif n == 127:
                    if len(self.buf) < 10:
                        n = None
                    else:
                        n, off = int.from_bytes(self.buf[2:10], "big"), 10
                if n is not None and b1 & 0x80:
                    off += 4           # servers do not mask; tolerate it anyway
                if n is not None and len(self.buf) >= off + n:
                    payload = self.buf[off:off + n]
                    if b1 & 0x80:
                        mk = self.buf[off - 4:off]
                        payload = bytes(c ^ mk[i % 4] for i, c in enumerate(payload))
                    self.buf = self.buf[off + n:]
                    opcode = b0 & 0x0F
                    if opcode == 0x9:      # ping -> pong
                        self.send_frame(payload, opcode=0xA)
                        continue
                    return opcode, payload
            self.buf += self._recv()

    def recv_xml(self, timeout: Optional[float] = None) -> ET.Element:
        while True:
            op, payload = self.recv_frame(timeout)
            if op == 0x8:
                raise EOFError(f"websocket closed: {payload!r}")
            if op == 0x1 and payload.strip():
                return ET.fromstring(payload)

    def wait_for(self, pred, timeout: Optional[float] = None) -> ET.Element:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching element")
            el = self.recv_xml(left)
            if pred(el):
                return el

    def _open(self) -> ET.Element:
        self.send(f"<open xmlns='{FRAMING_NS}' to='{self.domain}' version='1.0'/>")
        self.wait_for(lambda e: e.tag == f"{{{FRAMING_NS}}}open")
        return self.wait_for(lambda e: e.tag.endswith("}features"))

    def login_anonymous(self) -> str:
        feats = self._open()
        mechs = [m.text for m in feats.iter(f"{{{SASL_NS}}}mechanism")]
        if "ANONYMOUS" not in mechs:
            raise RuntimeError(f"no SASL ANONYMOUS offered: {mechs}")
        self.send(f"<auth xmlns='{SASL_NS}' mechanism='ANONYMOUS'/>")
        r = self.wait_for(lambda e: e.tag in (f"{{{SASL_NS}}}success", f"{{{SASL_NS}}}failure"))
        if r.tag.endswith("failure"):
            raise RuntimeError(f"SASL failure: {ET.tostring(r)!r}")
        self._open()
        self.send(f"<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='{BIND_NS}'/></iq>")
        r = self.wait_for(lambda e: e.get("id") == "bind1")
        jid = r.find(f".//{{{BIND_NS}}}jid")
        if jid is None:
            raise RuntimeError(f"bind failed: {ET.tostring(r)!r}")
        self.jid = jid.text
        return self.jid

    def join(self, room: str, nick: str, timeout: Optional[float] = None) -> set[str]:
        """Join room@MUC; return the occupants' nicks seen up to the self-presence (110)."""
        rj = f"{room}@{MUC}"
        self.send(f"<presence xmlns='jabber:client' to='{rj}/{nick}'><x xmlns='{MUC_NS}'/></presence>")
        seen: set[str] = set()
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            el = self.wait_for(lambda e: e.tag.endswith("}presence"), max(0.1, deadline - time.monotonic()))
            frm = el.get("from", "")
            if not frm.lower().startswith(rj.lower() + "/"):
                continue
            if el.get("type") == "error":
                raise RuntimeError(f"join refused: {ET.tostring(el)!r}")
            seen.add(frm.split("/", 1)[1])
            if any(s.get("code") == "110" for s in el.iter(f"{{{MUC_USER_NS}}}status")):
                return seen

    def ping(self, timeout: float = 5.0) -> bool:
        self._n += 1
        pid = f"ping{self._n}"
        self.send(f"<iq xmlns='jabber:client' type='get' id='{pid}' to='{self.domain}'>"
                  f"<ping xmlns='urn:xmpp:ping'/></iq>")
        r = self.wait_for(lambda e: e.get("id") == pid, timeout)
        return r.get("type") == "result"

    def close(self) -> None:
        try:
            self.send(f"<close xmlns='{FRAMING_NS}'/>")
            self.send_frame(b"\x03\xe8", opcode=0x8)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def bosh_body(rid: int, sid: Optional[str] = None, **attrs) -> str:
    a = {"rid": str(rid), "xmlns": "http://jabber.org/protocol/httpbind"}
    if sid:
        a["sid"] = sid
    a.update(attrs)
    return "<body " + " ".join(f"{k}='{v}'" for k, v in a.items()) + "/>"


def bosh_session_request(host_header: str = MEET, room: str = "r") -> bytes:
    """A XEP-0206 session creation request on one connection (raw HTTP)."""
    body = (f"<body content='text/xml; charset=utf-8' hold='1' rid='1000' to='{MEET}' ver='1.6' "
            f"wait='5' xml:lang='en' xmpp:version='1.0' xmlns='http://jabber.org/protocol/httpbind' "
            f"xmlns:xmpp='urn:xmpp:xbosh'/>").encode()
    return (f"POST {BOSH_PATH}?room={room} HTTP/1.1\r\nHost: {host_header}\r\n"
            f"Content-Type: text/xml; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


# --------------------------------------------------------------------------------------------
# BOSH over one keep-alive connection, several sessions in turn

BOSH_NS = "http://jabber.org/protocol/httpbind"
XBOSH_NS = "urn:xmpp:xbosh"


class KeepAliveHttp:
    """One TCP connection carrying request after request (HTTP/1.1 keep-alive): a closed
    connection is an error, never silently reopened."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 15.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.requests = 0

    def close(self) -> None:
        self.sock.close()

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"the connection closed after {self.requests} request(s)")
        self.buf += data

    def post(self, path: str, body: str, host: str = MEET) -> tuple[int, dict[str, str], bytes]:
        raw = body.encode()
        self.sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml; charset=utf-8\r\n"
                          f"Content-Length: {len(raw)}\r\n\r\n".encode() + raw)
        self.requests += 1
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        if "content-length" in fields:
            n = int(fields["content-length"])
            while len(self.buf) < n:
                self._more()
            out, self.buf = self.buf[:n], self.buf[n:]
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._more()
                size_line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self._more()
                out += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        else:
            raise AssertionError(f"an unframed response on a keep-alive connection: {head!r}")
        return status, fields, out


class BoshSession:
    """A BOSH session (XEP-0124/0206) whose requests go over a given KeepAliveHttp connection,
    one at a time (hold = 1, a short wait, so a poll comes back quickly)."""

    def __init__(self, http: KeepAliveHttp, room: Optional[str], domain: str = MEET, wait: int = 1):
        """room None: requests without ?room= (the proxy keeps them on the session's owner)."""
        self.http, self.room, self.domain, self.wait = http, room, domain, wait
        self.path = f"{BOSH_PATH}?room={room}" if room else BOSH_PATH
        self.rid = 4000 + (abs(hash(room)) % 100000)
        self.sid: Optional[str] = None
        self.jid: Optional[str] = None
        self.shard_headers: set[str] = set()
        self.pending: list[ET.Element] = []

    def request(self, inner: str = "", **attrs: str) -> ET.Element:
        self.rid += 1
        a = {"rid": str(self.rid), "xmlns": BOSH_NS, **attrs}
        if self.sid:
            a["sid"] = self.sid
        text = "<body " + " ".join(f"{k}='{v}'" for k, v in a.items()) + ">" + inner + "</body>"
        status, fields, body = self.http.post(self.path, text)
        if status != 200:
            raise RuntimeError(f"BOSH request answered {status}: {body[:200]!r}")
        if "x-jitsi-shard" in fields:
            self.shard_headers.add(fields["x-jitsi-shard"])
        root = ET.fromstring(body)
        if root.get("type") == "terminate":
            raise RuntimeError(f"BOSH session terminated: {body[:300]!r}")
        self.pending.extend(list(root))
        return root

    def wait_for(self, pred, polls: int = 20) -> ET.Element:
        for _ in range(polls):
            for i, el in enumerate(self.pending):
                if pred(el):
                    del self.pending[i]
                    return el
            self.request()
        raise TimeoutError("BOSH: the expected element did not come")

    def login_anonymous(self) -> str:
        root = self.request(to=self.domain, wait=str(self.wait), hold="1", ver="1.6",
                            **{"xml:lang": "en", "xmpp:version": "1.0", "xmlns:xmpp": XBOSH_NS})
        self.sid = root.get("sid")
        if not self.sid:
            raise RuntimeError("no sid in the session creation response")
        self.wait_for(lambda e: e.tag.endswith("}features"))
        self.request(f"<auth xmlns='{SASL_NS}' mechanism='ANONYMOUS'/>")
        self.wait_for(lambda e: e.tag == f"{{{SASL_NS}}}success")
        self.request(**{"xmpp:restart": "true", "xmlns:xmpp": XBOSH_NS, "to": self.domain})
        self.wait_for(lambda e: e.tag.endswith("}features"))
        self.request(f"<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='{BIND_NS}'/></iq>")
        r = self.wait_for(lambda e: e.get("id") == "bind1")
        jid = r.find(f".//{{{BIND_NS}}}jid")
        if jid is None:
            raise RuntimeError("bind failed")
        self.jid = jid.text
        return self.jid

    def join(self, nick: str, room: Optional[str] = None) -> None:
        rj = f"{room or self.room}@{MUC}"
        self.request(f"<presence xmlns='jabber:client' to='{rj}/{nick}'><x xmlns='{MUC_NS}'/></presence>")
        self.wait_for(lambda e: e.tag.endswith("}presence") and e.get("from", "").lower() == f"{rj}/{nick}".lower()
                      and any(s.get("code") == "110" for s in e.iter(f"{{{MUC_USER_NS}}}status")))

    def terminate(self) -> None:
        self.rid += 1
        status, _, _ = self.http.post(self.path,
                                      f"<body rid='{self.rid}' sid='{self.sid}' type='terminate' xmlns='{BOSH_NS}'/>")
        if status != 200:
            raise RuntimeError(f"BOSH terminate answered {status}")
