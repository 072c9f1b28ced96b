"""The operator dashboard (deploy/grafana) and the Prometheus scrape example (deploy/prometheus)
are well-formed and query what the proxy exposes. No proxy needed; test_ops_metrics.py also
runs every dashboard query against a real Prometheus that scraped a real proxy."""

import json
import re
import subprocess

from ops_support import (ALL_FAMILIES, DASHBOARD, PROMETHEUS_EXAMPLE, PROMTOOL, dashboard_panels,
                         dashboard_queries)

METRIC_RX = re.compile(r"\bxmpp_shard_[a-z0-9_]+")


def family_of(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name[: -len(suffix)] in ALL_FAMILIES:
            return name[: -len(suffix)]
    return name


def test_dashboard_is_wellformed_grafana_json():
    doc = json.loads(DASHBOARD.read_text())          # well-formed JSON, or this raises
    assert doc.get("title") and doc.get("uid"), "a dashboard needs a title and a uid"
    assert isinstance(doc.get("schemaVersion"), int)
    panels = dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    names = {v["name"] for v in doc.get("templating", {}).get("list", [])}
    for p in panels:
        g = p.get("gridPos", {})
        assert {"h", "w", "x", "y"} <= set(g), f"panel {p.get('title')!r} lacks a gridPos"
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, f"panel {p.get('title')!r} leaves the 24-column grid"
        if p["type"] == "row":
            continue
        assert p.get("title") and p.get("targets"), f"panel {p.get('id')} has no title or targets"
        for t in p["targets"]:
            assert t.get("expr") and t.get("refId"), f"{p['title']}: target without expr/refId"
            # Every variable used is defined by the dashboard or is a Grafana built-in.
            for var in re.findall(r"\$(\w+)", t["expr"]):
                assert var in names or var.startswith("__"), f"{p['title']}: undefined ${var}"
        ds = p.get("datasource", {})
        assert ds.get("type") == "prometheus", f"{p['title']}: datasource {ds}"


def test_dashboard_plots_the_operators_questions():
    queries = dashboard_queries(raw=True)
    exprs = [e for _, e in queries]

    def has(rx: str) -> bool:
        return any(re.search(rx, e) for e in exprs)

    wanted = {
        "sessions per backend": r"sum by \(backend\) \(xmpp_shard_sessions_active\b",
        "join rate": r"rate\(xmpp_shard_sessions_total\b",
        "errors by condition": r"by \(condition\) \(rate\(xmpp_shard_stream_errors_total\b",
        "session ends by reason": r"by \(reason\) \(rate\(xmpp_shard_session_ends_total\b",
        "backend health": r"xmpp_shard_backend_up\b",
        "queue length": r"xmpp_shard_backend_queue_length\b",
        "queue wait": r"histogram_quantile\([0-9.]+, sum by \(backend, le\) \(rate\(xmpp_shard_backend_queue_wait_seconds_bucket",
        "connect latency": r"histogram_quantile\([0-9.]+, sum by \(backend, le\) \(rate\(xmpp_shard_backend_connect_seconds_bucket",
        "admission refusals": r"xmpp_shard_admission_refusals_total\b",
        "draining": r"xmpp_shard_backend_draining\b",
        "reloads": r"xmpp_shard_config_reloads_total\b",
    }
    missing = [k for k, rx in wanted.items() if not has(rx)]
    assert not missing, f"the dashboard has no panel for: {missing}"
    # Every name it queries is one the proxy exposes (catches typos and renamed families).
    unknown = sorted({n for e in exprs for n in METRIC_RX.findall(e) if family_of(n) not in ALL_FAMILIES})
    assert not unknown, f"the dashboard queries metrics the proxy does not expose: {unknown}"
    # Rates use Grafana's $__rate_interval, and every query follows the proxy selector.
    for title, e in queries:
        for m in re.finditer(r"xmpp_shard_\w+(\{[^}]*\})?", e):
            assert m.group(1) and 'instance=~"$instance"' in m.group(1), \
                f"{title}: {m.group(0)} ignores the $instance selector"


def test_prometheus_example_config_is_valid():
    r = subprocess.run([PROMTOOL, "check", "config", str(PROMETHEUS_EXAMPLE)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"promtool check config:\n{r.stdout}{r.stderr}"
    text = PROMETHEUS_EXAMPLE.read_text()
    assert "job_name: xmpp-shard" in text and "metrics_path: /metrics" in text


def test_readme_documents_every_metric_and_the_ops_keys():
    readme = (DASHBOARD.parents[2] / "README.md").read_text()
    assert "## Metrics and operations" in readme
    section = readme.split("## Metrics and operations", 1)[1].split("\n## ", 1)[0]
    missing = [f for f in ALL_FAMILIES if f"`{f}`" not in section]
    assert not missing, f"README's metrics section does not list: {missing}"
    for word in ("/healthz", "SIGHUP", "SIGTERM", "check_interval", "rise", "fall", "drain",
                 "max_connecting", "max_new_per_second", "max_queue", "queue_timeout",
                 "max_sessions", "per_ip_rate", "per_ip_burst", "see_other_host", "log_format",
                 "session_log_rate"):
        assert word in section, f"README's operations section does not mention {word}"
