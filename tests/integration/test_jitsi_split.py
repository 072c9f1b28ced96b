"""The Jitsi split through the proxy: the client domain lives on one instance, the auth domain
with the JvbBrewery MUC on another. Each account exists only on its owning instance, so a login
succeeds only if the proxy routed it right; the instances' logs confirm where it landed."""

from conftest import AUTH, BREWERY, CLIENT, CONFERENCE, GUEST
from xs_clients import login, login_many


def test_jvb_joins_the_brewery_through_the_proxy(cluster, proxies):
    px = proxies.start(cluster.proxy_config())
    jid = f"jvb@{AUTH}"
    mark = cluster.marks()
    r = login(px.port, jid, cluster.password(jid), join=f"JvbBrewery@{BREWERY}", nick="jvb-1")
    assert r.ok, str(r)
    assert r.muc_error is None and "110" in r.muc_codes, f"brewery join: {r}"
    assert cluster.who_authenticated(jid, mark) == ["auth"]


def test_client_user_and_guest_land_on_the_client_instance(cluster, proxies):
    px = proxies.start(cluster.proxy_config())
    jid = f"alice@{CLIENT}"
    mark = cluster.marks()
    r = login(px.port, jid, cluster.password(jid), join=f"room1@{CONFERENCE}", nick="alice")
    assert r.ok and "110" in r.muc_codes, str(r)
    assert cluster.who_authenticated(jid, mark) == ["client"]

    g = login(px.port, GUEST, join=f"room1@{CONFERENCE}", nick="guest")
    assert g.ok and "110" in g.muc_codes, str(g)
    guest_jid = g.bound.split("/")[0]
    assert guest_jid.endswith("@" + GUEST), g.bound
    assert cluster.who_authenticated(guest_jid, mark) == ["client"]


def test_both_sides_at_once(cluster, proxies):
    """jvb, focus and a client user log in concurrently through one proxy; each lands on its
    own instance and nowhere else."""
    px = proxies.start(cluster.proxy_config())
    jids = [f"jvb@{AUTH}", f"focus@{AUTH}", f"alice@{CLIENT}"]
    mark = cluster.marks()
    rs = login_many(px.port, [(j, cluster.password(j)) for j in jids])
    assert all(r.ok for r in rs), "\n".join(map(str, rs))
    assert cluster.who_authenticated(f"jvb@{AUTH}", mark) == ["auth"]
    assert cluster.who_authenticated(f"focus@{AUTH}", mark) == ["auth"]
    assert cluster.who_authenticated(f"alice@{CLIENT}", mark) == ["client"]


def test_wrong_password_is_the_backends_answer(cluster, proxies):
    """The proxy does not authenticate: a bad password reaches the owning instance and fails
    there (and the session is not counted as a login anywhere)."""
    px = proxies.start(cluster.proxy_config())
    mark = cluster.marks()
    r = login(px.port, f"jvb@{AUTH}", "not-the-password", timeout=10)
    assert not r.ok and r.error == "failed_auth", str(r)
    assert cluster.who_authenticated(f"jvb@{AUTH}", mark, timeout=0.5) == []
