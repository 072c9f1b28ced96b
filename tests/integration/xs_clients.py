"""Clients for the integration tests: slixmpp logins, a tiny raw XMPP client, raw exchanges,
and a checker for the proxy's stream errors.

slixmpp (python3-slixmpp) imports only under Debian's /usr/bin/python3.
"""

from __future__ import annotations

import asyncio
import base64
import re
import select
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Optional

STREAM_NS = "http://etherx.jabber.org/streams"
STREAMS_ERR_NS = "urn:ietf:params:xml:ns:xmpp-streams"
MUC_NS = "http://jabber.org/protocol/muc"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"


def header(to: Optional[str], ns: str = "jabber:client", prefix: str = "stream", quote: str = "'",
           decl: bool = True, extra: str = "") -> bytes:
    """An opening stream header as a client would send it."""
    q = quote
    to_attr = f" to={q}{to}{q}" if to is not None else ""
    pfx = f"{prefix}:" if prefix else ""
    xmlns_stream = f" xmlns:{prefix}={q}{STREAM_NS}{q}" if prefix else f" xmlns={q}{STREAM_NS}{q}"
    content_ns = f" xmlns={q}{ns}{q}" if prefix else ""
    d = f"<?xml version={q}1.0{q}?>" if decl else ""
    return (f"{d}<{pfx}stream{to_attr} version={q}1.0{q}{content_ns}{xmlns_stream}{extra}>").encode()


# --------------------------------------------------------------------------------------------
# slixmpp logins

@dataclass
class LoginResult:
    jid: str
    ok: bool = False
    bound: Optional[str] = None          # the full JID the server bound
    error: Optional[str] = None
    muc_codes: set = field(default_factory=set)
    muc_error: Optional[str] = None
    elapsed: float = 0.0

    def __str__(self) -> str:
        s = f"{self.jid}: {'ok' if self.ok else 'FAILED'}"
        if self.bound:
            s += f" bound={self.bound}"
        if self.error:
            s += f" error={self.error}"
        if self.muc_codes or self.muc_error:
            s += f" muc_codes={sorted(self.muc_codes)} muc_error={self.muc_error}"
        return s + f" ({self.elapsed:.2f}s)"


async def alogin(port: int, jid: str, password: str = "", *, host: str = "127.0.0.1",
                 join: Optional[str] = None, nick: str = "tester", timeout: float = 15.0,
                 hold: float = 0.0) -> LoginResult:
    """Log in with slixmpp over plaintext (no STARTTLS), optionally join the MUC room `join`
    (room@service) as `nick`, then disconnect. A JID without a local part logs in anonymously.
    Never raises for XMPP-level failures; look at .ok / .error."""
    import slixmpp  # noqa: WPS433 (only under /usr/bin/python3)

    res = LoginResult(jid=jid)
    t0 = time.monotonic()
    loop = asyncio.get_running_loop()
    xmpp = slixmpp.ClientXMPP(jid, password)
    xmpp.loop = loop
    xmpp["feature_mechanisms"].unencrypted_plain = True
    done: asyncio.Future = loop.create_future()

    def finish(ok: bool, error: Optional[str] = None) -> None:
        if not done.done():
            res.ok = ok
            res.error = error
            done.set_result(None)

    xmpp.add_event_handler("session_start", lambda _e: finish(True))
    xmpp.add_event_handler("failed_auth", lambda _e: finish(False, "failed_auth"))
    xmpp.add_event_handler("connection_failed", lambda e: finish(False, f"connection_failed: {e}"))
    xmpp.add_event_handler("stream_error", lambda e: finish(False, f"stream_error: {e['condition']}"))
    xmpp.add_event_handler("disconnected", lambda e: finish(False, f"disconnected: {e}"))
    try:
        xmpp.connect((host, port), force_starttls=False, disable_starttls=True)
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            finish(False, f"timeout after {timeout:g}s")
        if res.ok:
            res.bound = str(xmpp.boundjid)
        if res.ok and join:
            await _join(xmpp, res, join, nick, timeout)
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


async def _join(xmpp, res: LoginResult, room: str, nick: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    joined: asyncio.Future = loop.create_future()
    occupant = f"{room}/{nick}".lower()

    def on_presence(pres) -> None:
        if str(pres["from"]).lower() != occupant or joined.done():
            return
        if pres["type"] == "error":
            joined.set_result(("error", pres["error"]["condition"]))
            return
        codes = {s.get("code") for s in pres.xml.iter(f"{{{MUC_USER_NS}}}status")}
        joined.set_result(("ok", codes))

    xmpp.add_event_handler("presence", on_presence)
    p = xmpp.make_presence(pto=f"{room}/{nick}")
    p.append(ET.Element(f"{{{MUC_NS}}}x"))
    p.send()
    try:
        kind, val = await asyncio.wait_for(joined, timeout)
    except asyncio.TimeoutError:
        res.muc_error = f"no presence from {room}/{nick} within {timeout:g}s"
        return
    if kind == "error":
        res.muc_error = val
    else:
        res.muc_codes = set(val)


def login(port: int, jid: str, password: str = "", **kw) -> LoginResult:
    return asyncio.run(alogin(port, jid, password, **kw))


def login_many(port: int, creds: list[tuple[str, str]], **kw) -> list[LoginResult]:
    """Several logins at once (one event loop)."""
    return run_many(alogin, port, creds, **kw)


def run_many(alogin_fn, port: int, creds: list[tuple[str, str]], **kw) -> list:
    """alogin_fn(port, jid, password, **kw) for every (jid, password) at once, in one event loop."""
    async def run():
        return await asyncio.gather(*(alogin_fn(port, j, p, **kw) for j, p in creds))
    return asyncio.run(run())


# --------------------------------------------------------------------------------------------
# A raw XMPP client: enough for PLAIN login, bind and ping, and to watch the connection close.

class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, domain: str):
        self.reader, self.writer, self.domain = reader, writer, domain
        self.buf = b""
        self._n = 0

    @classmethod
    async def open(cls, port: int, domain: str, *, host: str = "127.0.0.1",
                   timeout: float = 10.0) -> "RawClient":
        """Connect, send a header for `domain`, read up to the end of <stream:features>."""
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        c = cls(r, w, domain)
        w.write(header(domain))
        await w.drain()
        await c.read_until(rb"</(?:\w+:)?features>", timeout)
        return c

    async def read_until(self, pattern: bytes, timeout: float = 10.0) -> bytes:
        """Read until `pattern` (a regex) matches the buffer; return and consume the buffer
        up to the end of the match. Raises EOFError on close, TimeoutError on timeout."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {pattern!r} within {timeout:g}s; got {self.buf[-500:]!r}")
            data = await asyncio.wait_for(self.reader.read(65536), left)
            if not data:
                raise EOFError(f"closed before {pattern!r}; got {self.buf[-500:]!r}")
            self.buf += data

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def login_plain(self, user: str, password: str, timeout: float = 10.0) -> str:
        """SASL PLAIN, stream restart, resource bind. Returns the bound JID."""
        tok = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        await self.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{tok}</auth>".encode())
        got = await self.read_until(rb"<success[^>]*?(?:/>|>.*?</success>)|</failure>", timeout)
        if b"<success" not in got:
            raise RuntimeError(f"SASL PLAIN failed for {user}@{self.domain}: {got!r}")
        await self.send(header(self.domain, decl=False))
        await self.read_until(rb"</(?:\w+:)?features>", timeout)
        await self.send(b"<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        got = await self.read_until(rb"</iq>", timeout)
        m = re.search(rb"<jid>([^<]+)</jid>", got)
        if not m:
            raise RuntimeError(f"bind failed: {got!r}")
        return m.group(1).decode()

    async def ping(self, timeout: float = 5.0) -> bool:
        """An XEP-0199 ping to the server; True if a result came back."""
        self._n += 1
        pid = f"ping{self._n}"
        await self.send(f"<iq type='get' id='{pid}' to='{self.domain}'><ping xmlns='urn:xmpp:ping'/></iq>".encode())
        got = await self.read_until(rb"<iq[^>]*id=['\"]" + pid.encode() + rb"['\"][^>]*>", timeout)
        return b"type='result'" in got[-300:] or b'type="result"' in got[-300:]

    async def wait_closed(self, timeout: float) -> Optional[float]:
        """Seconds until the peer closes (EOF or reset); None if still open after `timeout`."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except asyncio.TimeoutError:
                return None
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - t0
            if not data:
                return time.monotonic() - t0
            self.buf += data

    async def aclose(self) -> None:
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------------------------
# Raw exchanges and stream errors

@dataclass
class Exchange:
    data: bytes            # everything received
    closed: bool           # the peer closed (EOF or reset) within the timeout
    elapsed: float         # seconds from the last byte sent until close (or the timeout)


def exchange(port: int, pieces, *, host: str = "127.0.0.1", gap: float = 0.0,
             timeout: float = 5.0, until: Optional[bytes] = None) -> Exchange:
    """Send `pieces` (bytes or a list of bytes, `gap` seconds apart), then read until the
    peer closes, `timeout` passes, or (if given) `until` shows up in what was received."""
    if isinstance(pieces, (bytes, bytearray)):
        pieces = [bytes(pieces)]
    s = socket.create_connection((host, port), timeout=5)    # IPv4 or IPv6 literal
    data = b""
    try:
        for i, p in enumerate(pieces):
            if i and gap:
                time.sleep(gap)
                # Stop sending once the peer has answered or closed: writing to a closed
                # socket draws a RST, which could discard what it sent us.
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    break
            try:
                s.sendall(p)
            except (BrokenPipeError, ConnectionResetError):
                break
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return Exchange(data, False, time.monotonic() - t0)
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return Exchange(data, False, time.monotonic() - t0)
            except ConnectionResetError:
                return Exchange(data, True, time.monotonic() - t0)
            if not chunk:
                return Exchange(data, True, time.monotonic() - t0)
            data += chunk
            if until is not None and until in data:
                return Exchange(data, False, time.monotonic() - t0)
    finally:
        s.close()


@dataclass
class StreamErrorDoc:
    root_tag: str
    root_attrs: dict
    condition: Optional[str]
    closed_stream: bool     # </stream:stream> was received


def parse_stream_error(data: bytes) -> StreamErrorDoc:
    """Parse what a refusing proxy sent: [XML decl] <stream> <error><COND/>...</error> </stream>.
    Raises AssertionError with the bytes if it is not well-formed XML of that shape."""
    p = ET.XMLPullParser(events=("start", "end"))
    try:
        p.feed(data)
        events = list(p.read_events())
    except ET.ParseError as e:
        raise AssertionError(f"proxy sent malformed XML ({e}): {data!r}") from None
    if not events:
        raise AssertionError(f"proxy sent no XML element: {data!r}")
    ev, root = events[0]
    cond = None
    closed = False
    for ev, el in events:
        if ev == "end" and el.tag == f"{{{STREAM_NS}}}error":
            for child in el:
                if child.tag.startswith(f"{{{STREAMS_ERR_NS}}}") and not child.tag.endswith("}text"):
                    cond = child.tag.split("}", 1)[1]
        if ev == "end" and el is root:
            closed = True
    return StreamErrorDoc(root.tag, dict(root.attrib), cond, closed)


def assert_stream_error(ex: Exchange, condition: str, *, from_domain: Optional[str] = None,
                        close_within: float = 5.0) -> StreamErrorDoc:
    """The RFC 6120 4.9 refusal: a stream header, <stream:error><condition/>, </stream:stream>,
    then the connection closed."""
    doc = parse_stream_error(ex.data)
    assert doc.root_tag == f"{{{STREAM_NS}}}stream", f"root is {doc.root_tag}, not a stream: {ex.data!r}"
    assert doc.condition == condition, f"expected <{condition}/>, got <{doc.condition}/>: {ex.data!r}"
    assert doc.closed_stream, f"no </stream:stream> after the error: {ex.data!r}"
    assert ex.closed, f"connection still open {ex.elapsed:.1f}s after the error: {ex.data!r}"
    assert ex.elapsed <= close_within, f"closed only after {ex.elapsed:.1f}s"
    if from_domain is not None:
        assert doc.root_attrs.get("from") == from_domain, \
            f"stream header from={doc.root_attrs.get('from')!r}, expected {from_domain!r}: {ex.data!r}"
    return doc


def tls_client_hello(server_name: str) -> bytes:
    """A real TLS ClientHello made by the ssl module (memory BIOs, no socket)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()
