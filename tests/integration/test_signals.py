"""SIGTERM: stop accepting, let live sessions finish (up to drain_timeout), exit 0."""

import asyncio
import signal
import socket
import time

import pytest

from conftest import CLIENT
from xs_clients import RawClient, header


def new_session_refused(port: int) -> tuple[bool, str]:
    """True if a new connection is refused, or closed without a backend answering."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return True, "refused"
    except OSError as e:
        return True, f"connect failed: {e}"
    data = b""
    try:
        s.sendall(header(CLIENT))
        s.settimeout(2)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return False, f"accepted and held open; got {data!r}"
    except OSError:
        pass
    finally:
        s.close()
    if b"features" in data:
        return False, f"a new session reached a backend: {data!r}"
    return True, f"accepted then closed; got {data!r}"


async def logged_in(port, cluster):
    c = await RawClient.open(port, CLIENT)
    await c.login_plain("alice", cluster.password(f"alice@{CLIENT}"))
    assert await c.ping()
    return c


@pytest.mark.timeout(60)
def test_sigterm_drains_live_sessions_then_exits_0(cluster, proxies):
    px = proxies.start(cluster.proxy_config(drain_timeout="30s"))
    px.expected_exit = True

    async def scenario():
        c = await logged_in(px.port, cluster)
        px.signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        refused, how = await asyncio.to_thread(new_session_refused, px.port)
        assert refused, f"after SIGTERM: {how}"
        for _ in range(3):
            assert await c.ping(), "the live session stopped working after SIGTERM"
            await asyncio.sleep(0.2)
        assert px.alive(), "the proxy exited while a session was live (drain_timeout = 30s)"
        await c.send(b"</stream:stream>")
        await c.wait_closed(5)
        await c.aclose()

    asyncio.run(scenario())
    t0 = time.monotonic()
    rc = px.wait(10)
    assert rc is not None, "the proxy did not exit within 10 s after its last session ended"
    assert rc == 0, f"exit code {rc}\n{px.stderr_tail()}"
    assert time.monotonic() - t0 < 5


@pytest.mark.timeout(60)
def test_sigterm_cuts_sessions_at_drain_timeout(cluster, proxies):
    px = proxies.start(cluster.proxy_config(drain_timeout="2s"))
    px.expected_exit = True

    async def scenario():
        c = await logged_in(px.port, cluster)
        t0 = time.monotonic()
        px.signal(signal.SIGTERM)
        closed_after = await c.wait_closed(10)
        await c.aclose()
        return t0, closed_after

    t0, closed_after = asyncio.run(scenario())
    assert closed_after is not None, "the session outlived drain_timeout = 2s by 8 s"
    assert 1.5 <= closed_after <= 5, f"session cut {closed_after:.2f}s after SIGTERM (drain_timeout 2s)"
    rc = px.wait(5)
    assert rc == 0, f"exit code {rc}\n{px.stderr_tail()}"
