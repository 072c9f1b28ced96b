"""`xmpp-shard-deploy run` of the room-sharded Jitsi plan ([jitsi] shards, deploy/README.md
"Room shards"), end to end with real Prosody: the conference MUC lets only the focus create rooms,
so each room is first asked for with Jitsi's conference request (over WebSocket through the
proxy, to the simulated focus that `run` starts on every shard in place of jicofo), then the
strophe.js participants of tests/web join it over WebSocket through the proxy. Each room lives on
one shard, the one `xmpp-shard-deploy where` names, and the rooms use every shard. With
tls = "terminate" (and a tenant) the same over wss:// verified against the run's CA.
"""

import re
import socket
import ssl
import time
import xml.etree.ElementTree as ET

import pytest

import http_support as hs
from deploy_support import DeployRun
from test_deploy_rooms import rooms_text
from xs_local.jitsi import room_shard

NS_FOCUS = "http://jitsi.org/protocol/focus"
NS_MUC = "http://jabber.org/protocol/muc"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
SHARDS = ["shard-a", "shard-b"]


def need_node():
    missing = hs.node_ready()
    if missing:
        pytest.fail(f"the strophe.js participants need Node: {missing}", pytrace=False)


def connect(port, room, domain, tls=None) -> hs.WsXmpp:
    c = hs.WsXmpp(port, room, host_header=domain, domain=domain, tls=tls)
    c.login_anonymous()
    return c


def ask_focus(c: hs.WsXmpp, room: str, domain: str) -> ET.Element:
    """Jitsi Meet's conference request, to the focus of the shard this connection landed on."""
    c.send(f"<iq xmlns='jabber:client' type='set' id='conf-{room}' to='focus@auth.{domain}/focus'>"
           f"<conference xmlns='{NS_FOCUS}' room='{room}@conference.{domain}'/></iq>")
    r = c.wait_for(lambda e: e.get("id") == f"conf-{room}", 15)
    conf = r.find(f"{{{NS_FOCUS}}}conference")
    assert r.get("type") == "result" and conf is not None and conf.get("ready") == "true", ET.tostring(r)
    return conf


def join(c: hs.WsXmpp, room: str, domain: str, nick: str) -> ET.Element:
    """A MUC join; the self-presence (status 110) or the error presence."""
    rj = f"{room}@conference.{domain}"
    c.send(f"<presence xmlns='jabber:client' to='{rj}/{nick}'><x xmlns='{NS_MUC}'/></presence>")
    while True:
        p = c.wait_for(lambda e: e.tag.endswith("}presence")
                       and e.get("from", "").lower().startswith(rj + "/"), 15)
        if p.get("type") == "error" or any(s.get("code") == "110" for s in p.iter()
                                            if s.tag.endswith("}status")):
            return p


def authenticated(run: DeployRun, name: str) -> set[str]:
    return {j.lower() for j in re.findall(r"Authenticated as (\S+)",
                                          run.log_of(name).read_text(errors="replace"))}


def shard_of(run: DeployRun, jid: str, timeout: float = 10) -> list[str]:
    bare = jid.split("/", 1)[0].lower()
    deadline = time.monotonic() + timeout
    while True:
        where = [n for n in SHARDS if bare in authenticated(run, n)]
        if where or time.monotonic() > deadline:
            return where
        time.sleep(0.1)


@pytest.mark.timeout(240)
def test_rooms_are_created_by_the_focus_and_joined_over_websocket_through_the_proxy(tmp_path, proxy_bin):
    need_node()
    names = SHARDS + ["brewery"]
    with DeployRun(proxy_bin, rooms_text(2), "xs-deploy-rooms-run-", names) as run:
        port = int(run.lines.wait_for(r"web\s+ws://127\.0\.0\.1:(\d+)/xmpp-websocket\?room=ROOM", 5).group(1))
        for n in SHARDS:
            assert re.search(rf"^\[focus {n}\] logged in as focus@auth\.meet\.test/focus", run.lines.text(), re.M)
        # Only the focus creates rooms: a participant alone is refused.
        c = connect(port, "nobody-asked", "meet.test")
        p = join(c, "nobody-asked", "meet.test", "early")
        assert p.get("type") == "error" and p.find(f".//{{{NS_STANZAS}}}not-allowed") is not None, ET.tostring(p)
        c.close()
        # Ten rooms, each asked for through the proxy (as Jitsi Meet does before joining).
        rooms = [f"room{i:02d}" for i in range(10)]
        for room in rooms:
            c = connect(port, room, "meet.test")
            conf = ask_focus(c, room, "meet.test")
            assert conf.get("focusjid") == "focus@auth.meet.test"
            c.close()
        for room in rooms:      # the focus logs before it answers; the pipe may lag
            run.lines.wait_for(rf"^\[focus shard-[ab]\] room {room}@conference\.meet\.test: created", 10)
        created = {m.group(2): m.group(1) for m in re.finditer(
            r"^\[focus (shard-[ab])\] room (\w+)@conference\.meet\.test: created", run.lines.text(), re.M)}
        assert set(created) == set(rooms), run.lines.text()[-3000:]
        # Their participants join over WebSocket through the proxy (strophe.js, tests/web).
        plan = hs.make_plan(hs.participants(port, {r: 2 for r in rooms}, host="meet.test"), timeout=40)
        plan["domain"], plan["muc"] = "meet.test", "conference.meet.test"
        res = hs.run_plan(plan, tmp_path / "web", timeout=120)
        assert res.rc == 0, res.summary()
        assert len(res.joined) == 20 and all(e["ok"] and e["transport"] == "websocket"
                                             for e in res.joined), res.summary()
        placed: dict[str, set] = {}
        for e in res.joined:
            assert "focus" in e["occupants"], e        # the focus is in every room
            where = shard_of(run, e["jid"])
            assert len(where) == 1, (e, where)
            placed.setdefault(e["room"], set()).add(where[0])
        for room, shards in placed.items():           # each room on one shard: where's, the focus's
            want = names[room_shard(room, names, 2)]
            assert shards == {want} and created[room] == want, (room, shards, created[room], want)
        assert {s for v in placed.values() for s in v} == set(SHARDS), placed   # on every shard
        # The participants left: each focus leaves its rooms.
        run.lines.wait_for(r"(?s)(last participant left.*){10}", 20)


@pytest.mark.timeout(240)
def test_terminated_tls_rooms_and_a_tenant_over_wss(proxy_bin):
    text = (rooms_text(2).replace("[backends]", '[certs]\nmode = "ca"\n\n[backends]')
            .replace("bridges = 2", 'bridges = 2\ntenants = ["team.test"]'))
    with DeployRun(proxy_bin, text, "xs-deploy-rooms-tls-", SHARDS + ["brewery"]) as run:
        out = run.lines.text()
        port = int(run.lines.wait_for(r"web\s+wss://meet\.test:(\d+)/xmpp-websocket\?room=ROOM", 5).group(1))
        ca = run.lines.wait_for(r"^\s+CA\s+(\S+)", 5).group(1)
        for unit in ("shard-a", "shard-b", "shard-a-team.test", "shard-b-team.test"):
            assert f"[focus {unit}] logged in" in out, out[-3000:]
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols(["http/1.1"])
        names = SHARDS + ["brewery"]
        placed = {}
        for domain, rooms in (("meet.test", ["alpha", "beta", "gamma", "delta"]), ("team.test", ["x1", "x2"])):
            for room in rooms:
                c = connect(port, room, domain, tls=ctx)
                assert c.sock.selected_alpn_protocol() == "http/1.1"
                assert c.sock.getpeercert()["subjectAltName"][0] == ("DNS", domain)
                ask_focus(c, room, domain)
                p = join(c, room, domain, "p1")
                assert p.get("type") != "error", ET.tostring(p)
                where = shard_of(run, c.jid)
                assert where == [names[room_shard(room, names, 2)]], (room, where)
                placed[(domain, room)] = where[0]
                c.close()
        assert set(placed.values()) == set(SHARDS), placed
        # The shards' loopback jicofo port lets only the auth domains log in without TLS.
        jport = int(re.search(r"^\[focus shard-a\] logged in as \S+ on 127\.0\.0\.1:(\d+)", out, re.M).group(1))
        for domain, offered in (("auth.meet.test", True), ("meet.test", False), ("guest.team.test", False)):
            with socket.create_connection(("127.0.0.1", jport), timeout=5) as s:
                s.sendall(f"<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' xmlns='jabber:client' "
                          "xmlns:stream='http://etherx.jabber.org/streams'>".encode())
                data = b""
                while not re.search(rb"</stream:features>|<stream:features/>|</stream:stream>", data):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            # auth.*: PLAIN offered; anything else: no way to log in (Prosody ends the stream)
            assert (b"<mechanism>PLAIN</mechanism>" in data) == offered, (domain, data)
            assert offered or b"<mechanism>" not in data, (domain, data)
