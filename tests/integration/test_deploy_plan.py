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
