"""Re-create the real-client seeds of the sniffer corpora: start a tiny listener, point a real
client at it, record the client's first bytes (until 1.5 s of silence). Optionally the listener
answers the header with a stream header and features (STARTTLS required, or SASL mechanisms) so
that the client's next step is recorded too.

    /usr/bin/python3 tests/fuzz/capture_first_bytes.py OUT_DIR

Clients: `openssl s_client -starttls xmpp[-server] -xmpphost D` and slixmpp (plain, STARTTLS,
anonymous, SASL PLAIN). Files are named as in tests/fuzz/corpus/fuzz_stream_header/.
"""

import asyncio
import socket
import subprocess
import sys
import threading
from pathlib import Path

HEADER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
          b"xmlns:stream='http://etherx.jabber.org/streams' id='x' from='meet.example.com' "
          b"version='1.0'><stream:features>%s</stream:features>")
FEATURES = {
    "starttls": b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>",
    "sasl": b"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
            b"<mechanism>ANONYMOUS</mechanism></mechanisms>",
}


class Listener:
    def __init__(self, answer: str = ""):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.data = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        c, _ = self.sock.accept()
        c.settimeout(1.5)
        answered = False
        while True:
            try:
                d = c.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            self.data += d
            if self.answer and not answered and b">" in self.data.split(b"stream:stream", 1)[-1]:
                answered = True
                c.sendall(HEADER % FEATURES[self.answer])
        c.close()
        self.sock.close()

    def result(self) -> bytes:
        self.thread.join(10)
        return self.data


def openssl(name_flag: str, host: str, answer: str = "") -> bytes:
    lst = Listener(answer)
    subprocess.run(["openssl", "s_client", "-starttls", name_flag, "-xmpphost", host,
                    "-connect", f"127.0.0.1:{lst.port}"], stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
    return lst.result()


def slixmpp(jid: str, starttls: bool, answer: str = "") -> bytes:
    import slixmpp as sx  # Debian's python3-slixmpp: run under /usr/bin/python3
    lst = Listener(answer)

    async def run():
        x = sx.ClientXMPP(jid, "pw")
        x["feature_mechanisms"].unencrypted_plain = True
        x.connect(("127.0.0.1", lst.port), force_starttls=starttls, disable_starttls=not starttls)
        await asyncio.sleep(2.5)
        x.abort()
    asyncio.run(run())
    return lst.result()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    seeds = {
        "openssl-s_client-starttls-xmpp": lambda: openssl("xmpp", "meet.example.com"),
        "openssl-s_client-starttls-xmpp-then-starttls":
            lambda: openssl("xmpp", "meet.example.com", "starttls"),
        "openssl-s_client-starttls-xmpp-server": lambda: openssl("xmpp-server", "example.org"),
        "slixmpp-plain": lambda: slixmpp("alice@meet.example.com", False),
        "slixmpp-then-starttls": lambda: slixmpp("alice@meet.example.com", True, "starttls"),
        "slixmpp-anonymous": lambda: slixmpp("guest.meet.example.com", False),
        "slixmpp-then-sasl-plain": lambda: slixmpp("alice@meet.example.com", False, "sasl"),
    }
    for name, fn in seeds.items():
        data = fn()
        (out / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "captured"))
