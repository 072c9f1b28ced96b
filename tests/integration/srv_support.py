"""DNS SRV discovery in the tests: a dnsmasq serving SRV and A records of a test zone on
loopback, HTTP backends that answer every request, and where the proxy sends keys.

    dns = Dnsmasq(workdir, ttl=1)
    dns.start({"shard-1": 5301, "shard-2": 5302})   # _xmpp-client._tcp.shards.test
    dns.set({"shard-1": 5301})                       # restart with other records
"""

from __future__ import annotations

import http.server
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

from xs_local import free_port, procs

ZONE = "shards.test"
SRV_XMPP = f"_xmpp-client._tcp.{ZONE}"
SRV_HTTP = f"_http._tcp.{ZONE}"


def target(name: str) -> str:
    return f"{name}.{ZONE}"


class Dnsmasq:
    """dnsmasq on 127.0.0.1:PORT answering for `shards.test` only (no upstream): SRV records of
    _xmpp-client._tcp and _http._tcp, each target's A record, all with TTL `ttl`."""

    def __init__(self, workdir: Path, ttl: int = 1):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ttl = ttl
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.restarts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _conf(self, xmpp: dict[str, int], http: dict[str, int], order: Optional[list[str]]) -> str:
        lines = [f"port={self.port}", "listen-address=127.0.0.1", "bind-interfaces", "no-resolv",
                 "no-hosts", f"local=/{ZONE}/", f"local-ttl={self.ttl}", f"auth-ttl={self.ttl}"]
        names = order or sorted(set(xmpp) | set(http))
        for n in names:
            if n in xmpp:
                lines.append(f"srv-host={SRV_XMPP},{target(n)},{xmpp[n]},0,10")
            if n in http:
                lines.append(f"srv-host={SRV_HTTP},{target(n)},{http[n]},0,10")
            lines.append(f"host-record={target(n)},127.0.0.1")
        return "\n".join(lines) + "\n"

    def start(self, xmpp: dict[str, int], http: Optional[dict[str, int]] = None,
              order: Optional[list[str]] = None) -> "Dnsmasq":
        exe = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        conf = self.dir / "dnsmasq.conf"
        conf.write_text(self._conf(xmpp, http or {}, order))
        log = open(self.dir / "dnsmasq.log", "ab")
        self.proc = procs.spawn([exe, "--keep-in-foreground", f"--conf-file={conf}", "--user=root",
                                 f"--pid-file={self.dir / 'dnsmasq.pid'}", "--log-facility=-"],
                                stdout=log, stderr=subprocess.STDOUT)
        self.wait_answering()
        return self

    def wait_answering(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"dnsmasq exited {self.proc.returncode}:\n"
                            f"{(self.dir / 'dnsmasq.log').read_text(errors='replace')[-2000:]}",
                            pytrace=False)
            if query_a(self.port, target("probe")) is not None:
                return
            time.sleep(0.05)
        pytest.fail("dnsmasq did not answer within 5 s", pytrace=False)

    def stop(self) -> None:
        if self.proc is not None:
            procs.kill(self.proc)
            self.proc = None

    def set(self, xmpp: dict[str, int], http: Optional[dict[str, int]] = None,
            order: Optional[list[str]] = None) -> None:
        """New records: dnsmasq reads srv-host lines only at start, so it restarts."""
        self.stop()
        self.restarts += 1
        self.start(xmpp, http, order)


def query_a(port: int, name: str, timeout: float = 0.5) -> Optional[int]:
    """One A query over UDP; the response code (0 NOERROR, 3 NXDOMAIN), None without answer."""
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00\x00\x01\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
        return data[3] & 0x0F
    except OSError:
        return None
    finally:
        s.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body are two writes: no 40 ms delayed-ACK stall

    def _answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = b"<body xmlns='http://jabber.org/protocol/httpbind'/>"
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args) -> None:  # quiet
        pass


class HttpBackend:
    """A threaded HTTP/1.1 server on 127.0.0.1 answering every request with 200 and a BOSH body."""

    def __init__(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def backend_of_domains(fakes: dict, domains: list[str], since: Optional[dict] = None) -> dict[str, str]:
    """Which fake XMPP backend (by name) received each domain's stream header, counting the
    connections each accepted after `since` (name -> count, as `accepted_counts` returns)."""
    out: dict[str, str] = {}
    for name, fb in fakes.items():
        for i in range((since or {}).get(name, 0), fb.accepted):
            for m in re.finditer(rb"""\bto=['"]([^'"]+)['"]""", fb.data(i)):
                out[m.group(1).decode()] = name
    missing = [d for d in domains if d not in out]
    assert not missing, f"{len(missing)} domain(s) reached no backend, e.g. {missing[:3]}"
    return out


def accepted_counts(fakes: dict) -> dict[str, int]:
    return {name: fb.accepted for name, fb in fakes.items()}
