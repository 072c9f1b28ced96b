"""Hostile clients (the robustness issue): slowloris, a 1 MB header, a flood of silent
connections, deep nesting and huge attribute values, HTTP and TLS on the plaintext port,
half-open connections, a client that never reads while its backend pushes 100 MB, and resets
(SO_LINGER 0) in every session state.

Every test keeps an honest client going at the same time (xs_robust.HonestProbe: a stream
header for meet.test answered by the real Prosody through the proxy, every 250 ms; some also log
in with slixmpp), and checks at the end that the proxy's open descriptors and its
connections_active / sessions_active gauges are back to where they were.
"""

import asyncio
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import CLIENT
from xs_clients import assert_stream_error, exchange, header, login, parse_stream_error, tls_client_hello
from xs_robust import (BadBackend, BlackHole, HonestProbe, Resources, fd_count, read_until, rss_kib,
                       rst_close, stream_opens,
                       scrape, family_sum, wait_closed, wait_for, with_metrics,
                       FEATURES_RX)

MB = 1 << 20


def hostile_proxy(cluster, proxies, **opts):
    """The standard layout (meet.test -> Prosody 'client'), metrics on; returns (px, Resources)."""
    base = {"header_timeout": "2s", "close_linger": "2s"}
    cfg = cluster.proxy_config(**{**base, **opts})
    mport = with_metrics(cfg)
    px = proxies.start(cfg)
    return px, Resources(px, mport), cfg


def honest_login(cluster, port) -> str:
    jid = f"alice@{CLIENT}"
    r = login(port, jid, cluster.password(jid), timeout=15)
    assert r.ok, f"an honest slixmpp login failed during the attack: {r}"
    return f"{r.elapsed:.2f}s"


def in_thread(fn, *args):
    out = {}

    def run():
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001
            out["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()

    def result(timeout=60):
        t.join(timeout)
        if "error" in out:
            raise out["error"]
        return out.get("value")
    return result


# -------------------------------------------------------------------------------------------
# slowloris

SLOWLORIS = int(os.environ.get("XS_IT_SLOWLORIS", "2000"))
SLOWLORIS_SECONDS = float(os.environ.get("XS_IT_SLOWLORIS_SECONDS", "6"))


async def slowloris(port: int, conns: int, duration: float, hdr: bytes) -> dict:
    """`conns` connections, each sending its header one byte per second; when the proxy closes
    one, it reconnects, until `duration` has passed."""
    st = {"opened": 0, "connect_failed": 0, "timeouts": 0, "other": [], "delays": []}
    end = time.monotonic() + duration

    async def one(i: int):
        await asyncio.sleep(i / conns)            # open them over one second
        while time.monotonic() < end:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            except (OSError, asyncio.TimeoutError):
                st["connect_failed"] += 1
                await asyncio.sleep(0.5)
                continue
            st["opened"] += 1
            t0 = time.monotonic()
            data, k = b"", 0
            try:
                while True:
                    if k < len(hdr):
                        w.write(hdr[k:k + 1])
                        k += 1
                    try:
                        d = await asyncio.wait_for(r.read(4096), 1.0)
                    except asyncio.TimeoutError:
                        continue
                    if not d:
                        break
                    data += d
            except (ConnectionResetError, BrokenPipeError):
                pass
            st["delays"].append(time.monotonic() - t0)
            if b"connection-timeout" in data:
                st["timeouts"] += 1
            else:
                st["other"].append(data[:200])
            w.transport.abort()
    await asyncio.gather(*(one(i) for i in range(conns)))
    return st


# Load tests (thousands of connections, latency bounds): run once, not again under ASan, whose
# stage covers the same header-timeout paths with the wire tests (CI time).
@pytest.mark.no_sanitizer
@pytest.mark.timeout(90)
def test_slowloris_thousands_of_one_byte_per_second_headers(cluster, proxies, figures):
    px, res, _ = hostile_proxy(cluster, proxies, header_timeout="2s")
    with HonestProbe(px.port, CLIENT) as probe:
        login_took = in_thread(lambda: (time.sleep(3), honest_login(cluster, px.port))[1])
        st = asyncio.run(slowloris(px.port, SLOWLORIS, SLOWLORIS_SECONDS, header(CLIENT)))
        took = login_took()
    delays = sorted(st["delays"])
    figures["slowloris"] = (f"{SLOWLORIS} connections x {SLOWLORIS_SECONDS:g} s: {st['opened']} opened, {st['timeouts']} "
                            f"closed with connection-timeout, close after median "
                            f"{delays[len(delays) // 2]:.2f}s / worst {delays[-1]:.2f}s; honest: "
                            f"{probe.summary()}; slixmpp login {took}")
    assert st["opened"] >= SLOWLORIS and st["connect_failed"] == 0, st
    assert not st["other"], f"{len(st['other'])} slow connections ended without connection-timeout: {st['other'][:3]}"
    assert delays[-1] < 2.0 + 3.0, f"a slow header was cut only after {delays[-1]:.2f}s (header_timeout 2s)"
    probe.check(max_latency=2.0)
    res.assert_back(timeout=5)


# -------------------------------------------------------------------------------------------
# a 1 MB header, with the default and with the largest max_header_bytes

def send_huge_header(port: int, size: int) -> tuple[bytes, bool, int]:
    """A header whose 'to' value is `size` bytes long, sent whole (a writer thread) while the
    answer is read. Returns (answer, closed, bytes the proxy took)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams' to='")
    body = head + b"a" * size + b"' version='1.0'>"
    sent = [0]

    def writer():
        try:
            for i in range(0, len(body), 65536):
                sent[0] += s.send(body[i:i + 65536])
        except OSError:
            pass
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    data, closed = read_until(s, rb"</stream:stream>", 15)
    if not closed:
        closed = wait_closed(s, 8) is not None
    t.join(5)
    s.close()
    return data, closed, sent[0]


@pytest.mark.no_sanitizer
@pytest.mark.timeout(60)
@pytest.mark.parametrize("max_header", [4096, 1 << 20])
def test_one_megabyte_headers(cluster, proxies, figures, max_header):
    px, res, _ = hostile_proxy(cluster, proxies, max_header_bytes=max_header, header_timeout="5s")
    n = 8
    rss0 = rss_kib(px.proc.pid)
    peak = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(px.proc.pid))
            time.sleep(0.02)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with HonestProbe(px.port, CLIENT) as probe:
        results = [in_thread(send_huge_header, px.port, 1_000_000) for _ in range(n)]
        outs = [r(40) for r in results]
    stop.set()
    sampler.join()
    grown = peak[0] - rss0
    figures[f"{n} x 1 MB headers, max_header_bytes={max_header}"] = \
        f"proxy RSS peak +{grown} KiB; honest: {probe.summary()}"
    for data, closed, _ in outs:
        doc = parse_stream_error(data)
        # Over the limit: policy-violation. With max_header_bytes = 1 MiB the 1,000,000-byte
        # 'to' fits in the header but is no domain: host-unknown.
        want = "policy-violation" if max_header == 4096 else "host-unknown"
        assert doc.condition == want, data[:300]
        assert closed, "the proxy kept a refused connection open"
    # Memory: the sniffer holds at most max_header_bytes per connection.
    assert grown < 8 * 1024 + n * max_header // 1024 * 3, f"proxy RSS grew by {grown} KiB"
    probe.check(max_latency=2.0)
    res.assert_back(timeout=5)


# -------------------------------------------------------------------------------------------
# a flood of connections that never send a byte

FLOOD = int(os.environ.get("XS_IT_FLOOD", "3000"))


@pytest.mark.no_sanitizer      # a load test, as slowloris above
@pytest.mark.timeout(60)
def test_flood_of_connections_that_never_send(cluster, proxies, figures):
    px, res, _ = hostile_proxy(cluster, proxies, header_timeout="2s")

    async def flood():
        conns = []
        for i in range(0, FLOOD, 250):
            opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", px.port)
                                            for _ in range(min(250, FLOOD - i))),
                                          return_exceptions=True)
            conns += [c for c in opened if not isinstance(c, BaseException)]
        t0 = time.monotonic()
        m = await asyncio.to_thread(scrape, res.mport)
        held = family_sum(m, "xmpp_shard_connections_active")

        async def outcome(r):
            data = b""
            try:
                while True:
                    d = await asyncio.wait_for(r.read(4096), 10)
                    if not d:
                        break
                    data += d
            except (ConnectionResetError, asyncio.TimeoutError):
                pass
            return data, time.monotonic() - t0
        outs = await asyncio.gather(*(outcome(r) for r, _ in conns))
        for _, w in conns:
            w.transport.abort()
        return len(conns), held, outs

    with HonestProbe(px.port, CLIENT) as probe:
        opened, held, outs = asyncio.run(flood())
    timeouts = sum(b"connection-timeout" in d for d, _ in outs)
    worst = max(t for _, t in outs)
    figures["flood of silent connections"] = (f"{opened} opened, {held:g} held at once, {timeouts} cut with "
                                              f"connection-timeout, last after {worst:.2f}s; "
                                              f"honest: {probe.summary()}")
    assert opened == FLOOD
    assert held >= FLOOD * 0.95, f"only {held:g} of {FLOOD} connections were open in the proxy"
    assert timeouts == opened, f"{opened - timeouts} silent connections ended otherwise"
    assert worst < 2.0 + 3.0
    probe.check(max_latency=2.0)
    res.assert_back(timeout=5)


# -------------------------------------------------------------------------------------------
# out of descriptors (EMFILE): accepting pauses, no spin, no crash, and it resumes

def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nofile_soft(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise RuntimeError("no open-files limit")


@pytest.mark.no_sanitizer      # measures CPU time
@pytest.mark.timeout(60)
def test_out_of_descriptors_pauses_accepting_without_spinning(cluster, proxies, figures):
    px, res, _ = hostile_proxy(cluster, proxies, header_timeout="3s")
    pid = px.proc.pid
    limit = fd_count(pid) + 30
    soft = nofile_soft(pid)
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={limit}:"], check=True)   # soft limit
    socks = []
    for _ in range(120):                  # 4x what the proxy can hold; the rest wait in the backlog
        socks.append(socket.create_connection(("127.0.0.1", px.port), timeout=5))
    time.sleep(0.5)
    held = fd_count(pid)
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(2.0)
    busy = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
    assert px.alive(), f"the proxy died out of descriptors:\n{px.stderr_tail()}"
    for s in socks:
        s.close()
    # Descriptors free again: an honest client is served within a moment.
    t1 = time.monotonic()
    took = None
    while took is None and time.monotonic() - t1 < 10:
        took = stream_opens(px.port, CLIENT, timeout=3)
    figures["out of descriptors (EMFILE)"] = \
        (f"limit {limit}, {held} open while 120 clients waited; proxy CPU {busy * 100:.1f}% of a core "
         f"while stuck; honest client served {time.monotonic() - t1:.2f}s after they left")
    assert held <= limit
    assert busy < 0.10, f"the proxy spins at {busy * 100:.0f}% of a core while out of descriptors"
    assert took is not None, "accepting did not resume once descriptors were free"
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={soft}:"], check=True)
    res.assert_back(timeout=8)


# -------------------------------------------------------------------------------------------
# deep nesting after the header, huge attribute values and many attributes in it

@pytest.mark.timeout(60)
def test_deep_nesting_and_huge_attributes(cluster, proxies, figures):
    px, res, _ = hostile_proxy(cluster, proxies, max_header_bytes=8192)
    with HonestProbe(px.port, CLIENT) as probe:
        # 1. 300,000 nested elements after a valid header: relayed to Prosody, which refuses
        #    them (stanza size limit); the proxy passes that on and closes the client.
        s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        s.sendall(header(CLIENT))
        got, _ = read_until(s, FEATURES_RX, 5)
        assert b"features" in got, got
        nested = b"<a>" * 300_000
        sent = [0]

        def writer():
            try:
                for i in range(0, len(nested), 65536):
                    s.sendall(nested[i:i + 65536])
                    sent[0] = i + 65536
            except OSError:
                pass
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        t0 = time.monotonic()
        tail, closed = read_until(s, rb"</stream:stream>", 15)
        closed_after = wait_closed(s, 10) if not closed else 0.0
        t.join(5)
        s.close()
        assert closed_after is not None, "Prosody's refusal of deep nesting did not close the client"
        figures["deep nesting (900 KB of <a>) through the proxy"] = \
            (f"Prosody answered {tail[-160:]!r} after {sent[0] // 1024} KiB, client closed "
             f"{time.monotonic() - t0:.2f}s after the flood began")

        # 2. Huge attribute values in the header itself.
        big_to = header("a" * 7000)                      # fits 8192, no domain: host-unknown
        assert_stream_error(exchange(px.port, big_to, timeout=5), "host-unknown")
        too_big = header(CLIENT, extra=" x='" + "y" * 9000 + "'")
        assert_stream_error(exchange(px.port, too_big, timeout=5), "policy-violation")
        # 3. A big but legal header: a 6,000-byte attribute and 150 more attributes reach Prosody.
        many = "".join(f" a{i}='{i}'" for i in range(150))
        legal = header(CLIENT, extra=" x='" + "y" * 6000 + "'" + many)
        assert len(legal) < 8192
        ex = exchange(px.port, legal, timeout=5, until=b"features>")
        assert b"features" in ex.data, f"a legal 8 KB header was not answered by Prosody: {ex.data[:300]!r}"
        # 4. Entity and character references by the thousand in a value.
        refs = header(CLIENT, extra=" x='" + "&#x61;&amp;" * 500 + "'")
        ex = exchange(px.port, refs, timeout=5, until=b"features>")
        assert b"features" in ex.data, ex.data[:300]
        login_took = honest_login(cluster, px.port)
    figures["honest client during nesting/attributes"] = f"{probe.summary()}; login {login_took}"
    probe.check(max_latency=2.0)
    assert px.alive()
    res.assert_back(timeout=5)


# -------------------------------------------------------------------------------------------
# HTTP and TLS on the plaintext port

HTTPS = [
    b"GET / HTTP/1.1\r\nHost: meet.test\r\n\r\n",
    b"POST /http-bind HTTP/1.1\r\nHost: meet.test\r\nContent-Length: 5\r\n\r\nhello",
    b"CONNECT meet.test:5222 HTTP/1.1\r\n\r\n",
    b"PROXY TCP4 192.0.2.1 192.0.2.2 5000 5222\r\n" + header(CLIENT),
    b"\r\n\r\nGET / HTTP/1.0\r\n\r\n",
]


@pytest.mark.timeout(60)
def test_http_and_tls_on_the_plaintext_port(cluster, proxies, figures):
    px, res, _ = hostile_proxy(cluster, proxies)
    hello = tls_client_hello(CLIENT)
    outcomes = {"http": 0, "tls": 0}
    problems = []

    def one(i):
        if i % 2:
            ex = exchange(px.port, hello, timeout=5)
            if ex.data or not ex.closed:
                problems.append(f"ClientHello got {ex.data[:100]!r}, closed={ex.closed}")
            else:
                outcomes["tls"] += 1
        else:
            req = HTTPS[(i // 2) % len(HTTPS)]
            ex = exchange(px.port, req, timeout=5)
            try:
                assert_stream_error(ex, "not-well-formed")
                outcomes["http"] += 1
            except AssertionError as e:
                problems.append(f"{req[:30]!r}: {e}")

    with HonestProbe(px.port, CLIENT) as probe:
        threads = [threading.Thread(target=lambda k=k: [one(k * 25 + j) for j in range(25)])
                   for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    figures["HTTP and TLS on the plaintext port"] = f"{outcomes}; honest: {probe.summary()}"
    assert not problems, problems[:5]
    assert outcomes == {"http": 100, "tls": 100}
    probe.check(max_latency=2.0)
    res.assert_back(timeout=5)


# -------------------------------------------------------------------------------------------
# half-open connections: the client shuts its sending side and goes on (or not) reading

@pytest.mark.timeout(60)
def test_half_open_clients(cluster, proxies, figures):
    fb = BadBackend("answer_then_close")
    try:
        cfg_opts = {"header_timeout": "2s", "close_linger": "1s"}
        cfg = cluster.proxy_config(**cfg_opts)
        cfg.add_backend("closer", fb.address)
        cfg.add_route(["closer.test"], ["closer"])
        mport = with_metrics(cfg)
        px = proxies.start(cfg)
        res = Resources(px, mport)
        seen = {}
        with HonestProbe(px.port, CLIENT) as probe:
            # a) nothing sent, then FIN: the header can never come.
            s = socket.create_connection(("127.0.0.1", px.port))
            s.shutdown(socket.SHUT_WR)
            seen["FIN before any byte"] = wait_closed(s, 5)
            s.close()
            # b) half a header, then FIN.
            s = socket.create_connection(("127.0.0.1", px.port))
            s.sendall(header(CLIENT)[:40])
            s.shutdown(socket.SHUT_WR)
            seen["FIN after half a header"] = wait_closed(s, 5)
            s.close()
            # c) a whole header, then FIN: the half-close is passed on, Prosody still answers,
            #    then closes its side; the client reads everything, then EOF.
            s = socket.create_connection(("127.0.0.1", px.port))
            s.sendall(header(CLIENT))
            s.shutdown(socket.SHUT_WR)
            data, closed = read_until(s, rb"features>", 5)
            assert b"features>" in data, f"Prosody's answer to a half-closed stream was lost: {data!r}"
            seen["FIN after the header (Prosody answers, then closes)"] = wait_closed(s, 8)
            s.close()
            # d) 100 clients half-closed after their header that then never read nor close,
            #    with a backend that answers and closes: the proxy ends them all by itself.
            socks = []
            for _ in range(100):
                s = socket.create_connection(("127.0.0.1", px.port))
                s.sendall(header("closer.test"))
                s.shutdown(socket.SHUT_WR)
                socks.append(s)
            t0 = time.monotonic()
            assert wait_for(lambda: fb.accepted >= 100, 5)
            gone = wait_for(lambda: family_sum(scrape(mport), "xmpp_shard_connections_active") == 0, 8)
            seen["100 half-closed, never-reading clients released"] = time.monotonic() - t0 if gone else None
            for s in socks:
                s.close()
        figures["half-open clients (seconds until the proxy closed)"] = \
            {k: (f"{v:.2f}" if v is not None else "never") for k, v in seen.items()} | {"honest": probe.summary()}
        for k, v in seen.items():
            assert v is not None, f"{k}: the proxy never closed the connection"
        assert seen["FIN before any byte"] <= 2.0 + 1.0
        assert seen["FIN after half a header"] <= 2.0 + 1.0
        assert seen["100 half-closed, never-reading clients released"] <= 1.0 + 3.0
        probe.check(max_latency=2.0)
        res.assert_back(timeout=5)
    finally:
        fb.close()


# -------------------------------------------------------------------------------------------
# a client that never reads while its backend pushes 100 MB

@pytest.mark.no_sanitizer
@pytest.mark.timeout(60)
def test_never_reading_client_while_backend_pushes_100_mb(cluster, proxies, figures):
    pusher = BadBackend("push", push_bytes=100 * MB)
    try:
        cfg = cluster.proxy_config(header_timeout="2s")
        cfg.add_backend("pusher", pusher.address)
        cfg.add_route(["push.test"], ["pusher"])
        mport = with_metrics(cfg)
        px = proxies.start(cfg)
        res = Resources(px, mport)
        base = rss_kib(px.proc.pid)
        with HonestProbe(px.port, CLIENT) as probe:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.connect(("127.0.0.1", px.port))
            s.sendall(header("push.test"))
            peak = base
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5:            # we never read
                peak = max(peak, rss_kib(px.proc.pid))
                time.sleep(0.05)
            pushed = pusher.pushed
            m = scrape(mport)
            rst_close(s)
        probe_summary = probe.summary()
        grown = peak - base
        figures["never-reading client, backend pushing 100 MB"] = \
            (f"proxy RSS +{grown} KiB (peak over 5 s), backend got {pushed // 1024} KiB into the "
             f"kernel before backpressure stopped it; honest: {probe_summary}")
        assert pushed < 100 * MB, "all 100 MB went through although the client read nothing"
        assert grown < 30 * 1024, f"proxy RSS grew by {grown} KiB with a client that does not read"
        assert family_sum(m, "xmpp_shard_sessions_active") == 1
        probe.check(max_latency=2.0)
        res.assert_back(timeout=5)
    finally:
        pusher.close()


# -------------------------------------------------------------------------------------------
# resets (SO_LINGER 0) in every state of a session

STATES = ["sniffing", "refusing", "queued", "connecting", "awaiting", "relaying", "closing"]
# States in which the session waits for a backend: the proxy reads the client meanwhile (into
# the bounded replay buffer), so a reset there is noticed at once, not at the state's timeout.
WAITING = {"queued", "connecting", "awaiting"}


def reset_proxy(cluster, proxies, fake_backends, workers: int, timeout: str):
    """A proxy with a route for every state; `timeout` for connect, backend and queue."""
    silent = fake_backends("silent")
    echo = fake_backends("echo")
    burst = fake_backends("burst", burst=os.urandom(8 * MB))
    hold = fake_backends("silent")
    black = BlackHole()
    cfg = cluster.proxy_config(workers=workers, header_timeout="3s", connect_timeout=timeout,
                               backend_timeout=timeout, close_linger="3s")
    cfg.add_backend("silent", silent.address)
    cfg.add_backend("echo", echo.address)
    cfg.add_backend("burst", burst.address)
    cfg.add_backend("black", black.address)
    cfg.add_backend("hold", hold.address, max_connecting=1, queue_timeout=timeout)
    cfg.add_route(["silent.test"], ["silent"])
    cfg.add_route(["echo.test"], ["echo"])
    cfg.add_route(["burst.test"], ["burst"])
    cfg.add_route(["black.test"], ["black"])
    cfg.add_route(["queue.test"], ["hold"])
    mport = with_metrics(cfg)
    px = proxies.start(cfg)
    return px, mport, black


def reset_in_state(state: str, px, mport, n: int = 12) -> str:
    """Put `n` sessions in `state`, confirm it through /metrics where it shows, reset them all."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
        socks.append(s)
        if state == "sniffing":
            s.sendall(header(CLIENT)[:30])
        elif state == "refusing":
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        elif state == "queued":
            s.sendall(header("queue.test"))
        elif state == "connecting":
            s.sendall(header("black.test"))
        elif state == "awaiting":
            s.sendall(header("silent.test"))
        elif state == "relaying":
            s.sendall(header("echo.test"))
        elif state == "closing":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(header("burst.test"))
    time.sleep(0.5)
    note = ""
    m = scrape(mport)
    if state == "relaying":
        for s in socks:
            try:
                s.sendall(os.urandom(256 * 1024))       # unread data in flight both ways
            except OSError:
                pass
        assert family_sum(m, "xmpp_shard_sessions_active") >= n, "sessions did not reach relaying"
    if state == "queued":
        q = family_sum(m, "xmpp_shard_backend_queue_length")
        assert q >= n - 1, f"only {q:g} sessions queued"
        note = f"{q:g} queued"
    if state == "connecting":
        c = family_sum(m, "xmpp_shard_backend_connecting")
        assert c >= 1, "no connection attempt in flight"
        note = f"{c:g} connecting"
    if state == "refusing":
        for s in socks:
            s.recv(10)                                  # the error is there; leave the rest unread
    for s in socks:
        rst_close(s)
    return note


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=[pytest.mark.multiworker,
                                                              pytest.mark.no_sanitizer])])
def test_resets_in_every_state(cluster, proxies, fake_backends, figures, workers):
    """Twelve sessions reset in each state: the proxy survives, serves an honest client
    throughout, and releases every descriptor at once (well before the 2 s timeouts of the
    waiting states)."""
    px, mport, black = reset_proxy(cluster, proxies, fake_backends, workers, "2s")
    try:
        res = Resources(px, mport)
        notes, released = {}, {}
        with HonestProbe(px.port, CLIENT) as probe:
            for state in STATES:
                notes[state] = reset_in_state(state, px, mport)
                t0 = time.monotonic()
                # (slack: the honest probe's own session, 2 descriptors, may be open meanwhile)
                # (1.5 s: margin for slow sanitizer builds, still under the 2 s state timeouts)
                res.assert_back(timeout=1.5, slack=2, what=f"after resets in state {state}")
                released[state] = f"{time.monotonic() - t0:.2f}s"
                assert px.alive(), px.stderr_tail()
            took = honest_login(cluster, px.port)
        figures[f"resets in every state, workers={workers}"] = \
            (f"released after {released}; {', '.join(v for v in notes.values() if v)}; "
             f"honest: {probe.summary()}; login {took}")
        probe.check(max_latency=2.0)
        res.assert_back(timeout=5)
    finally:
        black.close()


# A client that resets while its session is queued, connecting or awaiting the backend is
# noticed at once: the proxy keeps reading it (into the bounded replay buffer) meanwhile.
@pytest.mark.timeout(60)
def test_reset_while_waiting_is_released_at_once(cluster, proxies, fake_backends):
    px, mport, black = reset_proxy(cluster, proxies, fake_backends, 1, "10s")
    try:
        res = Resources(px, mport)
        for state in sorted(WAITING):
            reset_in_state(state, px, mport)
            res.assert_back(timeout=2.5, what=f"after resets in state {state} (timeouts 10 s)")
    finally:
        black.close()
