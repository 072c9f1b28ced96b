"""`run`'s simulated focus: one per room shard and meeting domain, standing in for jicofo (a local
run starts no Jitsi service). It logs in exactly where that shard's jicofo would, with its
snippet's credentials (jitsi/jicofo-NAME.conf: focus@auth.DOMAIN, resource "focus", straight to
the shard), and answers Jitsi Meet's conference request:

    <iq type='set' to='focus@auth.DOMAIN/focus'>
      <conference xmlns='http://jitsi.org/protocol/focus' room='ROOM@conference.DOMAIN'/></iq>

by joining ROOM@conference.DOMAIN as "focus" (the conference MUC lets only the focus, a global
admin, create rooms: restrict_room_creation), then replying `ready='true'` as jicofo does. It
leaves a room when its last participant has left. (Jitsi Meet sends the request to focus.DOMAIN,
Jitsi's client_proxy component, which forwards it to this JID; the plan generates that component,
but `run` leaves it out where jitsi-meet-prosody's mod_client_proxy is not installed.)
Standard library only; reconnects while its shard restarts.
"""

from __future__ import annotations

import base64
import socket
import threading
import xml.etree.ElementTree as ET
from collections import deque
from typing import Callable, Optional
from xml.sax.saxutils import quoteattr

NS_FOCUS = "http://jitsi.org/protocol/focus"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NICK = "focus"


class _Stream:
    """One XMPP client stream over a blocking socket: top-level elements, one at a time."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def open(self, to: str) -> None:
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.root: Optional[ET.Element] = None
        self.ready: deque = deque()
        self.send(f"<?xml version='1.0'?><stream:stream to={quoteattr(to)} version='1.0' "
                  "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")

    def send(self, xml: str) -> None:
        self.sock.sendall(xml.encode())

    def next(self) -> ET.Element:
        """The next top-level element; socket.timeout when none came within the timeout."""
        while not self.ready:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the shard closed the connection")
            self.parser.feed(data)
            for ev, el in self.parser.read_events():
                if ev == "start":
                    self.depth += 1
                    if self.depth == 1:
                        self.root = el
                    continue
                self.depth -= 1
                if self.depth == 0:
                    raise EOFError("the shard closed the stream")
                if self.depth == 1:
                    self.ready.append(el)
                    self.root.remove(el)
        return self.ready.popleft()

    def expect(self, tag: str) -> ET.Element:
        el = self.next()
        if el.tag != tag and not (tag == "*features" and el.tag.endswith("}features")):
            raise RuntimeError(f"expected {tag}, got {ET.tostring(el)[:300]!r}")
        return el


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class SimulatedFocus:
    """The focus of one shard and domain. `log(text)` gets one line per event."""

    def __init__(self, label: str, host: str, port: int, auth_domain: str, password: str,
                 muc: str, log: Callable[[str], None], stop: threading.Event,
                 resource: str = "focus"):
        self.label, self.host, self.port = label, host, port
        self.auth_domain, self.password, self.muc, self.resource = auth_domain, password, muc, resource
        self.jid = f"focus@{auth_domain}/{resource}"
        self.log, self.stop = log, stop
        self.ready = threading.Event()      # logged in (cleared while reconnecting)
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"focus-{label}")

    def start(self) -> "SimulatedFocus":
        self.thread.start()
        return self

    def _run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=10) as sock:
                    self._session(_Stream(sock))
            except (OSError, EOFError, RuntimeError, ET.ParseError) as e:
                self.ready.clear()
                failures += 1
                if failures in (1, 10) or failures % 60 == 0:
                    self.log(f"{self.host}:{self.port}: {e}; reconnecting")
            self.stop.wait(1.0)

    def _login(self, s: _Stream) -> None:
        s.open(self.auth_domain)
        feats = s.expect("*features")
        mechs = [m.text for m in feats.iter(f"{{{NS_SASL}}}mechanism")]
        if "PLAIN" not in mechs:
            raise RuntimeError(f"no SASL PLAIN for focus@{self.auth_domain} (offered: {mechs})")
        token = base64.b64encode(f"\0focus\0{self.password}".encode()).decode()
        s.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        r = s.next()
        if _local(r.tag) != "success":
            raise RuntimeError(f"focus@{self.auth_domain}: SASL {_local(r.tag)}")
        s.open(self.auth_domain)
        s.expect("*features")
        s.send(f"<iq type='set' id='bind'><bind xmlns='{NS_BIND}'><resource>{self.resource}"
               f"</resource></bind></iq>")
        r = s.next()
        if r.get("type") != "result":
            raise RuntimeError(f"bind failed: {ET.tostring(r)[:300]!r}")
        s.send("<presence/>")

    def _session(self, s: _Stream) -> None:
        self._login(s)
        s.sock.settimeout(0.5)
        self.rooms: dict[str, set] = {}         # joined room -> other occupants' nicks
        self.seen: set[str] = set()             # rooms that had a participant
        self.pending: dict[str, list] = {}      # room being joined -> requests (from, id)
        self.log(f"logged in as {self.jid} on {self.host}:{self.port}")
        self.ready.set()        # after the line: the runner's banner follows it
        try:
            while not self.stop.is_set():
                try:
                    el = s.next()
                except socket.timeout:
                    continue
                kind = _local(el.tag)
                if kind == "iq":
                    self._iq(s, el)
                elif kind == "presence":
                    self._presence(s, el)
            s.send("</stream:stream>")
        finally:
            self.ready.clear()

    def _reply(self, s: _Stream, to: str, iq_id: str, room: str = "", error: str = "") -> None:
        if error:
            s.send(f"<iq type='error' to={quoteattr(to)} id={quoteattr(iq_id)}><error type='cancel'>"
                   f"<{error} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
        else:
            s.send(f"<iq type='result' to={quoteattr(to)} id={quoteattr(iq_id)}><conference "
                   f"xmlns='{NS_FOCUS}' ready='true' room={quoteattr(room)} "
                   f"focusjid={quoteattr('focus@' + self.auth_domain)}/></iq>")

    def _iq(self, s: _Stream, iq: ET.Element) -> None:
        typ, frm, iq_id = iq.get("type"), iq.get("from", ""), iq.get("id", "")
        if typ not in ("get", "set"):
            return
        conf = iq.find(f"{{{NS_FOCUS}}}conference")
        if conf is None:
            if iq.find("{urn:xmpp:ping}ping") is not None:
                s.send(f"<iq type='result' to={quoteattr(frm)} id={quoteattr(iq_id)}/>")
            else:
                self._reply(s, frm, iq_id, error="service-unavailable")
            return
        room = (conf.get("room") or "").lower()
        if room.partition("@")[2] != self.muc or not room.partition("@")[0]:
            self._reply(s, frm, iq_id, error="bad-request")
            return
        if room in self.rooms:
            self._reply(s, frm, iq_id, room)
        elif room in self.pending:
            self.pending[room].append((frm, iq_id))
        else:
            self.pending[room] = [(frm, iq_id)]
            s.send(f"<presence to={quoteattr(room + '/' + NICK)}><x xmlns='{NS_MUC}'/></presence>")

    def _presence(self, s: _Stream, p: ET.Element) -> None:
        room, _, nick = p.get("from", "").partition("/")
        room = room.lower()
        if room.partition("@")[2] != self.muc or not nick:
            return
        typ = p.get("type")
        codes = {c.get("code") for c in p.iter(f"{{{NS_MUC_USER}}}status")}
        if nick == NICK:
            if typ == "error":
                self.log(f"room {room}: could not join: {ET.tostring(p)[:300]!r}")
                for frm, iq_id in self.pending.pop(room, []):
                    self._reply(s, frm, iq_id, error="internal-server-error")
            elif typ == "unavailable":
                self.rooms.pop(room, None)
            elif "110" in codes and room in self.pending:
                self.rooms.setdefault(room, set())
                self.log(f"room {room}: {'created' if '201' in codes else 'joined'} "
                         f"(asked by {len(self.pending[room])})")
                for frm, iq_id in self.pending.pop(room):
                    self._reply(s, frm, iq_id, room)
            return
        if room not in self.rooms:
            return
        if typ == "unavailable":
            self.rooms[room].discard(nick)
            if not self.rooms[room] and room in self.seen:
                s.send(f"<presence type='unavailable' to={quoteattr(room + '/' + NICK)}/>")
                del self.rooms[room]
                self.seen.discard(room)
                self.log(f"room {room}: the last participant left; the focus left too")
        elif typ is None:
            self.rooms[room].add(nick)
            self.seen.add(room)


def start_focuses(layout, log: Callable[[str, str], None], stop: threading.Event) -> list[SimulatedFocus]:
    """One simulated focus per jicofo of a room-sharded layout (jitsi.shard_jicofos): the same
    endpoint, account and resource as its snippet. `log(label, text)`."""
    from .jitsi import shard_jicofos
    jl = layout.jitsi
    out = []
    for sj in shard_jicofos(jl, layout.instances):
        side = sj.side
        out.append(SimulatedFocus(sj.unit, sj.client.host, sj.client.port, side.auth_domain,
                                  layout.password(f"focus@{side.auth_domain}"), side.conference,
                                  (lambda text, u=sj.unit: log(u, text)), stop).start())
    return out
