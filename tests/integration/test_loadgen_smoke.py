"""xmpp-shard-loadgen against real Prosody through the proxy: a few dozen clients for a few
seconds. Checks the report's COUNTS (logins, joins, messages, presences, errors by kind), never
its timings, and the instances' logs for where the sessions landed.

Binary: $XS_LOADGEN_BIN, else xmpp-shard-loadgen next to the proxy binary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import AUTH, BREWERY, CLIENT, CONFERENCE, GUEST, REPO
from xs_local import InstanceSpec, Muc, ProsodyInstance, ProxyConfig, VirtualHost, free_port
from xs_local.prosody import AUTH_ANONYMOUS

sys.path.insert(0, str(REPO / "loadgen" / "bench"))
from xs_bench.tls import enable_starttls  # noqa: E402


@pytest.fixture(scope="session")
def loadgen_bin(proxy_bin) -> Path:
    p = Path(os.environ.get("XS_LOADGEN_BIN") or proxy_bin.parent / "xmpp-shard-loadgen")
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"loadgen binary {p} not found: build it or set XS_LOADGEN_BIN", pytrace=False)
    return p


def run_loadgen(binary: Path, tmp_path: Path, *args: str, timeout: float = 40) -> dict:
    out = tmp_path / f"report-{len(list(tmp_path.glob('report-*')))}.json"
    cmd = [str(binary), *args, "--json", str(out), "--quiet", "--max-time", str(timeout - 5)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)}\nexit {r.returncode}\n{r.stdout}\n{r.stderr}"
    rep = json.loads(out.read_text())
    rep["_text"] = r.stdout + r.stderr
    return rep


def counts(rep: dict) -> dict:
    return rep["counts"]


@pytest.mark.timeout(60)
def test_jitsi_scenario_counts_through_the_proxy(cluster, proxies, loadgen_bin, tmp_path):
    """Guests storm 4 rooms of 6 on the client instance while 3 bridges and the focus use the
    brewery on the auth instance, all through one proxy port."""
    px = proxies.start(cluster.proxy_config())
    mark = cluster.marks()
    rooms, size, bridges, msgs = 4, 6, 3, 2
    rep = run_loadgen(
        loadgen_bin, tmp_path, "jitsi", "--server", f"127.0.0.1:{px.port}",
        "--domain", GUEST, "--muc", CONFERENCE, "--rooms", str(rooms), "--room-size", str(size),
        "--stay", "1.5", "--messages", str(msgs),
        "--brewery-domain", AUTH, "--brewery-muc", BREWERY, "--bridges", str(bridges),
        "--interval", "0.3", "--brewery-auth", "scram",
        "--bridge-user", "jvb", "--bridge-password", cluster.password(f"jvb@{AUTH}"),
        "--focus-user", "focus", "--focus-password", cluster.password(f"focus@{AUTH}"),
        "--watch", f"proxy={px.proc.pid}", "--watch", f"client={cluster.client.pid}")
    c = counts(rep)
    parts = rooms * size
    assert rep["errors_total"] == 0, rep["_text"]
    assert not rep["aborted"]
    assert c["clients"] == parts + bridges + 1
    assert c["logged_in"] == parts + bridges + 1
    assert c["participants_joined"] == parts
    assert c["bridges_joined"] == bridges
    assert c["focus_joined"] == 1
    assert c["messages_sent"] == parts * msgs
    assert c["messages_echoed"] == parts * msgs
    # Every message reaches the other occupants; every participant sees all the others.
    assert c["groupchat_in"] == parts * msgs * (size - 1)
    assert c["occupant_presences_in"] == parts * (size - 1)
    # The focus joined first and leaves last, so it saw every bridge presence (joins and stats
    # updates); the loadgen stops the updates and waits before anyone leaves.
    assert c["bridge_presences_sent"] >= bridges
    assert c["bridge_presences_delivered"] == c["bridge_presences_sent"]
    lat = rep["latency_ms"]
    assert lat["join"]["count"] == parts
    assert lat["brewery_join"]["count"] == bridges + 1
    assert lat["message_rtt"]["count"] == parts * msgs
    assert lat["brewery_delivery"]["count"] == c["bridge_presences_delivered"]
    names = [p["name"] for p in rep["processes"]]
    assert names == ["machine", "loadgen", "proxy", "client"]
    assert all(not p["vanished"] for p in rep["processes"])
    assert [p["name"] for p in rep["phases"]][:4] == ["focus", "bridges", "brewery", "login"]
    # The proxy routed each side to its own instance.
    auth_log = cluster.auth.log_text(mark["auth"])
    client_log = cluster.client.log_text(mark["client"])
    assert auth_log.count(f"Authenticated as jvb@{AUTH}") == bridges
    assert auth_log.count(f"Authenticated as focus@{AUTH}") == 1
    assert client_log.count(f"@{GUEST}") >= parts
    assert f"@{AUTH}" not in client_log


@pytest.mark.timeout(60)
@pytest.mark.parametrize("auth", ["plain", "scram"])
def test_steady_messages_with_password_logins(cluster, proxies, loadgen_bin, tmp_path, auth):
    px = proxies.start(cluster.proxy_config())
    jid = f"alice@{CLIENT}"
    rep = run_loadgen(
        loadgen_bin, tmp_path, "steady", "--server", f"127.0.0.1:{px.port}", "--domain", CLIENT,
        "--user", "alice", "--password", cluster.password(jid), "--auth", auth,
        "--clients", "12", "--rate", "120", "--warmup", "0.3", "--duration", "1.5")
    c = counts(rep)
    assert rep["errors_total"] == 0, rep["_text"]
    assert c["logged_in"] == 12
    assert c["sessions_ready"] == 12
    assert c["messages_sent"] > 100
    assert c["messages_echoed"] == c["messages_sent"]
    assert 0 < c["messages_measured"] <= c["messages_echoed"]
    assert rep["latency_ms"]["message_rtt"]["count"] == c["messages_measured"]


@pytest.mark.timeout(60)
def test_failures_are_counted_by_kind(cluster, proxies, loadgen_bin, tmp_path):
    px = proxies.start(cluster.proxy_config())
    server = ["--server", f"127.0.0.1:{px.port}"]
    bad_pw = run_loadgen(loadgen_bin, tmp_path, "steady", *server, "--domain", CLIENT,
                         "--user", "alice", "--password", "wrong", "--auth", "scram",
                         "--clients", "5", "--warmup", "0", "--duration", "0.2")
    assert bad_pw["errors"] == {"auth:not-authorized": 5}
    assert bad_pw["counts"].get("logged_in", 0) == 0
    unknown = run_loadgen(loadgen_bin, tmp_path, "steady", *server, "--domain", "nowhere.invalid",
                          "--clients", "4", "--warmup", "0", "--duration", "0.2")
    assert unknown["errors"] == {"stream:host-unknown": 4}  # the proxy's refusal
    refused = run_loadgen(loadgen_bin, tmp_path, "steady", "--server", f"127.0.0.1:{free_port()}",
                          "--clients", "3", "--warmup", "0", "--duration", "0.2")
    assert refused["errors"] == {"connect:ECONNREFUSED": 3}


@pytest.mark.timeout(60)
def test_churn_sets_up_sessions_through_the_proxy(cluster, proxies, loadgen_bin, tmp_path):
    px = proxies.start(cluster.proxy_config())
    rep = run_loadgen(loadgen_bin, tmp_path, "churn", "--server", f"127.0.0.1:{px.port}",
                      "--domain", f"{CLIENT},{AUTH}", "--auth", "none", "--concurrency", "8",
                      "--duration", "1.5")
    assert rep["errors_total"] == 0, rep["_text"]
    assert rep["counts"]["sessions_completed"] > 20
    assert rep["rates"]["sessions_per_s"] > 0
    assert rep["latency_ms"]["session_setup"]["count"] == rep["counts"]["sessions_completed"]


@pytest.fixture(scope="module")
def tls_instance(base_dir):
    """One Prosody instance offering STARTTLS (xs_bench.tls on top of xs_local)."""
    spec = InstanceSpec("loadgen-tls", free_port(), hosts=[VirtualHost(CLIENT), VirtualHost(GUEST, AUTH_ANONYMOUS)],
                        mucs=[Muc(CONFERENCE)])
    inst = ProsodyInstance(spec, base_dir / "loadgen-tls")
    (base_dir / "loadgen-tls").mkdir(exist_ok=True)
    os.chmod(base_dir / "loadgen-tls", 0o711)
    inst.prepare()
    enable_starttls(inst)
    inst.start()
    yield inst
    inst.stop()


@pytest.mark.timeout(60)
def test_starttls_join_storm_through_the_proxy(tls_instance, proxies, loadgen_bin, tmp_path):
    """TLS passes through the proxy untouched: the loadgen negotiates STARTTLS with Prosody."""
    cfg = ProxyConfig(proxy={"workers": 1, "metrics": ""})
    cfg.add_backend("tls", tls_instance.address)
    cfg.add_route(["*"], ["tls"])
    px = proxies.start(cfg)
    mark = tls_instance.log_mark()
    rep = run_loadgen(loadgen_bin, tmp_path, "join-storm", "--server", f"127.0.0.1:{px.port}",
                      "--starttls", "--domain", GUEST, "--muc", CONFERENCE, "--rooms", "2",
                      "--room-size", "5", "--stay", "0.5", "--messages", "1")
    c = counts(rep)
    assert rep["errors_total"] == 0, rep["_text"]
    assert c["logged_in"] == 10 and c["participants_joined"] == 10
    assert c["messages_echoed"] == 10
    assert tls_instance.log_text(mark).count("Stream encrypted") >= 10
