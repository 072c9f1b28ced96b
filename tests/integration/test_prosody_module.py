"""deploy/prosody-modules/mod_xmpp_shard.lua in a real Prosody 0.12 (started with deploy/xs_local),
driven over raw TCP with PROXY v2 headers built here byte by byte.

The instance is configured as a backend behind a TLS-terminating proxy: no certificates, no `tls`
module, c2s_require_encryption = true and allow_unencrypted_plain_auth = false (Prosody's
defaults). So SASL PLAIN on the plaintext hop works only because the module marks the session
secure from the proxy's TLS TLV, and the logs show the client's address from the header.

A second instance plays passthrough mode: its own certificate and the `tls` module; the client
does STARTTLS with Prosody after the proxy's header, and the client's address must survive it.

Trusted proxy: 127.0.0.2 (the tests bind their source address to it); connections from
127.0.0.1 play an untrusted peer. No proxy binary is needed.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import pwd
import re
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, pwgen
from xs_local import Account, InstanceSpec, ProsodyInstance, VirtualHost, free_port, wait_port

MODULE_DIR = REPO / "deploy" / "prosody-modules"
DOMAIN = "shard.test"
COMPONENT = "comp.shard.test"
TRUSTED = "127.0.0.2"
UNTRUSTED = "127.0.0.1"

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
STREAM = ("<?xml version='1.0'?><stream:stream to='{to}' version='1.0' xmlns='{ns}' "
          "xmlns:stream='http://etherx.jabber.org/streams'>")
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


def tlv(typ: int, value: bytes) -> bytes:
    return struct.pack("!BH", typ, len(value)) + value


def proxy_v2(src=("203.0.113.7", 40000), dst=("198.51.100.1", 5222), *, local=False,
             authority: str | None = None, tls: tuple[str, str] | None = None) -> bytes:
    """A PROXY protocol v2 header (haproxy's proxy-protocol.txt 2.2), as xmpp-shard sends it."""
    if local:
        return SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    s, d = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    fam = 0x11 if s.version == 4 else 0x21
    body = s.packed + d.packed + struct.pack("!HH", src[1], dst[1])
    if authority:
        body += tlv(0x02, authority.encode())
    if tls:
        version, cipher = tls
        ssl = bytes([0x01]) + struct.pack("!I", 1) + tlv(0x21, version.encode()) + tlv(0x23, cipher.encode())
        body += tlv(0x20, ssl)
    return SIGNATURE + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


TLS13 = ("TLSv1.3", "TLS_AES_128_GCM_SHA256")


class Raw:
    """A raw TCP client with a chosen source address."""

    def __init__(self, port: int, source: str = TRUSTED):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
        self.buf = b""

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def until(self, pattern: str, timeout: float = 5.0) -> str:
        """Reads until `pattern` (a regex) matches what arrived so far; returns all of it."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.buf.decode("utf-8", "replace")):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout}s; got {self.buf!r}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"closed before {pattern!r}; got {self.buf!r}")
            self.buf += chunk
        return self.buf.decode("utf-8", "replace")

    def closed_without_data(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        self.buf += data
        return data == b""

    def read_to_eof(self, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            self.buf += chunk
        return self.buf.decode("utf-8", "replace")

    def close(self) -> None:
        self.sock.close()


def features(c: Raw) -> str:
    text = c.until(r"</stream:features>|<stream:features/>")
    c.buf = b""
    return text


class Backend:
    def __init__(self, inst: ProsodyInstance, port: int, password: str, secret: str,
                 cert: Path | None = None):
        self.inst, self.port, self.password, self.secret = inst, port, password, secret
        self.cert = cert  # its self-signed certificate (passthrough mode)

    def wait_log(self, pattern: str, since: int, timeout: float = 5.0) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.inst.log_text(since))
            if m:
                return m.group(0)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


def start_backend(base_dir: Path, name: str, *, passthrough: bool = False) -> Backend:
    """A Prosody instance with mod_xmpp_shard on its own port. Terminate mode (default): no
    certificate, no `tls` module. Passthrough: a certificate for DOMAIN and the `tls` module, so
    clients do STARTTLS with Prosody itself (the header then carries no TLS TLV)."""
    password, secret = pwgen(), pwgen()
    port = free_port()
    spec = InstanceSpec(name, free_port(), hosts=[VirtualHost(DOMAIN)],
                        accounts=[Account("alice", DOMAIN, password)])
    inst = ProsodyInstance(spec, base_dir)
    inst.prepare(fresh=True)
    text = inst.config_path.read_text()
    modules = ["xmpp_shard", "xmpp_shard_probe"] + (["tls"] if passthrough else [])
    text = text.replace("modules_enabled = {", "modules_enabled = { " +
                        "".join(f'"{m}", ' for m in modules), 1)
    # A test-only module that logs what Prosody believes after login (conn:ip() is re-read
    # from the socket by a STARTTLS: the module must keep the client's address there too).
    probe_dir = inst.root / "test-modules"
    probe_dir.mkdir(exist_ok=True)
    (probe_dir / "mod_xmpp_shard_probe.lua").write_text(
        'module:hook("authentication-success", function (event)\n'
        '\tlocal s = event.session;\n'
        '\ts.log("info", "probe: ip=%s conn=%s secure=%s", s.ip, s.conn and s.conn:ip(), tostring(s.secure));\n'
        'end);\n')
    # The module's settings, in the global section (before the first VirtualHost); later
    # assignments win in Prosody's config, so these override xs_local's plaintext defaults
    # (Prosody warns about the duplicates).
    settings = "\n".join([
        f"-- mod_xmpp_shard ({Path(__file__).name})",
        f'plugin_paths = {{ "{MODULE_DIR}", "{probe_dir}" }}',
        f"xmpp_shard_ports = {{ {port} }}",
        'xmpp_shard_interfaces = { "127.0.0.1" }',
        f'xmpp_shard_trusted_proxies = {{ "{TRUSTED}" }}',
        "xmpp_shard_header_timeout = 2",
        "c2s_require_encryption = true",
        "allow_unencrypted_plain_auth = false",
        "",
    ])
    at = text.index("\nVirtualHost ")
    text = text[:at + 1] + settings + text[at + 1:]
    text += f'\nComponent "{COMPONENT}"\n\tcomponent_secret = "{secret}"\n'
    inst.config_path.write_text(text)
    cert = None
    if passthrough:
        certs = Path(re.search(r'^certificates = "([^"]+)"', text, re.M).group(1))
        certs.mkdir(parents=True, exist_ok=True)
        cert = certs / f"{DOMAIN}.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", f"/CN={DOMAIN}",
                        "-addext", f"subjectAltName=DNS:{DOMAIN}", "-keyout",
                        str(certs / f"{DOMAIN}.key"), "-out", str(cert)],
                       check=True, capture_output=True)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("prosody")
        for p in [probe_dir, *probe_dir.iterdir(), *(cert.parent.iterdir() if cert else [])]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
    inst.start()
    try:
        wait_port("127.0.0.1", port, timeout=10, proc=inst.proc, what="mod_xmpp_shard port")
    except Exception:
        inst.stop()
        raise RuntimeError(f"the xmpp_shard port did not open:\n{inst.log_tail(40)}") from None
    return Backend(inst, port, password, secret, cert)


@pytest.fixture(scope="module")
def backend(base_dir):
    b = start_backend(base_dir, "shardmod")
    yield b
    b.inst.stop()


@pytest.fixture(scope="module")
def passthrough_backend(base_dir):
    b = start_backend(base_dir, "shardmod-pass", passthrough=True)
    yield b
    b.inst.stop()


@pytest.fixture
def prosody(backend):
    assert backend.inst.running(), backend.inst.log_tail(30)
    yield backend
    assert backend.inst.running(), backend.inst.log_tail(30)


def login(c: Raw, password: str, feats: str | None = None) -> str:
    """SASL PLAIN, stream restart and resource binding; returns the bound JID."""
    feats = feats or features(c)
    assert "<mechanism>PLAIN</mechanism>" in feats, feats
    assert "starttls" not in feats, feats
    token = base64.b64encode(f"\0alice\0{password}".encode()).decode()
    c.send(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{token}</auth>")
    c.until(r"<success")
    c.buf = b""
    c.send(STREAM.format(to=DOMAIN, ns="jabber:client"))
    features(c)
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
    text = c.until(r"</iq>")
    return re.search(r"<jid>([^<]+)</jid>", text).group(1)


def session_id(log_line: str) -> str:
    """The logger name (c2s...) of a Prosody log line."""
    return re.search(r"\b(c2s[0-9a-f]+)\b", log_line).group(1)


def test_terminated_session_is_secure_and_logs_the_client_address(prosody):
    mark = prosody.inst.log_mark()
    c = Raw(prosody.port)
    c.send(proxy_v2(("203.0.113.7", 40000), authority=DOMAIN, tls=TLS13) +
           STREAM.format(to=DOMAIN, ns="jabber:client").encode())
    jid = login(c, prosody.password)
    assert jid.startswith(f"alice@{DOMAIN}/")
    c.close()
    assert prosody.wait_log(r"probe: ip=203\.0\.113\.7 conn=203\.0\.113\.7 secure=true", mark)
    line = prosody.wait_log(r".*Client address 203\.0\.113\.7 port 40000 via xmpp-shard "
                            r"127\.0\.0\.2 port \d+ \(TLS terminated by the proxy: TLSv1\.3, "
                            r"TLS_AES_128_GCM_SHA256; SNI shard\.test\)", mark)
    assert line, prosody.inst.log_text(mark)
    auth = prosody.wait_log(r".*Authenticated as alice@shard\.test", mark)
    assert auth and session_id(auth) == session_id(line), prosody.inst.log_text(mark)


def test_header_in_pieces_and_ipv6_client(prosody):
    mark = prosody.inst.log_mark()
    c = Raw(prosody.port)
    data = proxy_v2(("2001:db8::7", 50123), ("2001:db8::1", 5222), tls=TLS13) + \
        STREAM.format(to=DOMAIN, ns="jabber:client").encode()
    for piece in (data[:5], data[5:14], data[14:40], data[40:]):
        c.send(piece)
        time.sleep(0.05)
    login(c, prosody.password)
    c.close()
    assert prosody.wait_log(r"Client address 2001:db8::7 port 50123", mark), prosody.inst.log_text(mark)


def test_proxied_plaintext_session_is_not_secure(prosody):
    # A PROXY header without the TLS TLV (a passthrough listener): the address is taken, but
    # nothing makes the plaintext session secure, so no SASL is offered.
    mark = prosody.inst.log_mark()
    c = Raw(prosody.port)
    c.send(proxy_v2(("198.51.100.23", 41000)) + STREAM.format(to=DOMAIN, ns="jabber:client").encode())
    text = c.read_to_eof(timeout=3)
    assert "PLAIN" not in text, text
    c.close()
    assert prosody.wait_log(r"Client address 198\.51\.100\.23 port 41000 via xmpp-shard .*no TLS", mark)


def test_untrusted_peer_is_closed_and_its_header_never_read(prosody):
    mark = prosody.inst.log_mark()
    c = Raw(prosody.port, source=UNTRUSTED)
    c.send(proxy_v2(("192.0.2.66", 1234), tls=TLS13) + STREAM.format(to=DOMAIN, ns="jabber:client").encode())
    assert c.closed_without_data(), c.buf
    c.close()
    assert prosody.wait_log(r"Closing connection from 127\.0\.0\.1 port \d+: not a trusted proxy", mark)
    time.sleep(0.3)
    assert "192.0.2.66" not in prosody.inst.log_text(mark)


def test_a_header_sent_by_the_client_through_the_proxy_is_not_trusted(prosody):
    # The proxy's header comes first; the client's own PROXY header after it is stream data.
    mark = prosody.inst.log_mark()
    c = Raw(prosody.port)
    c.send(proxy_v2(("203.0.113.8", 40001)) + proxy_v2(("192.0.2.99", 999), tls=TLS13) +
           STREAM.format(to=DOMAIN, ns="jabber:client").encode())
    text = c.read_to_eof(timeout=3)
    assert "not-well-formed" in text, text
    assert "PLAIN" not in text, text
    c.close()
    assert prosody.wait_log(r"Client address 203\.0\.113\.8 port 40001", mark)
    assert "192.0.2.99" not in prosody.inst.log_text(mark)

    # Same in the middle of an open stream: a PROXY header there is garbage to the XML parser.
    mark = prosody.inst.log_mark()
    c = Raw(prosody.port)
    c.send(proxy_v2(("203.0.113.9", 40002), tls=TLS13) + STREAM.format(to=DOMAIN, ns="jabber:client").encode())
    features(c)
    c.send(proxy_v2(("192.0.2.98", 998), tls=TLS13))
    text = c.read_to_eof(timeout=3)
    assert "not-well-formed" in text, text
    c.close()
    assert "192.0.2.98" not in prosody.inst.log_text(mark)


def test_trusted_peer_without_a_header_is_closed(prosody):
    mark = prosody.inst.log_mark()
    c = Raw(prosody.port)
    c.send(STREAM.format(to=DOMAIN, ns="jabber:client"))
    assert c.closed_without_data(), c.buf
    c.close()
    assert prosody.wait_log(r"Closing connection from 127\.0\.0\.2 port \d+: not a PROXY v2 header", mark)


def test_incomplete_header_times_out(prosody):
    mark = prosody.inst.log_mark()
    c = Raw(prosody.port)
    c.send(proxy_v2()[:20])
    t0 = time.monotonic()
    assert c.closed_without_data(timeout=6), c.buf
    assert 1.0 < time.monotonic() - t0 < 5.0
    c.close()
    assert prosody.wait_log(r"no complete PROXY v2 header within xmpp_shard_header_timeout", mark)


def test_local_command_is_the_proxy_itself(prosody):
    # LOCAL (health checks): the real endpoints stay, nothing is marked secure.
    mark = prosody.inst.log_mark()
    c = Raw(prosody.port)
    c.send(proxy_v2(local=True) + STREAM.format(to=DOMAIN, ns="jabber:client").encode())
    text = c.until(r"<stream:stream")
    assert "PLAIN" not in c.read_to_eof(timeout=2)
    c.close()
    assert "Client address" not in prosody.inst.log_text(mark), text


def test_component_stream_goes_to_the_component_listener(prosody):
    c = Raw(prosody.port)
    c.send(proxy_v2(("203.0.113.10", 40003)) + STREAM.format(to=COMPONENT, ns="jabber:component:accept").encode())
    header = c.until(r"<stream:stream[^>]*>")
    stream_id = re.search(r"\bid=['\"]([^'\"]+)['\"]", header).group(1)
    c.buf = b""
    digest = hashlib.sha1((stream_id + prosody.secret).encode()).hexdigest()
    c.send(f"<handshake>{digest}</handshake>")
    assert "<handshake/>" in c.until(r"<handshake\s*/>|</stream:stream>")
    c.close()


def test_passthrough_starttls_keeps_the_client_address(passthrough_backend):
    # Passthrough: the proxy sends a PROXY header without TLS TLV, the client does STARTTLS with
    # Prosody itself (verifying Prosody's certificate), then logs in.
    b = passthrough_backend
    assert b.inst.running(), b.inst.log_tail(30)
    mark = b.inst.log_mark()
    c = Raw(b.port)
    c.send(proxy_v2(("203.0.113.20", 40020)) + STREAM.format(to=DOMAIN, ns="jabber:client").encode())
    feats = features(c)
    assert "starttls" in feats and "PLAIN" not in feats, feats
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    c.until(r"<proceed")
    c.buf = b""
    ctx = ssl.create_default_context(cafile=str(b.cert))
    c.sock = ctx.wrap_socket(c.sock, server_hostname=DOMAIN)
    c.send(STREAM.format(to=DOMAIN, ns="jabber:client"))
    jid = login(c, b.password)
    assert jid.startswith(f"alice@{DOMAIN}/")
    c.close()
    assert b.wait_log(r"Client address 203\.0\.113\.20 port 40020 via xmpp-shard .*no TLS at the proxy", mark)
    assert b.wait_log(r"probe: ip=203\.0\.113\.20 conn=203\.0\.113\.20 secure=true", mark), b.inst.log_text(mark)
    assert b.inst.running(), b.inst.log_tail(30)
