"""Interop matrix: every common XMPP client implementation Debian ships, through every door of
the proxy, each login checked on the Prosody side.

Doors (one proxy, one listener per door):
  plaintext passthrough    plain listener -> a Prosody that allows plaintext auth (no TLS at all)
  STARTTLS passthrough     plain listener -> mod_xmpp_shard's port (PROXY v2, no TLS TLV) of a
                           Prosody with its own certificate that requires encryption
  STARTTLS terminate       tls = "terminate" -> a Prosody with no certificate (PROXY v2 with TLS TLV)
  Direct TLS terminate     tls = "terminate", direct_tls = true -> the same Prosody
  Direct TLS passthrough   direct_tls = true (routed on SNI) -> Prosody's own Direct TLS port

Clients: go-sendxmpp (go-xmpp), slixmpp, nbxmpp (Gajim's library), libstrophe (a small C client
compiled here), `openssl s_client` (a raw XMPP exchange) and sendxmpp (Perl, Net::XMPP /
XML::Stream). Each sends a chat message from sender@ to rcpt@ of the door's domain (the clients
of tests/interop/ then ping their server and exit 0 on the pong); a slixmpp receiver logged in as
rcpt@ must get the message from sender@ (so Prosody authenticated the sender), Prosody's log
must show the login with the door's TLS facts, and the proxy's metrics the session on that
door's listener. Certificates are verified against the test's CA wherever the client can be
told about a CA (nbxmpp cannot: it gets the expected certificate pinned), and
test_client_refuses_a_certificate_it_cannot_verify shows that each client does verify.

MATRIX below is the single source of truth: `pass` cells must log in, `unsupported` cells run a
check that the client really cannot use that door, `xfail` cells (a proxy defect) are
xfail(strict=True). README.md's "Client libraries verified through each door" section is
rendered from it and test_readme_matrix_is_current keeps the two equal
(XS_UPDATE_README_MATRIX=1 rewrites that section only).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import pytest

pytest.register_assert_rewrite("tls_support")

from conftest import REPO, pwgen  # noqa: E402
from tls_support import (SClient, TestCA, base_config, free_port, login_plain,  # noqa: E402
                         start_backend, start_proxy)
from xs_local import Account, InstanceSpec, ProsodyInstance, VirtualHost  # noqa: E402

pytest_plugins = ["tls_support"]

INTEROP_DIR = REPO / "tests" / "interop"
README = REPO / "README.md"
BEGIN, END = "<!-- interop-matrix:begin -->", "<!-- interop-matrix:end -->"

PLAIN_D = "plain.interop.test"
TERM_D = "term.interop.test"
PASS_D = "pass.interop.test"


# --------------------------------------------------------------------------------------------
# The matrix

@dataclass(frozen=True)
class Door:
    key: str          # test id
    title: str        # README column
    listener: str     # the proxy's listener
    mode: str         # what the client does: plain | starttls | direct
    backend: str      # plain | term | pass (see the module docstring)


DOORS = [
    Door("plaintext", "plaintext passthrough", "plain", "plain", "plain"),
    Door("starttls-pass", "STARTTLS passthrough", "starttls-pass", "starttls", "pass"),
    Door("starttls-term", "STARTTLS terminate", "starttls-term", "starttls", "term"),
    Door("directtls-term", "Direct TLS terminate", "direct-term", "direct", "term"),
    Door("directtls-pass", "Direct TLS passthrough", "direct-pass", "direct", "pass"),
]
DOOR = {d.key: d for d in DOORS}

CLIENTS = {  # key -> README row: implementation (Debian package)
    "go-sendxmpp": "go-xmpp (`go-sendxmpp`)",
    "slixmpp": "slixmpp (`python3-slixmpp`)",
    "nbxmpp": "nbxmpp, Gajim's library (`python3-nbxmpp`)",
    "libstrophe": "libstrophe (`libstrophe-dev`, C client `tests/interop/strophe_send.c`)",
    "s_client": "`openssl s_client` (raw XMPP: SASL PLAIN, bind, message)",
    "sendxmpp": "Net::XMPP / XML::Stream, Perl (`sendxmpp`)",
}


@dataclass(frozen=True)
class Cell:
    status: str       # pass | unsupported | xfail
    note: str = ""


PASS = Cell("pass")


def unsupported(note: str) -> Cell:
    return Cell("unsupported", note)


def xfail(note: str) -> Cell:
    return Cell("xfail", note)


# Every (client, door), written out.
MATRIX: dict[str, dict[str, Cell]] = {
    "go-sendxmpp": {
        "plaintext": unsupported(
            "go-xmpp refuses to authenticate over a connection without TLS (\"refusing to "
            "authenticate over unencrypted TCP connection\") and go-sendxmpp has no option to "
            "allow it"),
        "starttls-pass": PASS, "starttls-term": PASS, "directtls-term": PASS, "directtls-pass": PASS,
    },
    "slixmpp": {d.key: PASS for d in DOORS},
    "nbxmpp": {d.key: PASS for d in DOORS},
    "libstrophe": {d.key: PASS for d in DOORS},
    "s_client": {
        "plaintext": unsupported(
            "`openssl s_client` always starts TLS (a ClientHello first, or after `-starttls`): "
            "the plaintext door closes on its ClientHello"),
        "starttls-pass": PASS, "starttls-term": PASS, "directtls-term": PASS, "directtls-pass": PASS,
    },
    "sendxmpp": {
        "plaintext": PASS, "starttls-pass": PASS, "starttls-term": PASS, "directtls-term": PASS,
        "directtls-pass": unsupported(
            "XML::Stream sends no SNI in its Direct TLS (`-e`) ClientHello, whatever host `-j` "
            "names, and this door routes on the SNI (XEP-0368 clients send the XMPP domain): "
            "the proxy closes it as host-unknown"),
    },
}

STATUS_TEXT = {"pass": "pass", "unsupported": "unsupported", "xfail": "FAILS (known proxy defect)"}


def render_matrix() -> str:
    """The README section between the markers (markers excluded)."""
    notes: list[str] = []
    rows = []
    for ck, ctitle in CLIENTS.items():
        cells = []
        for d in DOORS:
            c = MATRIX[ck][d.key]
            text = STATUS_TEXT[c.status]
            if c.note:
                notes.append(f"{ctitle.split(' (')[0]}, {d.title}: {c.note}.")
                text += f" ({len(notes)})"
            cells.append(text)
        rows.append(f"| {ctitle} | " + " | ".join(cells) + " |")
    out = [
        "### Client libraries verified through each door",
        "",
        "`tests/integration/test_interop.py` runs each client through each kind of listener",
        "(Debian 12's packages). `pass`: it logged in and sent a message from `sender@` to",
        "`rcpt@`; a receiver logged in on the backend got it, the backend Prosody's log shows the",
        "login with the door's TLS facts (terminated by the proxy, or done with Prosody), and the",
        "proxy counted the session on that listener. Certificates are verified against the test's",
        "CA (nbxmpp, which takes no CA file, gets the expected certificate pinned), and each client",
        "refuses a certificate it cannot verify. `unsupported`: the client has no way to use that",
        "door, which the test shows. The table is rendered from the test's `MATRIX`; a test keeps",
        "them equal.",
        "",
        "| client (Debian package) | " + " | ".join(d.title for d in DOORS) + " |",
        "| --- | " + " | ".join("---" for _ in DOORS) + " |",
        *rows,
    ]
    if notes:
        out.append("")
        for i, n in enumerate(notes, 1):
            out += textwrap.wrap(n, 100, initial_indent=f"{i}. ", subsequent_indent="   ",
                                 break_long_words=False, break_on_hyphens=False)
    return "\n".join(out)


def test_matrix_is_complete():
    assert set(MATRIX) == set(CLIENTS)
    for ck, row in MATRIX.items():
        assert set(row) == set(DOOR), f"{ck}: {set(row) ^ set(DOOR)}"
        for dk, c in row.items():
            assert c.status in STATUS_TEXT, (ck, dk, c)
            assert (c.status == "pass") == (not c.note), f"{ck}/{dk}: a non-pass cell needs its reason"


def test_readme_matrix_is_current():
    """README.md holds exactly render_matrix() between the markers. XS_UPDATE_README_MATRIX=1
    rewrites that part only (nothing else of the file is touched)."""
    text = README.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1, f"README.md needs one {BEGIN} and one {END}"
    head, rest = text.split(BEGIN, 1)
    body, tail = rest.split(END, 1)
    want = "\n" + render_matrix() + "\n"
    if body != want and os.environ.get("XS_UPDATE_README_MATRIX"):
        README.write_text(head + BEGIN + want + END + tail)
        body = want
    assert body == want, ("README.md's interop matrix differs from test_interop.MATRIX; rerun with "
                          "XS_UPDATE_README_MATRIX=1 and review the diff")
    tls = text.index("\n## TLS\n")
    assert tls < text.index(BEGIN) < text.index("\n## Metrics and operations\n"), \
        "the interop matrix belongs in the README's TLS section"


# --------------------------------------------------------------------------------------------
# The receiving side: rcpt@ of each domain stays logged in (slixmpp, in a thread of its own)

class Inbox:
    """slixmpp clients that stay connected in a background event loop and record every chat
    message they receive as (bare sender, body)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="interop-inbox", daemon=True)
        self.thread.start()
        self.clients = []
        self.got: list[tuple[str, str, str]] = []     # (receiver bare jid, sender bare jid, body)
        self.lock = threading.Lock()

    def add(self, jid: str, password: str, port: int, mode: str, ca: Optional[Path] = None) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._connect(jid, password, port, mode, ca), self.loop)
        fut.result(30)

    async def _connect(self, jid, password, port, mode, ca) -> None:
        import slixmpp
        xmpp = slixmpp.ClientXMPP(jid + "/inbox", password)
        xmpp.loop = asyncio.get_running_loop()
        if mode == "plain":
            xmpp["feature_mechanisms"].unencrypted_plain = True
        else:
            xmpp.ca_certs = ca
        domain = xmpp.boundjid.domain
        started = xmpp.loop.create_future()

        def on_message(msg) -> None:
            if msg["type"] in ("chat", "normal") and msg["body"]:
                with self.lock:
                    self.got.append((jid, msg["from"].bare, msg["body"]))

        def on_start(_e) -> None:
            xmpp.send_presence()
            if not started.done():
                started.set_result(None)

        def on_fail(e) -> None:
            if not started.done():
                started.set_exception(RuntimeError(f"inbox {jid}: {e}"))

        xmpp.add_event_handler("message", on_message)
        xmpp.add_event_handler("session_start", on_start)
        for ev in ("failed_auth", "connection_failed", "ssl_invalid_chain", "stream_error", "disconnected"):
            xmpp.add_event_handler(ev, on_fail)

        async def local_dns(_domain, _port=None):
            return [(domain, "127.0.0.1", port)]
        xmpp.get_dns_records = local_dns
        xmpp.connect((domain, port), use_ssl=mode == "direct", force_starttls=mode == "starttls",
                     disable_starttls=mode == "plain")
        self.clients.append(xmpp)
        await asyncio.wait_for(started, 20)
        # Presence is processed before a message that arrives later on another session of the
        # same server; one round trip makes sure it was.
        xmpp.register_plugin("xep_0199")
        await xmpp["xep_0199"].ping(jid=domain, timeout=10)

    def wait(self, rcpt: str, sender: str, body: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if (rcpt, sender, body) in self.got:
                    return True
            time.sleep(0.05)
        return False

    def received(self) -> list:
        with self.lock:
            return list(self.got)

    def close(self) -> None:
        async def stop_all():
            for x in self.clients:
                try:
                    await asyncio.wait_for(x.disconnect(wait=1.0), 3)
                except Exception:  # noqa: BLE001
                    pass
                x.abort()
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(stop_all(), self.loop).result(15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


# --------------------------------------------------------------------------------------------
# Fixtures: three Prosody backends, one proxy with a listener per door, the receivers, the
# libstrophe client built from source

@dataclass
class Backend:
    key: str                  # plain | term | pass
    domain: str
    inst: ProsodyInstance
    passwords: dict           # bare JID -> password

    def mark(self) -> int:
        return self.inst.log_mark()

    def log(self, since: int = 0) -> str:
        return self.inst.log_text(since)


@dataclass
class Interop:
    proxy: object             # tls_support.TlsProxy
    backends: dict            # key -> Backend
    ca: Path
    certs: dict               # backend key -> the PEM certificate its TLS doors present
    inbox: Inbox
    strophe: Path
    home: Path                # an empty HOME for the client programs

    def port(self, door: Door) -> int:
        return self.proxy.port(door.listener)


def _start_plain_backend(base: Path) -> Backend:
    accounts = [Account("sender", PLAIN_D, pwgen()), Account("rcpt", PLAIN_D, pwgen())]
    # xs_local's default (plaintext) profile: no `tls` module, no certificate,
    # c2s_require_encryption = false, allow_unencrypted_plain_auth = true.
    inst = ProsodyInstance(InstanceSpec("interop-plain", free_port(), hosts=[VirtualHost(PLAIN_D)],
                                        accounts=accounts), base)
    inst.prepare(fresh=True)
    inst.start()
    return Backend("plain", PLAIN_D, inst, {a.jid: a.password for a in accounts})


def _build_strophe(out_dir: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler (build-essential)"
    r = subprocess.run(["pkg-config", "--cflags", "--libs", "libstrophe"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, f"pkg-config libstrophe failed (libstrophe-dev): {r.stderr}"
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = out_dir / "strophe_send"
    cmd = [cc, "-Wall", "-Wextra", "-O1", "-o", str(exe), str(INTEROP_DIR / "strophe_send.c"),
           *r.stdout.split()]
    b = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert b.returncode == 0, f"{' '.join(cmd)}\n{b.stdout}{b.stderr}"
    return exe


@pytest.fixture(scope="module")
def interop(module_proxies, base_dir, tls_ca):
    root = base_dir / "interop"
    root.mkdir(parents=True, exist_ok=True)
    started: list[ProsodyInstance] = []
    inbox: Optional[Inbox] = None
    try:
        # Prosody starts in this thread: its children die with the thread that spawned them
        # (setpriv --pdeathsig), so only the compiler and openssl run in worker threads.
        with ThreadPoolExecutor(max_workers=2) as ex:
            f_strophe = ex.submit(_build_strophe, root / "bin")
            f_cert = ex.submit(tls_ca.issue, "interop-proxy", [TERM_D], "xmpp-shard proxy")
            plain = _start_plain_backend(root)
            started.append(plain.inst)
            term_b = start_backend(root, "interop-term", [TERM_D], {"sender": TERM_D, "rcpt": TERM_D})
            started.append(term_b.inst)
            pass_b = start_backend(root, "interop-pass", [PASS_D], {"sender": PASS_D, "rcpt": PASS_D},
                                   own_cert=tls_ca, direct_tls=True)
            started.append(pass_b.inst)
            strophe = f_strophe.result()
            proxy_cert = f_cert.result()
        backends = {
            "plain": plain,
            "term": Backend("term", TERM_D, term_b.inst, term_b.passwords),
            "pass": Backend("pass", PASS_D, pass_b.inst, pass_b.passwords),
        }

        cfg = base_config()
        for d in DOORS:
            opts = {}
            if d.backend == "term":
                opts["tls"] = "terminate"
            if d.mode == "direct":
                opts["direct_tls"] = True
            cfg.add_listener(d.listener, f"127.0.0.1:{free_port()}", **opts)
        cfg.add_backend("plain", plain.inst.address)
        cfg.add_backend("term", f"127.0.0.1:{term_b.shard_port}", proxy_protocol="v2")
        cfg.add_backend("pass", f"127.0.0.1:{pass_b.shard_port}", proxy_protocol="v2")
        cfg.add_backend("pass-direct", f"127.0.0.1:{pass_b.direct_port}")
        cfg.add_route([PLAIN_D], ["plain"], name="plain", listeners=["plain"])
        cfg.add_route([PASS_D], ["pass"], name="pass", listeners=["starttls-pass"])
        cfg.add_route([TERM_D], ["term"], name="term", listeners=["starttls-term", "direct-term"])
        cfg.add_route([PASS_D], ["pass-direct"], name="pass-direct", listeners=["direct-pass"])
        cfg.add_certificate(proxy_cert.cert, proxy_cert.key, proxy_cert.domains)
        proxy = start_proxy(module_proxies, cfg, name="interop")

        # The receivers: straight to the plain backend and to Prosody's own Direct TLS port; the
        # terminating backend has no TLS of its own, so its receiver comes through the proxy.
        inbox = Inbox()
        inbox.add(f"rcpt@{PLAIN_D}", plain.passwords[f"rcpt@{PLAIN_D}"], plain.inst.port, "plain")
        inbox.add(f"rcpt@{PASS_D}", pass_b.passwords[f"rcpt@{PASS_D}"], pass_b.direct_port, "direct",
                  tls_ca.cert)
        inbox.add(f"rcpt@{TERM_D}", term_b.passwords[f"rcpt@{TERM_D}"], proxy.port("starttls-term"),
                  "starttls", tls_ca.cert)
        home = root / "home"
        home.mkdir(exist_ok=True)
        yield Interop(proxy, backends, tls_ca.cert, {"term": proxy_cert.cert, "pass": pass_b.cert.cert},
                      inbox, strophe, home)
    finally:
        if inbox is not None:
            inbox.close()
        for inst in started:
            inst.stop()


@pytest.fixture
def ix(interop):
    assert interop.proxy.alive(), interop.proxy.log()[-3000:]
    for b in interop.backends.values():
        assert b.inst.running(), f"{b.inst.name} died:\n{b.inst.log_tail(30)}"
    yield interop
    assert interop.proxy.alive(), f"the proxy died:\n{interop.proxy.log()[-5000:]}"


# --------------------------------------------------------------------------------------------
# The clients: each returns (exit status, output); 0 means it logged in, sent and got its pong

@dataclass
class Run:
    rc: int
    out: str
    cmd: str


def _run(cmd: list[str], ix: Interop, *, stdin: str = "", env: Optional[dict] = None,
         timeout: float = 30) -> Run:
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(ix.home), "LANG": "C.UTF-8"}
    e.update(env or {})
    try:
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=e,
                           cwd=ix.home)
        return Run(r.returncode, r.stdout + r.stderr, " ".join(cmd))
    except subprocess.TimeoutExpired as t:
        def text(x) -> str:   # bytes even with text=True, or None
            return x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
        return Run(-1, f"timed out after {timeout}s\n{text(t.stdout)}{text(t.stderr)}", " ".join(cmd))


def run_go_sendxmpp(ix: Interop, door: Door, jid: str, pw: str, to: str, body: str) -> Run:
    # go's crypto/x509 reads SSL_CERT_FILE: the test CA is the only trust anchor, and no -n.
    cmd = ["go-sendxmpp", "-u", jid, "-p", pw, "-j", f"127.0.0.1:{ix.port(door)}", "--timeout", "10"]
    if door.mode == "direct":
        cmd.append("-t")
    cmd.append(to)
    return _run(cmd, ix, stdin=body + "\n", env={"SSL_CERT_FILE": str(ix.ca)})


def test_go_sendxmpp_sends_a_newline_after_starttls(tmp_path):
    """Why go-sendxmpp x STARTTLS terminate is the regression test of issue 12: go-xmpp writes
    `<starttls .../>` followed by a newline, which the terminating listener once refused. A
    listener of our own offers STARTTLS and records what comes back."""
    import socket
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(15)
    got = {}

    def serve():
        c, _ = srv.accept()
        c.settimeout(10)
        try:
            c.recv(4096)
            c.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                      b"xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='a.test' "
                      b"version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
                      b"<required/></starttls></stream:features>")
            got["data"] = c.recv(4096)
        finally:
            c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = subprocess.run(["go-sendxmpp", "-u", "x@a.test", "-p", "pw", "-j", f"127.0.0.1:{srv.getsockname()[1]}",
                        "--timeout", "5", "y@a.test"], input="hi", capture_output=True, text=True,
                       timeout=30, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)})
    t.join(15)
    srv.close()
    assert got.get("data") == b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n", \
        f"{got}\n{r.stdout}{r.stderr}"


def run_slixmpp(ix: Interop, door: Door, jid: str, pw: str, to: str, body: str) -> Run:
    # --password=VALUE: a generated password may start with '-', which argparse takes for an option.
    cmd = ["/usr/bin/python3", str(INTEROP_DIR / "slixmpp_send.py"), "--jid", jid, f"--password={pw}",
           "--port", str(ix.port(door)), "--mode", door.mode, "--ca", str(ix.ca), "--to", to, "--body", body]
    return _run(cmd, ix)


def run_nbxmpp(ix: Interop, door: Door, jid: str, pw: str, to: str, body: str) -> Run:
    cmd = ["/usr/bin/python3", str(INTEROP_DIR / "nbxmpp_send.py"), "--jid", jid, f"--password={pw}",
           "--port", str(ix.port(door)), "--mode", door.mode, "--to", to, "--body", body]
    if door.mode != "plain":
        cmd += ["--pin", str(ix.certs[door.backend])]
    return _run(cmd, ix)


def run_libstrophe(ix: Interop, door: Door, jid: str, pw: str, to: str, body: str) -> Run:
    cmd = [str(ix.strophe), jid, pw, "127.0.0.1", str(ix.port(door)), door.mode, str(ix.ca), to, body]
    return _run(cmd, ix)


def run_s_client(ix: Interop, door: Door, jid: str, pw: str, to: str, body: str) -> Run:
    user, domain = jid.split("@")
    kw = dict(servername=domain, verify_hostname=domain)
    if door.mode == "starttls":
        kw["xmpphost"] = domain
    else:
        kw["extra"] = ("-alpn", "xmpp-client")
    c = SClient(ix.port(door), ca=ix.ca, **kw)
    try:
        out = c.until(r"Verify return code: \d+ \([^)]*\)")
        if "Verify return code: 0 (ok)" not in out:
            return Run(1, c.text, " ".join(c.cmd))
        bound = login_plain(c, domain, user, pw)
        c.send(f"<message to='{to}' type='chat' id='m1'><body>{body}</body></message>"
               f"<iq type='get' id='p1' to='{domain}'><ping xmlns='urn:xmpp:ping'/></iq>\n")
        pong = c.until(r"<iq[^>]*\bid=['\"]p1['\"][^>]*>")
        if "result" not in pong[pong.rfind("<iq"):]:
            return Run(4, c.text, " ".join(c.cmd))
        c.send("</stream:stream>\n")
        c.wait_exit(5)
        return Run(0, f"bound={bound}\n{c.text}", " ".join(c.cmd))
    except AssertionError as e:
        return Run(1, f"{e}\n{c.text}", " ".join(c.cmd))
    finally:
        c.close()


def run_sendxmpp(ix: Interop, door: Door, jid: str, pw: str, to: str, body: str) -> Run:
    user, domain = jid.split("@")
    cmd = ["sendxmpp", "-u", user, "-p", pw, "-j", f"127.0.0.1:{ix.port(door)}", "-o", domain,
           "--message-type", "chat", "-a", str(ix.ca)]
    cmd += {"plain": [], "starttls": ["-t"], "direct": ["-e"]}[door.mode]
    cmd.append(to)
    return _run(cmd, ix, stdin=body)     # it sends stdin as it is, newline included


RUNNERS = {"go-sendxmpp": run_go_sendxmpp, "slixmpp": run_slixmpp, "nbxmpp": run_nbxmpp,
           "libstrophe": run_libstrophe, "s_client": run_s_client, "sendxmpp": run_sendxmpp}


# --------------------------------------------------------------------------------------------
# Checks on the backend side

def check_backend_login(b: Backend, door: Door, jid: str, mark: int, timeout: float = 5.0) -> None:
    """Prosody logged `jid` authenticating since `mark`, and that session's PROXY facts match
    the door: TLS terminated by the proxy (terminate doors), no TLS at the proxy (STARTTLS
    passthrough: Prosody requires encryption, so the client did STARTTLS with Prosody), or no
    PROXY header at all (plaintext and Direct TLS passthrough doors)."""
    deadline = time.monotonic() + timeout
    rx = re.compile(rf"(c2s[0-9a-f]+)\s+info\s+Authenticated as {re.escape(jid)}\b")
    while not (m := rx.search(b.log(mark))) and time.monotonic() < deadline:
        time.sleep(0.05)
    log = b.log(mark)
    assert m, f"{b.inst.name} did not log 'Authenticated as {jid}':\n{log[-4000:]}"
    sid = m.group(1)
    addr = re.search(rf"{sid}\s+info\s+Client address \S+ port \d+ via xmpp-shard [^(]*\(([^)]*)\)", log)
    if door.backend == "term":
        assert addr and re.match(r"TLS terminated by the proxy: TLSv1\.[23], ", addr.group(1)), \
            f"{sid}: no 'TLS terminated by the proxy' line:\n{log[-4000:]}"
    elif door.key == "starttls-pass":
        assert addr and addr.group(1).startswith("no TLS at the proxy"), \
            f"{sid}: no 'no TLS at the proxy' line:\n{log[-4000:]}"
    else:
        assert addr is None, f"{sid}: a PROXY header on a door without one: {addr.group(0)}"


def door_counters(ix: Interop, door: Door) -> tuple[float, float, float]:
    m = ix.proxy.metrics()
    return (m.val("xmpp_shard_sessions_total", listener=door.listener),
            m.val("xmpp_shard_tls_handshakes_total", listener=door.listener, result="ok"),
            m.val("xmpp_shard_tls_handshakes_total"))


# --------------------------------------------------------------------------------------------
# Proofs for the `unsupported` cells: the client really cannot use that door

def unsupported_go_sendxmpp_plaintext(ix: Interop, door: Door, jid: str, pw: str, to: str, body: str):
    help_text = _run(["go-sendxmpp", "--help"], ix).out
    flags = set(re.findall(r"(?m)^\s+(?:-\w, )?(--[\w-]+)", help_text))
    assert {"--tls", "--no-tls-verify", "--jserver"} <= flags, help_text
    assert not {f for f in flags if re.search(r"plain|insecure|unencrypt|no-?tls$|starttls", f)}, flags
    r = run_go_sendxmpp(ix, door, jid, pw, to, body)
    assert r.rc != 0 and "refusing to authenticate over unencrypted TCP connection" in r.out, r.out
    return r


def unsupported_s_client_plaintext(ix: Interop, door: Door, jid: str, pw: str, to: str, body: str):
    c = SClient(ix.port(door), ca=ix.ca, servername=jid.split("@")[1], ign_eof=False)
    try:
        c.proc.stdin.close()
        rc = c.wait_exit(10)
    finally:
        c.close()
    assert rc not in (None, 0), f"s_client on the plaintext door:\n{c.text}"
    assert "<stream" not in c.text, c.text
    return Run(rc, c.text, " ".join(c.cmd))


def unsupported_sendxmpp_directtls_pass(ix: Interop, door: Door, jid: str, pw: str, to: str, body: str):
    # Its ClientHello, caught by a listener of our own: no server name in it.
    import socket
    srv = socket.create_server(("127.0.0.1", 0))
    hello = {}

    def catch():
        srv.settimeout(20)
        c, _ = srv.accept()
        c.settimeout(5)
        try:
            hello["data"] = c.recv(16384)
        finally:
            c.close()
    t = threading.Thread(target=catch, daemon=True)
    t.start()
    user, domain = jid.split("@")
    probe = _run(["sendxmpp", "-u", user, "-p", pw, "-j", f"localhost:{srv.getsockname()[1]}", "-o", domain,
                  "-e", "-a", str(ix.ca), to], ix, stdin=body, timeout=20)
    t.join(25)
    srv.close()
    data = hello.get("data", b"")
    assert data[:1] == b"\x16" and data[5:6] == b"\x01", f"not a ClientHello: {data[:16]!r}\n{probe.out}"
    assert domain.encode() not in data and b"localhost" not in data, "sendxmpp sent a server name"
    # Through the door: the proxy refuses it for want of an SNI.
    log0 = len(ix.proxy.log())
    r = run_sendxmpp(ix, door, jid, pw, to, body)
    assert r.rc != 0, r.out
    deadline = time.monotonic() + 5
    while "no SNI" not in ix.proxy.log()[log0:] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert re.search(r"host-unknown: no 'to' \(or no SNI\)", ix.proxy.log()[log0:]), ix.proxy.log()[log0:]
    return r


UNSUPPORTED_PROOFS = {
    ("go-sendxmpp", "plaintext"): unsupported_go_sendxmpp_plaintext,
    ("s_client", "plaintext"): unsupported_s_client_plaintext,
    ("sendxmpp", "directtls-pass"): unsupported_sendxmpp_directtls_pass,
}


# --------------------------------------------------------------------------------------------
# The matrix as tests

def _params():
    out = []
    for ck in CLIENTS:
        for d in DOORS:
            c = MATRIX[ck][d.key]
            marks = [pytest.mark.xfail(strict=True, reason=c.note)] if c.status == "xfail" else []
            out.append(pytest.param(ck, d.key, id=f"{ck}-{d.key}", marks=marks))
    return out


def test_every_unsupported_cell_has_a_proof():
    cells = {(ck, dk) for ck, row in MATRIX.items() for dk, c in row.items() if c.status == "unsupported"}
    assert cells == set(UNSUPPORTED_PROOFS)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client,door_key", _params())
def test_client_through_door(ix, client, door_key):
    door = DOOR[door_key]
    cell = MATRIX[client][door_key]
    b = ix.backends[door.backend]
    sender, rcpt = f"sender@{b.domain}", f"rcpt@{b.domain}"
    body = f"interop {client} via {door_key} {secrets.token_hex(4)}"
    mark = b.mark()
    before = door_counters(ix, door)

    if cell.status == "unsupported":
        r = UNSUPPORTED_PROOFS[(client, door_key)](ix, door, sender, b.passwords[sender], rcpt, body)
        print(f"$ {r.cmd}\nexit {r.rc}\n{r.out[-3000:]}")
        time.sleep(0.3)
        assert f"Authenticated as {sender}" not in b.log(mark), b.log(mark)
        assert not ix.inbox.wait(rcpt, sender, body, timeout=0.1), r.out
        return

    r = RUNNERS[client](ix, door, sender, b.passwords[sender], rcpt, body)
    print(f"$ {r.cmd}\nexit {r.rc}\n{r.out[-3000:]}")
    assert r.rc == 0, (f"{client} through {door.title} failed (exit {r.rc})\n$ {r.cmd}\n{r.out[-6000:]}\n"
                       f"--- proxy log tail ---\n{ix.proxy.log()[-3000:]}\n"
                       f"--- {b.inst.name} log since the start ---\n{b.log(mark)[-3000:]}")
    assert ix.inbox.wait(rcpt, sender, body), \
        f"{rcpt} did not get the message from {sender}; received: {ix.inbox.received()}\n{r.out[-3000:]}"
    check_backend_login(b, door, sender, mark)
    after = door_counters(ix, door)
    assert after[0] >= before[0] + 1, f"no session counted on listener {door.listener}: {before} -> {after}"
    if door.backend == "term":
        assert after[1] >= before[1] + 1, f"no TLS handshake counted on {door.listener}: {before} -> {after}"
    else:
        assert after[2] == before[2], "the proxy did TLS on a passthrough or plaintext door"


@pytest.fixture(scope="module")
def other_ca(base_dir) -> TestCA:
    return TestCA(base_dir / "interop-other-ca", name="another CA")


# sendxmpp waits 10 s for a stream that never comes after a failed STARTTLS handshake; its Direct
# TLS failure is immediate and goes through the same verification parameters (XML::Stream).
CONTROL_DOOR = {"sendxmpp": "directtls-term"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client", [c for c in CLIENTS
                                    if MATRIX[c][CONTROL_DOOR.get(c, "starttls-term")].status == "pass"])
def test_client_refuses_a_certificate_it_cannot_verify(ix, other_ca, client):
    """The control for the `pass` cells: the same client, trusting another CA (nbxmpp: pinning a
    certificate for the right name from another CA), fails on a terminating door (STARTTLS
    unless CONTROL_DOOR says otherwise) and nothing logs in, so the passes above really
    verified the certificate."""
    door = DOOR[CONTROL_DOOR.get(client, "starttls-term")]
    b = ix.backends[door.backend]
    sender, rcpt = f"sender@{b.domain}", f"rcpt@{b.domain}"
    body = f"interop control {client} {secrets.token_hex(4)}"
    wrong = other_ca.issue(f"interop-wrong-{client}", [TERM_D], "not the proxy")
    mark = b.mark()
    r = RUNNERS[client](replace(ix, ca=other_ca.cert, certs={"term": wrong.cert, "pass": wrong.cert}),
                        door, sender, b.passwords[sender], rcpt, body)
    print(f"$ {r.cmd}\nexit {r.rc}\n{r.out[-3000:]}")
    assert r.rc != 0, f"{client} accepted a certificate from a CA it was not given:\n{r.out[-3000:]}"
    time.sleep(0.3)
    assert f"Authenticated as {sender}" not in b.log(mark), b.log(mark)
    assert not ix.inbox.wait(rcpt, sender, body, timeout=0.1)
