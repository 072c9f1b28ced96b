"""Ports: pick free ones (bind port 0, read it back) and wait until one accepts."""

from __future__ import annotations

import collections
import socket
import threading
import time

# The ports this process handed out lately: the kernel may pick the same port for port 0 again
# as soon as the probe closes, so two ports drawn for one test (a Prosody instance and a fake
# backend, say) could otherwise be equal while neither is bound yet.
_RECENT_MAX = 4096
_recent: collections.deque[int] = collections.deque()
_recent_set: set[int] = set()
_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel picked it for port 0), and none of the
    last 4096 this process handed out.

    There is a small race until the caller binds it; good enough for tests and the runner.
    """
    with _lock:
        for _ in range(64):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
            if port not in _recent_set:
                break
        _recent.append(port)
        _recent_set.add(port)
        if len(_recent) > _RECENT_MAX:
            _recent_set.discard(_recent.popleft())
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on host:port and we could bind it (SO_REUSEADDR like servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return not port_accepts(host, port, timeout=0.2)


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float = 10.0, proc=None, what: str = "") -> None:
    """Poll until host:port accepts a TCP connection.

    If `proc` (a subprocess.Popen) exits meanwhile, fail at once. Raises TimeoutError or
    RuntimeError with a message naming `what`.
    """
    deadline = time.monotonic() + timeout
    label = what or f"{host}:{port}"
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{label} exited with code {proc.returncode} before {host}:{port} accepted")
        if port_accepts(host, port, timeout=0.3):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{label}: {host}:{port} did not accept within {timeout:g}s")
        time.sleep(0.05)
