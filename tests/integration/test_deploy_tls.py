"""`xmpp-shard-deploy run` in terminate mode ([plan] tls = "terminate", the default with a
[certs] table): the Jitsi preset on two instances with a local CA and a Direct TLS port.
  - `run` makes the certificates, the proxy terminates TLS, the instances have only
    mod_xmpp_shard's port and Prosody's secure defaults;
  - slixmpp logs in with STARTTLS (and with Direct TLS), verifying the proxy's certificate
    against the generated CA only, with the snippets' credentials; the login is seen on the
    right instance, which logs that the proxy terminated TLS;
  - `openssl s_client -starttls xmpp -CAfile OUT/certs/ca.crt` verifies OK and logs in;
  - a client skipping STARTTLS is refused and never reaches an instance; an instance's port
    refuses a client that bypasses the proxy;
  - `check` passes on the plan; SIGTERM stops everything.
The plaintext mode ([plan] tls = "none") is exercised by test_deploy_jitsi.py and
test_run_local.py."""

import re
import signal
import socket
import subprocess
import time

import pytest

pytest.register_assert_rewrite("tls_support")

from deploy_support import DeployRun, read_hocon, tool  # noqa: E402
from tls_support import Raw, SClient, stream_header, tls_login  # noqa: E402
from xs_clients import parse_stream_error  # noqa: E402
from xs_local.ports import free_port  # noqa: E402

PLAN = """
[plan]
name = "jitsi-tls"
instances = 2
listen = "127.0.0.1"
direct_tls_port = 5223

[[instance]]
index = 0
name = "client"
[[instance]]
index = 1
name = "brewery"

[jitsi]
domain = "meet.test"
auth = "internal_hashed"
guests = true
client = 0
jvb = 1
http_port = @HTTP@

[proxy]
workers = 1

[certs]
mode = "ca"
"""
NAMES = ["client", "brewery"]


@pytest.fixture(scope="module")
def tls_run(proxy_bin):
    with DeployRun(proxy_bin, PLAN.replace("@HTTP@", str(free_port())), "xs-deploy-tls-", NAMES) as r:
        direct = int(r.lines.wait_for(r"Direct TLS on 127\.0\.0\.1:(\d+)", 5).group(1))
        inst = {name: int(port_) for name, port_ in
                re.findall(r"^\s+(client|brewery)\s+127\.0\.0\.1:(\d+)\s+core", r.lines.text(), re.M)}
        yield {"p": r.p, "lines": r.lines, "out": r.out, "plan": r.plan, "port": r.port, "direct": direct,
               "inst": inst, "ca": r.out / "certs" / "ca.crt", "run": r}


def log_of(run, name):
    return run["run"].log_of(name)


def landed_with_tls(run, jid, expect):
    """`jid` authenticated on `expect` only, and that instance logged the proxy's TLS."""
    run["run"].landed(jid, expect)
    text = log_of(run, expect).read_text(errors="replace")
    sid = re.findall(rf"(c2s[0-9a-f]+)\s+info\s+Authenticated as {re.escape(jid)}\b", text)[-1]
    assert re.search(rf"{sid}\s+info\s+Client address 127\.0\.0\.1 port \d+ via xmpp-shard .*"
                     rf"\(TLS terminated by the proxy: TLSv1\.[23]", text), \
        f"no 'TLS terminated by the proxy' line for {sid} on {expect}:\n{text[-3000:]}"


def creds(run):
    jvb = read_hocon((run["out"] / "jitsi" / "jvb.conf").read_text())
    jvb = jvb["videobridge"]["apis"]["xmpp-client"]["configs"]["xmpp-shard"]
    jicofo = read_hocon((run["out"] / "jitsi" / "jicofo.conf").read_text())["jicofo"]["xmpp"]
    return jvb, jicofo


@pytest.mark.timeout(120)
def test_run_generates_a_terminating_shard(tls_run):
    import tomllib
    run = tls_run
    assert set(run["inst"]) == set(NAMES), run["lines"].text()[-3000:]
    assert "tls        terminated by the proxy: STARTTLS required" in run["lines"].text()
    px = tomllib.loads((run["out"] / "proxy.toml").read_text())
    assert [(l["name"], l["tls"], l.get("direct_tls", False)) for l in px["listener"]] == \
        [("c2s", "terminate", False), ("c2s-direct", "terminate", True)]
    assert [(b["address"], b["proxy_protocol"]) for b in px["backend"]] == \
        [(f"127.0.0.1:{run['inst'][n]}", "v2") for n in NAMES]
    assert {c["domains"][0] for c in px["certificate"]} == \
        {"meet.test", "guest.meet.test", "auth.meet.test", "auth.jvb.meet.test"}
    for name in NAMES:
        cfg = (run["out"] / "prosody" / name / "prosody.cfg.lua").read_text()
        assert "c2s_ports = { }" in cfg and f"xmpp_shard_ports = {{ {run['inst'][name]} }}" in cfg
        assert "allow_unencrypted_plain_auth = false" in cfg
    jvb, jicofo = creds(run)
    assert jvb["disable_certificate_verification"] is False
    assert jicofo["client"]["use-tls"] is True and jicofo["client"]["disable-certificate-verification"] is False
    assert "the components verify the proxy's certificate" in (run["out"] / "REPORT.txt").read_text()


@pytest.mark.timeout(120)
def test_slixmpp_starttls_login_verified_against_the_generated_ca(tls_run):
    run = tls_run
    jvb, jicofo = creds(run)
    jid = f"{jvb['username']}@{jvb['domain']}"
    r = tls_login(run["port"], jid, jvb["password"], ca=run["ca"], ping=True)
    assert r.ok and r.pinged, str(r)
    landed_with_tls(run, jid, "brewery")
    c = jicofo["client"]
    jid = f"{c['username']}@{c['domain']}"
    r = tls_login(run["port"], jid, c["password"], ca=run["ca"])
    assert r.ok, str(r)
    landed_with_tls(run, jid, "client")


@pytest.mark.timeout(120)
def test_slixmpp_direct_tls_login(tls_run):
    run = tls_run
    _, jicofo = creds(run)
    s = jicofo["service"]
    jid = f"{s['username']}@{s['domain']}"
    r = tls_login(run["direct"], jid, s["password"], ca=run["ca"], direct=True, alpn=["xmpp-client"])
    assert r.ok, str(r)
    landed_with_tls(run, jid, "brewery")


@pytest.mark.timeout(60)
def test_a_wrong_ca_is_not_accepted(tls_run, tmp_path):
    """The client really verifies: another CA's view of the proxy's certificate fails."""
    run = tls_run
    other = tmp_path / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "1", "-subj", "/CN=other", "-keyout", str(tmp_path / "k"),
                    "-out", str(other)], check=True, capture_output=True, timeout=30)
    jvb, _ = creds(run)
    r = tls_login(run["port"], f"{jvb['username']}@{jvb['domain']}", jvb["password"], ca=other, timeout=10)
    assert not r.ok, str(r)


@pytest.mark.timeout(60)
def test_openssl_s_client_starttls_verifies_and_logs_in(tls_run):
    run = tls_run
    _, jicofo = creds(run)
    c = jicofo["client"]
    sc = SClient(run["port"], ca=run["ca"], xmpphost=c["domain"], servername=c["domain"],
                 verify_hostname=c["domain"])
    try:
        out = sc.until(r"Verify return code: \d+ \([^)]*\)")
        assert "Verify return code: 0 (ok)" in out, out
        assert f"CN = {c['domain']}" in out and "xmpp-shard local CA" in out, out
        bound = sc.login_plain(c["domain"], c["username"], c["password"])
        assert bound.startswith(f"{c['username']}@{c['domain']}/"), bound
    finally:
        sc.close()
    landed_with_tls(run, f"{c['username']}@{c['domain']}", "client")


@pytest.mark.timeout(60)
def test_a_client_skipping_starttls_is_refused(tls_run):
    run = tls_run
    mark = {n: log_of(run, n).stat().st_size for n in NAMES}
    c = Raw(run["port"])
    c.send(stream_header("meet.test"))
    feats = c.until(r"</stream:features>")
    assert "<required/></starttls>" in feats and "<mechanism" not in feats, feats
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHB3</auth>")
    data, closed = c.read_to_eof(5)
    c.close()
    assert parse_stream_error(feats.encode() + data).condition == "policy-violation", data
    assert closed
    time.sleep(0.3)
    for n in NAMES:
        with open(log_of(run, n), "rb") as f:
            f.seek(mark[n])
            assert b"Client address" not in f.read(), f"{n} saw a session"


@pytest.mark.timeout(60)
def test_an_instance_refuses_a_client_that_bypasses_the_proxy(tls_run):
    """The instance's only port is mod_xmpp_shard's: without the proxy's PROXY header a stream
    gets no features (Prosody has no plain c2s port any more)."""
    run = tls_run
    with socket.create_connection(("127.0.0.1", run["inst"]["client"]), timeout=5) as s:
        s.sendall(stream_header("meet.test").encode())
        got = b""
        s.settimeout(5)
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    assert b"<mechanism" not in got and b"features" not in got, got


@pytest.mark.timeout(120)
def test_check_passes_in_terminate_mode(tls_run, proxy_bin):
    r = tool("check", tls_run["plan"], "--proxy", proxy_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'tls = "terminate": 4 certificate(s) for the proxy: ok' in r.stdout, r.stdout


@pytest.mark.timeout(60)
def test_sigterm_stops_everything(tls_run):
    p = tls_run["p"]
    p.send_signal(signal.SIGTERM)
    assert p.wait(40) == 0, tls_run["lines"].text()[-3000:]
    tls_run["lines"].t.join(5)
    assert "proxy exited with code 0" in tls_run["lines"].text()
