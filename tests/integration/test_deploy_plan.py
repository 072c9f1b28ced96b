"""Shard plans without processes: bad plans give clear errors naming the offending key (through
the parser and through `xmpp-shard-deploy check`), and the Jitsi preset puts every domain,
MUC and service user where the issue says (classic split, and its generalisation)."""

import tomllib

import pytest

from deploy_support import REPO, tool
from xs_local.jitsi import rendezvous_pick, rendezvous_score
from xs_local.plan import PlanError, expand, load_plan, parse_plan

JITSI4 = """
[plan]
instances = 4
cores = 4
[jitsi]
domain = "meet.test"
auth = "internal_hashed"
guests = true
client = 0
jvb = 1
jibri = 1
jigasi = 0
tenants = ["t1.test", "t2.test", "t3.test", "t4.test"]
"""


def parse(text: str, ncpu: int = 2):
    return parse_plan(tomllib.loads(text), ncpu=ncpu)


# (plan text, substrings every one of which must appear in the error)
BAD_PLANS = [
    ("[plan]\ninstances = 0", ["[plan] instances", "got 0"]),
    ("[plan]\ninstances = 2\ncolour = 1", ["[plan]", "unknown key", "colour"]),
    ("[planet]\n", ["unknown key", "planet"]),
    ("[plan]\ninstances = 2\nport = 70000", ["[plan] port", "70000"]),
    ("[plan]\ninstances = 2\ncores = 2\n[[instance]]\nindex = 1\ncore = 2",
     ["[[instance]] #1 (index 1) core", "beyond the machine's count", "0..1"]),
    ("[plan]\ninstances = 2\n[[instance]]\nindex = 2", ["[[instance]] #1 index", "0..1"]),
    ("[plan]\ninstances = 2\n[[instance]]\nindex = 0\n[[instance]]\nindex = 0",
     ["[[instance]] #2 (index 0) index", "described twice"]),
    ("[plan]\ninstances = 2\n[[instance]]\nindex = 1\nport = 15222",
     ["[[instance]] (index 1) port", "15222", "clashes with prosody-0"]),
    ("[plan]\ninstances = 2\nport = 15223", ["[plan] port", "15223", "clashes", "prosody-1"]),
    ("[plan]\ninstances = 2\n[proxy]\nmetrics = \"127.0.0.1:15222\"",
     ["[proxy] metrics", "15222", "clashes"]),
    ("[plan]\ninstances = 2\n[[instance]]\nindex = 1\nname = \"prosody-0\"",
     ["name", "'prosody-0' is also the name of instance 0"]),
    ("[plan]\ninstances = 2\n[[instance]]\nindex = 1\nname = \"Bad Name\"", ["[[instance]] #1 (index 1) name"]),
    ("[plan]\ninstances = 2\ndata = \"/var/lib/{nme}\"", ["[plan] data", "placeholders"]),
    ("[plan]\ninstances = 2\nlog = \"relative/x.log\"", ["[plan] log", "absolute"]),
    ("[plan]\ninstances = 2\n[[host]]\ndomain = \"a.test\"\ninstance = 0\n[[host]]\ndomain = \"A.test.\"\ninstance = 1",
     ["[[host]] #2 (a.test)", "a.test is owned twice"]),
    ("[plan]\ninstances = 2\n[jitsi]\ndomain = \"meet.test\"\n[[host]]\ndomain = \"conference.meet.test\"\ninstance = 1",
     ["conference.meet.test is owned twice", "[jitsi] domain muc"]),
    ("[plan]\ninstances = 2\n[[host]]\ndomain = \"*.a.test\"\ninstance = 0", ["[[host]] #1 domain", "plain domain"]),
    ("[plan]\ninstances = 2\n[[host]]\ndomain = \"a.test\"\ninstance = 0\nauth = \"ldap\"", ["[[host]] #1 (a.test) auth", "ldap"]),
    ("[plan]\ninstances = 2\n[[host]]\ndomain = \"a.test\"\ninstance = 0\nauth = \"anonymous\"\naccounts = [\"x\"]",
     ["[[host]] #1 (a.test) accounts", "anonymous"]),
    ("[plan]\ninstances = 2\n[[host]]\ndomain = \"a.test\"\ninstance = 0\nadmins = [\"focus\"]",
     ["[[host]] #1 (a.test) admins", "'focus'"]),
    ("[plan]\ninstances = 2\n[jitsi]\ndomain = \"meet.test\"\ncolour = \"red\"", ["[jitsi]", "unknown key", "colour"]),
    ("[plan]\ninstances = 2\n[jitsi]\nauth = \"anonymous\"", ["[jitsi] domain", "non-empty"]),
    ("[plan]\ninstances = 2\n[jitsi]\ndomain = \"meet.test\"\njvb = 5", ["[jitsi] jvb", "0..1", "got 5"]),
    ("[plan]\ninstances = 4\n[jitsi]\ndomain = \"meet.test\"\njvb = 1\njibri = 2",
     ["[jitsi] jibri", "two XMPP connections", "Client", "Service"]),
    ("[plan]\ninstances = 2\n[jitsi]\ndomain = \"meet.test\"\ntenants = [\"ok.test\", \"bad_name\"]",
     ["[jitsi] tenants[1]", "bad_name"]),
    ("[plan]\ninstances = 2\n[jitsi]\ndomain = \"meet.test\"\npool = [0, 0]", ["[jitsi] pool", "distinct"]),
    ("[plan]\ninstances = 2\n[jitsi]\ndomain = \"meet.test\"\nservice_domain = \"auth.meet.test\"",
     ["[jitsi] service_domain", "auth.meet.test"]),
    ("[plan]\ninstances = 2\n[certs]\nmode = \"letsencrypt\"", ["[certs] mode", "letsencrypt"]),
    ("[plan]\ninstances = 2\n[certs]\nmode = \"existing\"", ["[certs] dir"]),
    ("[plan]\ninstances = 2\n[backends]\naddress = \"x\"", ["[backends]", "per instance"]),
    ("[plan]\ninstances = 2\n[tenants]\ndomains = \"a.test\"", ["[tenants] domains", "list"]),
    # TLS: [plan] tls, direct_tls_port, prosody_modules, and what terminate mode forbids
    ("[plan]\ninstances = 2\ntls = \"starttls\"", ["[plan] tls", "'terminate'", "'none'", "starttls"]),
    ("[plan]\ninstances = 2\ntls = \"terminate\"", ["[plan] tls", "at least one domain"]),
    ("[plan]\ninstances = 2\ntls = \"none\"\ndirect_tls_port = 5223\n[[host]]\ndomain = \"a.test\"\ninstance = 0",
     ["[plan] direct_tls_port", "needs [plan] tls = \"terminate\""]),
    ("[plan]\ninstances = 2\ntls = \"terminate\"\ndirect_tls_port = 15223\n[[host]]\ndomain = \"a.test\"\ninstance = 0",
     ["[plan] direct_tls_port", "15223", "clashes", "prosody-1"]),
    ("[plan]\ninstances = 2\ntls = \"terminate\"\ndirect_tls_port = 5222\n[[host]]\ndomain = \"a.test\"\ninstance = 0",
     ["[plan] direct_tls_port", "5222", "[plan] port"]),
    ("[plan]\ninstances = 2\ntls = \"terminate\"\ndirect_tls_port = 5223\n[[host]]\ndomain = \"a.test\"\ninstance = 0\n"
     "[proxy]\nmetrics = \"127.0.0.1:5223\"",
     ["[proxy] metrics", "5223", "direct_tls_port"]),
    ("[plan]\ninstances = 2\ntls = \"terminate\"\nprosody_modules = \"rel/dir\"\n[[host]]\ndomain = \"a.test\"\ninstance = 0",
     ["[plan] prosody_modules", "absolute"]),
    ("[plan]\ninstances = 2\ntls = \"terminate\"\nlua = \"plugin_paths = { '/opt/p' }\"\n[[host]]\ndomain = \"a.test\"\ninstance = 0",
     ["[plan] lua", "plugin_paths", "mod_xmpp_shard"]),
    ("[plan]\ninstances = 2\n[[instance]]\nindex = 1\nlua = \"allow_unencrypted_plain_auth = true\"\n"
     "[[host]]\ndomain = \"a.test\"\ninstance = 0\n[certs]\nmode = \"ca\"",
     ["[[instance]] (index 1) lua", "allow_unencrypted_plain_auth"]),
    # [[host]] http, [plan] http_port / http_base_port
    ("[plan]\ninstances = 2\n[[host]]\ndomain = \"a.test\"\ninstance = 0\nhttp = \"yes\"",
     ["[[host]] #1 (a.test) http", "true or false"]),
    ("[plan]\ninstances = 2\nhttp_port = 5280\n[[host]]\ndomain = \"a.test\"\ninstance = 0",
     ["[plan] http_port", "no [[host]] has http = true"]),
    ("[plan]\ninstances = 2\nhttp_port = 15223\n[[host]]\ndomain = \"a.test\"\ninstance = 0\nhttp = true",
     ["[plan] http_port", "15223", "clashes", "prosody-1"]),
    ("[plan]\ninstances = 2\nhttp_port = 5222\n[[host]]\ndomain = \"a.test\"\ninstance = 0\nhttp = true",
     ["[plan] http_port", "5222", "[plan] port"]),
    ("[plan]\ninstances = 2\nhttp_base_port = 15222\n[[host]]\ndomain = \"a.test\"\ninstance = 1\nhttp = true",
     ["[plan] http_base_port", "prosody-1's HTTP port 15223", "http_base_port + 1", "clashes"]),
    ("[plan]\ninstances = 2\n[[host]]\ndomain = \"a.test\"\ninstance = 0\nhttp = true\n"
     "[proxy]\nmetrics = \"127.0.0.1:5281\"",
     ["[proxy] metrics", "5281", "prosody-0's HTTP port"]),
    ("[plan]\ninstances = 2\nlisten = \"192.0.2.1\"\ntls = \"terminate\"\ndirect_tls_port = 5280\n"
     "[[host]]\ndomain = \"a.test\"\ninstance = 0\nhttp = true",
     ["[plan] direct_tls_port", "5280", "[plan] http_port"]),
    ("[plan]\ninstances = 2\n[jitsi]\ndomain = \"meet.test\"\n[[host]]\ndomain = \"a.test\"\ninstance = 1\nhttp = true",
     ["[[host]] #1 (a.test) http", "[jitsi]"]),
]


@pytest.mark.parametrize("text, expected", BAD_PLANS, ids=[e[0] for _, e in BAD_PLANS])
def test_bad_plans_name_the_offending_key(text, expected):
    with pytest.raises(PlanError) as ei:
        parse(text)
    msg = str(ei.value)
    for part in expected:
        assert part in msg, f"{part!r} not in:\n{msg}"


def test_every_problem_of_a_plan_is_reported_at_once():
    with pytest.raises(PlanError) as ei:
        parse("[plan]\ninstances = 2\nport = -1\ncolour = 1\n[[instance]]\nindex = 1\ncore = 9\n"
              "[jitsi]\ndomain = \"meet.test\"\njvb = 7")
    keys = ["[plan] port", "[plan]: unknown key", "[[instance]] #1 (index 1) core", "[jitsi] jvb"]
    assert all(k in str(ei.value) for k in keys), str(ei.value)
    assert len(ei.value.problems) >= 4


def test_check_reports_bad_plans_with_file_and_key(tmp_path):
    plan = tmp_path / "bad.toml"
    plan.write_text("[plan]\ninstances = 2\ncores = 2\n[[instance]]\nindex = 1\ncore = 3\n"
                    "[[instance]]\nindex = 0\nport = 15223\n")
    r = tool("check", plan)
    assert r.returncode == 1, r
    assert f"{plan}: [[instance]] #1 (index 1) core: core 3 is beyond the machine's count" in r.stderr, r.stderr
    assert f"{plan}: [[instance]] (index 1)" not in r.stderr or "clashes" in r.stderr
    assert "15223" in r.stderr and "clashes" in r.stderr, r.stderr
    plan.write_text("[plan\ninstances = 2\n")
    r = tool("generate", plan, "--out", tmp_path / "out")
    assert r.returncode == 2 and "not valid TOML" in r.stderr, r
    assert not (tmp_path / "out").exists()


def test_core_beyond_this_machine_without_plan_cores():
    with pytest.raises(PlanError, match=r"this machine has 2 core\(s\)"):
        parse("[plan]\ninstances = 2\n[[instance]]\nindex = 0\ncore = 2", ncpu=2)
    parse("[plan]\ninstances = 2\n[[instance]]\nindex = 0\ncore = 2", ncpu=4)   # fine on 4


# --------------------------------------------------------------------------------------------
# the Jitsi preset

def test_classic_split_from_the_example_plan():
    plan = load_plan(REPO / "deploy" / "plans" / "jitsi-classic.toml", ncpu=2)
    lay = expand(plan, ncpu=2)
    client, brewery = lay.instances
    assert (client.name, brewery.name) == ("client", "brewery")
    assert client.domains == ["meet.example.com", "guest.meet.example.com", "auth.meet.example.com"]
    assert [m.domain for m in client.mucs] == ["conference.meet.example.com"]
    assert brewery.domains == ["auth.jvb.meet.example.com"]
    assert [m.domain for m in brewery.mucs] == ["internal.auth.jvb.meet.example.com"]
    assert {a.jid for a in client.accounts} == {"focus@auth.meet.example.com"}
    assert {a.jid for a in brewery.accounts} == {"jvb@auth.jvb.meet.example.com",
                                                 "focus@auth.jvb.meet.example.com"}
    assert client.admins == ["focus@auth.meet.example.com"]
    assert (client.port, brewery.port) == (15222, 15223)
    routes = {r["name"]: r for r in lay.proxy.routes}
    assert routes["client"]["domains"] == client.domains and routes["client"]["backends"] == ["client"]
    assert routes["brewery"]["domains"] == ["auth.jvb.meet.example.com"]
    assert all(b["check"] == "stream" for b in lay.proxy.backends)
    assert lay.jitsi.breweries["jvb"].jid == "JvbBrewery@internal.auth.jvb.meet.example.com"


def test_generalised_preset_places_breweries_guests_and_tenants():
    plan = parse(JITSI4)
    lay = expand(plan, ncpu=4)
    i0, i1, i2, i3 = lay.instances
    assert {"meet.test", "guest.meet.test", "auth.meet.test", "recorder.meet.test"} == set(i0.domains)
    assert {m.domain for m in i0.mucs} == {"conference.meet.test", "internal.auth.meet.test"}
    assert {a.jid for a in i0.accounts} == {"focus@auth.meet.test", "jigasi@auth.meet.test",
                                            "recorder@recorder.meet.test"}
    assert i1.domains == ["auth.jvb.meet.test"]
    assert {a.jid for a in i1.accounts} == {"jvb@auth.jvb.meet.test", "jibri@auth.jvb.meet.test",
                                            "focus@auth.jvb.meet.test"}
    b = lay.jitsi.breweries
    assert (b["jvb"].instance, b["jibri"].instance, b["jigasi"].instance) == (1, 1, 0)
    assert b["jibri"].jid == "JibriBrewery@internal.auth.jvb.meet.test"
    assert b["jigasi"].jid == "JigasiBrewery@internal.auth.meet.test"
    # tenants: over the pool {2, 3}, by the proxy's rendezvous hash of the tenant's domain
    placed = {t.domain: t.instance for t in lay.jitsi.tenants}
    for t, i in placed.items():
        assert i == [2, 3][rendezvous_pick(t, [i2.name, i3.name])]
        inst = lay.instances[i]
        assert {t, f"guest.{t}", f"auth.{t}"} <= set(inst.domains)
        assert f"conference.{t}" in {m.domain for m in inst.mucs}
        assert f"focus@auth.{t}" in {a.jid for a in inst.accounts}
    assert set(placed.values()) == {2, 3}, f"4 tenants all on one instance: {placed}"
    # a tenant's whole client side is routed to its instance, exactly
    routes = {d: r["backends"] for r in lay.proxy.routes for d in r["domains"]}
    for t, i in placed.items():
        assert routes[t] == routes[f"guest.{t}"] == routes[f"auth.{t}"] == [lay.instances[i].name]


def test_tenants_move_minimally_when_the_pool_grows():
    base = JITSI4.replace("instances = 4", "instances = 5").replace("cores = 4", "cores = 5")
    t = [f"t{i}.test" for i in range(40)]
    text = base.replace('tenants = ["t1.test", "t2.test", "t3.test", "t4.test"]', f"tenants = {t!r}".replace("'", '"'))
    small = expand(parse(text.replace("[jitsi]", "[jitsi]\npool = [2, 3]"), ncpu=5), ncpu=5)
    big = expand(parse(text.replace("[jitsi]", "[jitsi]\npool = [2, 3, 4]"), ncpu=5), ncpu=5)
    a = {x.domain: x.instance for x in small.jitsi.tenants}
    b = {x.domain: x.instance for x in big.jitsi.tenants}
    moved = [d for d in t if a[d] != b[d]]
    assert all(b[d] == 4 for d in moved), "a tenant moved between old pool members"
    assert 0 < len(moved) < len(t)


def test_breweries_share_one_service_instance_or_the_client_one():
    ok = parse("[plan]\ninstances = 3\n[jitsi]\ndomain = \"meet.test\"\njvb = 0\njibri = 2\njigasi = 0")
    assert ok.jitsi.service_instance() == 2
    lay = expand(ok, ncpu=3)
    assert lay.jitsi.breweries["jvb"].jid == "JvbBrewery@internal.auth.meet.test"
    assert lay.jitsi.breweries["jibri"].jid == "JibriBrewery@internal.auth.jvb.meet.test"


def test_rendezvous_matches_the_proxys_pinned_values():
    # tests/unit/test_rendezvous.cpp pins these for the C++ implementation.
    assert rendezvous_score("example.com", "prosody-t1") == 0x6d4c431557c096b2
    assert rendezvous_score("", "") == 0x4f2db50f124040cd


def test_default_local_plan_still_parses_for_run_local():
    plan = load_plan(REPO / "deploy" / "plans" / "local.toml", ncpu=2)
    assert plan.instances == 2 and plan.jitsi is None
    assert plan.instance_ports() == [15222, 15223]


def test_http_hosts_get_the_proxys_http_listener_and_their_instance_an_http_port():
    """[[host]] http: the proxy's HTTP listener (the code the [jitsi] shards use), a backend
    NAME-http per instance with such hosts, a route by Host to it, the XMPP routes limited to the
    XMPP listeners; the instance serves bosh and websocket on loopback, behind the proxy."""
    hosts = ("[[host]]\ndomain = \"a.test\"\ninstance = 1\nhttp = true\n"
             "[[host]]\ndomain = \"guest.a.test\"\ninstance = 1\nauth = \"anonymous\"\nhttp = true\n"
             "[[host]]\ndomain = \"b.test\"\ninstance = 0\n")
    for tls, listen in (("none", "127.0.0.1"), ("terminate", "0.0.0.0")):
        plan = parse(f"[plan]\ninstances = 3\nlisten = \"{listen}\"\ntls = \"{tls}\"\n" + hosts
                     + ("[certs]\nmode = \"ca\"\n" if tls == "terminate" else ""))
        assert (plan.http_port, plan.http_base_port, plan.http_instances()) == (5280, 5281, [1])
        lay = expand(plan, [15222, 15223, 15224], listen_port=5222, password=lambda: "pw")
        cfg = lay.proxy
        http = cfg.listeners[-1]
        want = {"name": "http", "protocol": "http"}
        if tls == "terminate":
            want.update(bind="0.0.0.0:5280", tls="terminate")
        else:
            want.update(bind="127.0.0.1:5280")     # plaintext: loopback, behind a web server
        assert http == want
        assert cfg.backends[-1] == {"name": "prosody-1-http", "address": "127.0.0.1:5282",
                                    "check": "http", "check_path": "/http-bind"}
        routes = {r["name"]: r for r in cfg.routes}
        assert routes["prosody-1-http"] == {"name": "prosody-1-http", "domains": ["a.test", "guest.a.test"],
                                            "backends": ["prosody-1-http"], "listeners": ["http"]}
        assert routes["prosody-0"]["listeners"] == [l["name"] for l in cfg.listeners if l["name"] != "http"]
        spec = lay.instances[1]
        for line in ("http_ports = { 5282 }", 'http_interfaces = { "127.0.0.1" }',
                     'http_default_host = "a.test"', 'trusted_proxies = { "127.0.0.1" }',
                     "consider_bosh_secure = true", "consider_websocket_secure = true"):
            assert line in spec.lua.splitlines(), spec.lua
        assert all(h.modules == ["bosh", "websocket"] for h in spec.hosts if h.domain.endswith("a.test"))
        assert "http_ports" not in lay.instances[0].lua and lay.instances[0].hosts[0].modules == []


def test_tls_mode_defaults_to_terminate_when_the_plan_has_certs():
    host = "[[host]]\ndomain = \"a.test\"\ninstance = 0\nmuc = [\"muc.a.test\"]\n"
    assert parse("[plan]\ninstances = 2\n" + host).tls == "none"
    assert parse("[plan]\ninstances = 2\n" + host + "[certs]\nmode = \"ca\"\n").tls == "terminate"
    assert parse("[plan]\ninstances = 2\ntls = \"none\"\n" + host + "[certs]\nmode = \"ca\"\n").tls == "none"
    # The example plans: the package's default (classic) stays plaintext until certificates
    # exist; the four-instance one has [certs] mode = "ca" and terminates, as does the quick
    # start's.
    assert load_plan(REPO / "deploy" / "plans" / "jitsi-classic.toml", ncpu=4).tls == "none"
    assert load_plan(REPO / "deploy" / "plans" / "jitsi.toml", ncpu=4).tls == "terminate"
    # The quick start's plan terminates with a local CA; its plaintext twin is explicit.
    assert load_plan(REPO / "deploy" / "plans" / "local.toml", ncpu=2).tls == "terminate"
    assert load_plan(REPO / "deploy" / "plans" / "local.toml", ncpu=2).certs.mode == "ca"
    assert load_plan(REPO / "deploy" / "plans" / "local-plaintext.toml", ncpu=2).tls == "none"


def test_terminate_mode_expands_listener_backends_certificates_and_instances():
    plan = parse("[plan]\ninstances = 2\ntls = \"terminate\"\ndirect_tls_port = 5223\n"
                 "[[host]]\ndomain = \"a.test\"\ninstance = 0\nmuc = [\"muc.a.test\"]\n"
                 "[tenants]\ndomains = [\"t.test\"]\n[certs]\nmode = \"ca\"\n")
    lay = expand(plan, [15222, 15223], listen_port=5222)
    px = lay.proxy
    assert px.listeners == [
        {"name": "c2s", "bind": "127.0.0.1:5222", "tls": "terminate"},
        {"name": "c2s-direct", "bind": "127.0.0.1:5223", "tls": "terminate", "direct_tls": True}]
    assert [(b["address"], b["proxy_protocol"]) for b in px.backends] == \
        [("127.0.0.1:15222", "v2"), ("127.0.0.1:15223", "v2")]
    # One certificate per domain a client can name (no MUC), from `certs` (relative to proxy.toml).
    assert px.tls_certificates == [
        {"cert": "certs/a.test.crt", "key": "certs/a.test.key", "domains": ["a.test"]},
        {"cert": "certs/t.test.crt", "key": "certs/t.test.key", "domains": ["t.test"]}]
    text = px.render()
    assert tomllib.loads(text)["certificate"][0]["domains"] == ["a.test"]
    from xs_local.prosody import render_config
    from xs_local.tls import module_dir
    cfg = render_config(lay.instances[0], REPO / "unused")
    assert "c2s_ports = { }" in cfg and "xmpp_shard_ports = { 15222 }" in cfg
    assert f'plugin_paths = {{ "{module_dir()}" }}' in cfg
    assert module_dir() == str(REPO / "deploy" / "prosody-modules")
    assert 'modules_enabled = { "roster", "saslauth", "disco", "ping", "xmpp_shard" }' in cfg
    assert "c2s_require_encryption = true" in cfg and "allow_unencrypted_plain_auth = false" in cfg
    # The plaintext mode keeps the c2s port and the relaxed lines; nothing TLS in the proxy.
    plain = parse("[plan]\ninstances = 2\n[[host]]\ndomain = \"a.test\"\ninstance = 0\n")
    lp = expand(plain, [15222, 15223], listen_port=5222)
    assert lp.proxy.listeners == [{"name": "c2s", "bind": "127.0.0.1:5222"}]
    assert "proxy_protocol" not in lp.proxy.backends[0] and not lp.proxy.tls_certificates
    cfg = render_config(lp.instances[0], REPO / "unused")
    assert "c2s_ports = { 15222 }" in cfg and "allow_unencrypted_plain_auth = true" in cfg
    assert "xmpp_shard" not in cfg


def test_module_dir_is_found_in_a_checkout_and_in_the_packages_layout(tmp_path):
    """plugin_paths: the checkout's deploy/prosody-modules, or, from the .deb,
    /usr/lib/xmpp-shard/prosody-modules next to /usr/lib/xmpp-shard/deploy/xs_local."""
    import shutil
    import subprocess
    lib = tmp_path / "lib" / "xmpp-shard"
    shutil.copytree(REPO / "deploy" / "xs_local", lib / "deploy" / "xs_local",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (lib / "prosody-modules").mkdir()
    shutil.copy(REPO / "deploy" / "prosody-modules" / "mod_xmpp_shard.lua", lib / "prosody-modules")
    r = subprocess.run(["/usr/bin/python3", "-B", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                        "from xs_local.tls import module_dir; print(module_dir())", str(lib / "deploy")],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == str(lib / "prosody-modules"), r.stdout + r.stderr
