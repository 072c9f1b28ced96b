"""Operations, observed from outside: /metrics values move as real sessions open, relay, get
refused and close; `promtool check metrics` accepts the exposition; a real Prometheus server
scrapes the proxy and answers the dashboard's queries; /healthz says 200 while accepting and
503 while draining after SIGTERM; a taken metrics port does not stop XMPP; session-end log lines
(key=value and JSON) name the client address and the reason, and are rate-limited with a
summary instead of going silent."""

import asyncio
import json
import re
import signal
import socket
import time

import pytest

from conftest import AUTH, CLIENT, GUEST
from ops_support import (ALL_FAMILIES, FAMILIES, TLS_FAMILIES, PrometheusServer, anon_login, close_stream,
                         close_stream_blocking, dashboard_queries, http_get, open_stream,
                         open_stream_blocking, promtool_check, scrape, start_with_metrics, values,
                         wait_metric)
from xs_clients import assert_stream_error, exchange, header
from xs_local import free_port

END_REASONS = {"client_closed", "backend_closed", "client_error", "backend_error", "refused",
               "backend_connect_failed", "not_xmpp", "timed_out", "drained", "idle"}
TLS_END_REASONS = {"tls_failed"}       # with TLS termination in the build


def cluster_cfg(cluster, **opts):
    """The standard layout without the '*' route, so an unknown domain is refused."""
    cfg = cluster.proxy_config(**opts)
    cfg.routes = [r for r in cfg.routes if r["domains"] != ["*"]]
    return cfg


def printable(m, prefix="xmpp_shard_"):
    return "\n".join(ln for ln in m.text.splitlines()
                     if ln.startswith(prefix) and "_bucket" not in ln)


@pytest.mark.timeout(60)
def test_metrics_move_as_sessions_open_relay_and_close(cluster, proxies, figures):
    px, mport = start_with_metrics(proxies, cluster_cfg(cluster))
    # Baseline once the start-up probe's connection (conftest's wait_port) has ended.
    m0, _ = wait_metric(mport, lambda m: m.val("xmpp_shard_connections_accepted_total") >= 1 and
                        m.val("xmpp_shard_connections_active") == 0, 5,
                        "the start-up probe accepted and closed before the test starts")
    for name, typ in FAMILIES.items():
        assert m0.types.get(name) == typ, f"{name}: TYPE {m0.types.get(name)!r}, expected {typ}"
    for name in set(m0.types) & set(TLS_FAMILIES):
        assert m0.types[name] == TLS_FAMILIES[name], f"{name}: TYPE {m0.types[name]!r}"
    extra = set(m0.types) - set(ALL_FAMILIES)
    assert not extra, f"families not known to this test (add them to ops_support and the README): {extra}"
    assert m0.get("xmpp_shard_build_info") == 1
    assert abs(m0.get("xmpp_shard_start_time_seconds") - time.time()) < 120
    reasons = m0.label_values("xmpp_shard_session_ends_total", "reason")
    assert END_REASONS <= reasons <= END_REASONS | TLS_END_REASONS, reasons
    assert m0.get("xmpp_shard_backend_up", backend="client") == 1
    assert m0.val("xmpp_shard_sessions_active") == 0

    async def scenario():
        # 3 streams to the client instance (one of them logs in as a guest), 2 to auth.
        c = [await open_stream(px.port, CLIENT) for _ in range(2)]
        g = await open_stream(px.port, GUEST)
        a = [await open_stream(px.port, AUTH) for _ in range(2)]
        m1 = scrape(mport)
        await anon_login(g)
        assert await g.ping()
        m2 = scrape(mport)
        # Refusals: an unknown domain and bytes that are not XML.
        r1 = await asyncio.to_thread(exchange, px.port, header("nowhere.test"))
        r2 = await asyncio.to_thread(exchange, px.port, b"<stream:stream to='x' <<<")
        assert_stream_error(r1, "host-unknown")
        assert_stream_error(r2, "not-well-formed")
        # Closes: two clients drop their socket (client_closed); two close the stream politely,
        # Prosody answers and closes its side first (backend_closed).
        for x in c:
            await x.aclose()
        for x in a:
            await close_stream(x)
        m3, _ = await asyncio.to_thread(
            wait_metric, mport, lambda m: m.val("xmpp_shard_sessions_active") == 1, 5,
            "sessions_active back to 1 after closing 4 of 5")
        await close_stream(g)
        return m1, m2, m3

    m1, m2, m3 = asyncio.run(scenario())
    sa = "xmpp_shard_sessions_active"
    st = "xmpp_shard_sessions_total"
    lbl = dict(listener="c2s")
    assert m1.get(sa, route="client", backend="client", **lbl) == 3, printable(m1)
    assert m1.get(sa, route="auth", backend="auth", **lbl) == 2, printable(m1)
    assert m1.get(st, route="client", backend="client") == 3
    assert m1.get(st, route="auth", backend="auth") == 2
    assert m1.get("xmpp_shard_connections_active", listener="c2s") == 5
    def delta(m, name, **labels):
        return m.val(name, **labels) - m0.val(name, **labels)

    assert delta(m1, "xmpp_shard_connections_accepted_total", listener="c2s") == 5
    assert m1.get("xmpp_shard_backend_sessions", backend="client") == 3
    assert m1.get("xmpp_shard_backend_sessions", backend="auth") == 2
    assert delta(m1, "xmpp_shard_stream_header_seconds_count", listener="c2s") == 5
    assert m1.get("xmpp_shard_backend_connect_seconds_count", backend="client") == 3
    assert m1.get("xmpp_shard_backend_connect_seconds_count", backend="auth") == 2
    # The replayed headers went to the backends, the backends' headers and features came back.
    b_to = m1.get("xmpp_shard_bytes_total", backend="client", direction="to_backend")
    b_from = m1.get("xmpp_shard_bytes_total", backend="client", direction="to_client")
    assert b_to >= 3 * len(header(CLIENT)) - 10, printable(m1)
    assert b_from > 0
    # Logging in and a ping moved more bytes both ways.
    assert m2.get("xmpp_shard_bytes_total", backend="client", direction="to_backend") > b_to
    assert m2.get("xmpp_shard_bytes_total", backend="client", direction="to_client") > b_from
    # Refusals and closes.
    assert m3.val("xmpp_shard_stream_errors_total", condition="host-unknown") == 1, printable(m3)
    assert m3.val("xmpp_shard_stream_errors_total", condition="not-well-formed") == 1
    assert delta(m3, "xmpp_shard_session_ends_total", reason="refused") == 2
    assert delta(m3, "xmpp_shard_session_ends_total", reason="client_closed") == 2, printable(m3)
    assert delta(m3, "xmpp_shard_session_ends_total", reason="backend_closed") == 2, printable(m3)
    assert m3.get(sa, route="auth", backend="auth") == 0
    assert m3.get(sa, route="client", backend="client") == 1
    assert m3.get(st, route="client", backend="client") == 3       # totals never go down
    # Header histogram: every complete header counted (5 sessions + host-unknown); the
    # not-well-formed bytes never completed a header.
    assert delta(m3, "xmpp_shard_stream_header_seconds_count", listener="c2s") == 6
    m4, _ = wait_metric(mport, lambda m: m.val(sa) == 0 and m.val("xmpp_shard_connections_active") == 0,
                        5, "every gauge back to 0 after the last session closed")
    assert delta(m4, "xmpp_shard_session_ends_total") == 7
    assert delta(m4, "xmpp_shard_session_ends_total", reason="backend_closed") == 3   # + the guest
    assert m4.get("xmpp_shard_backend_sessions", backend="client") == 0

    rc, out = promtool_check(m1.text)
    assert rc == 0, f"promtool check metrics failed on a scrape with live sessions:\n{out}"
    rc, out = promtool_check(m4.text)
    assert rc == 0, f"promtool check metrics failed on the final scrape:\n{out}"
    figures["sample /metrics (non-bucket lines, live sessions)"] = \
        "\n" + "\n".join(printable(m1).splitlines()[:60])


@pytest.mark.timeout(60)
def test_real_prometheus_scrapes_the_proxy(cluster, proxies, base_dir):
    px, mport = start_with_metrics(proxies, cluster_cfg(cluster))
    prom = PrometheusServer(base_dir / f"prometheus-{free_port()}", [f"127.0.0.1:{mport}"])

    def close_all(cs):
        for c in cs:
            close_stream_blocking(c)

    clients = [open_stream_blocking(px.port, d) for d in (CLIENT, CLIENT, CLIENT, AUTH)]
    try:
        prom.start()
        up = prom.wait_query('up{job="xmpp-shard"}', lambda r: len(r) == 1 and r[0]["value"][1] == "1",
                             20, "the proxy target up")
        assert up
        res = prom.wait_query('xmpp_shard_sessions_active{backend="client"}',
                              lambda r: sum(float(x["value"][1]) for x in r) == 3, 10,
                              "3 active sessions on backend client")
        assert {x["metric"]["route"] for x in res} == {"client"}
        assert {x["metric"]["listener"] for x in res} == {"c2s"}
        res = prom.query("sum by (backend) (xmpp_shard_backend_up)")
        assert res["status"] == "success", res
        got = values(res["data"]["result"])
        assert got == {(("backend", n),): 1.0 for n in ("client", "auth", "pool0", "pool1", "pool2")}, got
        res = prom.query("xmpp_shard_build_info")
        assert res["data"]["result"] and "version" in res["data"]["result"][0]["metric"], res
        # Every query of the dashboard is valid PromQL against the real series.
        failed = []
        for title, expr in dashboard_queries():
            ans = prom.query(expr)
            if ans.get("status") != "success":
                failed.append(f"{title}: {expr} -> {ans.get('error')}")
        assert not failed, "dashboard queries Prometheus rejects:\n" + "\n".join(failed)
        # The sessions panel's query sees the open sessions.
        res = prom.query('sum by (backend) (xmpp_shard_sessions_active)')
        assert values(res["data"]["result"]).get((("backend", "client"),)) == 3.0, res

        close_all(clients)
        clients = []
        prom.wait_query('sum(xmpp_shard_sessions_active)', lambda r: r and float(r[0]["value"][1]) == 0,
                        10, "sessions_active back to 0")
        prom.wait_query('sum(xmpp_shard_session_ends_total{reason="backend_closed"})',
                        lambda r: r and float(r[0]["value"][1]) == 4, 10, "4 ended sessions")
    finally:
        if clients:
            close_all(clients)
        prom.stop()
    assert prom.proc.poll() is not None, "prometheus still running after stop()"


@pytest.mark.timeout(60)
def test_healthz_200_then_503_while_draining(cluster, proxies):
    px, mport = start_with_metrics(proxies, cluster_cfg(cluster, drain_timeout="30s"))
    px.expected_exit = True
    assert http_get(mport, "/healthz") == (200, "ok\n")
    assert http_get(mport, "/nope")[0] == 404

    async def scenario():
        c = await open_stream(px.port, GUEST)
        await anon_login(c)
        px.signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while True:
            status, body = await asyncio.to_thread(http_get, mport, "/healthz")
            if status == 503:
                break
            assert time.monotonic() < deadline, f"/healthz still {status} {body!r} 5 s after SIGTERM"
            await asyncio.sleep(0.05)
        # Still draining: the live session works, metrics are still served and count it.
        assert await c.ping(), "the live session stopped working after SIGTERM"
        m = await asyncio.to_thread(scrape, mport)
        assert m.get("xmpp_shard_sessions_active", backend="client") == 1
        assert (await asyncio.to_thread(http_get, mport, "/healthz"))[0] == 503
        await close_stream(c)

    asyncio.run(scenario())
    rc = px.wait(10)
    assert rc == 0, f"exit code {rc} after the last session ended\n{px.stderr_tail()}"


@pytest.mark.timeout(30)
def test_taken_metrics_port_is_logged_and_xmpp_still_served(cluster, proxies):
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    taken = squatter.getsockname()[1]
    try:
        cfg = cluster_cfg(cluster)
        cfg.proxy["metrics"] = f"127.0.0.1:{taken}"
        px = proxies.start(cfg)

        async def one():
            c = await open_stream(px.port, CLIENT)
            await close_stream(c)
        asyncio.run(one())
        err = px.stderr_text()
        assert re.search(rf"error .*metrics.*127\.0\.0\.1:{taken}", err), \
            f"no error line about the taken metrics port:\n{px.stderr_tail()}"
    finally:
        squatter.close()


# --------------------------------------------------------------------------------------------
# Session-end logs

LINE_RX = re.compile(r"^\S+ (debug|info|warn|error) (.*)$")


def session_end_lines(px, fmt):
    out = []
    for line in px.stderr_text().splitlines():
        m = LINE_RX.match(line)
        if not m:
            continue
        level, text = m.groups()
        if fmt == "json" and text.startswith("{"):
            rec = json.loads(text)           # must parse
            if rec.get("event") == "session_end":
                out.append((level, rec))
        elif fmt == "kv" and text.startswith("session_end client="):
            rec = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', text[len("session_end "):]))
            out.append((level, {k: v.strip('"') for k, v in rec.items()}))
    return out


@pytest.mark.parametrize("fmt", ["kv", "json"])
@pytest.mark.timeout(30)
def test_session_end_lines_name_client_and_reason(cluster, proxies, fmt):
    cfg = cluster_cfg(cluster, log_format=fmt)
    px = proxies.start(cfg)

    async def scenario():
        c = await open_stream(px.port, GUEST)
        await anon_login(c)
        local_port = c.writer.get_extra_info("sockname")[1]
        await close_stream(c)
        r = await asyncio.to_thread(exchange, px.port, header("nowhere.test"))
        assert_stream_error(r, "host-unknown")
        return local_port

    local_port = asyncio.run(scenario())
    def mine():      # leave out conftest's start-up probe (connected, sent nothing, closed)
        return [(lvl, r) for lvl, r in session_end_lines(px, fmt) if r["domain"] not in ("-", "")]

    deadline = time.monotonic() + 5
    while len(mine()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = mine()
    assert len(lines) == 2, f"expected 2 session_end lines ({fmt}):\n{px.stderr_tail()}"
    (lvl1, ok), (lvl2, refused) = lines
    assert lvl1 == "info", lines
    assert ok["client"] == f"127.0.0.1:{local_port}", ok
    assert ok["listener"] == "c2s" and ok["domain"] == GUEST and ok["route"] == "client", ok
    assert ok["backend"] == "client", ok
    assert ok["reason"] == "backend_closed", ok
    assert int(ok["bytes_to_backend"]) > len(header(GUEST)) and int(ok["bytes_to_client"]) > 100, ok
    assert int(ok["duration_ms"]) >= 0
    assert lvl2 == "warn", f"a refusal is logged as an error line: {lines}"
    assert refused["reason"] == "refused" and refused["condition"] == "host-unknown", refused
    assert refused["domain"] == "nowhere.test", refused
    assert refused["client"].startswith("127.0.0.1:"), refused


@pytest.mark.timeout(40)
def test_session_end_lines_are_rate_limited_with_a_summary(cluster, proxies):
    px = proxies.start(cluster_cfg(cluster, session_log_rate=3))
    px.expected_exit = True
    n_ok, n_refused = 30, 20

    async def scenario():
        for _ in range(n_ok):
            c = await open_stream(px.port, CLIENT)
            await c.aclose()
        rs = await asyncio.gather(*(asyncio.to_thread(exchange, px.port, header("nowhere.test"))
                                    for _ in range(n_refused)))
        for r in rs:
            assert_stream_error(r, "host-unknown")

    t0 = time.monotonic()
    asyncio.run(scenario())
    elapsed = time.monotonic() - t0
    time.sleep(0.3)
    px.signal(signal.SIGTERM)           # the summary of what was not written comes out at exit
    assert px.wait(10) == 0
    lines = session_end_lines(px, "kv")
    routine = [r for lvl, r in lines if r["reason"] != "refused"]
    errors = [r for lvl, r in lines if r["reason"] == "refused"]
    # At most 3 routine lines per started second; every refusal (an error) is written.
    assert len(routine) <= 3 * (int(elapsed) + 2), f"{len(routine)} routine lines in {elapsed:.1f}s"
    assert len(routine) >= 1
    assert len(errors) == n_refused, f"{len(errors)} of {n_refused} refusals logged"
    summaries = re.findall(r"session_end lines not written in the last \d+ s: (\d+) routine, (\d+) errors",
                           px.stderr_text())
    not_written = sum(int(a) for a, _ in summaries)
    # n_ok sessions + conftest's start-up probe (a connection closed without a header).
    assert summaries and not_written + len(routine) == n_ok + 1, \
        f"{len(routine)} routine lines + summaries {summaries} != {n_ok} + 1 sessions\n{px.stderr_tail(60)}"
