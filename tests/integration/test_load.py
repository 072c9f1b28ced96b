"""Many sessions at once: hundreds of streams held open through one proxy, spread over every
instance, while a fresh login still works; and a multi-worker proxy serving them all."""

import asyncio
import os
import re
import time

import pytest

from conftest import AUTH, CLIENT, TENANTS
from xs_clients import RawClient, alogin

SESSIONS = int(os.environ.get("XS_IT_SESSIONS", "1000"))
DOMAINS = [CLIENT, AUTH] + TENANTS


def connected_counts(cluster, mark):
    return {i.name: len(re.findall(r"\tClient connected", i.log_text(mark[i.name])))
            for i in cluster.instances}


async def open_many(port, n, parallel=64, timeout=60):
    sem = asyncio.Semaphore(parallel)

    async def one(i):
        async with sem:
            return await RawClient.open(port, DOMAINS[i % len(DOMAINS)], timeout=20)

    return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True),
                                  timeout)


async def close_all(clients):
    await asyncio.gather(*(c.aclose() for c in clients if isinstance(c, RawClient)))


def still_open(c: RawClient) -> bool:
    return not c.reader.at_eof() and not c.writer.is_closing() and c.reader.exception() is None


@pytest.mark.multiworker
@pytest.mark.timeout(180)
def test_hundreds_of_sessions_at_once(cluster, proxies, figures):
    # Two workers: the kernel spreads the connections over both SO_REUSEPORT sockets.
    px = proxies.start(cluster.proxy_config(workers=2))
    mark = cluster.marks()
    jid = f"alice@{CLIENT}"

    async def scenario():
        t0 = time.monotonic()
        clients = await open_many(px.port, SESSIONS)
        opened = time.monotonic() - t0
        try:
            errors = [repr(c) for c in clients if not isinstance(c, RawClient)]
            ok = [c for c in clients if isinstance(c, RawClient)]
            # While every one of them is held open, a fresh login still works.
            fresh = await alogin(px.port, jid, cluster.password(jid), timeout=20)
            await asyncio.sleep(0.5)
            held = sum(1 for c in ok if still_open(c))
            return errors, len(ok), held, fresh, opened
        finally:
            await close_all(clients)

    errors, n_ok, held, fresh, opened = asyncio.run(scenario())
    figures["concurrent sessions held through one proxy"] = \
        f"{held} of {SESSIONS} (opened in {opened:.1f}s)"
    assert not errors, f"{len(errors)} of {SESSIONS} sessions failed, e.g. {errors[:3]}"
    assert held == SESSIONS, f"only {held} of {SESSIONS} still open when the fresh login finished"
    assert fresh.ok, f"fresh login while {held} sessions were open: {fresh}"
    counts = connected_counts(cluster, mark)
    figures["sessions per instance"] = counts
    per_domain = SESSIONS // len(DOMAINS)
    assert counts["client"] >= per_domain + 1, counts     # + the fresh login
    assert counts["auth"] >= per_domain, counts
    assert all(counts[p.name] > 0 for p in cluster.pool), f"a pool instance got nothing: {counts}"
    assert sum(counts.values()) >= SESSIONS + 1, counts


@pytest.mark.timeout(120)
@pytest.mark.multiworker
def test_two_workers_serve_everything(cluster, proxies, figures):
    px = proxies.start(cluster.proxy_config(workers=2))
    n = 300
    creds = [(f"user@{d}", cluster.password(f"user@{d}")) for d in TENANTS] + \
            [(f"alice@{CLIENT}", cluster.password(f"alice@{CLIENT}")),
             (f"jvb@{AUTH}", cluster.password(f"jvb@{AUTH}"))]

    async def scenario():
        clients = await open_many(px.port, n, parallel=100)
        try:
            logins = await asyncio.gather(*(alogin(px.port, j, p, timeout=20) for j, p in creds))
            held = sum(1 for c in clients if isinstance(c, RawClient) and still_open(c))
            errors = [repr(c) for c in clients if not isinstance(c, RawClient)]
            return errors, held, logins
        finally:
            await close_all(clients)

    errors, held, logins = asyncio.run(scenario())
    assert not errors, f"{len(errors)} of {n} sessions failed, e.g. {errors[:3]}"
    assert held == n
    bad = [str(r) for r in logins if not r.ok]
    assert not bad, "\n".join(bad)
    threads = len(os.listdir(f"/proc/{px.proc.pid}/task"))
    figures["workers=2: proxy threads"] = threads
    assert threads >= 2, f"workers = 2 but the proxy runs {threads} thread(s)"
