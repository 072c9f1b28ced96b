"""deploy/xs_local without processes: plan parsing and expansion, config rendering; and the
generated proxy configs pass the proxy's own --check."""

import os
import subprocess
import tomllib

import pytest

from conftest import REPO
from xs_local import ProxyConfig
from xs_local.plan import PlanError, expand, load_plan, parse_plan
from xs_local.prosody import InstanceSpec, Muc, VirtualHost, render_config

LOCAL_PLAN = REPO / "deploy" / "plans" / "local.toml"
LOCAL_PLAINTEXT = REPO / "deploy" / "plans" / "local-plaintext.toml"


def test_default_plan_on_two_cores():
    plan = load_plan(LOCAL_PLAN, ncpu=2)
    assert plan.instances == 2
    lay = expand(plan, [20001, 20002], listen_port=5222, ncpu=2)
    i0, i1 = lay.instances
    assert {"meet.localhost", "guest.meet.localhost"} <= set(i0.domains)
    assert [m.domain for m in i0.mucs] == ["conference.meet.localhost"]
    assert "auth.meet.localhost" in i1.domains
    assert [m.domain for m in i1.mucs] == ["internal.auth.meet.localhost"]
    jids = {a.jid for a in lay.accounts}
    assert {"jvb@auth.meet.localhost", "focus@auth.meet.localhost"} <= jids
    assert len({a.password for a in lay.accounts}) == len(lay.accounts)
    routes = {r["name"]: r for r in lay.proxy.routes}
    assert routes["tenants"]["domains"] == ["*"] and routes["tenants"]["balance"] == "hash"
    assert routes["tenants"]["backends"] == ["prosody-0", "prosody-1"]   # no extra instances


def test_default_plan_on_four_cores_has_a_tenant_pool():
    plan = load_plan(LOCAL_PLAN, ncpu=4)
    assert plan.instances == 4
    lay = expand(plan, [1, 2, 3, 4], listen_port=5222, ncpu=4)
    cores = sorted(os.sched_getaffinity(0))
    assert [s.cpu for s in lay.instances] == [cores[i % len(cores)] for i in range(4)]
    routes = {r["name"]: r for r in lay.proxy.routes}
    assert routes["tenants"]["backends"] == ["prosody-2", "prosody-3"]
    assert "tenant1.localhost" in lay.instances[2].domains
    assert "tenant1.localhost" not in lay.instances[0].domains


@pytest.mark.parametrize("data, msg", [
    ({"plan": {"instances": 0}}, "instances"),
    ({"plan": {"instances": 2}, "host": [{"domain": "a.test", "instance": 2}]}, "instance"),
    ({"host": [{"domain": "a.test", "instance": 0}, {"domain": "A.test.", "instance": 1}]}, "twice"),
    ({"host": [{"domain": "a.test", "instance": 0, "auth": "ldap"}]}, "auth"),
    ({"host": [{"domain": "a.test", "instance": 0, "auth": "anonymous", "accounts": ["x"]}]}, "anonymous"),
    ({"host": [{"domain": "a.test", "instance": 0, "colour": "red"}]}, "unknown key"),
    ({"planet": {}}, "unknown key"),
])
def test_plan_errors(data, msg):
    with pytest.raises(PlanError, match=msg):
        parse_plan(data, ncpu=2)


def test_prosody_config_is_self_contained(tmp_path):
    spec = InstanceSpec("x", 12345, hosts=[VirtualHost("a.test"), VirtualHost("g.a.test", "anonymous")],
                        mucs=[Muc("conference.a.test")])
    text = render_config(spec, tmp_path)
    for line in ["c2s_ports = { 12345 }", 'c2s_interfaces = { "127.0.0.1" }',
                 "s2s_ports = { }", "http_ports = { }", "https_ports = { }", "c2s_direct_tls_ports = { }",
                 'modules_disabled = { "s2s" }', "c2s_require_encryption = false",
                 "allow_unencrypted_plain_auth = true", 'VirtualHost "a.test"',
                 'authentication = "anonymous"', 'Component "conference.a.test" "muc"',
                 "muc_room_locking = false"]:
        assert line in text, line
    assert str(tmp_path) in text


def test_proxy_config_round_trips_through_toml():
    cfg = ProxyConfig(proxy={"workers": 2, "metrics": "", "header_timeout": "1s"})
    cfg.add_listener("c2s", "127.0.0.1:5222", namespaces=["jabber:client"])
    cfg.add_backend("b\"1", "127.0.0.1:1")
    cfg.add_route(["a.test", "*.b.test"], ['b"1'], name="r", balance="hash")
    data = tomllib.loads(cfg.render())
    assert data["proxy"]["workers"] == 2
    assert data["listener"][0]["namespaces"] == ["jabber:client"]
    assert data["backend"][0]["name"] == 'b"1'
    assert data["route"][0] == {"name": "r", "domains": ["a.test", "*.b.test"],
                                "backends": ['b"1'], "balance": "hash"}


def test_the_quick_start_plans_differ_only_in_tls():
    """plans/local.toml (TLS, the default) and plans/local-plaintext.toml stay in step."""
    tls = tomllib.loads(LOCAL_PLAN.read_text())
    plain = tomllib.loads(LOCAL_PLAINTEXT.read_text())
    assert (tls["plan"].pop("tls"), tls["plan"].pop("direct_tls_port"), tls.pop("certs")) == \
        ("terminate", 5223, {"mode": "ca"})
    assert plain["plan"].pop("tls") == "none"
    assert tls == plain


def test_generated_configs_pass_the_proxys_check(proxy_bin, cluster, tmp_path):
    from xs_local.certs import make_certs
    tls_layout = expand(load_plan(LOCAL_PLAN, ncpu=4), [1, 2, 3, 4], listen_port=5222, out=tmp_path)
    make_certs(tls_layout)          # certs/ next to the config written below, with the local CA
    assert (tmp_path / "certs" / "ca.crt").exists()
    for name, cfg in [("plan", tls_layout.proxy),
                      ("plan-plaintext", expand(load_plan(LOCAL_PLAINTEXT, ncpu=4), [1, 2, 3, 4],
                                                listen_port=5222).proxy),
                      ("cluster", cluster.proxy_config())]:
        if not cfg.listeners:
            cfg.add_listener("c2s", "127.0.0.1:5222")
        path = tmp_path / f"{name}.toml"
        cfg.write(path)
        r = subprocess.run([str(proxy_bin), "--config", str(path), "--check"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"{name}: {r.stdout}{r.stderr}\n{path.read_text()}"


def test_the_proxys_check_reports_problems_with_positions(proxy_bin, tmp_path):
    cfg = ProxyConfig(proxy={"workers": 1})
    cfg.add_listener("c2s", "127.0.0.1:5222")
    cfg.add_backend("b1", "127.0.0.1:1")
    cfg.add_route(["a.test"], ["no-such-backend"])
    path = cfg.write(tmp_path / "bad.toml")
    r = subprocess.run([str(proxy_bin), "--config", str(path), "--check"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    assert f"{path}:" in r.stdout + r.stderr and "no-such-backend" in r.stdout + r.stderr, r
