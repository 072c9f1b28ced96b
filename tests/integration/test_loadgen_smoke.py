"""xmpp-shard-loadgen against real Prosody through the proxy: a few dozen clients for a few
seconds. Checks the report's COUNTS (logins, joins, messages, presences, errors by kind), never
its timings, and the instances' logs for where the sessions landed. The WebSocket tests
(--transport websocket) and the BOSH ones (--transport bosh, --transport-mix, jitsi-web) run
against http_support.HttpShards (Prosody with mod_websocket and mod_bosh) directly or through the
proxy's `protocol = "http"` listener, which hashes each request's ?room= over the shards (also
with tls = "terminate", for --tls: wss:// and https://).

Binary: $XS_LOADGEN_BIN, else xmpp-shard-loadgen next to the proxy binary.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import http_support as hs
from conftest import AUTH, BREWERY, CLIENT, CONFERENCE, DEFAULT_PROXY_OPTS, GUEST, REPO
from xs_local import InstanceSpec, Muc, ProsodyInstance, ProxyConfig, VirtualHost, free_port
from xs_local.prosody import AUTH_ANONYMOUS

sys.path.insert(0, str(REPO / "loadgen" / "bench"))
from xs_bench.tls import enable_starttls  # noqa: E402


@pytest.fixture(scope="session")
def loadgen_bin(proxy_bin) -> Path:
    p = Path(os.environ.get("XS_LOADGEN_BIN") or proxy_bin.parent / "xmpp-shard-loadgen")
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"loadgen binary {p} not found: build it or set XS_LOADGEN_BIN", pytrace=False)
    return p


def run_loadgen(binary: Path, tmp_path: Path, *args: str, timeout: float = 40) -> dict:
    out = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    cmd = [str(binary), *args, "--json", str(out), "--quiet", "--max-time", str(timeout - 5)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)}\nexit {r.returncode}\n{r.stdout}\n{r.stderr}"
    rep = json.loads(out.read_text())
    rep["_text"] = r.stdout + r.stderr
    return rep


def counts(rep: dict) -> dict:
    return rep["counts"]


@pytest.mark.timeout(60)
def test_jitsi_scenario_counts_through_the_proxy(cluster, proxies, loadgen_bin, tmp_path):
    """Guests storm 4 rooms of 6 on the client instance while 3 bridges and the focus use the
    brewery on the auth instance, all through one proxy port."""
    px = proxies.start(cluster.proxy_config())
    mark = cluster.marks()
    rooms, size, bridges, msgs = 4, 6, 3, 2
    rep = run_loadgen(
        loadgen_bin, tmp_path, "jitsi", "--server", f"127.0.0.1:{px.port}",
        "--domain", GUEST, "--muc", CONFERENCE, "--rooms", str(rooms), "--room-size", str(size),
        "--stay", "1.5", "--messages", str(msgs),
        "--brewery-domain", AUTH, "--brewery-muc", BREWERY, "--bridges", str(bridges),
        "--interval", "0.3", "--brewery-auth", "scram",
        "--bridge-user", "jvb", "--bridge-password", cluster.password(f"jvb@{AUTH}"),
        "--focus-user", "focus", "--focus-password", cluster.password(f"focus@{AUTH}"),
        "--watch", f"proxy={px.proc.pid}", "--watch", f"client={cluster.client.pid}")
    c = counts(rep)
    parts = rooms * size
    assert rep["errors_total"] == 0, rep["_text"]
    assert not rep["aborted"]
    assert c["clients"] == parts + bridges + 1
    assert c["logged_in"] == parts + bridges + 1
    assert c["participants_joined"] == parts
    assert c["bridges_joined"] == bridges
    assert c["focus_joined"] == 1
    assert c["messages_sent"] == parts * msgs
    assert c["messages_echoed"] == parts * msgs
    # Every message reaches the other occupants; every participant sees all the others.
    assert c["groupchat_in"] == parts * msgs * (size - 1)
    assert c["occupant_presences_in"] == parts * (size - 1)
    # The focus joined first and leaves last, so it saw every bridge presence (joins and stats
    # updates); the loadgen stops the updates and waits before anyone leaves.
    assert c["bridge_presences_sent"] >= bridges
    assert c["bridge_presences_delivered"] == c["bridge_presences_sent"]
    lat = rep["latency_ms"]
    assert lat["join"]["count"] == parts
    assert lat["brewery_join"]["count"] == bridges + 1
    assert lat["message_rtt"]["count"] == parts * msgs
    assert lat["brewery_delivery"]["count"] == c["bridge_presences_delivered"]
    names = [p["name"] for p in rep["processes"]]
    assert names == ["machine", "loadgen", "proxy", "client"]
    assert all(not p["vanished"] for p in rep["processes"])
    assert [p["name"] for p in rep["phases"]][:4] == ["focus", "bridges", "brewery", "login"]
    # The proxy routed each side to its own instance.
    auth_log = cluster.auth.log_text(mark["auth"])
    client_log = cluster.client.log_text(mark["client"])
    assert auth_log.count(f"Authenticated as jvb@{AUTH}") == bridges
    assert auth_log.count(f"Authenticated as focus@{AUTH}") == 1
    assert client_log.count(f"@{GUEST}") >= parts
    assert f"@{AUTH}" not in client_log


@pytest.mark.timeout(60)
@pytest.mark.parametrize("auth", ["plain", "scram"])
def test_steady_messages_with_password_logins(cluster, proxies, loadgen_bin, tmp_path, auth):
    px = proxies.start(cluster.proxy_config())
    jid = f"alice@{CLIENT}"
    rep = run_loadgen(
        loadgen_bin, tmp_path, "steady", "--server", f"127.0.0.1:{px.port}", "--domain", CLIENT,
        "--user", "alice", "--password", cluster.password(jid), "--auth", auth,
        "--clients", "12", "--rate", "120", "--warmup", "0.3", "--duration", "1.5")
    c = counts(rep)
    assert rep["errors_total"] == 0, rep["_text"]
    assert c["logged_in"] == 12
    assert c["sessions_ready"] == 12
    assert c["messages_sent"] > 100
    assert c["messages_echoed"] == c["messages_sent"]
    assert 0 < c["messages_measured"] <= c["messages_echoed"]
    assert rep["latency_ms"]["message_rtt"]["count"] == c["messages_measured"]


@pytest.mark.timeout(60)
def test_failures_are_counted_by_kind(cluster, proxies, loadgen_bin, tmp_path):
    px = proxies.start(cluster.proxy_config())
    server = ["--server", f"127.0.0.1:{px.port}"]
    bad_pw = run_loadgen(loadgen_bin, tmp_path, "steady", *server, "--domain", CLIENT,
                         "--user", "alice", "--password", "wrong", "--auth", "scram",
                         "--clients", "5", "--warmup", "0", "--duration", "0.2")
    assert bad_pw["errors"] == {"auth:not-authorized": 5}
    assert bad_pw["counts"].get("logged_in", 0) == 0
    unknown = run_loadgen(loadgen_bin, tmp_path, "steady", *server, "--domain", "nowhere.invalid",
                          "--clients", "4", "--warmup", "0", "--duration", "0.2")
    assert unknown["errors"] == {"stream:host-unknown": 4}  # the proxy's refusal
    refused = run_loadgen(loadgen_bin, tmp_path, "steady", "--server", f"127.0.0.1:{free_port()}",
                          "--clients", "3", "--warmup", "0", "--duration", "0.2")
    assert refused["errors"] == {"connect:ECONNREFUSED": 3}


@pytest.mark.timeout(60)
def test_churn_sets_up_sessions_through_the_proxy(cluster, proxies, loadgen_bin, tmp_path):
    px = proxies.start(cluster.proxy_config())
    rep = run_loadgen(loadgen_bin, tmp_path, "churn", "--server", f"127.0.0.1:{px.port}",
                      "--domain", f"{CLIENT},{AUTH}", "--auth", "none", "--concurrency", "8",
                      "--duration", "1.5")
    assert rep["errors_total"] == 0, rep["_text"]
    assert rep["counts"]["sessions_completed"] > 20
    assert rep["rates"]["sessions_per_s"] > 0
    assert rep["latency_ms"]["session_setup"]["count"] == rep["counts"]["sessions_completed"]


@pytest.fixture(scope="module")
def tls_instance(base_dir):
    """One Prosody instance offering STARTTLS (xs_bench.tls on top of xs_local)."""
    spec = InstanceSpec("loadgen-tls", free_port(), hosts=[VirtualHost(CLIENT), VirtualHost(GUEST, AUTH_ANONYMOUS)],
                        mucs=[Muc(CONFERENCE)])
    inst = ProsodyInstance(spec, base_dir / "loadgen-tls")
    (base_dir / "loadgen-tls").mkdir(exist_ok=True)
    os.chmod(base_dir / "loadgen-tls", 0o711)
    inst.prepare()
    enable_starttls(inst)
    inst.start()
    yield inst
    inst.stop()


@pytest.mark.timeout(60)
def test_starttls_join_storm_through_the_proxy(tls_instance, proxies, loadgen_bin, tmp_path):
    """TLS passes through the proxy untouched: the loadgen negotiates STARTTLS with Prosody."""
    cfg = ProxyConfig(proxy={"workers": 1, "metrics": ""})
    cfg.add_backend("tls", tls_instance.address)
    cfg.add_route(["*"], ["tls"])
    px = proxies.start(cfg)
    mark = tls_instance.log_mark()
    rep = run_loadgen(loadgen_bin, tmp_path, "join-storm", "--server", f"127.0.0.1:{px.port}",
                      "--starttls", "--domain", GUEST, "--muc", CONFERENCE, "--rooms", "2",
                      "--room-size", "5", "--stay", "0.5", "--messages", "1")
    c = counts(rep)
    assert rep["errors_total"] == 0, rep["_text"]
    assert c["logged_in"] == 10 and c["participants_joined"] == 10
    assert c["messages_echoed"] == 10
    assert tls_instance.log_text(mark).count("Stream encrypted") >= 10


# --------------------------------------------------------------------------------------------
# --transport websocket: Prosody's mod_websocket, directly and through the proxy's http listener

@pytest.fixture(scope="module")
def ws_shards(base_dir):
    """Two Prosody instances hosting the anonymous meeting domain over WebSocket."""
    s = hs.HttpShards(base_dir / "loadgen-ws-shards", 2)
    try:
        s.start()
    except Exception as e:  # noqa: BLE001
        s.stop()
        pytest.fail(f"could not start the HTTP Prosody shards: {e}", pytrace=False)
    yield s
    s.stop()


def ws_storm_args(port: int, rooms: int, size: int, *extra: str) -> list[str]:
    return ["join-storm", "--transport", "websocket", "--server", f"127.0.0.1:{port}",
            "--domain", hs.MEET, "--muc", hs.MUC, "--rooms", str(rooms), "--room-size", str(size),
            "--stay", "1", "--messages", "2", *extra]


def check_storm(rep: dict, rooms: int, size: int, msgs: int = 2, transport: str = "websocket") -> None:
    c = counts(rep)
    parts = rooms * size
    assert rep["errors_total"] == 0, rep["_text"]
    assert not rep["aborted"]
    assert rep["settings"]["transport"] == transport
    assert c["logged_in"] == parts
    assert c["participants_joined"] == parts
    assert c["messages_sent"] == c["messages_echoed"] == parts * msgs
    # Everyone saw the other occupants of its room and their messages: a room's participants
    # are together on one instance.
    assert c["occupant_presences_in"] == parts * (size - 1)
    assert c["groupchat_in"] == parts * msgs * (size - 1)
    assert rep["latency_ms"]["join"]["count"] == parts


@pytest.mark.timeout(60)
def test_websocket_join_storm_direct(ws_shards, loadgen_bin, tmp_path):
    """Straight at one instance's HTTP port: upgrade, RFC 7395 framing, SASL ANONYMOUS, bind,
    MUC join, groupchat, <close/>."""
    sh = ws_shards.instances[0]
    ws_shards.ensure_running()
    mark = sh.log_mark()
    rep = run_loadgen(loadgen_bin, tmp_path, *ws_storm_args(sh.http_port, 2, 3))
    check_storm(rep, 2, 3)
    assert len(sh.authenticated_since(mark)) == 6


@pytest.mark.timeout(60)
def test_websocket_join_storm_through_the_http_front(ws_shards, proxies, loadgen_bin, tmp_path):
    """4 rooms x 3 participants over WebSocket through the proxy's http listener: each upgrade
    carries ?room=<its room>, the proxy hashes it over the two shards, every room meets on one
    instance and the rooms use both."""
    ws_shards.ensure_running()
    port = free_port()
    cfg = ws_shards.proxy_config(DEFAULT_PROXY_OPTS)
    cfg.listeners.insert(0, {"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http"})
    px = proxies.start(cfg)
    assert px.port == port
    rooms, size = 4, 3
    since = ws_shards.marks()
    # A fixed prefix: the placement is the hash's (of the room and the backends' names), the
    # same on every run; ws-0..ws-3 go two to each shard.
    rep = run_loadgen(loadgen_bin, tmp_path, *ws_storm_args(port, rooms, size, "--room-prefix", "ws"))
    check_storm(rep, rooms, size)
    per = {i.name: len(i.authenticated_since(since[i.name])) for i in ws_shards.instances}
    assert sum(per.values()) == rooms * size, per
    assert all(n % size == 0 for n in per.values()), per   # whole rooms per instance
    assert sum(1 for n in per.values() if n) == 2, per      # both shards got rooms


@pytest.mark.timeout(60)
def test_websocket_failures_are_counted_by_kind(ws_shards, loadgen_bin, tmp_path):
    ws_shards.ensure_running()
    port = ws_shards.instances[0].http_port
    nowhere = run_loadgen(loadgen_bin, tmp_path, *ws_storm_args(port, 1, 2, "--ws-path", "/nowhere"))
    assert nowhere["errors"] == {"http:404": 2}, nowhere["_text"]
    assert nowhere["counts"].get("logged_in", 0) == 0
    # Nobody listening: the same connect error as over TCP.
    refused = run_loadgen(loadgen_bin, tmp_path, "steady", "--transport", "websocket",
                          "--server", f"127.0.0.1:{free_port()}", "--domain", hs.MEET,
                          "--clients", "2", "--warmup", "0", "--duration", "0.2")
    assert refused["errors"] == {"connect:ECONNREFUSED": 2}



@pytest.mark.timeout(60)
def test_websocket_steady_messages(ws_shards, proxies, loadgen_bin, tmp_path):
    """steady over WebSocket through the proxy: messages to oneself, then groupchat in rooms
    (each session's upgrade naming its room)."""
    ws_shards.ensure_running()
    port = free_port()
    cfg = ws_shards.proxy_config(DEFAULT_PROXY_OPTS)
    cfg.listeners.insert(0, {"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http"})
    proxies.start(cfg)
    common = ["steady", "--transport", "websocket", "--server", f"127.0.0.1:{port}",
              "--domain", hs.MEET, "--muc", hs.MUC, "--clients", "6", "--rate", "60",
              "--warmup", "0.2", "--duration", "1"]
    for extra in ([], ["--target", "room", "--room-size", "3", "--room-prefix", "ws"]):
        rep = run_loadgen(loadgen_bin, tmp_path, *common, *extra)
        c = counts(rep)
        assert rep["errors_total"] == 0, rep["_text"]
        assert c["logged_in"] == c["sessions_ready"] == 6
        assert c["messages_sent"] > 30
        assert c["messages_echoed"] == c["messages_sent"]


# --------------------------------------------------------------------------------------------
# --transport bosh, --transport-mix and jitsi-web: Prosody's mod_bosh, directly (keep-alive
# connections) and through the proxy's http listener (which may close after every answer)

def bosh_storm_args(port: int, rooms: int, size: int, *extra: str) -> list[str]:
    return ["join-storm", "--transport", "bosh", "--server", f"127.0.0.1:{port}",
            "--domain", hs.MEET, "--muc", hs.MUC, "--rooms", str(rooms), "--room-size", str(size),
            "--stay", "1", "--messages", "2", *extra]


def http_front(ws_shards, proxies) -> int:
    ws_shards.ensure_running()
    port = free_port()
    cfg = ws_shards.proxy_config(DEFAULT_PROXY_OPTS)
    cfg.listeners.insert(0, {"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http"})
    px = proxies.start(cfg)
    assert px.port == port
    return port


def check_rooms_spread(ws_shards, since: dict, rooms: int, size: int) -> dict:
    per = {i.name: len(i.authenticated_since(since[i.name])) for i in ws_shards.instances}
    assert sum(per.values()) == rooms * size, per
    assert all(n % size == 0 for n in per.values()), per   # whole rooms per instance
    assert sum(1 for n in per.values() if n) == 2, per      # both shards got rooms
    return per


@pytest.mark.timeout(60)
def test_bosh_join_storm_direct(ws_shards, loadgen_bin, tmp_path):
    """Straight at one instance's /http-bind: session creation, SASL ANONYMOUS, restart, bind,
    MUC join, groupchat, terminate; Prosody keeps the connections alive, so each session gets
    by with its two."""
    sh = ws_shards.instances[0]
    ws_shards.ensure_running()
    mark = sh.log_mark()
    rooms, size = 2, 3
    rep = run_loadgen(loadgen_bin, tmp_path, *bosh_storm_args(sh.http_port, rooms, size))
    check_storm(rep, rooms, size, transport="bosh")
    assert len(sh.authenticated_since(mark)) == rooms * size
    c = counts(rep)
    assert rep["settings"]["bosh_path"] == "/http-bind"
    assert c["bosh_connections"] <= 2 * rooms * size, c
    assert c["bosh_requests"] > c["bosh_connections"], c


@pytest.mark.timeout(60)
def test_bosh_and_a_mix_through_the_http_front(ws_shards, proxies, loadgen_bin, tmp_path):
    """4 rooms x 3 over BOSH, then the same rooms with two WebSocket participants and one BOSH
    participant each (--transport-mix websocket=2,bosh=1), through the proxy's http listener:
    every request carries ?room=, each room meets on one shard, the rooms use both."""
    port = http_front(ws_shards, proxies)
    rooms, size = 4, 3
    since = ws_shards.marks()
    rep = run_loadgen(loadgen_bin, tmp_path, *bosh_storm_args(port, rooms, size, "--room-prefix", "ws"))
    check_storm(rep, rooms, size, transport="bosh")
    check_rooms_spread(ws_shards, since, rooms, size)

    since = ws_shards.marks()
    args = bosh_storm_args(port, rooms, size, "--room-prefix", "ws")
    args[1:3] = ["--transport-mix", "websocket=2,bosh=1"]
    rep = run_loadgen(loadgen_bin, tmp_path, *args)
    check_storm(rep, rooms, size, transport="websocket=2,bosh=1")
    c = counts(rep)
    assert c["clients_websocket"] == c["logged_in_websocket"] == rooms * 2
    assert c["clients_bosh"] == c["logged_in_bosh"] == rooms
    check_rooms_spread(ws_shards, since, rooms, size)


@pytest.mark.timeout(90)
def test_wss_and_https_through_a_terminating_http_front(ws_shards, proxies, loadgen_bin, tmp_path):
    """--tls: 3 rooms x 3 with two WebSocket participants (wss://) and one BOSH participant
    (https://, TLS on each of its keep-alive connections) each, through the proxy's http listener
    with tls = "terminate" (a throwaway CA's certificate, not verified by the loadgen). The same
    counts as over plaintext; without --tls the same listener fails every client, and --tls
    against a plaintext port fails in the handshake."""
    from tls_support import TestCA
    ws_shards.ensure_running()
    cert = TestCA(tmp_path / "ca").issue("http-front", [hs.MEET], "xmpp-shard loadgen test")
    port = free_port()
    cfg = ws_shards.proxy_config(DEFAULT_PROXY_OPTS)
    cfg.listeners.insert(0, {"name": "web", "bind": f"127.0.0.1:{port}", "protocol": "http",
                             "tls": "terminate"})
    cfg.tls_certificates = [{"cert": str(cert.cert), "key": str(cert.key), "domains": [hs.MEET]}]
    assert proxies.start(cfg).port == port
    rooms, size = 3, 3
    since = ws_shards.marks()
    args = bosh_storm_args(port, rooms, size, "--room-prefix", "ws", "--tls")
    args[1:3] = ["--transport-mix", "websocket=2,bosh=1"]
    rep = run_loadgen(loadgen_bin, tmp_path, *args)
    check_storm(rep, rooms, size, transport="websocket=2,bosh=1")
    assert rep["settings"]["tls"] == "wss, https"
    c = counts(rep)
    assert c["clients_websocket"] == c["logged_in_websocket"] == rooms * 2
    assert c["clients_bosh"] == c["logged_in_bosh"] == rooms
    assert c["bosh_requests"] > c["bosh_connections"], c   # TLS connections kept alive
    per = {i.name: len(i.authenticated_since(since[i.name])) for i in ws_shards.instances}
    assert sum(per.values()) == rooms * size, per

    steady = ["steady", "--domain", hs.MEET, "--clients", "2", "--warmup", "0", "--duration", "0.2"]
    plaintext = PlaintextAnswer()
    try:
        for transport in ("websocket", "bosh"):
            plain = run_loadgen(loadgen_bin, tmp_path, *steady, "--transport", transport,
                                "--server", f"127.0.0.1:{port}")
            assert plain["errors_total"] == 2 and not counts(plain).get("logged_in"), plain["_text"]
            for how in ("answer", "close"):
                plaintext.how = how
                refused = run_loadgen(loadgen_bin, tmp_path, *steady, "--transport", transport, "--tls",
                                      "--server", f"127.0.0.1:{plaintext.port}")
                assert refused["errors"] == {"tls": 2}, refused["_text"]
    finally:
        plaintext.close()


class LoopbackServer:
    """A TCP server on 127.0.0.1 accepting in a thread; subclasses handle each connection."""
    backlog = 16

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=self.backlog)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._on_connection(conn)

    def _on_connection(self, conn: socket.socket) -> None:
        raise NotImplementedError


class PlaintextAnswer(LoopbackServer):
    """A plaintext HTTP server that answers any first bytes with a 400 (how = "answer") or
    closes (how = "close"), for clients that expected TLS."""

    def __init__(self):
        self.how = "answer"
        super().__init__()

    def _on_connection(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(4096)
            if self.how == "answer":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.mark.timeout(60)
def test_jitsi_web_through_the_proxies(cluster, ws_shards, proxies, loadgen_bin, tmp_path):
    """jitsi-web: the brewery (focus, bridges) over TCP through the c2s proxy, rooms of 10
    (the default) over WebSocket and BOSH through the http proxy, on one meeting domain."""
    c2s = proxies.start(cluster.proxy_config())
    port = http_front(ws_shards, proxies)
    rooms, size, bridges = 2, 10, 2
    since = ws_shards.marks()
    rep = run_loadgen(
        loadgen_bin, tmp_path, "jitsi-web", "--server", f"127.0.0.1:{port}",
        "--brewery-server", f"127.0.0.1:{c2s.port}", "--transport-mix", "websocket=90,bosh=10",
        "--domain", hs.MEET, "--muc", hs.MUC, "--rooms", str(rooms), "--room-prefix", "jw",
        "--stay", "1", "--messages", "1",
        "--brewery-domain", AUTH, "--brewery-muc", BREWERY, "--bridges", str(bridges),
        "--interval", "0.3", "--brewery-auth", "scram",
        "--bridge-user", "jvb", "--bridge-password", cluster.password(f"jvb@{AUTH}"),
        "--focus-user", "focus", "--focus-password", cluster.password(f"focus@{AUTH}"))
    c = counts(rep)
    parts = rooms * size
    assert rep["errors_total"] == 0, rep["_text"]
    assert rep["scenario"] == "jitsi-web"
    assert rep["settings"]["room_size"] == "10"
    assert c["logged_in"] == parts + bridges + 1
    assert c["participants_joined"] == parts
    assert c["bridges_joined"] == bridges and c["focus_joined"] == 1
    assert c["clients_bosh"] == c["logged_in_bosh"] == rooms       # one in every 10
    assert c["clients_websocket"] == c["logged_in_websocket"] == parts - rooms
    assert c["messages_echoed"] == c["messages_sent"] == parts
    assert c["groupchat_in"] == parts * (size - 1)
    assert c["bridge_presences_delivered"] == c["bridge_presences_sent"]
    per = {i.name: len(i.authenticated_since(since[i.name])) for i in ws_shards.instances}
    assert sum(per.values()) == parts and all(n % size == 0 for n in per.values()), per


class CloseAfterEachAnswer(LoopbackServer):
    """An HTTP relay in front of one shard that serves one request per connection, as the
    proxy's http listener first did: the request goes to the backend with Connection: close,
    the answer comes back and the client's connection is closed. announce=False strips the
    answer's Connection header, so the client learns of the close only by the close itself
    (and may already have written its next request on that connection)."""

    backlog = 256

    def __init__(self, backend_port: int, announce: bool = True):
        self.backend_port = backend_port
        self.announce = announce
        self.connections = 0
        super().__init__()

    def _on_connection(self, conn: socket.socket) -> None:
        self.connections += 1
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return b""
            body += chunk
        lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
        return b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + body[:length]

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            request = self._read_request(conn)
            if not request:
                return
            with socket.create_connection(("127.0.0.1", self.backend_port)) as b:
                b.sendall(request)
                answer = b""
                while chunk := b.recv(65536):
                    answer += chunk
            head, sep, body = answer.partition(b"\r\n\r\n")
            lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
            if self.announce:
                lines.append(b"Connection: close")
            conn.sendall(b"\r\n".join(lines) + sep + body)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("announce", [True, False], ids=["connection-close", "silent-close"])
def test_bosh_reconnects_when_the_server_closes_after_each_answer(ws_shards, loadgen_bin, tmp_path,
                                                                   announce):
    """Every answer ends its connection: the client opens a new one for each request, and a
    request written on a connection the server is closing goes again on a new one."""
    ws_shards.ensure_running()
    relay = CloseAfterEachAnswer(ws_shards.instances[0].http_port, announce)
    try:
        rooms, size = 2, 3
        rep = run_loadgen(loadgen_bin, tmp_path, *bosh_storm_args(relay.port, rooms, size))
    finally:
        relay.close()
    check_storm(rep, rooms, size, transport="bosh")
    c = counts(rep)
    # One connection per request (a resent request takes one more).
    assert c["bosh_connections"] >= c["bosh_requests"], c
    assert relay.connections >= c["bosh_requests"]


@pytest.mark.timeout(60)
def test_bosh_failures_are_counted_by_kind(ws_shards, loadgen_bin, tmp_path):
    ws_shards.ensure_running()
    port = ws_shards.instances[0].http_port
    nowhere = run_loadgen(loadgen_bin, tmp_path, *bosh_storm_args(port, 1, 2, "--bosh-path", "/nowhere"))
    assert nowhere["errors"] == {"http:404": 2}, nowhere["_text"]
    assert nowhere["counts"].get("logged_in", 0) == 0
    # Prosody answers a session request for a domain it does not host with a terminate.
    unknown = run_loadgen(loadgen_bin, tmp_path, "steady", "--transport", "bosh",
                          "--server", f"127.0.0.1:{port}", "--domain", "nowhere.invalid",
                          "--clients", "2", "--warmup", "0", "--duration", "0.2")
    assert unknown["errors"] == {"bosh:improper-addressing": 2}, unknown["_text"]
    refused = run_loadgen(loadgen_bin, tmp_path, "steady", "--transport", "bosh",
                          "--server", f"127.0.0.1:{free_port()}", "--domain", hs.MEET,
                          "--clients", "2", "--warmup", "0", "--duration", "0.2")
    assert refused["errors"] == {"connect:ECONNREFUSED": 2}
