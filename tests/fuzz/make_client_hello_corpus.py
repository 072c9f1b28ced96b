#!/usr/bin/python3
"""Writes the seed corpus of fuzz_client_hello: real ClientHellos from Python's ssl module (the
system OpenSSL) over memory BIOs. Rerun it to refresh the corpus; the output is committed.

    /usr/bin/python3 tests/fuzz/make_client_hello_corpus.py [OUTDIR]
"""

import ssl
import sys
import warnings
from pathlib import Path

warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 seeds are on purpose


def client_hello(sni=None, alpn=None, maximum=None, minimum=None, ciphers=None) -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def refragment(record: bytes, size: int) -> bytes:
    """The same handshake bytes re-cut into records of at most `size` bytes (still valid TLS)."""
    assert record[0] == 0x16
    payload, out = record[5:], b""
    for i in range(0, len(payload), size):
        piece = payload[i:i + size]
        out += record[:3] + len(piece).to_bytes(2, "big") + piece
    return out


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "corpus" / "fuzz_client_hello"
    out.mkdir(parents=True, exist_ok=True)
    seeds = {
        "tls13-sni-alpn": client_hello("meet.example.com", ["xmpp-client"]),
        "tls13-no-sni": client_hello(None, None),
        "tls13-alpn-list": client_hello("t01.tenant.example", ["h2", "xmpp-client", "http/1.1"]),
        "tls12-only": client_hello("auth.meet.example.com", ["xmpp-client"],
                                   maximum=ssl.TLSVersion.TLSv1_2),
        "tls11-only": client_hello("old.example", None, minimum=ssl.TLSVersion.TLSv1,
                                   maximum=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0"),
        "tls13-long-alpn": client_hello("big.example",
                                        [f"protocol-{i:04d}" for i in range(200)] + ["xmpp-client"]),
    }
    seeds["tls13-long-alpn-records"] = refragment(seeds["tls13-long-alpn"], 512)
    seeds["tls13-tiny-records"] = refragment(seeds["tls13-sni-alpn"], 7)
    for name, data in seeds.items():
        (out / f"{name}.bin").write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
