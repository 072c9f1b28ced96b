"""The HTTP front door: Jitsi Meet's XMPP over WebSocket (RFC 7395) and BOSH (XEP-0206) through
a `protocol = "http"` listener, rooms hashed over three real Prosody instances (`hash_key =
"room"`), with strophe.js participants under Node (tests/web/participant.mjs) and a stdlib
WebSocket client (http_support.WsXmpp).

test_harness_direct runs without the proxy (clients straight at one Prosody's HTTP port) and
proves the harness. Every other test runs through the proxy (whose `--check` must accept the
http listener and the room hash, or they fail). Placement is read on the backend side: the
instance whose log shows a participant's JID authenticating.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

pytest.register_assert_rewrite("http_support")

import http_support as hs  # noqa: E402
from conftest import DEFAULT_PROXY_OPTS  # noqa: E402
from ops_support import scrape, start_with_metrics  # noqa: E402
from xs_local import free_port  # noqa: E402
from tls_support import tls_ca  # noqa: E402,F401  (the session's test CA fixture)

SHARDS = 3
HEADER_TIMEOUT = 2.0
PROXY_OPTS = {**DEFAULT_PROXY_OPTS, "header_timeout": f"{HEADER_TIMEOUT:g}s",
              "max_header_bytes": 4096}


# --------------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def shards(base_dir):
    problem = hs.node_ready()
    if problem:
        pytest.fail(problem, pytrace=False)
    s = hs.HttpShards(base_dir / "http-shards", SHARDS)
    try:
        s.start()
    except Exception as e:  # noqa: BLE001
        s.stop()
        pytest.fail(f"could not start the HTTP Prosody shards: {e}", pytrace=False)
    yield s
    s.stop()


@pytest.fixture
def live_shards(shards):
    """The shards, all running before the test (a test may kill one) and after it."""
    shards.ensure_running()
    yield shards
    shards.ensure_running()


@pytest.fixture
def workdir(base_dir, request) -> Path:
    d = base_dir / "http-front" / request.node.name
    d.mkdir(parents=True, exist_ok=True)
    return d


def http_config(shards: hs.HttpShards, port: int) -> "hs.ProxyConfig":
    cfg = shards.proxy_config(PROXY_OPTS)
    cfg.listeners.insert(0, {"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http"})
    return cfg


@pytest.fixture(scope="module")
def http_supported(proxy_bin, shards, base_dir) -> bool:
    """The proxy's --check accepts the test's http config (a refusal fails every proxy test)."""
    d = base_dir / "http-front"
    d.mkdir(parents=True, exist_ok=True)
    path = http_config(shards, free_port()).write(d / "check.toml")
    r = subprocess.run([str(proxy_bin), "--check", "--config", str(path)], capture_output=True,
                       text=True, timeout=30)
    out = (r.stdout + r.stderr).strip()
    if r.returncode != 0:
        pytest.fail(f"--check refused the test's http config:\n{out}\n{path.read_text()}",
                    pytrace=False)
    return True


def start_proxy(factory, shards: hs.HttpShards):
    port = free_port()
    return factory.start(http_config(shards, port))


@pytest.fixture(scope="module")
def web(http_supported, module_proxies, shards):
    """A proxy with the http listener `web` in front of the shards, shared by the module."""
    return start_proxy(module_proxies, shards)


def check_rooms(res: hs.PlanResult, rooms: dict[str, int], chat: bool = False) -> None:
    """Every participant joined and saw exactly the nicks of its room (and chatted)."""
    assert not res.failures(), res.summary()
    joined = res.joined
    assert len(joined) == sum(rooms.values()), res.summary()
    for e in joined:
        want = {f"p{i}" for i in range(rooms[e["room"]])}
        assert set(e["occupants"]) == want, f"{e['id']} saw {e['occupants']}, want {sorted(want)}"
    if chat:
        assert len(res.of("chat")) == len(joined), res.summary()


def one_instance_each(placed: dict[str, set[str]]) -> dict[str, str]:
    bad = {r: sorted(s) for r, s in placed.items() if len(s) != 1 or "?" in s}
    assert not bad, f"rooms whose participants are not all on one instance: {bad}"
    return {r: next(iter(s)) for r, s in placed.items()}


# --------------------------------------------------------------------------------------------
# the harness itself, no proxy

@pytest.mark.timeout(60)
def test_harness_direct(live_shards, workdir):
    """WebSocket and BOSH strophe.js participants and the Python WebSocket client meet in a room
    straight on one instance; the instance refuses an upgrade without `xmpp`."""
    sh = live_shards.instances[0]
    port = sh.http_port
    since = live_shards.marks()
    parts = hs.participants(port, {"direct": 4}, bosh_every=2)      # p1, p3 over BOSH
    meeting = hs.Meeting(hs.make_plan(parts, chat=True, timeout=15), workdir)
    try:
        joined = meeting.ready(40)
        assert len(joined) == 4 and all(e["ok"] for e in joined), joined
        assert {e["transport"] for e in joined} == {"websocket", "bosh"}
        for e in joined:
            assert set(e["occupants"]) == {"p0", "p1", "p2", "p3"}, e
        chats = meeting.since(0, "chat")
        assert len(chats) == 4 and all(c["ok"] for c in chats), chats

        py = hs.WsXmpp(port, "direct")
        try:
            jid = py.login_anonymous()
            seen = py.join("direct", "py")
            assert seen == {"p0", "p1", "p2", "p3", "py"}, seen
            assert py.ping()
        finally:
            py.close()
        ok, chats = meeting.chat()
        assert ok, chats
        assert meeting.status() == {e["id"]: True for e in joined}
    finally:
        rc = meeting.close()
    assert rc == 0, meeting.stderr()[-2000:]
    where = live_shards.placement([e["jid"] for e in joined] + [jid], since)
    assert all(v == [sh.name] for v in where.values()), where

    assert hs.http_raw(port, hs.upgrade_request("/xmpp-websocket?room=direct", protocol=None)).status == 501
    assert hs.http_raw(port, hs.bosh_session_request(room="direct")).status == 200


# --------------------------------------------------------------------------------------------
# through the proxy

@pytest.mark.timeout(90)
def test_rooms_spread_over_instances(web, live_shards, workdir, figures):
    """20 rooms of 5 (one participant in four over BOSH): everyone sees everyone of its room,
    messages go round, each room on one instance, the rooms on more than one."""
    rooms = {f"spread{i:02d}": 5 for i in range(20)}
    since = live_shards.marks()
    t0 = time.monotonic()
    res = hs.run_plan(hs.make_plan(hs.participants(web.port, rooms, bosh_every=4), chat=True,
                                   timeout=30), workdir, timeout=80)
    elapsed = time.monotonic() - t0
    check_rooms(res, rooms, chat=True)
    assert res.rc == 0, res.summary()
    assert sum(e["transport"] == "bosh" for e in res.joined) == 25
    placed = one_instance_each(live_shards.room_instances(res.joined, since))
    per = {i.name: sum(1 for v in placed.values() if v == i.name) for i in live_shards.instances}
    figures["http front: 20 rooms x 5 over the shards"] = f"{per} in {elapsed:.1f}s"
    figures["http front: where each room landed"] = " ".join(
        f"{r[len('spread'):]}:{placed[r].rsplit('-', 1)[-1]}" for r in sorted(placed))
    assert sum(1 for n in per.values() if n) > 1, per
    # The placement is the proxy's room hash over the three backends, nothing else.
    from xs_local.jitsi import rendezvous_pick
    names = [i.name for i in live_shards.instances]
    assert placed == {r: names[rendezvous_pick(r, names)] for r in rooms}


@pytest.mark.timeout(60)
def test_websocket_and_bosh_meet(web, live_shards, workdir):
    since = live_shards.marks()
    parts = [{"id": "ws", "url": hs.ws_url(hs.MEET, web.port, "mixed"), "room": "mixed",
              "nick": "p0", "expect": 2},
             {"id": "bosh", "url": hs.bosh_url(hs.MEET, web.port, "mixed"), "room": "mixed",
              "nick": "p1", "expect": 2}]
    res = hs.run_plan(hs.make_plan(parts, chat=True), workdir)
    check_rooms(res, {"mixed": 2}, chat=True)
    assert {e["transport"] for e in res.joined} == {"websocket", "bosh"}
    one_instance_each(live_shards.room_instances(res.joined, since))


@pytest.mark.timeout(60)
def test_room_always_on_the_same_instance(web, live_shards, workdir):
    """Two separate meetings of the same rooms, a second apart: each room lands where it did."""
    rooms = {f"sticky{i}": 2 for i in range(6)}
    places = []
    for n in range(2):
        since = live_shards.marks()
        res = hs.run_plan(hs.make_plan(hs.participants(web.port, rooms, bosh_every=3 + n)),
                          workdir)
        check_rooms(res, rooms)
        places.append(one_instance_each(live_shards.room_instances(res.joined, since)))
        time.sleep(1)
    assert places[0] == places[1]


@pytest.mark.timeout(60)
def test_bosh_sessions_of_two_rooms_share_one_keep_alive_connection(http_supported, proxies, live_shards):
    """A browser reuses one connection for BOSH sessions of different rooms: each request is
    routed on its own, so each session reaches its own room's instance over the one client
    connection (never reopened), and every response names that instance (shard_header)."""
    from xs_local.jitsi import rendezvous_pick
    names = [i.name for i in live_shards.instances]
    rooms: dict[int, str] = {}
    for n in range(200):
        rooms.setdefault(rendezvous_pick(f"keepalive{n}", names), f"keepalive{n}")
    (ia, room_a), (ib, room_b) = sorted(rooms.items())[:2]
    cfg = http_config(live_shards, free_port())
    cfg.listeners[0]["shard_header"] = "X-Jitsi-Shard"
    proxy, mport = start_with_metrics(proxies, cfg)
    since = live_shards.marks()
    conn = hs.KeepAliveHttp(proxy.port)
    try:
        # c sends no ?room= (an older client): its creation goes by its `to`, then its sid
        # keeps it on the instance that created it.
        a, b, c = hs.BoshSession(conn, room_a), hs.BoshSession(conn, room_b), hs.BoshSession(conn, None)
        ja, jb, jc = a.login_anonymous(), b.login_anonymous(), c.login_anonymous()
        a.join("p0")
        b.join("p0")
        c.join("p1", room=room_a)
        for _ in range(3):  # polls of every session, interleaved
            a.request()
            b.request()
            c.request()
        m = scrape(mport)
        known = {n: m.get("xmpp_shard_bosh_sessions", backend=n) for n in names}
        reused = sum(m.get("xmpp_shard_backend_connections_reused_total", backend=n) or 0 for n in names)
        a.terminate()
        b.terminate()
        c.terminate()
        requests = conn.requests
    finally:
        conn.close()
    placed = live_shards.placement([ja, jb, jc], since)
    assert placed[ja.split("/")[0].lower()] == [names[ia]], placed
    assert placed[jb.split("/")[0].lower()] == [names[ib]], placed
    assert len(placed[jc.split("/")[0].lower()]) == 1, placed
    ic = names.index(placed[jc.split("/")[0].lower()][0])
    assert a.shard_headers == {names[ia]} and b.shard_headers == {names[ib]} and c.shard_headers == {names[ic]}
    assert requests >= 24, requests
    want = {n: 0.0 for n in names}
    for i in (ia, ib, ic):
        want[names[i]] += 1
    assert known == want, known
    assert reused >= requests - 2 * len(names), (reused, requests)


@pytest.mark.timeout(90)
def test_backend_killed_mid_meeting(http_supported, proxies, live_shards, workdir, figures):
    """A shard killed under a meeting: its rooms' participants lose their sessions, the rooms on
    the other shards keep chatting, new joins of its rooms land on a survivor, and the other
    rooms stay where they were."""
    proxy = start_proxy(proxies, live_shards)
    rooms = {f"kill{i:02d}": 2 for i in range(12)}
    parts = hs.participants(proxy.port, rooms, bosh_every=0)
    since = live_shards.marks()
    meeting = hs.Meeting(hs.make_plan(parts, timeout=20), workdir)
    try:
        joined = meeting.ready(40)
        assert all(e["ok"] for e in joined), [e for e in joined if not e["ok"]]
        before = one_instance_each(live_shards.room_instances(joined, since))
        used = sorted(set(before.values()))
        assert len(used) > 1, before
        victim = live_shards[used[0]]
        gone = {r for r, i in before.items() if i == victim.name}
        kept = set(rooms) - gone
        victim.kill()

        deadline = time.monotonic() + 10
        while True:
            st = meeting.status()
            lost = {pid for pid, c in st.items() if not c}
            want_lost = {p["id"] for p in parts if p["room"] in gone}
            if lost >= want_lost or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert lost == want_lost, f"disconnected {sorted(lost)}, expected {sorted(want_lost)}"

        ok, chats = meeting.chat([p["id"] for p in parts if p["room"] in kept])
        assert ok and len(chats) == 2 * len(kept), chats

        since = live_shards.marks()
        res = hs.run_plan(hs.make_plan(hs.participants(proxy.port, rooms, nick="q")), workdir)
        assert not res.failures(), res.summary()
        after = one_instance_each(live_shards.room_instances(res.joined, since))
        moved = {r: after[r] for r in gone}
        assert victim.name not in moved.values(), moved
        assert {r: after[r] for r in kept} == {r: before[r] for r in kept}
        figures["http front: rooms moved by a killed shard"] = \
            f"{len(gone)} of {len(rooms)} ({victim.name}) -> {sorted(set(moved.values()))}"
    finally:
        meeting.close()
        live_shards.ensure_running()


@pytest.mark.timeout(90)
def test_reload_keeps_live_websocket_sessions(http_supported, proxies, live_shards, workdir):
    """SIGHUP with a changed route (a backend drained) while a meeting runs: the live WebSocket
    sessions keep chatting, new joins follow the new config."""
    proxy = start_proxy(proxies, live_shards)
    rooms = {f"reload{i}": 2 for i in range(6)}
    parts = hs.participants(proxy.port, rooms, bosh_every=0)
    since = live_shards.marks()
    meeting = hs.Meeting(hs.make_plan(parts, timeout=20), workdir)
    try:
        joined = meeting.ready(40)
        assert all(e["ok"] for e in joined), [e for e in joined if not e["ok"]]
        before = one_instance_each(live_shards.room_instances(joined, since))
        drained = before["reload0"]  # the shard of room reload0 takes no new sessions
        cfg = http_config(live_shards, proxy.port)
        for b in cfg.backends:
            if b["name"] == drained:
                b["drain"] = True
        cfg.listeners = proxy.cfg.listeners
        cfg.proxy["metrics"] = proxy.cfg.proxy.get("metrics", "")
        proxy.config_path.write_text(cfg.render())
        since = live_shards.marks()
        proxy.signal(signal.SIGHUP)
        time.sleep(0.5)
        ok, chats = meeting.chat([p["id"] for p in parts])
        assert ok and len(chats) == 2 * len(rooms), chats
        assert not {pid for pid, c in meeting.status().items() if not c}, meeting.status()
        res = hs.run_plan(hs.make_plan(hs.participants(proxy.port, {"reload0": 2}, nick="q")), workdir)
        assert not res.failures(), res.summary()
        placed = one_instance_each(live_shards.room_instances(res.joined, since))
        assert placed["reload0"] != drained, placed  # new joins follow the reloaded config
    finally:
        meeting.close()


@pytest.mark.timeout(60)
def test_https_listener_terminates_tls(http_supported, proxies, live_shards, tls_ca, workdir):
    """tls = "terminate" on the http listener (wss:// and https:// straight to the proxy):
    the certificate is chosen by SNI and verified against the test CA, ALPN http/1.1 is
    selected, the room is hashed as over plaintext, refusals are encrypted HTTP responses, and a
    client that negotiated xmpp-client is closed."""
    cert = tls_ca.issue("http-front", [hs.MEET], "xmpp-shard http front")
    port = free_port()
    cfg = http_config(live_shards, free_port())
    cfg.listeners.append({"name": "webs", "bind": f"127.0.0.1:{port}", "protocol": "http",
                          "tls": "terminate"})
    cfg.routes[0]["listeners"] = ["web", "webs"]
    cfg.tls_certificates = [{"cert": str(cert.cert), "key": str(cert.key), "domains": [hs.MEET]}]
    proxy = proxies.start(cfg)
    ctx = ssl.create_default_context(cafile=str(tls_ca.cert))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    a = hs.WsXmpp(port, "secure1", tls=ctx)
    try:
        assert a.sock.selected_alpn_protocol() == "http/1.1"
        a.login_anonymous()
        assert a.join("secure1", "alice") == {"alice"}
        b = hs.WsXmpp(port, "secure1", tls=ctx)
        b.login_anonymous()
        assert b.join("secure1", "bob") == {"alice", "bob"}
        b.close()
    finally:
        a.close()
    assert proxy.port  # the plaintext listener is there too
    # A refusal after the handshake is an encrypted HTTP response.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        tls = ctx.wrap_socket(raw, server_hostname=hs.MEET)
        tls.sendall(hs.upgrade_request("/xmpp-websocket?room=x", host="nope.example.org"))
        assert tls.recv(4096).startswith(b"HTTP/1.1 404 ")
    # ALPN xmpp-client on an HTTPS listener: the handshake completes, then the door closes.
    xctx = ssl.create_default_context(cafile=str(tls_ca.cert))
    xctx.set_alpn_protocols(["xmpp-client"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        tls = xctx.wrap_socket(raw, server_hostname=hs.MEET)
        assert tls.selected_alpn_protocol() == "xmpp-client"
        tls.sendall(hs.upgrade_request("/xmpp-websocket?room=x"))
        try:
            got = tls.recv(4096)
        except (ssl.SSLError, ConnectionError):
            got = b""
        assert got == b"", got


@pytest.mark.timeout(90)
def test_bad_input_while_an_honest_participant_is_served(web, live_shards, workdir):
    honest = hs.WsXmpp(web.port, "honest")
    honest.login_anonymous()
    assert honest.join("honest", "h") == {"h"}
    p = web.port
    try:
        cases = []

        def case(name, reply, want):
            cases.append(name)
            assert reply.status == want, f"{name}: got {reply.status}, want {want}: {reply.head[:300]!r}"
            assert honest.ping(), f"honest participant not served after {name}"

        case("malformed request line", hs.http_raw(p, b"GARBAGE\r\n\r\n"), 400)
        case("request line without version",
             hs.http_raw(p, b"GET /xmpp-websocket?room=honest\r\nHost: meet.example.com\r\n\r\n"), 400)
        case("unknown Host",
             hs.http_raw(p, hs.upgrade_request("/xmpp-websocket?room=honest", host="nope.example.org")), 404)
        case("head over the HTTP head limit (16 KiB)",
             hs.http_raw(p, hs.upgrade_request("/xmpp-websocket?room=honest",
                                               extra=f"X-Pad: {'a' * 17000}\r\n")), 431)
        case("a 1 MB head", hs.http_raw(p, hs.upgrade_request("/xmpp-websocket?room=honest",
                                                              extra=f"X-Pad: {'a' * 1_000_000}\r\n")), 431)
        case("two Content-Length fields",
             hs.http_raw(p, b"POST /http-bind?room=honest HTTP/1.1\r\nHost: meet.example.com\r\n"
                            b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), 400)
        drip = [b"GET /http-bind?room=honest HTTP/1.1\r\nHost: meet.example.com\r\nX-Slow: "] + \
            [b"a"] * int(HEADER_TIMEOUT * 4 + 20)
        t0 = time.monotonic()
        r = hs.http_raw(p, drip, gap=0.25, timeout=HEADER_TIMEOUT + 5)
        took = time.monotonic() - t0
        case("slowloris head", r, 408)
        assert HEADER_TIMEOUT - 0.5 <= took <= HEADER_TIMEOUT + 3, f"408 after {took:.2f}s"
        body = b"<body rid='1' xmlns='http://jabber.org/protocol/httpbind'/>"
        case("Content-Length with Transfer-Encoding",
             hs.http_raw(p, b"POST /http-bind?room=honest HTTP/1.1\r\nHost: meet.example.com\r\n"
                            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body)
                            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)), 400)
        # The proxy refuses it itself (RFC 7395 requires the subprotocol; Prosody would say 501).
        case("upgrade without Sec-WebSocket-Protocol: xmpp",
             hs.http_raw(p, hs.upgrade_request("/xmpp-websocket?room=honest", protocol=None)), 400)

        late = hs.participants(p, {"honest": 2}, bosh_every=2)
        for q in late:
            q["expect"] = 3                   # the honest one is there too
        res = hs.run_plan(hs.make_plan(late, timeout=15), workdir)
        assert not res.failures(), res.summary()
        for e in res.joined:
            assert set(e["occupants"]) >= {"p0", "p1", "h"}, e
        assert honest.ping()
    finally:
        honest.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.mark.timeout(120)
def test_never_reading_websocket_client_while_the_backend_pushes(http_supported, proxies, live_shards, figures):
    """A participant that stops reading while its room floods it: the proxy stops reading from
    that participant's Prosody connection past high_water (its memory stays flat), and the other
    participants of the room, and of other rooms, keep being served."""
    proxy = start_proxy(proxies, live_shards)
    stuck = hs.WsXmpp(proxy.port, "flood")
    stuck.login_anonymous()
    stuck.join("flood", "stuck")
    stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    talker = hs.WsXmpp(proxy.port, "flood")
    talker.login_anonymous()
    talker.join("flood", "talker")
    honest = hs.WsXmpp(proxy.port, "elsewhere")
    honest.login_anonymous()
    honest.join("elsewhere", "h")
    try:
        rss0 = _rss_kib(proxy.proc.pid)
        payload = "x" * 2000
        n = 6000   # 12 MB towards the stuck participant, more than the kernel buffers hold
        peak = rss0
        for i in range(n):
            talker.send(f"<message xmlns='jabber:client' to='flood@{hs.MUC}' type='groupchat' id='f{i}'>"
                        f"<body>{payload}</body></message>")
            if i % 200 == 0:
                # the talker reads its own echoes, so only the stuck one is slow
                talker.sock.setblocking(False)
                try:
                    while talker.sock.recv(1 << 20):
                        pass
                except (BlockingIOError, ssl.SSLWantReadError):
                    pass
                talker.sock.setblocking(True)
                talker.sock.settimeout(talker.timeout)
                peak = max(peak, _rss_kib(proxy.proc.pid))
        assert honest.ping(), "honest participant not served while the room floods a stuck reader"
        late = hs.WsXmpp(proxy.port, "flood")  # the flooded room still takes a newcomer
        try:
            late.login_anonymous()
            assert {"stuck", "talker", "late"} <= late.join("flood", "late", timeout=20)
        finally:
            late.close()
        time.sleep(1)
        peak = max(peak, _rss_kib(proxy.proc.pid))
        figures[f"http front: never-reading WebSocket client, {n * len(payload) // 1_000_000} MB pushed at it"] = \
            f"proxy RSS {rss0} KiB -> peak {peak} KiB; another room served, a newcomer joined the flooded one"
        assert peak - rss0 < 8 * 1024, f"proxy RSS grew {peak - rss0} KiB with one stuck reader"
    finally:
        for c in (stuck, talker, honest):
            c.close()


def _nginx_from_docs(proxy_port: int, port: int, d: Path) -> Path:
    """An nginx config around the site snippet of docs/CONFIG.md ("HTTP listeners"), as an
    operator pastes it, pointed at the proxy under test."""
    text = (hs.REPO / "docs" / "CONFIG.md").read_text()
    m = re.search(r"```nginx\n(upstream xmpp_shard.*?)```", text, re.S)
    assert m, "docs/CONFIG.md lost its nginx snippet"
    upstream, _, locations = m.group(1).partition("# inside the site's server block:\n")
    upstream = upstream.replace("127.0.0.1:5280", f"127.0.0.1:{proxy_port}")
    temp = " ".join(f"{k}_temp_path {d};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = d / "nginx.conf"
    conf.write_text(f"daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;\n"
                    f"error_log {d}/error.log info; events {{}}\n"
                    f"http {{ access_log off; {temp}\n{upstream}\n"
                    f"server {{ listen 127.0.0.1:{port}; server_name {hs.MEET};\n{locations}}}\n}}\n")
    return conf


@pytest.mark.timeout(90)
def test_behind_nginx_as_the_docs_configure_it(web, live_shards, workdir):
    """Jitsi's nginx in front (the docs' snippet, nginx -t and then running): WebSocket and BOSH
    participants through nginx and the proxy meet in their rooms, each room on the instance the
    room hash names."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    conf = _nginx_from_docs(web.port, port, workdir)
    t = subprocess.run([nginx, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=20)
    assert t.returncode == 0, t.stderr
    proc = subprocess.Popen([nginx, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        hs.wait_http(port, proc)
        rooms = {f"ngx{i}": 3 for i in range(6)}
        since = live_shards.marks()
        res = hs.run_plan(hs.make_plan(hs.participants(port, rooms, bosh_every=3), chat=True), workdir)
        check_rooms(res, rooms, chat=True)
        placed = one_instance_each(live_shards.room_instances(res.joined, since))
        from xs_local.jitsi import rendezvous_pick
        names = [i.name for i in live_shards.instances]
        assert placed == {r: names[rendezvous_pick(r, names)] for r in rooms}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
