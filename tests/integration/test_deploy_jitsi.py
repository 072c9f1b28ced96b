"""The Jitsi preset with four instances, started with `xmpp-shard-deploy run`, checked through
the proxy with slixmpp: the credentials and JIDs come from the jicofo.conf / jvb.conf /
jibri.conf snippets it generated, so the test also proves the snippets work. Each login must
land on its instance (the instance's own log says `Authenticated as ...`, no other one does):
  - a jvb user joins JvbBrewery on the brewery instance;
  - the focus user reaches both its instances (Client connection: the client instance;
    Service connection: the brewery instance, where it joins JvbBrewery);
  - a guest lands on the client instance and joins a conference room there;
  - a tenant's focus and guest land on the tenant's pool instance;
  - `prosodyctl check config` passes for every instance;
  - a crashed instance is reported and restarted; SIGTERM stops everything, nothing is left.
The time from `run` to "is up" is recorded in the figures."""

import os
import re
import signal
import subprocess
import time

import pytest

from deploy_support import DeployRun, pid_alive, read_accounts, read_hocon, tool
from xs_clients import login, login_many
from xs_local.jitsi import rendezvous_pick
from xs_local.ports import free_port

PLAN = """
[plan]
name = "jitsi4"
instances = 4
listen = "127.0.0.1"

[[instance]]
index = 0
name = "client"
[[instance]]
index = 1
name = "brewery"
[[instance]]
index = 2
name = "pool-a"
[[instance]]
index = 3
name = "pool-b"

[jitsi]
domain = "meet.test"
auth = "internal_hashed"
guests = true
client = 0
jvb = 1
jibri = 1
jigasi = 0
tenants = ["alpha.test", "beta.test", "gamma.test"]
http_port = @HTTP@

[proxy]
workers = 1
"""
NAMES = ["client", "brewery", "pool-a", "pool-b"]


@pytest.fixture(scope="module")
def jitsi_run(proxy_bin):
    http = free_port()
    with DeployRun(proxy_bin, PLAN.replace("@HTTP@", str(http)), "xs-deploy-jitsi-", NAMES) as r:
        pids = {name: int(pid) for name, pid in
                re.findall(r"^\s+(client|brewery|pool-a|pool-b)\s+\S+\s+core \d+\s+pid (\d+)", r.lines.text(), re.M)}
        proxy_pid = int(r.lines.wait_for(r"\(pid (\d+), config", 5).group(1))
        yield {"http": http, "p": r.p, "lines": r.lines, "out": r.out, "plan": r.plan, "port": r.port, "pids": pids,
               "proxy_pid": proxy_pid, "up": r.up, "wall": r.wall, "run": r}


def log_of(run, name):
    return run["run"].log_of(name)


def landed(run, jid, expect):
    """`jid` authenticated on instance `expect` and on no other one."""
    run["run"].landed(jid, expect)


@pytest.mark.timeout(120)
def test_run_brings_up_four_instances_each_on_its_core(jitsi_run, figures):
    run = jitsi_run
    assert set(run["pids"]) == set(NAMES), run["lines"].text()[-3000:]
    cpus = sorted(os.sched_getaffinity(0))
    for i, name in enumerate(NAMES):
        status = open(f"/proc/{run['pids'][name]}/status").read()
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        assert uid != "0", f"{name} runs as root"
        allowed = next(line.split(":")[1].strip() for line in status.splitlines()
                       if line.startswith("Cpus_allowed_list:"))
        assert allowed == str(cpus[i % len(cpus)]), f"{name} pinned to {allowed}"
    figures["deploy run: 4 Jitsi instances + proxy up (tool's own count)"] = f"{run['up']:.1f} s"
    figures["deploy run: 4 Jitsi instances + proxy up (wall, from exec)"] = f"{run['wall']:.1f} s"


@pytest.mark.timeout(60)
def test_without_certs_the_shard_is_plaintext(jitsi_run):
    """No [certs] table: [plan] tls defaults to "none" (test_deploy_tls.py runs "terminate")."""
    import tomllib
    run = jitsi_run
    px = tomllib.loads((run["out"] / "proxy.toml").read_text())
    assert "tls" not in px["listener"][0] and "certificate" not in px
    assert all("proxy_protocol" not in b for b in px["backend"])
    j = read_hocon((run["out"] / "jitsi" / "jicofo.conf").read_text())["jicofo"]["xmpp"]
    assert j["client"]["use-tls"] is False
    assert "tls        none: plaintext" in run["lines"].text()
    cfg = (run["out"] / "prosody" / "client" / "prosody.cfg.lua").read_text()
    assert "allow_unencrypted_plain_auth = true" in cfg and "xmpp_shard" not in cfg


@pytest.mark.timeout(120)
def test_jvb_joins_the_brewery_on_the_brewery_instance(jitsi_run):
    run = jitsi_run
    jvb = read_hocon((run["out"] / "jitsi" / "jvb.conf").read_text())
    c = jvb["videobridge"]["apis"]["xmpp-client"]["configs"]["xmpp-shard"]
    assert c["port"] == run["port"] and c["hostname"] == "127.0.0.1"
    jid = f"{c['username']}@{c['domain']}"
    assert jid == "jvb@auth.jvb.meet.test"
    r = login(c["port"], jid, c["password"], join=c["muc_jids"], nick=c["muc_nickname"])
    assert r.ok and "110" in r.muc_codes, str(r)
    assert c["muc_jids"] == "JvbBrewery@internal.auth.jvb.meet.test"
    landed(run, jid, "brewery")


@pytest.mark.timeout(120)
def test_focus_reaches_both_its_instances(jitsi_run):
    run = jitsi_run
    j = read_hocon((run["out"] / "jitsi" / "jicofo.conf").read_text())["jicofo"]
    client, service = j["xmpp"]["client"], j["xmpp"]["service"]
    assert client["port"] == service["port"] == run["port"]
    cj = f"{client['username']}@{client['domain']}"
    sj = f"{service['username']}@{service['domain']}"
    assert (cj, sj) == ("focus@auth.meet.test", "focus@auth.jvb.meet.test")
    # Client connection: into the conference MUC on the client instance.
    rc = login(client["port"], cj, client["password"],
               join=f"room1@{client['conference-muc-jid']}", nick="focus")
    assert rc.ok and "110" in rc.muc_codes, str(rc)
    # Service connection: the bridges' brewery on the brewery instance.
    assert j["bridge"]["xmpp-connection-name"] == "Service"
    rs = login(service["port"], sj, service["password"], join=j["bridge"]["brewery-jid"], nick="focus")
    assert rs.ok and "110" in rs.muc_codes, str(rs)
    landed(run, cj, "client")
    landed(run, sj, "brewery")
    # Jibri's brewery shares the Service connection; Jigasi's is on the client instance.
    env = read_hocon((run["out"] / "jitsi" / "jibri.conf").read_text())["jibri"]["api"]["xmpp"]["environments"][0]
    ctl, muc, call = env["control-login"], env["control-muc"], env["call-login"]
    assert f"{muc['room-name']}@{muc['domain']}" == j["jibri"]["brewery-jid"]
    r = login(ctl["port"], f"{ctl['username']}@{ctl['domain']}", ctl["password"],
              join=j["jibri"]["brewery-jid"], nick=muc["nickname"])
    assert r.ok and "110" in r.muc_codes, str(r)
    landed(run, "jibri@auth.jvb.meet.test", "brewery")
    r = login(run["port"], f"{call['username']}@{call['domain']}", call["password"],
              join="room1@conference.meet.test", nick="recorder")
    assert r.ok and "110" in r.muc_codes, str(r)
    landed(run, "recorder@recorder.meet.test", "client")
    pw = read_accounts(run["out"])
    r = login(run["port"], "jigasi@auth.meet.test", pw["jigasi@auth.meet.test"],
              join=j["jigasi"]["brewery-jid"], nick="jigasi-1")
    assert r.ok and "110" in r.muc_codes, str(r)
    landed(run, "jigasi@auth.meet.test", "client")


@pytest.mark.timeout(120)
def test_guest_lands_on_the_client_instance(jitsi_run):
    run = jitsi_run
    g = login(run["port"], "guest.meet.test", join="room1@conference.meet.test", nick="guest")
    assert g.ok and "110" in g.muc_codes, str(g)
    landed(run, g.bound.split("/")[0], "client")


@pytest.mark.timeout(60)
def test_the_client_instance_serves_bosh_for_the_browsers(jitsi_run):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{jitsi_run['http']}/http-bind", timeout=10) as r:
        body = r.read().decode(errors="replace")
    assert r.status == 200 and "BOSH" in body, body[:300]


@pytest.mark.timeout(60)
def test_the_banner_names_the_websocket_url_and_it_upgrades(jitsi_run):
    """The banner's web line names Prosody's WebSocket endpoint on the client instance, and a
    WebSocket handshake (subprotocol xmpp, RFC 7395) there gets 101 Switching Protocols."""
    import base64
    import os as os_
    import socket
    m = jitsi_run["lines"].wait_for(r"^\s+web\s+ws://127\.0\.0\.1:(\d+)(/xmpp-websocket) ", 5)
    assert int(m.group(1)) == jitsi_run["http"], m.group(0)
    key = base64.b64encode(os_.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", jitsi_run["http"]), timeout=10) as s:
        s.sendall((f"GET {m.group(2)} HTTP/1.1\r\nHost: meet.test\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   f"Sec-WebSocket-Protocol: xmpp\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:300]


@pytest.mark.timeout(120)
def test_tenants_land_on_their_pool_instance(jitsi_run):
    run = jitsi_run
    pw = read_accounts(run["out"])
    creds = []
    for t in ("alpha.test", "beta.test", "gamma.test"):
        j = read_hocon((run["out"] / "jitsi" / f"jicofo-{t}.conf").read_text())["jicofo"]
        c = j["xmpp"]["client"]
        creds.append((f"focus@{c['domain']}", c["password"]))
        assert c["password"] == pw[f"focus@auth.{t}"]
    rs = login_many(run["port"], creds)
    assert all(r.ok for r in rs), "\n".join(map(str, rs))
    for (jid, _), t in zip(creds, ("alpha.test", "beta.test", "gamma.test")):
        want = ["pool-a", "pool-b"][rendezvous_pick(t, ["pool-a", "pool-b"])]
        landed(run, jid, want)
        g = login(run["port"], f"guest.{t}", join=f"r@conference.{t}", nick="g")
        assert g.ok and "110" in g.muc_codes, str(g)
        landed(run, g.bound.split("/")[0], want)


@pytest.mark.timeout(120)
def test_prosodyctl_check_config_passes_for_every_instance(jitsi_run, proxy_bin):
    run = jitsi_run
    # `run` chose free ports, so the directory differs from a plain generate's: check the
    # configs it runs on, and the plan, directly.
    r = tool("check", run["plan"], "--proxy", proxy_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in NAMES:
        cfg = run["out"] / "prosody" / name / "prosody.cfg.lua"
        c = subprocess.run(["prosodyctl", "--config", str(cfg), "check", "config"],
                           capture_output=True, text=True, timeout=60)
        assert c.returncode == 0, f"{cfg}:\n{c.stdout}{c.stderr}"


@pytest.mark.timeout(120)
def test_crash_is_reported_and_restarted_then_sigterm_stops_everything(jitsi_run):
    run = jitsi_run
    p, lines = run["p"], run["lines"]
    os.kill(run["pids"]["brewery"], signal.SIGKILL)
    lines.wait_for(r"PROSODY INSTANCE brewery .*DIED", 10)
    m = lines.wait_for(r"restarted brewery \(pid (\d+)\)", 15)
    new_pid = int(m.group(1))
    pw = read_accounts(run["out"])
    deadline = time.monotonic() + 15
    while True:
        r = login(run["port"], "jvb@auth.jvb.meet.test", pw["jvb@auth.jvb.meet.test"], timeout=5)
        if r.ok or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert r.ok, f"jvb cannot log in after the brewery restarted: {r}"
    p.send_signal(signal.SIGTERM)
    assert p.wait(40) == 0, lines.text()[-3000:]
    lines.t.join(5)
    assert "proxy exited with code 0" in lines.text()
    pids = list(run["pids"].values()) + [run["proxy_pid"], new_pid]
    deadline = time.monotonic() + 5
    while any(pid_alive(x) for x in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [x for x in pids if pid_alive(x)], "processes left behind"
