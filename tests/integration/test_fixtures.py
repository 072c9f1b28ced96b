"""The fixtures themselves, without the proxy: if these fail, the other failures say nothing
about the proxy. Logins go straight to each Prosody instance."""

from conftest import AUTH, BREWERY, CLIENT, CONFERENCE, GUEST, TENANTS
from xs_clients import login, login_many


def test_instances_are_separate_processes_on_their_own_ports(cluster):
    ports = {i.port for i in cluster.instances}
    pids = {i.pid for i in cluster.instances}
    assert len(ports) == len(pids) == len(cluster.instances) >= 3
    for inst in cluster.instances:
        status = open(f"/proc/{inst.pid}/status").read()
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        assert uid != "0", f"{inst.name} runs as root"
        allowed = next(line.split(":")[1].strip() for line in status.splitlines()
                       if line.startswith("Cpus_allowed_list:"))
        assert allowed == str(inst.spec.cpu), f"{inst.name} not pinned to core {inst.spec.cpu}: {allowed}"


def test_direct_login_lands_where_the_account_lives(cluster):
    jid = f"alice@{CLIENT}"
    mark = cluster.marks()
    r = login(cluster.client.port, jid, cluster.password(jid))
    assert r.ok, str(r)
    assert cluster.who_authenticated(jid, mark) == ["client"]


def test_direct_login_to_the_wrong_instance_fails(cluster):
    # The account exists only on its owning instance: a misrouted login cannot succeed.
    jid = f"alice@{CLIENT}"
    r = login(cluster.auth.port, jid, cluster.password(jid), timeout=5)
    assert not r.ok, str(r)
    jid = f"jvb@{AUTH}"
    r = login(cluster.client.port, jid, cluster.password(jid), timeout=5)
    assert not r.ok, str(r)


def test_direct_brewery_join_and_anonymous_guest(cluster):
    jid = f"jvb@{AUTH}"
    r = login(cluster.auth.port, jid, cluster.password(jid), join=f"JvbBrewery@{BREWERY}", nick="jvb1")
    assert r.ok and "110" in r.muc_codes, str(r)
    r = login(cluster.client.port, GUEST, join=f"room1@{CONFERENCE}", nick="guest")
    assert r.ok and r.bound.split("/")[0].endswith("@" + GUEST) and "110" in r.muc_codes, str(r)


def test_direct_tenant_logins_on_every_pool_instance(cluster):
    d = TENANTS[0]
    jid = f"user@{d}"
    for inst in cluster.pool:
        mark = cluster.marks()
        r = login(inst.port, jid, cluster.password(jid))
        assert r.ok, f"{inst.name}: {r}"
        assert cluster.who_authenticated(jid, mark) == [inst.name]
    rs = login_many(cluster.pool[0].port, [(f"user@{d}", cluster.password(f"user@{d}")) for d in TENANTS])
    assert all(r.ok for r in rs), "\n".join(map(str, rs))
