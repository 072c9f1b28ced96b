"""A slixmpp client for the interop tests (tests/integration/test_interop.py): connects to
HOST:PORT as JID over plaintext, STARTTLS or Direct TLS (verifying the server's certificate for
the JID's domain against --ca, SNI = the domain), logs in, sends one chat message to --to, pings
its server (so the message was processed) and exits 0. Prints "bound=JID secured=0|1".

    /usr/bin/python3 slixmpp_send.py --jid J --password P --host H --port N
        --mode plain|starttls|direct [--ca CA] --to JID --body TEXT
"""

import argparse
import asyncio
import ssl
import sys


async def main(a) -> int:
    import slixmpp

    loop = asyncio.get_running_loop()
    xmpp = slixmpp.ClientXMPP(a.jid, a.password)
    xmpp.loop = loop
    xmpp.register_plugin("xep_0199")
    if a.mode == "plain":
        xmpp["feature_mechanisms"].unencrypted_plain = True
    else:
        xmpp.ca_certs = a.ca
        assert xmpp.ssl_context.verify_mode == ssl.CERT_REQUIRED and xmpp.ssl_context.check_hostname
    domain = xmpp.boundjid.domain
    done = loop.create_future()

    def finish(rc: int, why: str) -> None:
        if not done.done():
            print(why, file=sys.stderr if rc else sys.stdout, flush=True)
            done.set_result(rc)

    async def on_session_start(_e) -> None:
        obj = xmpp.transport.get_extra_info("ssl_object") if xmpp.transport else None
        secured = obj is not None
        if secured != (a.mode != "plain"):
            finish(3, f"slixmpp_send: secured={int(secured)} but mode {a.mode}")
            return
        xmpp.send_message(mto=a.to, mbody=a.body, mtype="chat")
        try:
            await xmpp["xep_0199"].ping(jid=domain, timeout=10)
        except Exception as e:  # noqa: BLE001
            finish(4, f"slixmpp_send: ping failed: {e!r}")
            return
        finish(0, f"bound={xmpp.boundjid} secured={int(secured)}")

    xmpp.add_event_handler("session_start", on_session_start)
    xmpp.add_event_handler("failed_auth", lambda _e: finish(5, "slixmpp_send: failed_auth"))
    xmpp.add_event_handler("connection_failed", lambda e: finish(6, f"slixmpp_send: connection_failed: {e}"))
    xmpp.add_event_handler("ssl_invalid_chain", lambda e: finish(7, f"slixmpp_send: ssl_invalid_chain: {e}"))
    xmpp.add_event_handler("stream_error", lambda e: finish(8, f"slixmpp_send: stream_error: {e['condition']}"))
    xmpp.add_event_handler("disconnected", lambda e: finish(9, f"slixmpp_send: disconnected: {e}"))

    # Connect "to the domain" (SNI and the name check use it), resolved to HOST by this stand-in
    # for DNS.
    async def local_dns(_domain, _port=None):
        return [(domain, a.host, a.port)]
    xmpp.get_dns_records = local_dns
    xmpp.connect((domain, a.port), use_ssl=a.mode == "direct", force_starttls=a.mode == "starttls",
                 disable_starttls=a.mode == "plain")
    try:
        rc = await asyncio.wait_for(asyncio.shield(done), a.timeout)
    except asyncio.TimeoutError:
        finish(10, f"slixmpp_send: timeout after {a.timeout:g}s")
        rc = 10
    xmpp.cancel_connection_attempt()
    if xmpp.transport is not None:
        try:
            await asyncio.wait_for(xmpp.disconnect(wait=1.0), 3)
        except Exception:  # noqa: BLE001
            pass
        xmpp.abort()
    return rc


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=("plain", "starttls", "direct"), required=True)
    p.add_argument("--ca")
    p.add_argument("--to", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--timeout", type=float, default=20.0)
    sys.exit(asyncio.run(main(p.parse_args())))
