"""The room-sharded Jitsi plan ([jitsi] shards = N, deploy/README.md "Room shards"), without
starting Prosody (but one test): golden files for N = 2 and 3, the plan's errors (each naming its key),
`check` (prosodyctl check config on every instance, the proxy's --check), the nginx snippet
under `nginx -t`, and `xmpp-shard-deploy where` agreeing with the real proxy running the
generated config (fake HTTP shards record which one a room's requests reach), and `run` of the
plan: strophe.js participants of several rooms join over WebSocket and BOSH through the proxy,
each room lands on the shard `where` names, and the rooms use every shard.

Golden files: tests/integration/data/deploy-golden/rooms-2/ and rooms-3/. Refresh:
    XS_UPDATE_GOLDEN=1 /usr/bin/python3 -m pytest tests/integration/test_deploy_rooms.py
then review the diff by eye.
"""

import http.server
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from deploy_support import GOLDEN, HERE, compare_golden, normalise, read_accounts, read_hocon, tool
from xs_local.jitsi import rendezvous_pick, room_key, room_shard
from xs_local.plan import PlanError, parse_plan
from xs_local.ports import free_port
from xs_local.prosody import make_base_dir

import tomllib

ROOMS = HERE / "data" / "deploy-rooms.toml"
SKIP_IN_GOLDEN = {"accounts.txt", ".xmpp-shard-manifest.json"}


def rooms_text(shards: int = 2) -> str:
    text = ROOMS.read_text()
    if shards == 3:
        text = (text.replace("instances = 3", "instances = 4").replace("shards = 2", "shards = 3")
                .replace('index = 2\nname = "brewery"',
                         'index = 2\nname = "shard-c"\n\n[[instance]]\nindex = 3\nname = "brewery"')
                .replace("jibri = 2", "jibri = 3"))
        assert "shards = 3" in text and 'name = "shard-c"' in text
    return text


def rooms_tls_text(shards: int = 2) -> str:
    """The plan with TLS terminated by the proxy (a local CA) and a Jitsi tenant."""
    return (rooms_text(shards).replace("[backends]", '[certs]\nmode = "ca"\n\n[backends]')
            .replace("bridges = 2", 'bridges = 2\ntenants = ["team.test"]'))


def parse(text: str, ncpu: int = 4):
    return parse_plan(tomllib.loads(text), ncpu=ncpu)


@pytest.fixture
def base():
    b = make_base_dir("xs-deploy-rooms-")
    yield b
    shutil.rmtree(b, ignore_errors=True)


def plan_file(base: Path, shards, text=None) -> Path:
    p = base / f"rooms-{shards}.toml"
    p.write_text(text or (rooms_tls_text(2) if shards == "2-tls" else rooms_text(shards)))
    return p


def generated_texts(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*"))
            if p.is_file() and str(p.relative_to(out)) not in SKIP_IN_GOLDEN
            and p.suffix != ".log"}


@pytest.mark.parametrize("shards", [2, 3, "2-tls"])
def test_room_sharded_plan_matches_the_golden_files(base, shards):
    plan = plan_file(base, shards)
    out = base / "out"
    tool("generate", plan, "--out", out, check=True)
    pw = read_accounts(out)
    from xs_local.tls import module_dir
    actual = {rel: normalise(text, out, plan, pw).replace(module_dir(), "@MODULES@")
              for rel, text in generated_texts(out).items()}
    for rel, text in actual.items():
        for p in pw.values():
            assert p not in text, f"{rel} still holds a password"
    problems = compare_golden(actual, GOLDEN / f"rooms-{shards}")
    assert not problems, (f"generated files differ from deploy-golden/rooms-{shards} (refresh with "
                          "XS_UPDATE_GOLDEN=1 if intended):\n" + "\n".join(problems))


@pytest.mark.parametrize("shards", [2, 3])
def test_shards_host_the_meeting_and_the_proxy_hashes_rooms_over_their_http_ports(base, shards):
    plan = plan_file(base, shards)
    out = base / "out"
    tool("generate", plan, "--out", out, check=True)
    names = ["shard-a", "shard-b", "shard-c"][:shards]
    for k, name in enumerate(names):
        cfg = (out / "prosody" / name / "prosody.cfg.lua").read_text()
        for line in (f"http_ports = {{ {26281 + k} }}", 'http_interfaces = { "127.0.0.1" }',
                     'http_default_host = "meet.test"', 'trusted_proxies = { "127.0.0.1" }',
                     "consider_bosh_secure = true", "consider_websocket_secure = true",
                     'VirtualHost "meet.test"', 'VirtualHost "guest.meet.test"',
                     'VirtualHost "auth.meet.test"', 'Component "conference.meet.test" "muc"',
                     "muc_room_locking = false", 'modules_enabled = { "bosh", "websocket" }'):
            assert line in cfg, f"{name}: {line!r} missing"
        assert "internal.auth" not in cfg          # the breweries live on the brewery instance
    brewery = (out / "prosody" / "brewery" / "prosody.cfg.lua").read_text()
    assert 'VirtualHost "auth.jvb.meet.test"' in brewery and 'VirtualHost "meet.test"' not in brewery
    proxy = tomllib.loads((out / "proxy.toml").read_text())
    http = [l for l in proxy["listener"] if l.get("protocol") == "http"]
    assert http == [{"name": "http", "bind": "127.0.0.1:26280", "protocol": "http"}]
    rooms = [r for r in proxy["route"] if r["name"] == "rooms"][0]
    assert rooms == {"name": "rooms", "domains": ["meet.test"],
                     "backends": [f"{n}-http" for n in names], "balance": "hash",
                     "hash_key": "room", "listeners": ["http"]}
    backends = {b["name"]: b for b in proxy["backend"]}
    for k, n in enumerate(names):
        assert backends[f"{n}-http"] == {"name": f"{n}-http", "address": f"127.0.0.1:{26281 + k}",
                                         "check": "http", "check_path": "/http-bind"}
    # 5222 routes by domain as before, on the XMPP listener only.
    shared = [r for r in proxy["route"] if r["name"] == "shards"][0]
    assert shared["backends"] == names and "meet.test" in shared["domains"]
    assert all(r["listeners"] == ["c2s"] for r in proxy["route"] if r["name"] != "rooms")


@pytest.mark.parametrize("shards", [2, 3])
def test_one_jicofo_per_shard_straight_to_its_shard_service_through_the_proxy(base, shards):
    plan = plan_file(base, shards)
    out = base / "out"
    tool("generate", plan, "--out", out, check=True)
    pw = read_accounts(out)
    names = ["shard-a", "shard-b", "shard-c"][:shards]
    assert not (out / "jitsi" / "jicofo.conf").exists()
    rests = set()
    for k, name in enumerate(names):
        f = out / "jitsi" / f"jicofo-{name}.conf"
        assert f.stat().st_mode & 0o777 == 0o600
        text = f.read_text()
        assert 'include file("/etc/jitsi/jicofo/jicofo.conf")' in text
        j = read_hocon("\n".join(l for l in text.splitlines() if not l.startswith("include ")))["jicofo"]
        c, s = j["xmpp"]["client"], j["xmpp"]["service"]
        assert (c["hostname"], c["port"]) == ("127.0.0.1", 26222 + k)    # the shard itself
        assert (s["hostname"], s["port"]) == ("127.0.0.1", 5222)         # the proxy
        assert c["password"] == pw["focus@auth.meet.test"]
        assert s["domain"] == "auth.jvb.meet.test" and s["password"] == pw["focus@auth.jvb.meet.test"]
        assert (c["resource"], s["resource"]) == ("focus", f"focus-{name}")   # unique on the brewery
        assert j["bridge"] == {"brewery-jid": "JvbBrewery@internal.auth.jvb.meet.test",
                               "xmpp-connection-name": "Service"}
        rests.add(j["rest"]["port"])
    assert len(rests) == shards
    unit = (out / "systemd" / "jicofo@.service").read_text()
    assert "-Dconfig.file=/etc/jitsi/jicofo/jicofo-%i.conf" in unit
    report = (out / "REPORT.txt").read_text()
    assert f"Room shards ([jitsi] shards = {shards})" in report
    assert f"about 1/{shards + 1} of them" in report and "xmpp-shard-deploy where" in report


BAD = [
    ("instances = 3", "instances = 2", ["[jitsi] shards", "[plan] instances >= 3"]),
    ("cores = 4", "cores = 1", ["[jitsi] shards", "2 room shards on 1 core"]),
    ("jibri = 2", "jibri = 1", ["[jitsi] jibri", "room shard"]),
    ("\nshards = 2\n", "\nshards = 2\njvb = 0\n", ["[jitsi] jvb", "room shard"]),
    ("\nshards = 2\n", "\nshards = 2\nclient = 1\n", ["[jitsi] client", "leave client out"]),
    ("\nshards = 2\n", "\nshards = 2\npool = [0]\n", ["[jitsi] pool", "every room shard hosts every tenant"]),
    ("\nshards = 2\n", '\nshards = 2\ntenants = ["meet.test"]\n', ["meet.test is owned twice"]),
    ("[backends]", '[tenants]\ndomains = ["guest.meet.test"]\n[backends]',
     ["guest.meet.test is owned twice", "[tenants] domains"]),
    ("\nshards = 2\n", "\nshards = 2\njicofo_port = 26300\n", ["[jitsi] jicofo_port", "only with [plan] tls"]),
    ("[backends]", '[proxy]\nmetrics = "127.0.0.1:26280"\n[backends]',
     ["[proxy] metrics", "26280", "[jitsi] http_port"]),
    ("\nshards = 2\n", "\nshards = 0\n", ["[jitsi] shards", "1..64"]),
    ("shard_http_port = 26281", "shard_http_port = 26223",
     ["[jitsi] shard_http_port", "26223", "clashes", "shard-b"]),
    ("shard_http_port = 26281", "shard_http_port = 26279",
     ["[jitsi] shard_http_port", "include", "26280"]),
    ("port = 5222", "port = 26282", ["[jitsi] shard_http_port", "26282", "[plan] port"]),
    ("[backends]", '[[host]]\ndomain = "meet.test"\ninstance = 2\n[backends]',
     ["meet.test is owned twice", "[jitsi] domain (shards)", "[[host]] #1"]),
    ("shard_http_port = 26281", 'shard_http_port = 26281\njicofo_port = 26223\n[certs]\nmode = "ca"',
     ["[jitsi] jicofo_port", "26223", "clashes", "shard-b"]),
    ("shard_http_port = 26281", 'shard_http_port = 26281\njicofo_port = 26282\n[certs]\nmode = "ca"',
     ["[jitsi] jicofo_port", "26282", "HTTP port"]),
]


@pytest.mark.parametrize("old, new, expected", BAD, ids=[e[0] for _, _, e in BAD])
def test_bad_room_sharded_plans_name_the_key(old, new, expected):
    text = rooms_text(2)
    assert old in text
    with pytest.raises(PlanError) as ei:
        parse(text.replace(old, new, 1))
    msg = str(ei.value)
    for part in expected:
        assert part in msg, f"{part!r} not in:\n{msg}"


def test_terminated_tls_with_shards(base, proxy_bin):
    """[plan] tls = "terminate": the HTTP listener does HTTPS/wss (ALPN http/1.1), the shards keep
    a loopback c2s port where only the focus logs in without TLS, and `check` passes (prosodyctl
    on every instance, the proxy's --check with the certificates `certs` made)."""
    plan = plan_file(base, "2-tls")
    out = base / "out"
    tool("generate", plan, "--out", out, check=True)
    proxy = tomllib.loads((out / "proxy.toml").read_text())
    assert proxy["listener"][1] == {"name": "http", "bind": "0.0.0.0:26280", "protocol": "http",
                                    "tls": "terminate"}
    assert {"team.test", "meet.test"} <= {d for c in proxy["certificate"] for d in c["domains"]}
    assert all(b.get("proxy_protocol") == "v2" for b in proxy["backend"] if not b["name"].endswith("-http"))
    assert not any("proxy_protocol" in b for b in proxy["backend"] if b["name"].endswith("-http"))
    for k, name in enumerate(["shard-a", "shard-b"]):
        cfg = (out / "prosody" / name / "prosody.cfg.lua").read_text()
        for line in (f"xmpp_shard_ports = {{ {26222 + k} }}", f"c2s_ports = {{ {26283 + k} }}",
                     'c2s_interfaces = { "127.0.0.1" }', "c2s_require_encryption = true",
                     "consider_websocket_secure = true", "consider_bosh_secure = true"):
            assert line in cfg, (name, line)
        assert "c2s_ports = { }" not in cfg
        auth = cfg.split('VirtualHost "auth.meet.test"')[1].split("\n\n")[0]
        assert "c2s_require_encryption = false" in auth and "allow_unencrypted_plain_auth = true" in auth
        meet = cfg.split('VirtualHost "meet.test"')[1].split("\n\n")[0]
        assert "c2s_require_encryption" not in meet
        for conf in (f"jicofo-{name}.conf", f"jicofo-{name}-team.test.conf"):
            j = read_hocon("\n".join(l for l in (out / "jitsi" / conf).read_text().splitlines()
                                     if not l.startswith("include ")))["jicofo"]["xmpp"]
            assert (j["client"]["port"], j["client"]["use-tls"]) == (26283 + k, False)
            assert (j["service"]["port"], j["service"]["use-tls"]) == (5222, True)
    r = tool("check", plan, "--out", out, "--proxy", proxy_bin)
    assert r.returncode == 1 and "[plan] tls" in r.stderr and "certs" in r.stderr, r.stderr
    tool("certs", plan, "--out", out, check=True)
    r = tool("check", plan, "--out", out, "--proxy", proxy_bin)
    assert r.returncode == 0 and r.stdout.count("prosodyctl check config") == 3, r.stdout + r.stderr
    assert f"--check {out}/proxy.toml: ok" in r.stdout


def test_tenants_live_on_every_shard(base):
    """[jitsi] tenants with shards: every shard hosts each tenant (its own conference MUC, guest
    and focus), its rooms are hashed like the meeting domain's, one jicofo per shard and domain;
    [tenants] (plain XMPP domains) hash over the shards, never the brewery."""
    text = rooms_text(3).replace("bridges = 2", 'bridges = 2\ntenants = ["team.test", "club.test"]')
    text = text.replace("[backends]", '[tenants]\ndomains = ["chat.test"]\n\n[backends]')
    plan = plan_file(base, 3, text)
    out = base / "out"
    tool("generate", plan, "--out", out, check=True)
    for name in ("shard-a", "shard-b", "shard-c"):
        cfg = (out / "prosody" / name / "prosody.cfg.lua").read_text()
        for t in ("team.test", "club.test"):
            for line in (f'VirtualHost "{t}"', f'VirtualHost "guest.{t}"', f'VirtualHost "auth.{t}"',
                         f'Component "conference.{t}" "muc"'):
                assert line in cfg, (name, line)
        assert 'VirtualHost "chat.test"' in cfg
        assert cfg.count("restrict_room_creation = true") == 3
    assert "team.test" not in (out / "prosody" / "brewery" / "prosody.cfg.lua").read_text()
    assert "chat.test" not in (out / "prosody" / "brewery" / "prosody.cfg.lua").read_text()
    proxy = tomllib.loads((out / "proxy.toml").read_text())
    routes = {r["name"]: r for r in proxy["route"]}
    assert routes["rooms"]["domains"] == ["meet.test", "team.test", "club.test"]
    assert {"team.test", "auth.club.test"} <= set(routes["shards"]["domains"])
    assert routes["tenants"]["backends"] == ["shard-a", "shard-b", "shard-c"]
    rests = set()
    for unit in [s + t for s in ("shard-a", "shard-b", "shard-c") for t in ("", "-team.test", "-club.test")]:
        j = read_hocon("\n".join(l for l in (out / "jitsi" / f"jicofo-{unit}.conf").read_text().splitlines()
                                 if not l.startswith("include ")))["jicofo"]
        dom = unit[len("shard-a-"):] or "meet.test"
        assert j["xmpp"]["client"]["domain"] == f"auth.{dom}", unit
        assert j["xmpp"]["client"]["conference-muc-jid"] == f"conference.{dom}"
        assert j["xmpp"]["service"]["resource"] == f"focus-{unit}"
        rests.add(j["rest"]["port"])
    assert len(rests) == 9 and not (out / "jitsi" / "jicofo-team.test.conf").exists()
    report = (out / "REPORT.txt").read_text()
    assert "all host meet.test, team.test, club.test" in report


@pytest.mark.parametrize("old, new, expected", [
    ("cores = 4", "cores = 1", "[jitsi] shards: 2 room shards on 1 core(s)"),
    ("shard_http_port = 26281", "shard_http_port = 26222", "[jitsi] shard_http_port: shard 0's HTTP port 26222"),
    ("[backends]", '[[host]]\ndomain = "guest.meet.test"\ninstance = 2\n[backends]',
     "guest.meet.test is owned twice ([jitsi] domain (shards) guests and [[host]] #1 "
     "(guest.meet.test)); every room shard hosts it"),
], ids=["cores", "ports", "domain"])
def test_check_names_the_key_of_each_room_shard_failure(base, old, new, expected):
    plan = plan_file(base, 2, rooms_text(2).replace(old, new, 1))
    r = tool("check", plan, "--out", base / "out")
    assert r.returncode == 1 and expected in r.stderr, r.stderr


def test_no_shards_key_keeps_todays_plan():
    text = (rooms_text(2).replace("\nshards = 2\n", "\n").replace("shard_http_port = 26281\n", "")
            .replace("jibri = 2", "jvb = 2\njibri = 2"))
    plan = parse(text)
    assert plan.jitsi.shards is None and not any(h.replicas for h in plan.hosts)
    assert [h.instance for h in plan.hosts if h.domain == "meet.test"] == [0]


def test_check_runs_prosodyctl_and_the_proxy_on_the_room_sharded_plan(base, proxy_bin):
    for shards in (2, 3):
        plan = plan_file(base, shards)
        out = base / f"out-{shards}"
        tool("generate", plan, "--out", out, check=True)
        r = tool("check", plan, "--out", out, "--proxy", proxy_bin)
        assert r.returncode == 0, r.stdout + r.stderr
        names = ["shard-a", "shard-b", "shard-c"][:shards] + ["brewery"]
        for name in names:
            assert f"prosodyctl check config {out}/prosody/{name}/prosody.cfg.lua: ok" in r.stdout
        assert f"--check {out}/proxy.toml: ok" in r.stdout


@pytest.mark.parametrize("shards", [2, "2-tls"])
def test_nginx_snippet_passes_nginx_t(base, shards):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        pytest.fail("nginx not installed: bash scripts/setup.sh (installs nginx-light)", pytrace=False)
    plan = plan_file(base, shards)
    out = base / "out"
    tool("generate", plan, "--out", out, check=True)
    snippet = out / "jitsi" / "nginx-xmpp-shard.conf"
    upstream = out / "jitsi" / "nginx-xmpp-shard-upstream.conf"
    text = snippet.read_text()
    scheme = "https" if shards == "2-tls" else "http"    # the proxy terminates TLS: nginx speaks it
    assert text.count(f"proxy_pass {scheme}://xmpp_shard;") == 2
    assert text.count("proxy_ssl_name $host;") == (2 if scheme == "https" else 0)
    assert "location = /xmpp-websocket {" in text and "location = /http-bind {" in text
    # docs/CONFIG.md's locations: keep-alive connections to the proxy for BOSH (which it routes
    # request by request), Prosody's BOSH hold within the read timeout
    bind = text[text.index("location = /http-bind {"):]
    for line in ("proxy_http_version 1.1;", 'proxy_set_header Connection "";', "proxy_read_timeout 150s;"):
        assert line in bind, bind
    up = upstream.read_text()
    assert "upstream xmpp_shard {\n    server 127.0.0.1:26280;\n    keepalive 32;\n}" in up, up
    ng = base / "nginx"
    (ng / "tmp").mkdir(parents=True)
    conf = ng / "nginx.conf"
    conf.write_text(f"""\
pid {ng}/nginx.pid;
error_log {ng}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {ng}/tmp;
    proxy_temp_path {ng}/tmp;
    fastcgi_temp_path {ng}/tmp;
    uwsgi_temp_path {ng}/tmp;
    scgi_temp_path {ng}/tmp;
    include {upstream};         # the http level, as /etc/nginx/conf.d/*.conf on Debian
    server {{
        listen 127.0.0.1:8443;
        server_name meet.test;
        root {ng};
        include {snippet};
    }}
}}
""")
    r = subprocess.run([nginx, "-t", "-p", str(ng), "-e", str(ng / "error.log"), "-c", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "test is successful" in r.stderr, r.stdout + r.stderr
    # A broken snippet fails the same way (the test really reads it).
    snippet.write_text(text.replace("proxy_pass", "proxy_pas", 1))
    r = subprocess.run([nginx, "-t", "-p", str(ng), "-e", str(ng / "error.log"), "-c", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "proxy_pas" in r.stderr, r.stderr


# --------------------------------------------------------------------------------------------
# where

def test_room_key_is_the_proxys():
    assert room_key("MyRoom") == "myroom"
    assert room_key("Room", tenant="Team") == "team/room"
    assert room_key("team/Room") == "team/room"
    names = ["shard-a", "shard-b", "shard-c", "brewery"]
    for room in ("a", "b", "MyRoom", "team/x"):
        assert room_shard(room, names, 3) == rendezvous_pick(room.lower(), [
            "shard-a-http", "shard-b-http", "shard-c-http"])


def test_adding_a_shard_moves_about_one_in_n_plus_one_rooms():
    names = ["s0", "s1", "s2", "s3", "brewery"]
    rooms = [f"room{i}" for i in range(3000)]
    before = [room_shard(r, names, 3) for r in rooms]
    after = [room_shard(r, names, 4) for r in rooms]
    moved = [(b, a) for b, a in zip(before, after) if b != a]
    assert all(a == 3 for _, a in moved)           # only to the new shard
    assert 0.2 < len(moved) / len(rooms) < 0.3     # about 1/4


def test_adding_a_shard_as_report_says_moves_only_rooms_to_the_new_shard(base):
    """REPORT.txt's recipe on the shipped example (3 shards): shards = 4, instances = 5, the
    brewery's [[instance]] and breweries to index 4, the new shard at index 3. `where` before and
    after: only rooms that the new shard wins move, about 1/4."""
    example = "".join(l for l in (HERE.parents[1] / "deploy" / "plans" / "jitsi-rooms.toml")
                      .read_text().splitlines(True)      # its /var paths: generate would make them
                      if not l.startswith(("data ", "log ", "pidfile ", "out ")))
    out = base / "out"
    tool("generate", plan_file(base, "before", example), "--out", out, check=True)
    report = (out / "REPORT.txt").read_text()
    assert ("Adding a shard: shards = 4 and instances = 5 (the new shard is instance 3; move "
            "brewery's [[instance]] and\n    [jitsi] jvb/jibri/jigasi to index 4") in report, report
    grown = (example.replace("instances = 4", "instances = 5").replace("cores = 4", "cores = 5")
             .replace('index = 3\nname = "brewery"', 'index = 3\nname = "shard-d"\n\n[[instance]]\n'
                      'index = 4\nname = "brewery"')
             .replace("shards = 3 ", "shards = 4 ").replace("jvb = 3", "jvb = 4").replace("jibri = 3", "jibri = 4"))
    rooms = [f"room-{i}" for i in range(400)]
    before = tool("where", plan_file(base, "before", example), *rooms, check=True).stdout.splitlines()
    after = tool("where", plan_file(base, "after", grown), *rooms, check=True).stdout.splitlines()
    moved = [(b.split()[1], a.split()[1]) for b, a in zip(before, after) if b.split()[1] != a.split()[1]]
    assert moved and all(a == "shard-d" for _, a in moved), moved[:5]
    assert 0.18 < len(moved) / len(rooms) < 0.32, len(moved)
    tool("check", plan_file(base, "after", grown), "--out", base / "out-4", check=True)


def test_where_prints_the_shard(base):
    plan = plan_file(base, 3)
    r = tool("where", plan, "MyRoom", "other", check=True)
    names = ["shard-a", "shard-b", "shard-c", "brewery"]
    k = room_shard("MyRoom", names, 3)
    assert f"myroom: {names[k]} (instance {k}, HTTP backend {names[k]}-http 127.0.0.1:{26281 + k})" in r.stdout
    r = tool("where", plan, "Room", "--tenant", "Team", check=True)
    assert r.stdout.startswith("team/room: ")
    r = tool("where", HERE / "data" / "deploy-small.toml", "room")
    assert r.returncode == 2 and "[jitsi] shards is not set" in r.stderr


class _Shard(http.server.ThreadingHTTPServer):
    daemon_threads = True


def _fake_shard(name: str, seen: list):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((name, self.path))
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass
    return H


def test_where_agrees_with_the_proxy_running_the_generated_config(base, proxy_bin):
    """Fake HTTP shards on the generated backends' ports; the real proxy with the generated
    proxy.toml; each room's request reaches the shard `where` names."""
    shard_base = None
    for _ in range(50):     # three consecutive free ports for the shards' HTTP side
        p = free_port()
        if all(_port_free(p + k) for k in range(3)):
            shard_base = p
            break
    assert shard_base, "no three consecutive free ports"
    http_port, c2s_port = free_port(), free_port()
    text = (rooms_text(3).replace("shard_http_port = 26281", f"shard_http_port = {shard_base}")
            .replace("http_port = 26280", f"http_port = {http_port}")
            .replace("port = 5222", f"port = {c2s_port}").replace('listen = "0.0.0.0"', 'listen = "127.0.0.1"'))
    plan = base / "rooms-live.toml"
    plan.write_text(text)
    out = base / "out"
    tool("generate", plan, "--out", out, check=True)
    proxy_toml = out / "proxy.toml"
    proxy_toml.write_text(proxy_toml.read_text() + "\n")
    # the proxy's own settings for a quick test: no metrics port, fast health checks
    cfg = proxy_toml.read_text().replace('check_path = "/http-bind"',
                                         'check_path = "/http-bind"\ncheck_interval = "100ms"\nrise = 1')
    proxy_toml.write_text('[proxy]\nworkers = 1\nmetrics = ""\n\n' + cfg)
    seen: list = []
    names = ["shard-a", "shard-b", "shard-c"]
    servers = []
    try:
        for k, n in enumerate(names):
            srv = _Shard(("127.0.0.1", shard_base + k), _fake_shard(n, seen))
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            servers.append(srv)
        proc = subprocess.Popen([str(proxy_bin), "--config", str(proxy_toml)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 15
            while {n for n, path in seen} != set(names):     # every shard health-checked
                assert time.monotonic() < deadline, f"health checks never reached all shards: {seen}"
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.05)
            time.sleep(0.5)
            rooms = [f"Room{i}" for i in range(12)] + ["team/abc"]
            got = {}
            for room in rooms:
                seen.clear()
                status = _get(http_port, f"/http-bind?room={room}")
                assert status == 200, (room, status)
                hits = [n for n, path in seen if "room=" in path]
                assert len(hits) == 1, (room, seen)
                got[room] = hits[0]
            r = tool("where", plan, *rooms, check=True)
            for room, line in zip(rooms, r.stdout.splitlines()):
                assert line.startswith(f"{room.lower()}: {got[room]} "), (line, got[room])
            assert len(set(got.values())) > 1, got
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _get(port: int, path: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: meet.test\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else 0


def test_the_example_room_plan_passes_check(base, proxy_bin):
    plan = HERE.parents[1] / "deploy" / "plans" / "jitsi-rooms.toml"
    r = tool("check", plan, "--out", base / "not-generated", "--proxy", proxy_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("prosodyctl check config") == 4 and "check: all good" in r.stdout, r.stdout
    r = tool("where", plan, "SomeRoom", check=True)
    assert re.match(r"someroom: shard-[abc] \(instance [012], HTTP backend shard-[abc]-http "
                    r"127\.0\.0\.1:528[123]\)", r.stdout), r.stdout
