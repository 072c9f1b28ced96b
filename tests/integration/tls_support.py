"""Support for the TLS tests (test_tls_*.py): a test CA made with the openssl CLI, Prosody
backends for both TLS modes, proxy configs with [[certificate]] tables, and TLS clients
(slixmpp with certificate verification, `openssl s_client`, raw sockets wrapped by `ssl`).

Loaded by the test modules as a plugin (`pytest_plugins = ["tls_support"]`), so the session
fixtures below (CA, Prosody instances) are created once however many test_tls_* files run.

Domains and who serves them:
  tls.test, chat.tls.test  `term`: Prosody with mod_xmpp_shard and NO certificate, no `tls`
                           module, Prosody's default security (c2s_require_encryption = true,
                           no allow_unencrypted_plain_auth): a login works only through a proxy
                           that terminated TLS and says so in its PROXY v2 header.
                           The proxy serves tls.test (and raw.test) with certificate "proxy-main"
                           and *.tls.test with "proxy-wild", both issued by the test CA.
  pass.test                `pass`: Prosody with its own certificate (issued by the test CA,
                           O=prosody) and the `tls` module: STARTTLS through a passthrough
                           listener (mod_xmpp_shard port, PROXY v2 without TLS TLV), and Direct
                           TLS on its own c2s_direct_tls_ports (no PROXY header there).
  raw.test                 fake backends that record every byte (tests that must prove that
                           nothing, or only ciphertext, reached a backend).

Read-only users of conftest.py, xs_clients.py, ops_support.py and deploy/xs_local.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from conftest import REPO, ProxyProcess, pwgen
from xs_clients import run_many
from xs_local import Account, InstanceSpec, ProsodyInstance, ProxyConfig, VirtualHost, free_port, wait_port
from xs_local import procs
from xs_local.proxyconf import toml_key, toml_value

MODULE_DIR = REPO / "deploy" / "prosody-modules"

TERM = "tls.test"
SUB = "chat.tls.test"
PASS = "pass.test"
RAW = "raw.test"

STREAM_NS = "http://etherx.jabber.org/streams"
TLS_NS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
FEATURES_RX = r"</(?:stream:)?features>|<(?:stream:)?features/>"
PROXY_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def stream_header(to: str, decl: bool = True) -> str:
    d = "<?xml version='1.0'?>" if decl else ""
    return (f"{d}<stream:stream to='{to}' version='1.0' xmlns='jabber:client' "
            f"xmlns:stream='{STREAM_NS}'>")


# --------------------------------------------------------------------------------------------
# A certificate authority made by the test (openssl CLI in a temporary directory)

def _openssl(*args: str, cwd: Optional[Path] = None) -> str:
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30, cwd=cwd)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout


@dataclass
class Issued:
    cert: Path           # PEM: the leaf (then nothing: the CA is the clients' trust anchor)
    key: Path
    domains: list[str]
    org: str
    der: bytes = b""     # the certificate as issued (the files may be replaced later)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.der).hexdigest()


class TestCA:
    """A throwaway CA (P-256) and leaf certificates it signs, with subjectAltName dNSNames."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path, name: str = "xmpp-shard test CA"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = self.dir / "ca.crt"
        self.key = self.dir / "ca.key"
        self._serial = int.from_bytes(os.urandom(6), "big")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-days", "3", "-subj", f"/O=xmpp-shard tests/CN={name} {os.getpid()}",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                  "-keyout", str(self.key), "-out", str(self.cert))

    def issue(self, name: str, domains: list[str], org: str, out_dir: Optional[Path] = None,
              cert_name: Optional[str] = None, key_name: Optional[str] = None) -> Issued:
        """A leaf for `domains` (the first is the CN), subject O=`org`, written to out_dir
        (default: the CA's directory) as NAME.crt / NAME.key (or cert_name / key_name)."""
        out = Path(out_dir or self.dir)
        out.mkdir(parents=True, exist_ok=True)
        crt, key = out / (cert_name or f"{name}.crt"), out / (key_name or f"{name}.key")
        work = self.dir / f"work-{name}-{self._serial}"
        work.mkdir()
        self._serial += 1
        ext = work / "ext.cnf"
        ext.write_text("basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\n"
                       "extendedKeyUsage=serverAuth\n"
                       "subjectKeyIdentifier=hash\n"
                       "authorityKeyIdentifier=keyid\n"
                       "subjectAltName=" + ",".join(f"DNS:{d}" for d in domains) + "\n")
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-subj", f"/O={org}/CN={domains[0]}", "-keyout", str(work / "leaf.key"),
                 "-out", str(work / "leaf.csr"))
        _openssl("x509", "-req", "-in", str(work / "leaf.csr"), "-CA", str(self.cert),
                 "-CAkey", str(self.key), "-set_serial", str(self._serial), "-days", "2",
                 "-extfile", str(ext), "-out", str(work / "leaf.crt"))
        # Replace atomically: a reload test swaps files under a running proxy.
        for src, dst in ((work / "leaf.crt", crt), (work / "leaf.key", key)):
            tmp = dst.with_name(dst.name + ".new")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        shutil.rmtree(work, ignore_errors=True)
        return Issued(crt, key, list(domains), org, ssl.PEM_cert_to_DER_cert(crt.read_text()))


def der_subject_org(der: bytes) -> str:
    """The O= of a DER certificate's subject (openssl x509)."""
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-nameopt", "RFC2253"],
                       input=der, capture_output=True, timeout=10)
    m = re.search(rb"O=([^,\n]+)", r.stdout)
    return m.group(1).decode() if m else ""


# --------------------------------------------------------------------------------------------
# Prosody backends

@dataclass
class TlsBackend:
    inst: ProsodyInstance
    shard_port: int                      # mod_xmpp_shard's port (PROXY v2 from the proxy)
    direct_port: Optional[int] = None    # c2s_direct_tls_ports (its own certificate)
    passwords: dict = field(default_factory=dict)   # bare JID -> password
    cert: Optional[Issued] = None        # its own certificate, if any

    @property
    def name(self) -> str:
        return self.inst.name

    def mark(self) -> int:
        return self.inst.log_mark()

    def log(self, since: int = 0) -> str:
        return self.inst.log_text(since)

    def wait_log(self, pattern: str, since: int, timeout: float = 5.0) -> Optional[re.Match]:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.inst.log_text(since))
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def client_address_lines(self, since: int) -> list[tuple[str, int, str]]:
        """(client ip, client port, rest of line) of every 'Client address' line since `since`."""
        return [(m.group(1), int(m.group(2)), m.group(3)) for m in re.finditer(
            r"Client address (\S+) port (\d+) via xmpp-shard (.*)", self.inst.log_text(since))]


def _chown_prosody(*paths: Path) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam("prosody")
    for p in paths:
        os.chown(p, pw.pw_uid, pw.pw_gid)


def start_backend(base: Path, name: str, hosts: list[str], users: dict[str, str], *,
                  own_cert: Optional[TestCA] = None, direct_tls: bool = False) -> TlsBackend:
    """A Prosody instance (deploy/xs_local) with mod_xmpp_shard trusting 127.0.0.1 on its own port
    and Prosody's default security settings. `users`: local part -> domain. With `own_cert`, the
    instance gets a certificate for each host from that CA, the `tls` module, and with
    `direct_tls` a c2s_direct_tls_ports port. Without it: no certificate, no `tls` module."""
    shard_port = free_port()
    direct_port = free_port() if direct_tls else None
    accounts = [Account(u, d, pwgen()) for u, d in users.items()]
    lua = [
        f'plugin_paths = {{ "{MODULE_DIR}" }}',
        f"xmpp_shard_ports = {{ {shard_port} }}",
        'xmpp_shard_interfaces = { "127.0.0.1" }',
        'xmpp_shard_trusted_proxies = { "127.0.0.1" }',
        # Prosody's defaults, written out (xs_local's plaintext profile would relax them).
        "c2s_require_encryption = true",
        "allow_unencrypted_plain_auth = false",
    ]
    if direct_port:
        lua.append(f"c2s_direct_tls_ports = {{ {direct_port} }}")
        lua.append('c2s_direct_tls_interfaces = { "127.0.0.1" }')
    modules = ["xmpp_shard"] + (["tls"] if own_cert else [])
    spec = InstanceSpec(name, free_port(), hosts=[VirtualHost(h) for h in hosts], accounts=accounts,
                        modules=modules, lua="\n".join(lua))
    inst = ProsodyInstance(spec, base)
    inst.prepare(fresh=True)
    certs = inst.paths.certs
    issued = None
    if own_cert:
        for h in hosts:
            issued = own_cert.issue(f"{name}-{h}", [h], "prosody", out_dir=certs,
                                    cert_name=f"{h}.crt", key_name=f"{h}.key")
        _chown_prosody(certs, *certs.iterdir())
    elif any(certs.iterdir()):
        raise RuntimeError(f"{certs} should be empty: this backend must have no certificate")
    inst.start()
    try:
        wait_port("127.0.0.1", shard_port, timeout=10, proc=inst.proc, what=f"{name}: mod_xmpp_shard port")
        if direct_port:
            wait_port("127.0.0.1", direct_port, timeout=10, proc=inst.proc, what=f"{name}: direct TLS port")
    except Exception:
        inst.stop()
        raise RuntimeError(f"{name} did not open its ports:\n{inst.log_tail(40)}") from None
    return TlsBackend(inst, shard_port, direct_port, {a.jid: a.password for a in accounts}, issued)


@pytest.fixture(scope="session")
def tls_ca(base_dir) -> TestCA:
    return TestCA(base_dir / "tls-ca")


@pytest.fixture(scope="session")
def proxy_certs(tls_ca) -> dict[str, Issued]:
    """The proxy's certificates: proxy-main (tls.test, raw.test), proxy-wild (*.tls.test)."""
    return {
        "main": tls_ca.issue("proxy-main", [TERM, RAW], "xmpp-shard proxy"),
        "wild": tls_ca.issue("proxy-wild", [f"*.{TERM}"], "xmpp-shard proxy wildcard"),
    }


@pytest.fixture(scope="session")
def _term_backend(base_dir, tls_ca):
    b = start_backend(base_dir, "tls-term", [TERM, SUB], {"alice": TERM, "bob": SUB})
    yield b
    b.inst.stop()


@pytest.fixture(scope="session")
def _pass_backend(base_dir, tls_ca):
    b = start_backend(base_dir, "tls-pass", [PASS], {"carol": PASS}, own_cert=tls_ca, direct_tls=True)
    yield b
    b.inst.stop()


@pytest.fixture
def term_backend(_term_backend) -> TlsBackend:
    assert _term_backend.inst.running(), _term_backend.inst.log_tail(30)
    yield _term_backend
    assert _term_backend.inst.running(), _term_backend.inst.log_tail(30)


@pytest.fixture
def pass_backend(_pass_backend) -> TlsBackend:
    assert _pass_backend.inst.running(), _pass_backend.inst.log_tail(30)
    yield _pass_backend
    assert _pass_backend.inst.running(), _pass_backend.inst.log_tail(30)


def backend_login(backend: TlsBackend, since: int, jid: str, client: tuple[str, int], *,
                  tls_at_proxy: bool = True, timeout: float = 5.0) -> str:
    """The backend logged `jid` authenticating, and the same session's 'Client address' line
    names `client` (ip, port), reached via the proxy from another port; the line says whether
    the proxy terminated TLS. Returns that line."""
    auth = backend.wait_log(rf"(c2s[0-9a-f]+)\s+info\s+Authenticated as {re.escape(jid)}\b", since, timeout)
    assert auth, f"{backend.name} did not log 'Authenticated as {jid}':\n{backend.log(since)}"
    sid = auth.group(1)
    addr = backend.wait_log(rf"{sid}\s+info\s+Client address (\S+) port (\d+) via xmpp-shard "
                            rf"127\.0\.0\.1 port (\d+) \(([^)]*)\)", since, timeout)
    assert addr, f"no 'Client address' line for {sid}:\n{backend.log(since)}"
    assert (addr.group(1), int(addr.group(2))) == client, \
        f"backend logged client {addr.group(1)}:{addr.group(2)}, the client was {client[0]}:{client[1]}"
    assert int(addr.group(3)) != client[1]
    if tls_at_proxy:
        assert re.match(r"TLS terminated by the proxy: TLSv1\.[23], \S+", addr.group(4)), addr.group(0)
    else:
        assert addr.group(4).startswith("no TLS at the proxy"), addr.group(0)
    return addr.group(0)


# --------------------------------------------------------------------------------------------
# The proxy

@dataclass
class TlsProxyConfig(ProxyConfig):
    """ProxyConfig plus [[certificate]] tables."""
    certificates: list = field(default_factory=list)

    def add_certificate(self, cert, key, domains: list[str]) -> dict:
        d = {"cert": str(cert), "key": str(key), "domains": list(domains)}
        self.certificates.append(d)
        return d

    def render(self) -> str:
        lines = [super().render()]
        for c in self.certificates:
            lines.append("[[certificate]]")
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in c.items()]
            lines.append("")
        return "\n".join(lines)


class LoggingProxyProcess(ProxyProcess):
    """conftest's ProxyProcess with a --log-level (debug shows every state change and TLS
    failure, which is what a bug report needs)."""

    def __init__(self, binary, cfg, workdir, log_level: str = "debug"):
        super().__init__(binary, cfg, workdir)
        self.log_level = log_level

    def start(self, timeout: float = 10.0):
        self._err = open(self.stderr_path, "ab")
        self.proc = procs.spawn([str(self.binary), "--config", str(self.config_path),
                                 "--log-level", self.log_level],
                                stdout=self._err, stderr=subprocess.STDOUT)
        try:
            for l in self.cfg.listeners:
                host, port = l["bind"].rsplit(":", 1)
                wait_port(host.strip("[]"), int(port), timeout=timeout, proc=self.proc,
                          what=f"xmpp-shard-proxy listener {l['name']}")
        except Exception as e:  # noqa: BLE001
            self.kill()
            pytest.fail(f"{e}\nconfig:\n{self.config_path.read_text()}\nstderr:\n{self.stderr_tail()}",
                        pytrace=False)
        return self


class TlsProxy:
    """A running proxy: its process, listener ports by name, and its metrics port."""

    def __init__(self, px: LoggingProxyProcess, mport: int):
        self.px = px
        self.mport = mport
        self.ports = {l["name"]: int(l["bind"].rsplit(":", 1)[1]) for l in px.cfg.listeners}
        self.dir = px.dir

    def port(self, listener: str) -> int:
        return self.ports[listener]

    def metrics(self):
        from ops_support import scrape
        return scrape(self.mport)

    def wait_metric(self, pred, timeout: float, what: str):
        from ops_support import wait_metric
        return wait_metric(self.mport, pred, timeout, what)[0]

    def handshakes(self, listener: str, result: str) -> float:
        return self.metrics().val("xmpp_shard_tls_handshakes_total", listener=listener, result=result)

    def log(self) -> str:
        return self.px.stderr_text()

    def alive(self) -> bool:
        return self.px.alive()


def workdir_for(factory, name: str) -> Path:
    n = 0
    while (factory.base / f"{name}-{n:02d}").exists():
        n += 1
    return factory.base / f"{name}-{n:02d}"


def start_proxy(factory, cfg: TlsProxyConfig, *, workdir: Optional[Path] = None, name: str = "tls",
                log_level: str = "debug") -> TlsProxy:
    """Start a proxy from `cfg` in its own directory (cert paths may be relative to it), with
    metrics on a free port; registered with conftest's factory (`proxies`/`module_proxies`) so
    that it is stopped after the test and a crash fails the test's teardown."""
    from ops_support import with_metrics
    mport = with_metrics(cfg)
    factory.base.mkdir(parents=True, exist_ok=True)
    wd = workdir or workdir_for(factory, name)
    px = LoggingProxyProcess(factory.binary, cfg, wd, log_level)
    factory.started.append(px)
    px.start()
    wait_port("127.0.0.1", mport, timeout=5, proc=px.proc, what="the proxy's metrics endpoint")
    return TlsProxy(px, mport)


def base_config(**proxy_opts) -> TlsProxyConfig:
    from conftest import DEFAULT_PROXY_OPTS
    return TlsProxyConfig(proxy={**DEFAULT_PROXY_OPTS, **proxy_opts})


# --------------------------------------------------------------------------------------------
# slixmpp over TLS, certificate verification on

@dataclass
class TlsLogin:
    jid: str
    ok: bool = False
    error: Optional[str] = None
    bound: Optional[str] = None
    peer_der: Optional[bytes] = None     # the certificate the server presented
    version: Optional[str] = None
    cipher: Optional[str] = None
    alpn: Optional[str] = None
    sockname: Optional[tuple] = None     # the client's own address and port
    elapsed: float = 0.0
    pinged: Optional[bool] = None

    def __str__(self) -> str:
        return (f"{self.jid}: {'ok' if self.ok else 'FAILED'} error={self.error} bound={self.bound} "
                f"{self.version} {self.cipher} alpn={self.alpn} from={self.sockname} ({self.elapsed:.2f}s)")


async def atls_login(port: int, jid: str, password: str, *, ca: Path, direct: bool = False,
                     alpn: Optional[list[str]] = None, host: str = "127.0.0.1", timeout: float = 20.0,
                     hold: float = 0.0, ping: bool = False) -> TlsLogin:
    """slixmpp login with TLS: STARTTLS (default) or Direct TLS (`direct`, SNI = the JID's domain),
    verifying the server's certificate against `ca` only (check_hostname on). Never raises for
    XMPP- or TLS-level failures: see .ok / .error. A login without TLS counts as a failure."""
    import slixmpp

    res = TlsLogin(jid=jid)
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    xmpp = slixmpp.ClientXMPP(jid, password)
    xmpp.loop = loop
    xmpp.ca_certs = Path(ca)
    assert xmpp.ssl_context.verify_mode == ssl.CERT_REQUIRED and xmpp.ssl_context.check_hostname
    if alpn:
        xmpp.ssl_context.set_alpn_protocols(alpn)
    if ping:
        xmpp.register_plugin("xep_0199")
    done: asyncio.Future = loop.create_future()

    def finish(ok: bool, error: Optional[str] = None) -> None:
        if not done.done():
            res.ok, res.error = ok, error
            done.set_result(None)

    def on_session_start(_e) -> None:
        tr = xmpp.transport
        obj = tr.get_extra_info("ssl_object") if tr is not None else None
        if obj is None:
            finish(False, "session started WITHOUT TLS")
            return
        if obj.server_hostname != domain or not obj.context.check_hostname:
            finish(False, f"TLS without SNI/name check for {domain}: {obj.server_hostname!r}")
            return
        res.peer_der = obj.getpeercert(True)
        res.version = obj.version()
        res.cipher = obj.cipher()[0]
        res.alpn = obj.selected_alpn_protocol()
        res.sockname = tr.get_extra_info("sockname")
        finish(True)

    xmpp.add_event_handler("session_start", on_session_start)
    xmpp.add_event_handler("failed_auth", lambda _e: finish(False, "failed_auth"))
    xmpp.add_event_handler("connection_failed", lambda e: finish(False, f"connection_failed: {e}"))
    xmpp.add_event_handler("ssl_invalid_chain", lambda e: finish(False, f"ssl_invalid_chain: {e}"))
    xmpp.add_event_handler("stream_error", lambda e: finish(False, f"stream_error: {e['condition']}"))
    xmpp.add_event_handler("disconnected", lambda e: finish(False, f"disconnected: {e}"))
    # Connect "to the domain" (SNI and hostname check use it: slixmpp would disable both for an
    # IP address), with the domain resolved to `host` by this stand-in for DNS.
    domain = xmpp.boundjid.domain

    async def local_dns(_domain, _port=None):
        return [(domain, host, port)]
    xmpp.get_dns_records = local_dns
    try:
        xmpp.connect((domain, port), use_ssl=direct, force_starttls=not direct, disable_starttls=False)
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            finish(False, f"timeout after {timeout:g}s")
        if res.ok:
            res.bound = str(xmpp.boundjid)
            if ping:
                try:
                    await xmpp["xep_0199"].ping(jid=xmpp.boundjid.domain, timeout=5)
                    res.pinged = True
                except Exception as e:  # noqa: BLE001
                    res.pinged = False
                    res.error = f"ping: {e!r}"
        if res.ok and hold:
            await asyncio.sleep(hold)
    finally:
        xmpp.cancel_connection_attempt()
        if xmpp.transport is not None:
            try:
                await asyncio.wait_for(xmpp.disconnect(wait=1.0), 3)
            except Exception:  # noqa: BLE001
                pass
            xmpp.abort()
        res.elapsed = time.monotonic() - t0
    return res


def tls_login(port: int, jid: str, password: str, **kw) -> TlsLogin:
    return asyncio.run(atls_login(port, jid, password, **kw))


def tls_login_many(port: int, creds: list[tuple[str, str]], **kw) -> list[TlsLogin]:
    return run_many(atls_login, port, creds, **kw)


# --------------------------------------------------------------------------------------------
# openssl s_client

class SClient:
    """`openssl s_client` driven through its stdin/stdout: STARTTLS (`xmpphost`) or Direct TLS,
    verification against `ca` with -verify_return_error (a bad certificate fails the handshake)."""

    def __init__(self, port: int, *, ca: Path, xmpphost: Optional[str] = None,
                 servername: Optional[str] = None, verify_hostname: Optional[str] = None,
                 extra: tuple[str, ...] = (), ign_eof: bool = True):
        cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(ca),
               "-verify_return_error"] + (["-ign_eof"] if ign_eof else [])
        if xmpphost:
            cmd += ["-starttls", "xmpp", "-xmpphost", xmpphost]
        cmd += ["-servername", servername] if servername else ["-noservername"]
        if verify_hostname:
            cmd += ["-verify_hostname", verify_hostname]
        cmd += list(extra)
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._eof = False
        self._t = threading.Thread(target=self._reader, daemon=True)
        self._t.start()
        self.pos = 0  # what until() has consumed

    def _reader(self) -> None:
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                break
            with self._lock:
                self._buf += chunk
        self._eof = True

    @property
    def text(self) -> str:
        with self._lock:
            return self._buf.decode("utf-8", "replace")

    def until(self, pattern: str, timeout: float = 10.0) -> str:
        """Wait until `pattern` matches the output after what earlier calls consumed; returns
        that output up to the end of the match."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern, re.S)
        while True:
            t = self.text
            m = rx.search(t, self.pos)
            if m:
                out = t[self.pos:m.end()]
                self.pos = m.end()
                return out
            if self._eof or time.monotonic() > deadline:
                raise AssertionError(f"s_client: no {pattern!r} ({'exited' if self._eof else 'timeout'}); "
                                     f"command: {' '.join(self.cmd)}\noutput:\n{t[-3000:]}")
            time.sleep(0.02)

    def send(self, data: str) -> None:
        self.proc.stdin.write(data.encode())
        self.proc.stdin.flush()

    def wait_exit(self, timeout: float = 10.0) -> Optional[int]:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._t.join(2)
        return rc

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self._t.join(2)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def local_port(self, remote_port: int) -> Optional[int]:
        """The client's source port (from `ss`), for matching the backend's log."""
        r = subprocess.run(["ss", "-Htnp", "state", "established"], capture_output=True, text=True, timeout=10)
        for line in r.stdout.splitlines():
            if f"pid={self.proc.pid}," not in line:
                continue
            m = re.search(r"(\S+):(\d+)\s+(\S+):(\d+)", line)
            if m and int(m.group(4)) == remote_port:
                return int(m.group(2))
        return None

    def login_plain(self, domain: str, user: str, password: str, timeout: float = 10.0) -> str:
        return login_plain(self, domain, user, password, timeout)


def login_plain(conn, domain: str, user: str, password: str, timeout: float = 10.0) -> str:
    """On a connection whose TLS is up (an SClient, or a wrapped Raw): stream header, SASL PLAIN,
    restart, bind. Returns the bound JID."""
    import base64
    conn.send(stream_header(domain) + "\n")
    feats = conn.until(FEATURES_RX, timeout)
    assert "<mechanism>PLAIN</mechanism>" in feats, feats
    assert "starttls" not in feats, f"STARTTLS offered again inside TLS: {feats}"
    tok = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    conn.send(f"<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{tok}</auth>\n")
    got = conn.until(r"<success[^>]*/>|<success.*?</success>|</failure>", timeout)
    assert "<success" in got, got
    conn.send(stream_header(domain, decl=False) + "\n")
    conn.until(FEATURES_RX, timeout)
    conn.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>\n")
    got = conn.until(r"</iq>", timeout)
    m = re.search(r"<jid>([^<]+)</jid>", got)
    assert m, got
    return m.group(1)


def s_client_once(port: int, *, ca: Path, timeout: float = 10.0, **kw) -> tuple[int, str]:
    """Run s_client until the handshake ends either way (stdin closed at once; -ign_eof is not
    used here, so it quits after the handshake); returns (exit code, output)."""
    c = SClient(port, ca=ca, ign_eof=False, **kw)
    try:
        c.proc.stdin.close()
        rc = c.wait_exit(timeout)
        if rc is None:
            c.close()
            raise AssertionError(f"s_client did not exit within {timeout}s:\n{c.text}")
        return rc, c.text
    finally:
        c.close()


# --------------------------------------------------------------------------------------------
# Raw sockets, optionally wrapped in TLS by Python's ssl module

def client_context(ca: Optional[Path] = None, *, alpn: Optional[list[str]] = None,
                   min_version=None, max_version=None, ciphers: Optional[str] = None) -> ssl.SSLContext:
    """A client context verifying against `ca` (check_hostname on), or verifying nothing
    (ca=None: for clients that must reach the handshake whatever the certificate)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        ctx.load_verify_locations(cafile=str(ca))
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    if min_version is not None:
        ctx.minimum_version = min_version
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class Raw:
    """A blocking client socket (from a chosen source address) that may be wrapped in TLS. TLS
    runs over memory BIOs, so that after a failed handshake the raw socket can still be read
    (to see that the server closed it and sent nothing in clear)."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""
        self.sockname = self.sock.getsockname()
        self.tls: Optional[ssl.SSLObject] = None
        self._in = self._out = None
        self.peer_der: Optional[bytes] = None

    # -- transport ---------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._out is not None:
            data = self._out.read()
            if data:
                self.sock.sendall(data)

    def _recv(self, timeout: float) -> bytes:
        """Plaintext (decrypted when wrapped); b"" at EOF or close_notify. Raises socket.timeout."""
        self.sock.settimeout(max(timeout, 0.001))
        if self.tls is None:
            return self.sock.recv(65536)
        while True:
            try:
                return self.tls.read(65536)
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
            finally:
                self._flush()  # e.g. key updates
            data = self.sock.recv(65536)
            if not data:
                self._in.write_eof()
                continue
            self._in.write(data)

    def send(self, data) -> None:
        data = data.encode() if isinstance(data, str) else data
        if self.tls is None:
            self.sock.sendall(data)
            return
        self.tls.write(data)
        self._flush()

    def until(self, pattern: str, timeout: float = 10.0) -> str:
        """Read until `pattern` matches what arrived (consumed); returns it all."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.buf.decode("utf-8", "replace"), re.S):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout}s; got {self.buf!r}")
            chunk = self._recv(left)
            if not chunk:
                raise AssertionError(f"closed before {pattern!r}; got {self.buf!r}")
            self.buf += chunk
        out, self.buf = self.buf.decode("utf-8", "replace"), b""
        return out

    def read_to_eof(self, timeout: float = 5.0) -> tuple[bytes, bool]:
        """Everything until the peer closes (True) or `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return self.buf, False
            try:
                chunk = self._recv(left)
            except (socket.timeout, TimeoutError):
                return self.buf, False
            except (ConnectionResetError, BrokenPipeError):
                return self.buf, True
            if not chunk:
                return self.buf, True
            self.buf += chunk

    # -- TLS ---------------------------------------------------------------------------------

    def starttls(self, domain: str, ctx: ssl.SSLContext, sni: Optional[str] = "",
                 session: Optional[ssl.SSLSession] = None) -> None:
        """Stream header, <starttls/>, <proceed/>, then the handshake (SNI and name checked:
        `sni`, by default the domain; None sends none). Raises ssl.SSLError if it fails."""
        self.send(stream_header(domain))
        feats = self.until(FEATURES_RX)
        assert "<starttls" in feats and "<required/>" in feats, feats
        self.send(f"<starttls xmlns='{TLS_NS}'/>")
        self.until(r"<proceed[^>]*/>")
        self.wrap(ctx, domain if sni == "" else sni, session=session)

    def wrap(self, ctx: ssl.SSLContext, server_hostname: Optional[str], timeout: float = 10.0,
             session: Optional[ssl.SSLSession] = None) -> None:
        """The client side of a TLS handshake on this connection. On failure (ssl.SSLError, with
        the server's alert in its text) the connection stays unwrapped and readable."""
        if server_hostname is None:
            ctx.check_hostname = False
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(self._in, self._out, server_side=False, server_hostname=server_hostname,
                           session=session)
        deadline = time.monotonic() + timeout
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                try:
                    self.sock.sendall(self._out.read())  # our own alert, if any
                except OSError:
                    pass
                self._in = self._out = None
                raise
            self.sock.sendall(self._out.read())
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                self._in.write_eof()
            else:
                self._in.write(data)
        self._flush()
        self.tls = obj
        self.peer_der = obj.getpeercert(True)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def proxy_v2(src: tuple[str, int], dst: tuple[str, int] = ("198.51.100.1", 5222),
             tls: bool = False) -> bytes:
    """A PROXY protocol v2 header (IPv4, TCP), optionally with a PP2_TYPE_SSL TLV claiming TLS:
    what a client pretending to be the proxy would send."""
    import ipaddress
    body = ipaddress.ip_address(src[0]).packed + ipaddress.ip_address(dst[0]).packed + \
        struct.pack("!HH", src[1], dst[1])
    if tls:
        def tlv(t: int, v: bytes) -> bytes:
            return struct.pack("!BH", t, len(v)) + v
        body += tlv(0x20, b"\x01" + struct.pack("!I", 0) + tlv(0x21, b"TLSv1.3") +
                    tlv(0x23, b"TLS_AES_128_GCM_SHA256"))
    return PROXY_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sighup(proxy: TlsProxy) -> None:
    proxy.px.signal(signal.SIGHUP)
