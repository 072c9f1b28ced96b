"""The byte pump: bulk data both ways arrives intact, and a client that stops reading does not
make the proxy buffer without bound (ARCHITECTURE-GUIDE: backpressure, bounded memory)."""

import asyncio
import hashlib
import os

import pytest

from conftest import DEFAULT_PROXY_OPTS
from xs_clients import header
from xs_local import ProxyConfig

FEATURES = b"<stream:features/>"
MB = 1 << 20


def echo_proxy(proxies, fake_backends):
    echo = fake_backends("echo")
    cfg = ProxyConfig(proxy=dict(DEFAULT_PROXY_OPTS))
    cfg.add_backend("echo", echo.address)
    cfg.add_route(["echo.test"], ["echo"])
    return proxies.start(cfg), echo


async def open_echo(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(header("echo.test"))
    buf = b""
    while FEATURES not in buf:
        d = await asyncio.wait_for(r.read(65536), 5)
        assert d, f"closed before features: {buf!r}"
        buf += d
    assert buf.endswith(FEATURES)
    return r, w


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


@pytest.mark.timeout(60)
def test_bulk_data_both_ways_arrives_intact(proxies, fake_backends):
    px, echo = echo_proxy(proxies, fake_backends)
    payload = os.urandom(16 * MB)

    async def scenario():
        r, w = await open_echo(px.port)

        async def send():
            for i in range(0, len(payload), 64 * 1024):
                w.write(payload[i:i + 64 * 1024])
                await w.drain()

        async def recv():
            h, n = hashlib.sha256(), 0
            while n < len(payload):
                d = await r.read(256 * 1024)
                assert d, f"closed after {n} of {len(payload)} bytes"
                h.update(d)
                n += len(d)
            return h.hexdigest(), n

        _, (digest, n) = await asyncio.wait_for(asyncio.gather(send(), recv()), 45)
        w.close()
        return digest, n

    digest, n = asyncio.run(scenario())
    assert n == len(payload)
    assert digest == hashlib.sha256(payload).hexdigest(), "relayed bytes differ from the sent ones"
    assert echo.data(0).endswith(payload[-1024:])


@pytest.mark.timeout(60)
def test_a_client_that_stops_reading_does_not_grow_the_proxy(proxies, fake_backends, figures):
    px, echo = echo_proxy(proxies, fake_backends)
    total = 64 * MB

    async def scenario():
        r, w = await open_echo(px.port)
        base = rss_kib(px.proc.pid)
        chunk = b"x" * (64 * 1024)
        sent = 0

        async def send():
            nonlocal sent
            while sent < total:
                w.write(chunk)
                await w.drain()
                sent += len(chunk)

        sender = asyncio.ensure_future(send())
        await asyncio.sleep(3)                 # we never read: the echo backs up to the proxy
        grown = rss_kib(px.proc.pid) - base
        stuck_at = sent
        sender.cancel()
        w.transport.abort()
        return grown, stuck_at

    grown, stuck_at = asyncio.run(scenario())
    figures["proxy RSS growth with a non-reading client"] = \
        f"{grown} KiB (client managed to send {stuck_at // 1024} KiB of {total // 1024})"
    assert stuck_at < total, "64 MiB went through although nobody read the echo: no backpressure?"
    assert grown < 16 * 1024, f"proxy RSS grew by {grown} KiB while the client did not read"


@pytest.mark.timeout(30)
def test_backend_that_sends_and_closes_is_flushed_to_the_client(proxies, fake_backends):
    """A backend that closes a live session makes the proxy flush what it had, then
    close the client side."""
    tail = os.urandom(4 * MB) + b"</stream:stream>"
    fb = fake_backends("burst", burst=tail)
    cfg = ProxyConfig(proxy=dict(DEFAULT_PROXY_OPTS))
    cfg.add_backend("burst", fb.address)
    cfg.add_route(["burst.test"], ["burst"])
    px = proxies.start(cfg)

    async def scenario():
        r, w = await asyncio.open_connection("127.0.0.1", px.port)
        w.write(header("burst.test"))
        await asyncio.sleep(0.5)               # let the backend finish and close first
        data = b""
        while True:
            d = await asyncio.wait_for(r.read(1 << 20), 10)
            if not d:
                break
            data += d
        w.close()
        return data

    data = asyncio.run(scenario())
    i = data.find(FEATURES)
    assert i >= 0, data[:300]
    got = data[i + len(FEATURES):]
    assert len(got) == len(tail), f"client got {len(got)} of the {len(tail)} bytes the backend sent before closing"
    assert got == tail
