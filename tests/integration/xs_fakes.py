"""Fake backends: a TCP listener in a thread that records what reaches it.

mode "xmpp":   answers the first complete header with a stream header and empty features,
               then keeps the connection open and records everything it receives.
mode "silent": accepts and reads, never answers (a hung backend).
mode "echo":   like "xmpp", then sends back every byte received after the header.
mode "burst":  like "xmpp", then at once sends `burst` bytes more and closes.
"""

from __future__ import annotations

import re
import socket
import threading
import time

_HEADER_END = re.compile(rb"<(?!\?|!)[^>]*>")


class FakeBackend:
    def __init__(self, mode: str = "xmpp", host: str = "127.0.0.1", burst: bytes = b""):
        assert mode in ("xmpp", "silent", "echo", "burst")
        self.mode = mode
        self.burst = burst
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(512)
        self.host, self.port = self.sock.getsockname()
        self.received: list[bytearray] = []     # per accepted connection
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closing = False
        self._threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept_loop, daemon=True, name=f"fake-{self.port}")
        t.start()
        self._threads.append(t)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self.received)

    def wait_accepted(self, n: int, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.accepted < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def data(self, i: int = -1) -> bytes:
        with self._lock:
            return bytes(self.received[i])

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                if self._closing:
                    c.close()
                    return
                buf = bytearray()
                self.received.append(buf)
                self._conns.append(c)
            t = threading.Thread(target=self._serve, args=(c, buf), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, c: socket.socket, buf: bytearray) -> None:
        answered = False
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    return
                with self._lock:
                    buf += d
                if answered and self.mode == "echo":
                    c.sendall(d)
                if self.mode in ("xmpp", "echo", "burst") and not answered and _HEADER_END.search(bytes(buf)):
                    answered = True
                    m_end = _HEADER_END.search(bytes(buf)).end()
                    m = re.search(rb"""\bto=(['"])([^'"]*)\1""", bytes(buf))
                    frm = m.group(2).decode() if m else "fake"
                    c.sendall(
                        b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                        b"xmlns:stream='http://etherx.jabber.org/streams' id='fake' version='1.0' "
                        b"from='" + frm.encode() + b"'><stream:features/>")
                    if self.mode == "echo" and len(buf) > m_end:
                        c.sendall(bytes(buf[m_end:]))
                    if self.mode == "burst":
                        c.sendall(self.burst)
                        return
        except OSError:
            return
        finally:
            c.close()

    def close(self) -> None:
        self._closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=2)
