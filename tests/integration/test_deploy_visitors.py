"""[jitsi] visitors = K on the room-sharded plan (deploy/README.md "Room shards"), and Jitsi's
focus.DOMAIN client_proxy component ([jitsi] focus_component): golden files (rooms-2-vis: two
shards, three visitor nodes), the proxy's vnode backends, each shard's jicofo listing its own
nodes, plan errors naming the key, `check` (prosodyctl check config, the proxy's --check) in both
TLS modes, `where`, and `run`: ?vnode=vN over WebSocket through the proxy lands on node vN, an
unknown vnode gets 404, and the shards load a stand-in mod_client_proxy from [jitsi]
prosody_plugins with its target_address.

Golden files: tests/integration/data/deploy-golden/rooms-2-vis/; refresh with
    XS_UPDATE_GOLDEN=1 /usr/bin/python3 -m pytest tests/integration/test_deploy_visitors.py
then review the diff by eye.
"""

import os
import re
import shutil

import pytest

import http_support as hs
from deploy_support import GOLDEN, DeployRun, compare_golden, normalise, read_accounts, read_hocon, tool
from test_deploy_rooms import base, generated_texts, parse, rooms_text  # noqa: F401 (fixture)
from xs_local.plan import PlanError
from xs_local.prosody import make_base_dir

import tomllib

NODES = ["prosody-v1", "prosody-v2", "prosody-v3"]


def vis_text(visitors: int = 3, tls: bool = False) -> str:
    text = (rooms_text(2).replace("instances = 3\n", f"instances = {3 + visitors}\n")
            .replace("\nshards = 2\n", f"\nshards = 2\nvisitors = {visitors}\n"))
    if tls:
        text = text.replace("[backends]", '[certs]\nmode = "ca"\n\n[backends]')
    return text


def generate(base, text):
    plan = base / "vis.toml"
    plan.write_text(text)
    out = base / "out"
    tool("generate", plan, "--out", out, check=True)
    return plan, out


def jicofo(out, name) -> dict:
    text = (out / "jitsi" / f"jicofo-{name}.conf").read_text()
    return read_hocon("\n".join(l for l in text.splitlines() if not l.startswith("include ")))["jicofo"]


def test_visitors_plan_matches_the_golden_files(base):
    plan, out = generate(base, vis_text())
    pw = read_accounts(out)
    actual = {rel: normalise(text, out, plan, pw) for rel, text in generated_texts(out).items()}
    problems = compare_golden(actual, GOLDEN / "rooms-2-vis")
    assert not problems, ("generated files differ from deploy-golden/rooms-2-vis (refresh with "
                          "XS_UPDATE_GOLDEN=1 if intended):\n" + "\n".join(problems))


def test_visitor_nodes_prosody_proxy_jicofo_units_report(base):
    plan, out = generate(base, vis_text())
    pw = read_accounts(out)
    for v, name in enumerate(NODES):
        cfg = (out / "prosody" / name / "prosody.cfg.lua").read_text()
        for line in (f"http_ports = {{ {26283 + v} }}", f'http_default_host = "v{v + 1}.meet.test"',
                     f'VirtualHost "v{v + 1}.meet.test"\n\tauthentication = "anonymous"\n'
                     '\tmodules_enabled = { "bosh", "websocket" }',
                     f'Component "conference.v{v + 1}.meet.test" "muc"\n\tmuc_room_locking = false\n'
                     "\trestrict_room_creation = true",
                     'VirtualHost "auth.meet.test"', f"c2s_ports = {{ {26225 + v} }}"):
            assert line in cfg, (name, line)
        assert "client_proxy" not in cfg and 'VirtualHost "meet.test"' not in cfg
        assert (out / "systemd" / f"prosody-shard@{name}.service.d" / "10-xmpp-shard.conf").exists()
        assert f"prosody-shard@{name}.service" in (out / "systemd" / "xmpp-shard.target").read_text()
    proxy = tomllib.loads((out / "proxy.toml").read_text())
    backends = {b["name"]: b for b in proxy["backend"]}
    for v, name in enumerate(NODES):
        assert backends[f"{name}-http"] == {"name": f"{name}-http", "address": f"127.0.0.1:{26283 + v}",
                                            "check": "http", "check_path": "/http-bind",
                                            "vnode": f"v{v + 1}"}
    routes = {r["name"]: r for r in proxy["route"]}
    assert routes["rooms"]["backends"] == ["shard-a-http", "shard-b-http"] + [f"{n}-http" for n in NODES]
    assert routes["prosody-v2"] == {"name": "prosody-v2", "domains": ["v2.meet.test"],
                                    "backends": ["prosody-v2"], "listeners": ["c2s"]}
    # auth.meet.test stays the shards' route: the nodes' copy is reached by the jicofos directly
    assert [r["name"] for r in proxy["route"] if "auth.meet.test" in r["domains"]] == ["shards"]
    # node vN belongs to shard (N-1) mod 2: shard-a lists v1 and v3, shard-b v2
    for shard, nodes in (("shard-a", ["v1", "v3"]), ("shard-b", ["v2"])):
        j = jicofo(out, shard)
        assert j["visitors"] == {"enabled": True}
        vis = j["xmpp"]["visitors"]
        assert sorted(vis) == nodes
        for node in nodes:
            v = int(node[1:]) - 1
            assert vis[node] == {"enabled": True, "conference-service": f"conference.{node}.meet.test",
                                 "hostname": "127.0.0.1", "port": 26225 + v, "domain": "auth.meet.test",
                                 "xmpp-domain": f"{node}.meet.test", "username": "focus",
                                 "password": pw["focus@auth.meet.test"],
                                 "disable-certificate-verification": True, "use-tls": False}
    report = (out / "REPORT.txt").read_text()
    assert "Visitor nodes ([jitsi] visitors = 3)" in report
    assert "v3: prosody-v3 hosts v3.meet.test (anonymous) and conference.v3.meet.test" in report
    assert "Still by hand" in report and "VisitorSelectionStrategy" in report
    r = tool("where", plan, "room1", check=True)
    assert re.search(r"; its visitors: (v1, v3|v2) \(\?vnode=\)$", r.stdout.strip()), r.stdout


def test_focus_component_on_every_shard_and_optional(base):
    plan, out = generate(base, vis_text())
    for name in ("shard-a", "shard-b"):
        cfg = (out / "prosody" / name / "prosody.cfg.lua").read_text()
        assert ('Component "focus.meet.test" "client_proxy"\n\ttarget_address = "focus@auth.meet.test"'
                in cfg)
        assert 'plugin_paths = { "/usr/share/jitsi-meet/prosody-plugins" }' in cfg
    assert "client_proxy" not in (out / "prosody" / "brewery" / "prosody.cfg.lua").read_text()
    text = vis_text(2).replace("\nshards = 2\n", '\nshards = 2\nfocus_component = false\n'
                                                 'prosody_plugins = "/opt/jm"\n')
    shutil.rmtree(out)
    plan, out = generate(base, text)
    cfg = (out / "prosody" / "shard-a" / "prosody.cfg.lua").read_text()
    assert "client_proxy" not in cfg and "plugin_paths" not in cfg


BAD = [
    ("visitors = 3", "visitors = 1", ["[jitsi] visitors", "at least 2"]),
    ("instances = 6", "instances = 5", ["[jitsi] visitors", "[plan] instances >= 6"]),
    ("jibri = 2", "jibri = 3", ["[jitsi] jibri", "instance 3 is a visitor node"]),
    ("visitors = 3", "visitors = 33", ["[jitsi] visitors", "0..32"]),
    ("shard_http_port = 26281", "shard_http_port = 26221",
     ["[jitsi] shard_http_port", "visitor node v3's HTTP port 26225", "clashes", "prosody-v1"]),
    ("[backends]", '[proxy]\nmetrics = "127.0.0.1:26284"\n[backends]',
     ["[proxy] metrics", "26284", "prosody-v2's HTTP port"]),
    ("\nshards = 2\n", '\nshards = 2\nfocus_component = "yes"\n', ["[jitsi] focus_component"]),
    ("\nshards = 2\n", '\nshards = 2\nprosody_plugins = "jm"\n', ["[jitsi] prosody_plugins"]),
    ("[backends]", '[[host]]\ndomain = "v2.meet.test"\ninstance = 2\n[backends]',
     ["v2.meet.test is owned twice", "[jitsi] visitors (v2)"]),
    ("[backends]", '[[host]]\ndomain = "x.test"\ninstance = 2\nmuc = ["focus.meet.test"]\n[backends]',
     ["focus.meet.test is owned twice"]),
]


@pytest.mark.parametrize("old, new, expected", BAD, ids=[e[0] + " " + e[-1] for _, _, e in BAD])
def test_bad_visitor_plans_name_the_key(old, new, expected):
    text = vis_text()
    assert old in text
    with pytest.raises(PlanError) as ei:
        parse(text.replace(old, new, 1))
    for part in expected:
        assert part in str(ei.value), f"{part!r} not in:\n{ei.value}"


def test_visitors_need_shards():
    text = (rooms_text(2).replace("\nshards = 2\n", "\nvisitors = 2\n")
            .replace("shard_http_port = 26281\n", "").replace("jibri = 2", "jvb = 2\njibri = 2"))
    with pytest.raises(PlanError) as ei:
        parse(text)
    assert "[jitsi] visitors: only with [jitsi] shards" in str(ei.value)


@pytest.mark.parametrize("tls", [False, True], ids=["none", "terminate"])
def test_check_passes_on_the_visitors_plan(base, proxy_bin, tls):
    plan = base / "vis.toml"
    plan.write_text(vis_text(tls=tls))
    r = tool("check", plan, "--out", base / "not-generated", "--proxy", proxy_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ["shard-a", "shard-b", "brewery"] + NODES:
        assert re.search(rf"prosodyctl check config \S+/prosody/{name}/prosody.cfg.lua: ok", r.stdout)
    assert "proxy.toml: ok" in r.stdout and "check: all good" in r.stdout
    if not os.path.exists("/usr/share/jitsi-meet/prosody-plugins/mod_client_proxy.lua"):
        assert "check: note: [jitsi] focus_component: mod_client_proxy is not in" in r.stdout
    if tls:    # the nodes' jicofo port follows the shards' (jicofo_port = 26281 + 2 + 3)
        _, out = generate(base, vis_text(tls=True))
        cfg = (out / "prosody" / "prosody-v2" / "prosody.cfg.lua").read_text()
        assert "c2s_ports = { 26289 }" in cfg and "xmpp_shard_ports = { 26226 }" in cfg
        auth = cfg.split('VirtualHost "auth.meet.test"')[1].split("\n\n")[0]
        assert "allow_unencrypted_plain_auth = true" in auth
        assert jicofo(out, "shard-b")["xmpp"]["visitors"]["v2"]["port"] == 26289


STUB = """-- test stand-in for jitsi-meet-prosody's mod_client_proxy: proves the config loads it
local target = module:get_option_string("target_address");
module:log("info", "client_proxy stand-in on %s: target_address %s", module.host, tostring(target));
"""


@pytest.mark.timeout(240)
def test_run_sends_vnode_to_its_visitor_node_and_loads_client_proxy(proxy_bin):
    plugins = make_base_dir("xs-jm-plugins-")
    try:
        (plugins / "mod_client_proxy.lua").write_text(STUB)
        os.chmod(plugins / "mod_client_proxy.lua", 0o644)
        text = vis_text(2).replace("\nshards = 2\n", f'\nshards = 2\nprosody_plugins = "{plugins}"\n')
        names = ["shard-a", "shard-b", "brewery", "prosody-v1", "prosody-v2"]
        with DeployRun(proxy_bin, text, "xs-deploy-vis-run-", names) as run:
            port = int(run.lines.wait_for(r"web\s+ws://127\.0\.0\.1:(\d+)/xmpp-websocket\?room=ROOM", 5).group(1))
            assert re.search(r"^\s+visitors\s+v1 \(prosody-v1, 127\.0\.0\.1:\d+, domain v1\.meet\.test\)",
                             run.lines.text(), re.M), run.lines.text()[-3000:]
            assert "left out" not in run.lines.text()
            for shard in ("shard-a", "shard-b"):
                log = run.log_of(shard).read_text()
                assert ("client_proxy stand-in on focus.meet.test: target_address focus@auth.meet.test"
                        in log), log[-2000:]
            for node in ("v1", "v2"):
                c = hs.WsXmpp(port, f"r1&vnode={node}", host_header="meet.test", domain=f"{node}.meet.test")
                jid = c.login_anonymous()
                assert f"@{node}.meet.test/" in jid, jid
                run.landed(jid.split("/")[0], f"prosody-{node}")
                c.close()
            with pytest.raises(ConnectionError, match="404"):
                hs.WsXmpp(port, "r1&vnode=v9", host_header="meet.test", domain="v9.meet.test")
            c = hs.WsXmpp(port, "r1", host_header="meet.test", domain="meet.test")   # no vnode: a shard
            jid = c.login_anonymous()
            assert jid.split("@")[1].startswith("meet.test/"), jid
            c.close()
    finally:
        shutil.rmtree(plugins, ignore_errors=True)
