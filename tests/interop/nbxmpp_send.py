"""A python3-nbxmpp (Gajim's library, GLib main loop, Gio/GnuTLS for TLS) client for the interop
tests (tests/integration/test_interop.py): connects to HOST:PORT as JID over plaintext
(ConnectionType.PLAIN), STARTTLS or Direct TLS, logs in, sends one chat message to --to, pings
its server (so the message was processed) and exits 0. Prints "bound=JID secured=0|1".

Certificates: nbxmpp has no CA-file option; it uses the system trust store and lets the
application accept a certificate the user approved (Gajim's "trust this certificate"). The
test passes the certificate the server must present (--pin): only that certificate's
UNKNOWN_CA error is forgiven, every other check (name = the JID's domain, validity) stays on.

    /usr/bin/python3 nbxmpp_send.py --jid J --password P --host H --port N
        --mode plain|starttls|direct [--pin CERT.pem] --to JID --body TEXT
"""

import argparse
import sys

import gi

gi.require_version("Gio", "2.0")
gi.require_version("GLib", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

from nbxmpp.client import Client  # noqa: E402
from nbxmpp.const import ConnectionProtocol, ConnectionType, StreamState  # noqa: E402
from nbxmpp.protocol import JID, Message  # noqa: E402

MODES = {"plain": ConnectionType.PLAIN, "starttls": ConnectionType.START_TLS,
         "direct": ConnectionType.DIRECT_TLS}


def main(a) -> int:
    jid = JID.from_string(a.jid)
    loop = GLib.MainLoop()
    result = {"rc": None}

    def finish(rc: int, why: str) -> None:
        if result["rc"] is None:
            result["rc"] = rc
            print(why, file=sys.stderr if rc else sys.stdout, flush=True)
        if client.state == StreamState.DISCONNECTED:
            loop.quit()
            return
        try:
            client.disconnect()
        except Exception:  # noqa: BLE001
            pass
        GLib.timeout_add(3000, loop.quit)   # the "disconnected" signal normally quits first

    client = Client()
    client.set_domain(jid.domain)
    client.set_username(jid.localpart)
    client.set_password(a.password)
    client.set_resource("nbxmpp-interop")
    client.set_custom_host(f"{a.host}:{a.port}", ConnectionProtocol.TCP, MODES[a.mode])
    client.set_sm_disabled(True)
    if a.pin:
        client.set_accepted_certificates([Gio.TlsCertificate.new_from_file(a.pin)])

    def on_pong(task) -> None:
        try:
            task.finish()
        except Exception as e:  # noqa: BLE001
            finish(4, f"nbxmpp_send: ping failed: {e!r}")
            return
        finish(0, f"bound={client.get_bound_jid()} secured={int(client.is_stream_secure)}")

    def on_connected(_client, _signal) -> None:
        if client.is_stream_secure != (a.mode != "plain"):
            finish(3, f"nbxmpp_send: secured={int(client.is_stream_secure)} but mode {a.mode}")
            return
        client.send_stanza(Message(to=a.to, body=a.body, typ="chat"))
        client.get_module("Ping").ping(jid.domain, timeout=10, callback=on_pong)

    def on_failed(_client, signal) -> None:
        finish(5, f"nbxmpp_send: {signal}: {client.get_error()} "
                  f"certificate errors: {client.peer_certificate[1]}")

    def on_disconnected(_client, signal) -> None:
        if result["rc"] is None:
            finish(6, f"nbxmpp_send: {signal} before the pong: {client.get_error()} "
                      f"certificate errors: {client.peer_certificate[1]}")
        loop.quit()

    client.subscribe("connected", on_connected)
    client.subscribe("connection-failed", on_failed)
    client.subscribe("disconnected", on_disconnected)
    GLib.timeout_add(int(a.timeout * 1000), lambda: finish(10, f"nbxmpp_send: timeout after {a.timeout:g}s"))
    client.connect()
    loop.run()
    return result["rc"] if result["rc"] is not None else 11


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=tuple(MODES), required=True)
    p.add_argument("--pin")
    p.add_argument("--to", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--timeout", type=float, default=20.0)
    sys.exit(main(p.parse_args()))
