"""deploy/run-local end to end.
  - The quick start (the default plan, deploy/plans/local.toml: TLS terminated at the proxy with
    a local CA), run as a user would: the go-sendxmpp commands its banner prints are run as
    printed, one listening as the receiver, the other logging in and sending a message, which
    arrives; both verify the proxy's certificate against the printed CA; Ctrl-C (SIGINT) stops
    everything and removes the temporary directory.
  - The quick start's browser-side door: a WebSocket XMPP client logs in through the wss:// URL
    its banner prints (the proxy's HTTP listener, TLS verified against the printed CA, Host and
    SNI the URL's domain), and the login shows on the Prosody instance behind it.
  - The plaintext plan (deploy/plans/local-plaintext.toml): comes up behind the proxy (another
    port when 5222 is taken), logins work (over TCP and over the printed ws:// URL), a crashed
    instance is reported loudly, SIGTERM stops everything and leaves no process."""

import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import threading
import time
from urllib.parse import urlsplit

import pytest

from conftest import REPO
from http_support import WsXmpp
from xs_clients import login


def web_urls(text: str) -> tuple[str, str]:
    """The WebSocket and BOSH URLs of a run's banner (its `web` lines)."""
    ws = re.search(r"^\s+web\s+(wss?://\S+/xmpp-websocket)\s", text, re.M)
    bosh = re.search(r"^\s+(https?://\S+/http-bind)\s", text, re.M)
    assert ws and bosh, f"no WebSocket and BOSH URLs in the banner:\n{text}"
    return ws.group(1), bosh.group(1)


class Lines:
    def __init__(self, pipe):
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self.t.start()

    def _pump(self, pipe):
        for raw in iter(pipe.readline, b""):
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in run-local output within {timeout:g}s:\n"
                                     f"{self.text()[-4000:]}")
            time.sleep(0.1)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.timeout(120)
def test_run_local_plaintext_plan(proxy_bin, base_dir):
    out_dir = base_dir / "run-local"
    # Hold 5222 (or find it taken already): run-local must then pick and print another port.
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 5222))
        blocker.listen(1)
    except OSError:
        blocker.close()
        blocker = None
    p = subprocess.Popen([str(REPO / "deploy" / "run-local"),
                          str(REPO / "deploy" / "plans" / "local-plaintext.toml"), "--proxy", str(proxy_bin),
                          "--out", str(out_dir)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    out = Lines(p.stdout)
    pids: list[int] = []
    try:
        m = out.wait_for(r"^\s+proxy\s+127\.0\.0\.1:(\d+)\s+\(pid (\d+)", 60)
        port, proxy_pid = int(m.group(1)), int(m.group(2))
        assert port != 5222
        pids.append(proxy_pid)
        inst = {name: (int(pid), int(core)) for name, core, pid in
                re.findall(r"^\s+(prosody-\d+)\s+\S+\s+core (\d+)\s+pid (\d+)", out.text(), re.M)}
        ncpu = len(os.sched_getaffinity(0))
        assert len(inst) == max(2, ncpu), out.text()
        pids += [pid for pid, _ in inst.values()]
        assert len({core for _, core in inst.values()}) == min(len(inst), ncpu), f"cores: {inst}"
        out.wait_for(r"^\s+files\s", 5)        # the end of the banner
        assert re.search(r'^\s+tls\s+none: plaintext', out.text(), re.M), out.text()
        assert re.search(r"^\s+try it\s+plaintext .*refuse to authenticate without TLS", out.text(), re.M)
        assert "go-sendxmpp -u" not in out.text(), "a client command that cannot work over plaintext"
        acc_file = out_dir / "accounts.txt"
        assert str(acc_file) in out.text()
        accounts = dict(line.split() for line in acc_file.read_text().splitlines()
                        if line and not line.startswith("#"))
        assert {"jvb@auth.meet.localhost", "focus@auth.meet.localhost"} <= set(accounts)

        jid = "jvb@auth.meet.localhost"
        r = login(port, jid, accounts[jid], join="JvbBrewery@internal.auth.meet.localhost", nick="jvb")
        assert r.ok and "110" in r.muc_codes, str(r)
        out.wait_for(r"^\[prosody-1\] .*Authenticated as jvb@auth\.meet\.localhost", 10)
        g = login(port, "guest.meet.localhost", join="room@conference.meet.localhost", nick="g")
        assert g.ok and "110" in g.muc_codes, str(g)
        out.wait_for(r"^\[prosody-0\] .*Authenticated as \S+@guest\.meet\.localhost", 10)
        jid = "alice@tenant1.localhost"
        assert login(port, jid, accounts[jid]).ok
        out.wait_for(r"^\[proxy\] ", 5)
        # The printed ws:// URL: plaintext through the proxy's HTTP listener to prosody-0.
        ws, bosh = web_urls(out.text())
        u = urlsplit(ws)
        assert u.scheme == "ws" and urlsplit(bosh).scheme == "http" and urlsplit(bosh).netloc == u.netloc
        c = WsXmpp(u.port, host="127.0.0.1", host_header=u.hostname, domain="guest.meet.localhost")
        try:
            wjid = c.login_anonymous().split("/")[0]
        finally:
            c.close()
        out.wait_for(rf"^\[prosody-0\] .*Authenticated as {re.escape(wjid)}", 10)

        # A crashed instance is reported loudly; the rest keeps running.
        os.kill(inst["prosody-1"][0], signal.SIGKILL)
        out.wait_for(r"PROSODY INSTANCE prosody-1 .*DIED", 10)
        assert p.poll() is None, "run-local gave up after an instance crashed"

        p.send_signal(signal.SIGTERM)
        rc = p.wait(40)
        assert rc == 0, f"run-local exit code {rc}\n{out.text()[-3000:]}"
        out.t.join(5)
        assert re.search(r"proxy exited with code 0", out.text()), out.text()[-2000:]
        deadline = time.monotonic() + 5
        while any(pid_alive(x) for x in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [x for x in pids if pid_alive(x)], "processes left behind after run-local exited"
    finally:
        if blocker:
            blocker.close()
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
        for x in pids:
            if pid_alive(x):
                os.kill(x, signal.SIGKILL)


def _shell(cmd: str, home, **kw) -> subprocess.Popen:
    """A command line from the banner, run by a shell as a user would paste it (no
    SSL_CERT_FILE of our own, an empty HOME: no go-sendxmpp config file)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["HOME"] = str(home)
    return subprocess.Popen(["bash", "-c", cmd], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, **kw)


@pytest.mark.timeout(90)
def test_quick_start_prints_a_client_command_that_works(proxy_bin, tmp_path):
    """The quick start as a user runs it (what scripts/run.sh execs, less the install and build
    steps): the default plan, no --out. The banner's go-sendxmpp commands are run exactly as
    printed: bob listens, alice logs in through the proxy with STARTTLS verified against the
    printed CA and sends him a message, which he gets."""
    assert subprocess.run(["go-sendxmpp", "--help"], capture_output=True, timeout=10).returncode in (0, 2), \
        "go-sendxmpp is missing: apt-get install go-sendxmpp (scripts/setup.sh installs it)"
    t0 = time.monotonic()
    p = subprocess.Popen([str(REPO / "deploy" / "run-local"), "--proxy", str(proxy_bin)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    out = Lines(p.stdout)
    listener = None
    try:
        files = out.wait_for(r"^\s+files\s+(\S+)\s+\(temporary", 45).group(1)
        text = out.text()
        port = int(re.search(r"^\s+proxy\s+127\.0\.0\.1:(\d+)\s", text, re.M).group(1))
        assert re.search(rf"^\s+tls\s+terminated by the proxy: STARTTLS required on {port}", text, re.M), text
        ca = re.search(r"^\s+CA\s+(\S+)\s", text, re.M).group(1)
        assert ca == f"{files}/certs/ca.crt" and os.path.isfile(ca), text
        acc_file = re.search(r"^\s+accounts\s+(\S+)\s", text, re.M).group(1)
        accounts = dict(line.split() for line in open(acc_file).read().splitlines()
                        if line and not line.startswith("#"))
        send = re.search(r"^    (echo .*\| .*go-sendxmpp .*)$", text, re.M).group(1)
        listen = re.search(r"^    (\S+ go-sendxmpp -l .*)$", text, re.M).group(1)
        assert re.search(r"^\s+web\s+wss://", text, re.M), "no wss:// URL for browser-side clients"

        # What the commands say: the CA is trusted (no -n), the password is the account's, the
        # server is the proxy's port.
        words = shlex.split(send.split("|", 1)[1])
        assert words[0] == f"SSL_CERT_FILE={ca}" and words[1] == "go-sendxmpp", send
        assert "-n" not in words and "--no-tls-verify" not in words, send
        sender, rcpt = words[words.index("-u") + 1], words[-1]
        assert words[words.index("-p") + 1] == accounts[sender], send
        assert words[words.index("-j") + 1] == f"127.0.0.1:{port}", send
        lw = shlex.split(listen)
        assert lw[lw.index("-u") + 1] == rcpt and lw[lw.index("-p") + 1] == accounts[rcpt], listen
        assert (sender, rcpt) == ("alice@tenant1.localhost", "bob@tenant1.localhost"), (sender, rcpt)

        listener = _shell(listen, tmp_path)
        got = Lines(listener.stdout)
        out.wait_for(rf"^\[prosody-\d+\] .*Authenticated as {re.escape(rcpt)}", 20)
        r = _shell(send, tmp_path)
        sent = Lines(r.stdout)
        assert r.wait(30) == 0, f"the banner's command failed:\n{send}\n{sent.text()}"
        m = got.wait_for(rf"{re.escape(sender)}: (.*)$", 15)
        assert m.group(1) == "hello through xmpp-shard", got.text()
        # alice's login went through the proxy, which terminated TLS for it.
        m = out.wait_for(rf"^\[(prosody-\d+)\] .*(c2s\w+)\s+info\s+Authenticated as {re.escape(sender)}", 10)
        assert re.search(rf"^\[{m.group(1)}\] .*{m.group(2)}\s+info\s+Client address 127\.0\.0\.1 port \d+ "
                         rf"via xmpp-shard .*TLS terminated by the proxy", out.text(), re.M), out.text()[-3000:]
        assert time.monotonic() - t0 < 60

        # Ctrl-C, as in the terminal: everything stops, the temporary directory goes.
        os.killpg(listener.pid, signal.SIGTERM)
        listener.wait(10)
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0, out.text()[-3000:]
        out.t.join(5)
        assert "proxy exited with code 0" in out.text(), out.text()[-2000:]
        assert not os.path.exists(files), f"{files} left behind"
    finally:
        for proc in (listener, p):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.mark.timeout(90)
def test_quick_start_prints_a_websocket_url_that_works(proxy_bin):
    """The quick start's browser-side door: the banner's wss:// URL is the proxy's HTTP listener
    (TLS terminated there); a WebSocket XMPP client (RFC 7395) connects to it as a browser would,
    verifying the certificate against the printed CA for the URL's host name (SNI and Host), logs
    in anonymously on guest.meet.localhost and pings; the login shows on the Prosody instance
    that hosts it (its log: "Authenticated as"), reached through the listener."""
    p = subprocess.Popen([str(REPO / "deploy" / "run-local"), "--proxy", str(proxy_bin)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    out = Lines(p.stdout)
    try:
        out.wait_for(r"^\s+files\s+(\S+)\s+\(temporary", 45)
        text = out.text()
        ca = re.search(r"^\s+CA\s+(\S+)\s", text, re.M).group(1)
        ws, bosh = web_urls(text)
        u, b = urlsplit(ws), urlsplit(bosh)
        assert (u.scheme, u.path, b.scheme, b.path) == ("wss", "/xmpp-websocket", "https", "/http-bind"), (ws, bosh)
        assert u.netloc == b.netloc and u.hostname == "meet.localhost", (ws, bosh)
        assert re.search(r"trust the CA above in the browser", text), text
        # The listener's address (the banner's): *.localhost is loopback for browsers; this
        # machine's resolver may not know it, so connect there and name the host in SNI and Host.
        listener = re.search(rf"the proxy's HTTP listener on (\S+):{u.port} ", text)
        assert listener, text
        ctx = ssl.create_default_context(cafile=ca)     # verifies the chain and the host name
        c = WsXmpp(u.port, host=listener.group(1), host_header=u.hostname,
                   domain="guest.meet.localhost", tls=ctx)
        try:
            jid = c.login_anonymous().split("/")[0]
            assert c.ping()
            assert c.sock.version() in ("TLSv1.2", "TLSv1.3") and c.sock.selected_alpn_protocol() in (None, "http/1.1")
        finally:
            c.close()
        out.wait_for(rf"^\[prosody-0\] .*Authenticated as {re.escape(jid)}", 10)
        out.wait_for(r"^\[proxy\] .*listener=http domain=meet\.localhost route=prosody-0-http "
                     r"backend=prosody-0-http", 10)
        # TLS for a name the plan has no certificate for fails: the SNI picks the certificate.
        with pytest.raises(ssl.SSLError):
            WsXmpp(u.port, host=listener.group(1), host_header="elsewhere.test", tls=ctx)
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0, out.text()[-3000:]
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
