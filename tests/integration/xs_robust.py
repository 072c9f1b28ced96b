"""Support for the robustness tests (test_hostile_*.py, test_failing_backends.py) and the soak
driver (tests/soak): the proxy's resources seen from outside (open descriptors, RSS, the
connection and session gauges of /metrics), an honest client probing the proxy in the
background while it is under attack, misbehaving fake backends, and anonymous logins on raw
sockets.

Read-only user of conftest.py, xs_clients.py, xs_fakes.py and deploy/xs_local.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Callable, Optional

from xs_clients import RawClient, header
from xs_local import free_port, wait_port

FEATURES_RX = rb"</(?:\w+:)?features>"
STREAM_HEADER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                 b"xmlns:stream='http://etherx.jabber.org/streams' id='fake' version='1.0' "
                 b"from='%s'><stream:features/>")
_HEADER_END = re.compile(rb"<(?!\?|!)[^>]*>")


# --------------------------------------------------------------------------------------------
# the proxy's resources

def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_names(pid: int) -> dict[int, str]:
    out = {}
    for n in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(n)] = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            pass
    return out


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_for(pred: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def scrape(port: int, timeout: float = 5.0) -> dict[str, float]:
    """GET /metrics -> {'name{labels}': value} (histogram buckets included)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        out[key] = float(val)
    return out


def family_sum(metrics: dict[str, float], name: str) -> float:
    """Sum of every series of the family `name` (all label sets)."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def with_metrics(cfg) -> int:
    """Turn the proxy's metrics endpoint on (a free port) in a ProxyConfig; returns the port."""
    port = free_port()
    cfg.proxy["metrics"] = f"127.0.0.1:{port}"
    return port


class Resources:
    """The proxy's open descriptors (and, with metrics, its connection and session gauges)
    at a quiet moment, to check that they come back after a test's storm."""

    def __init__(self, px, metrics_port: Optional[int] = None):
        self.px = px
        self.mport = metrics_port
        if metrics_port is not None:
            # The proxy reports ready once its XMPP listeners accept; the metrics server binds a
            # moment later (on the daemon's loop), which under a sanitizer can be after a scrape.
            wait_port("127.0.0.1", metrics_port, timeout=10, proc=px.proc, what="the metrics endpoint")
            scrape(metrics_port)          # the metrics server's first use opens what it keeps
        # The baseline: a count that holds still for half a second (worker threads finish
        # setting up their loops after the proxy reports ready).
        last, since = fd_count(px.proc.pid), time.monotonic()
        deadline = since + 5
        while time.monotonic() - since < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
            now = fd_count(px.proc.pid)
            if now != last:
                last, since = now, time.monotonic()
        self.fds = last
        self.fd_names = fd_names(px.proc.pid)
        self.rss = rss_kib(px.proc.pid)

    def loop_reserves(self) -> int:
        """libuv opens /dev/null once per event loop, when the loop's first TCP handle is made
        (uv__stream_init: loop->emfile_fd, its EMFILE reserve). A worker that had no connection
        yet at the baseline opens it later: up to 8 such descriptors are not a leak."""
        names = fd_names(self.px.proc.pid)
        new_null = sum(1 for n, v in names.items() if v == "/dev/null" and self.fd_names.get(n) != v)
        return min(new_null, 8)

    def gauges(self) -> tuple[float, float]:
        m = scrape(self.mport)
        return (family_sum(m, "xmpp_shard_connections_active"),
                family_sum(m, "xmpp_shard_sessions_active"))

    def settled(self, slack: int = 0) -> bool:
        if fd_count(self.px.proc.pid) > self.fds + slack + self.loop_reserves():
            return False
        return self.mport is None or self.gauges() == (0.0, 0.0)

    def assert_back(self, timeout: float = 5.0, slack: int = 0, what: str = "") -> None:
        """Descriptors back to the baseline (and both gauges at 0) within `timeout`."""
        ok = wait_for(lambda: self.settled(slack), timeout, 0.1)
        if ok:
            return
        now = fd_count(self.px.proc.pid)
        msg = (f"proxy resources did not return to baseline within {timeout:g}s{' ' + what if what else ''}: "
               f"fds {now} (baseline {self.fds})")
        if self.mport is not None:
            c, s = self.gauges()
            msg += f", connections_active {c:g}, sessions_active {s:g}"
        names = fd_names(self.px.proc.pid)
        extra = sorted(f"{n}:{v}" for n, v in names.items() if self.fd_names.get(n) != v)
        raise AssertionError(msg + f"\nnew since the baseline: {extra[:40]}\n{self.px.stderr_tail(20)}")


# --------------------------------------------------------------------------------------------
# sockets

def rst_close(s: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0) instead of a FIN."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def read_until(s: socket.socket, pattern: bytes, timeout: float) -> tuple[bytes, bool]:
    """Read until `pattern` (regex) matches, the peer closes, or the timeout.
    Returns (data, closed)."""
    data = b""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while not rx.search(data):
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            return data, False
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not d:
            return data, True
        data += d
    return data, False


def wait_closed(s: socket.socket, timeout: float) -> Optional[float]:
    """Seconds until the peer closes (EOF or reset), reading and dropping; None on timeout."""
    t0 = time.monotonic()
    while True:
        left = t0 + timeout - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            return None
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
        if not d:
            return time.monotonic() - t0


def stream_opens(port: int, domain: str, timeout: float = 5.0) -> Optional[float]:
    """An honest client: send a stream header for `domain`, wait for the server's features.
    Returns the seconds it took, or None if no features came."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return None
    try:
        s.sendall(header(domain))
        data, _ = read_until(s, FEATURES_RX, timeout)
        return time.monotonic() - t0 if re.search(FEATURES_RX, data) else None
    except OSError:
        return None
    finally:
        s.close()


class HonestProbe:
    """In a thread: an honest stream open every `every` seconds for as long as it runs.
    with HonestProbe(port, domain) as p: ...   then p.failures, p.latencies, p.summary()."""

    def __init__(self, port: int, domain: str, every: float = 0.25, timeout: float = 5.0):
        self.port, self.domain, self.every, self.timeout = port, domain, every, timeout
        self.latencies: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True, name="honest-probe")

    def _run(self) -> None:
        while not self._stop.is_set():
            took = stream_opens(self.port, self.domain, self.timeout)
            if took is None:
                self.failures += 1
            else:
                self.latencies.append(took)
            self._stop.wait(self.every)

    def __enter__(self) -> "HonestProbe":
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join(self.timeout + 2)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("nan"))

    def summary(self) -> str:
        n = len(self.latencies)
        if not n:
            return f"0 ok, {self.failures} failed"
        lat = sorted(self.latencies)
        return (f"{n} ok, {self.failures} failed, median {lat[n // 2] * 1000:.0f} ms, "
                f"worst {lat[-1] * 1000:.0f} ms")

    def check(self, max_latency: float = 5.0, min_ok: int = 1) -> None:
        # A starved honest client waits for the whole attack (tens of seconds); 5 s leaves room
        # for a machine busy with other jobs (one run saw 2.4 s at load average 7).
        assert self.failures == 0, f"honest clients failed during the attack: {self.summary()}"
        assert len(self.latencies) >= min_ok, f"too few honest probes ran: {self.summary()}"
        assert self.worst <= max_latency, f"an honest client waited too long: {self.summary()}"


# --------------------------------------------------------------------------------------------
# misbehaving backends

class BadBackend:
    """A TCP listener on 127.0.0.1 whose connections misbehave after reading the replayed
    stream header (the client's bytes up to the header's '>'):

    close_after_header   closes without answering
    answer_then_close    answers (stream header + features), then closes
    reset_mid_stanza     answers, sends half a stanza, then resets (SO_LINGER 0)
    slow_reader          answers, then reads `read_rate` bytes per second (small receive buffer)
    push                 answers, then sends `push_bytes` bytes as fast as the proxy takes them
    echo                 answers, then echoes (a well-behaved backend, for baselines)
    blackhole            never accepts: listen backlog filled, further SYNs are dropped, so a
                         connect() to it never completes (see BlackHole)
    """

    MODES = ("close_after_header", "answer_then_close", "reset_mid_stanza", "slow_reader",
             "push", "echo")

    def __init__(self, mode: str, *, push_bytes: int = 0, read_rate: int = 4096):
        assert mode in self.MODES, mode
        self.mode = mode
        self.push_bytes = push_bytes
        self.read_rate = read_rate
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if mode == "slow_reader":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.pushed = 0          # bytes the push mode got into the kernel
        self.received = 0        # bytes read after the header
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closing = False
        self._threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept_loop, daemon=True, name=f"bad-{mode}")
        t.start()
        self._threads.append(t)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                if self._closing:
                    c.close()
                    return
                self.accepted += 1
                self._conns.append(c)
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, c: socket.socket) -> None:
        try:
            buf = b""
            while not _HEADER_END.search(buf):
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            m = re.search(rb"""\bto=(['"])([^'"]*)\1""", buf)
            answer = STREAM_HEADER % (m.group(2) if m else b"fake")
            if self.mode == "close_after_header":
                c.close()
                return
            c.sendall(answer)
            if self.mode == "answer_then_close":
                c.close()
                return
            if self.mode == "reset_mid_stanza":
                c.sendall(b"<message to='x@y' id='m1'><body>half a sta")
                time.sleep(0.2)
                rst_close(c)
                return
            if self.mode == "push":
                chunk = b"<presence/>" * 5958      # ~64 KiB of complete stanzas
                while self.pushed < self.push_bytes and not self._closing:
                    n = c.send(chunk[:min(len(chunk), self.push_bytes - self.pushed)])
                    with self._lock:
                        self.pushed += n
                while not self._closing:          # then hold until the proxy closes
                    if not c.recv(65536):
                        return
                return
            if self.mode == "slow_reader":
                while not self._closing:
                    d = c.recv(self.read_rate // 4)
                    if not d:
                        return
                    with self._lock:
                        self.received += len(d)
                    time.sleep(0.25)
            if self.mode == "echo":
                while True:
                    d = c.recv(65536)
                    if not d:
                        return
                    with self._lock:
                        self.received += len(d)
                    c.sendall(d)
        except OSError:
            return
        finally:
            if self.mode not in ("reset_mid_stanza",):
                try:
                    c.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class BlackHole:
    """An address on loopback where connect() never completes, without iptables: a listener
    with listen(0) that never accepts, whose accept queue is filled by our own connections.
    Linux then drops further SYNs (the listen queue overflows: no SYN-ACK, no RST), so the
    connecting side retransmits its SYN until its own timeout, like a black-holed route."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers: list[socket.socket] = []
        for _ in range(8):
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(f)
        time.sleep(0.2)
        assert self.is_black(), "the accept queue did not fill: connects still complete"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def is_black(self, timeout: float = 0.5) -> bool:
        p = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        p.settimeout(timeout)
        try:
            p.connect(("127.0.0.1", self.port))
            return False
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            rst_close(p)

    def close(self) -> None:
        for f in self.fillers:
            rst_close(f)
        self.sock.close()


# --------------------------------------------------------------------------------------------
# anonymous logins on raw sockets (no account registration needed)

async def anonymous_session(port: int, domain: str, timeout: float = 10.0) -> RawClient:
    """Open a stream, SASL ANONYMOUS, restart, bind: a live session through the proxy."""
    c = await RawClient.open(port, domain, timeout=timeout)
    await c.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
    got = await c.read_until(rb"<success[^>]*?(?:/>|>.*?</success>)|</failure>", timeout)
    if b"<success" not in got:
        raise RuntimeError(f"SASL ANONYMOUS failed on {domain}: {got!r}")
    await c.send(header(domain, decl=False))
    await c.read_until(FEATURES_RX, timeout)
    await c.send(b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    got = await c.read_until(rb"</iq>", timeout)
    if b"<jid>" not in got:
        raise RuntimeError(f"bind failed: {got!r}")
    return c


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    errors: dict = field(default_factory=dict)

    def fail(self, why: str) -> None:
        self.failed += 1
        key = why[:80]
        self.errors[key] = self.errors.get(key, 0) + 1

    def __str__(self) -> str:
        top = ", ".join(f"{k} x{v}" for k, v in sorted(self.errors.items(), key=lambda kv: -kv[1])[:4])
        return f"{self.ok} ok, {self.failed} failed" + (f" ({top})" if top else "")
