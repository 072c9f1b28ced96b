"""The Jitsi preset of a shard plan: the [jitsi] table -> hosts, MUCs and service users on the
right instances, and the HOCON snippets for jicofo.conf, jvb.conf and jibri.conf (plus Jigasi's
sip-communicator.properties lines).

The shape, for domain D (see deploy/README.md for the reasoning):

  client instance   D (conference.D), guest.D (anonymous), auth.D: focus (jicofo's Client
                    connection); recorder.D: recorder (Jibri's call login) when Jibri is on.
                    internal.auth.D holds the breweries placed on this instance.
  brewery instance  the service domain (default auth.jvb.D) with jvb, focus (jicofo's Service
                    connection) and the users of the breweries placed there;
                    internal.auth.jvb.D holds JvbBrewery (and JibriBrewery / JigasiBrewery if
                    they are placed there).
  tenant pool       each extra client tenant T gets T, conference.T, guest.T, auth.T (focus) on
                    one pool instance, chosen by rendezvous hash of T over the pool instances'
                    names (the proxy's own hash), so growing the pool moves only some tenants.
                    Each tenant is served by its own jicofo (jicofo-T.conf), which reaches the
                    bridges over a Service connection with its own resource.
  room shards       [jitsi] shards = N: instances 0..N-1 each host D's client side and every
                    tenant's (only the focus creates rooms), the brewery instance is N, and one
                    jicofo per shard and domain connects straight to its shard (shard_jicofos).
  visitors          [jitsi] visitors = K (with shards): the last K instances are Jitsi visitor
                    nodes v1..vK (vN.D anonymous + conference.vN.D, auth.D for the jicofos),
                    node vN belonging to shard (N-1) mod shards; the proxy sends ?vnode=vN there.
  focus.D           Jitsi's client_proxy component (jitsi-meet-prosody) forwarding to focus@auth.D,
                    beside each meeting domain ([jitsi] focus_component, prosody_plugins).

Why at most two brewery instances: jicofo has exactly two XMPP connections, `Client` and
`Service` (jicofo.{bridge,jibri,jigasi}.xmpp-connection-name), and Prosody instances do not
federate here (s2s is off), so a brewery must live either on the client instance or on the one
Service instance. A guest domain must live next to the conference MUC its users join.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional

from .planmodel import AUTHS, HostPlan, Problems, check_keys, is_int, norm_domain, str_list
from .prosody import AUTH_ANONYMOUS, AUTH_INTERNAL, lua_str

KINDS = ("jvb", "jibri", "jigasi")
ROOMS = {"jvb": "JvbBrewery", "jibri": "JibriBrewery", "jigasi": "JigasiBrewery"}
KEYS = {"domain", "auth", "guests", "client", "jvb", "jibri", "jigasi", "service_domain",
        "bridges", "tenants", "pool", "xmpp_host", "http_port", "client_modules", "shards",
        "shard_http_port", "jicofo_port", "visitors", "focus_component", "prosody_plugins"}
DEFAULT_HTTP_PORT = 5280
JITSI_PLUGINS = "/usr/share/jitsi-meet/prosody-plugins"    # jitsi-meet-prosody's modules


# --------------------------------------------------------------------------------------------
# rendezvous: the proxy's hash (routing/rendezvous.cpp), so placements agree everywhere

_M64 = (1 << 64) - 1


def _fnv1a(h: int, data: bytes) -> int:
    for c in data:
        h = ((h ^ c) * 0x100000001B3) & _M64
    return h


def _mix(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _M64
    x ^= x >> 31
    return x


def rendezvous_score(key: str, name: str) -> int:
    h = _fnv1a(0xCBF29CE484222325, key.encode())
    h = ((h ^ 0xFF) * 0x100000001B3) & _M64
    return _mix(_fnv1a(h, name.encode()))


def rendezvous_pick(key: str, names: list[str]) -> int:
    """Index of the highest-scoring name (ties by name, then position), as the proxy ranks."""
    return sorted(range(len(names)), key=lambda i: (-rendezvous_score(key, names[i]), names[i], i))[0]


def room_key(room: str, tenant: str = "") -> str:
    """The proxy's room hash key (routing/http_route_key.hpp): the room lower-cased, prefixed
    with its tenant as TENANT/room when there is one ("tenant/room" may be given whole)."""
    r = room.strip().lower()
    t = tenant.strip().strip("/").lower()
    return f"{t}/{r}" if t else r


def shard_backends(names: list[str], shards: int) -> list[str]:
    """The proxy's HTTP backend names of the room shards, in route order."""
    return [f"{names[k]}-http" for k in range(shards)]


def room_shard(room: str, names: list[str], shards: int, tenant: str = "") -> int:
    """The room shard (instance index) the proxy sends `room` to while every shard is up."""
    return rendezvous_pick(room_key(room, tenant), shard_backends(names, shards))


# --------------------------------------------------------------------------------------------
# the plan table

@dataclass
class JitsiPlan:
    domain: str
    auth: str = AUTH_ANONYMOUS             # the client domain's authentication (stock: anonymous)
    guests: bool = False                   # guest.D (anonymous) next to the conference MUC
    client: int = 0
    jvb: int = 1
    jibri: Optional[int] = None
    jigasi: Optional[int] = None
    service_domain: str = ""
    bridges: int = 1
    tenants: list[str] = field(default_factory=list)
    pool: Optional[list[int]] = None       # None: the instances no role uses, else all
    xmpp_host: Optional[str] = None        # where components reach the proxy
    http_port: Optional[int] = None        # BOSH/WebSocket for browsers on the client instance
    client_modules: list[str] = field(default_factory=list)   # more modules on the client domain
    shards: Optional[int] = None           # room shards: instances 0..shards-1 all host DOMAIN
    shard_http_port: Optional[int] = None  # shard k's HTTP port: shard_http_port + k
    jicofo_port: Optional[int] = None      # [plan] tls = "terminate": shard k's loopback c2s
                                           # port for its jicofos, jicofo_port + k (plan.py)
    visitors: int = 0                      # visitor nodes v1..vK: the last K instances
    focus_component: bool = True           # focus.D (client_proxy) beside each meeting domain
    prosody_plugins: str = JITSI_PLUGINS   # where mod_client_proxy.lua is (plugin_paths)

    def shard_http_ports(self) -> list[int]:
        return [self.shard_http_port + k for k in range(self.shards or 0)]

    def jicofo_ports(self) -> list[int]:
        return [self.jicofo_port + k for k in range(self.shards or 0)] if self.jicofo_port else []

    # visitor node v (0-based; named v{v+1}) uses the ports after the shards' in both ranges
    def visitor_http_ports(self) -> list[int]:
        return [self.shard_http_port + (self.shards or 0) + v for v in range(self.visitors)]

    def visitor_jicofo_ports(self) -> list[int]:
        return ([self.jicofo_port + (self.shards or 0) + v for v in range(self.visitors)]
                if self.jicofo_port else [])

    def vnode(self, v: int) -> str:
        return f"v{v + 1}"

    def visitor_domain(self, v: int) -> str:
        return f"v{v + 1}.{self.domain}"

    def visitor_shard(self, v: int) -> int:
        return v % self.shards

    def brewery_instance(self, kind: str) -> Optional[int]:
        return getattr(self, kind)

    def service_instance(self) -> Optional[int]:
        others = {getattr(self, k) for k in KINDS if getattr(self, k) is not None} - {self.client}
        return next(iter(others)) if len(others) == 1 else None


def parse_jitsi(t, n: int, problems: Problems) -> Optional[JitsiPlan]:
    if not check_keys(t, KEYS, "[jitsi]", problems):
        return None
    before = len(problems.items)
    dom = norm_domain(t.get("domain"), "[jitsi] domain", problems)
    auth = t.get("auth", AUTH_ANONYMOUS)
    if auth not in AUTHS:
        problems.add("[jitsi] auth", f"must be {AUTHS[0]!r} or {AUTHS[1]!r}, got {auth!r}")
    guests = t.get("guests", False)
    if not isinstance(guests, bool):
        problems.add("[jitsi] guests", f"must be true or false, got {guests!r}")

    def inst(key: str, default, optional: bool = False):
        v = t.get(key, default)
        if optional and v is False:
            return None
        if not is_int(v) or not (0 <= v < n):
            allowed = "false or " if optional else ""
            problems.add(f"[jitsi] {key}", f"must be {allowed}an instance index in 0..{n - 1}, got {v!r}")
            return None
        return v

    client = inst("client", 0)
    jvb = inst("jvb", 1 if n > 1 else 0)
    jibri = inst("jibri", False, optional=True)
    jigasi = inst("jigasi", False, optional=True)
    bridges = t.get("bridges", 1)
    if not is_int(bridges) or not (1 <= bridges <= 64):
        problems.add("[jitsi] bridges", f"must be an integer in 1..64, got {bridges!r}")
    service = t.get("service_domain", f"auth.jvb.{dom}" if dom else None)
    service = norm_domain(service, "[jitsi] service_domain", problems) if service else None
    tenants = []
    for i, d in enumerate(str_list(t.get("tenants"), "[jitsi] tenants", problems)):
        nd = norm_domain(d, f"[jitsi] tenants[{i}]", problems)
        if nd:
            tenants.append(nd)
    pool = None
    if "pool" in t:
        pool = t["pool"]
        if (not isinstance(pool, list) or not pool
                or not all(is_int(p) and 0 <= p < n for p in pool) or len(set(pool)) != len(pool)):
            problems.add("[jitsi] pool", f"must be a non-empty list of distinct instance indexes "
                                         f"in 0..{n - 1}, got {pool!r}")
            pool = None
    xmpp_host = t.get("xmpp_host")
    if xmpp_host is not None and (not isinstance(xmpp_host, str) or not xmpp_host):
        problems.add("[jitsi] xmpp_host", f"must be a host name or address, got {xmpp_host!r}")
    http_port = t.get("http_port")
    if http_port is not None and (not is_int(http_port) or not (1 <= http_port <= 65535)):
        problems.add("[jitsi] http_port", f"must be a port number 1..65535, got {http_port!r}")
    client_modules = str_list(t.get("client_modules"), "[jitsi] client_modules", problems)
    shards = t.get("shards")
    shard_http_port = None
    if shards is not None:
        if not is_int(shards) or not (1 <= shards <= 64):
            problems.add("[jitsi] shards", f"must be an integer in 1..64, got {shards!r}")
        elif n < shards + 1:
            problems.add("[jitsi] shards", f"{shards} room shard(s) (instances 0..{shards - 1}) "
                                           f"and the brewery instance need [plan] instances >= "
                                           f"{shards + 1}, got {n}")
        else:
            if t.get("client", 0) != 0:
                problems.add("[jitsi] client", "with [jitsi] shards the room shards are "
                                               f"instances 0..{shards - 1}; leave client out")
            if "jvb" not in t:
                jvb = shards
            for k in KINDS:
                v = jvb if k == "jvb" else (jibri if k == "jibri" else jigasi)
                if v is not None and v < shards:
                    problems.add(f"[jitsi] {k}", f"instance {v} is a room shard (0..{shards - 1}); "
                                                 f"the breweries sit on one other instance, reached "
                                                 f"by every jicofo's Service connection")
            if pool is not None:
                problems.add("[jitsi] pool", "with [jitsi] shards every room shard hosts every "
                                             "tenant (rooms are spread by name, not tenants by "
                                             "domain); leave pool out")
            if http_port is None:
                http_port = DEFAULT_HTTP_PORT
        shp = t.get("shard_http_port", (http_port or DEFAULT_HTTP_PORT) + 1)
        if not is_int(shp) or not (1 <= shp <= 65535 - 64):
            problems.add("[jitsi] shard_http_port", f"must be a port number, got {shp!r}")
        else:
            shard_http_port = shp
    visitors = t.get("visitors", 0)
    if not is_int(visitors) or not (0 <= visitors <= 32):
        problems.add("[jitsi] visitors", f"must be an integer in 0..32, got {visitors!r}")
        visitors = 0
    elif visitors and shards is not None and is_int(shards) and 1 <= shards <= 64:
        if visitors < shards:
            problems.add("[jitsi] visitors", f"{visitors} visitor node(s) for {shards} room shards: "
                                             f"node vN belongs to shard (N-1) mod shards (its jicofo "
                                             f"sends visitors there), so every shard needs one; at "
                                             f"least {shards}")
        elif n < shards + 1 + visitors:
            problems.add("[jitsi] visitors", f"{shards} room shard(s), the brewery and {visitors} "
                                             f"visitor node(s) (the last {visitors} instances) need "
                                             f"[plan] instances >= {shards + 1 + visitors}, got {n}")
        else:
            for k in KINDS:
                v = jvb if k == "jvb" else (jibri if k == "jibri" else jigasi)
                if v is not None and v >= n - visitors:
                    problems.add(f"[jitsi] {k}", f"instance {v} is a visitor node (instances "
                                                 f"{n - visitors}..{n - 1}: [jitsi] visitors)")
    focus_component = t.get("focus_component", True)
    if not isinstance(focus_component, bool):
        problems.add("[jitsi] focus_component", f"must be true or false, got {focus_component!r}")
    plugins = t.get("prosody_plugins", JITSI_PLUGINS)
    if not isinstance(plugins, str) or not plugins.startswith("/"):
        problems.add("[jitsi] prosody_plugins", f"must be an absolute path (jitsi-meet-prosody's "
                                                f"modules), got {plugins!r}")
    for key in ("shard_http_port", "jicofo_port", "visitors"):
        if key in t and shards is None and not (key == "visitors" and t[key] == 0):
            problems.add(f"[jitsi] {key}", "only with [jitsi] shards")
    jicofo_port = t.get("jicofo_port")
    if jicofo_port is not None and (not is_int(jicofo_port) or not (1 <= jicofo_port <= 65535 - 64)):
        problems.add("[jitsi] jicofo_port", f"must be a port number, got {jicofo_port!r}")
    if len(problems.items) > before:
        return None

    jp = JitsiPlan(dom, auth, guests, client, jvb, jibri, jigasi, service, bridges, tenants, pool,
                   xmpp_host, http_port, client_modules, shards, shard_http_port, jicofo_port,
                   visitors, focus_component, plugins)
    if shards is not None:
        hp = jp.shard_http_ports()
        if http_port in hp:
            problems.add("[jitsi] shard_http_port", f"shard HTTP ports {hp[0]}..{hp[-1]} include "
                                                    f"the proxy's [jitsi] http_port {http_port}")
            return None
    placed = {k: getattr(jp, k) for k in KINDS if getattr(jp, k) is not None}
    others = sorted({v for v in placed.values()} - {client})
    if len(others) > 1:
        where = ", ".join(f"{k} = {v}" for k, v in placed.items() if v != client)
        bad = [k for k, v in placed.items() if v not in (client, jvb)] or ["jibri", "jigasi"]
        problems.add(f"[jitsi] {bad[0]}",
                     f"the breweries sit on instances {others} besides the client instance "
                     f"{client} ({where}): jicofo has only two XMPP connections, Client (instance "
                     f"{client}) and Service (one more instance), so every brewery must be on "
                     f"instance {client} or on the same single other instance")
        return None
    if service and client is not None and service == f"auth.{dom}":
        problems.add("[jitsi] service_domain", f"{service} is the client side's auth domain")
        return None
    return jp


def pool_of(jp: JitsiPlan, n: int) -> list[int]:
    if jp.pool is not None:
        return list(jp.pool)
    used = {jp.client} | {getattr(jp, k) for k in KINDS if getattr(jp, k) is not None}
    rest = [i for i in range(n) if i not in used]
    return rest or list(range(n))


@dataclass
class Side:
    """One jicofo's client side: a domain with its conference MUC and auth domain."""
    domain: str
    instance: int
    tenant: bool = False

    @property
    def conference(self) -> str:
        return f"conference.{self.domain}"

    @property
    def auth_domain(self) -> str:
        return f"auth.{self.domain}"

    @property
    def guest(self) -> str:
        return f"guest.{self.domain}"


@dataclass
class Brewery:
    kind: str
    instance: int
    auth_domain: str

    @property
    def muc(self) -> str:
        return f"internal.{self.auth_domain}"

    @property
    def room(self) -> str:
        return ROOMS[self.kind]

    @property
    def jid(self) -> str:
        return f"{self.room}@{self.muc}"


@dataclass
class JitsiLayout:
    plan: JitsiPlan
    main: Side
    tenants: list[Side]
    breweries: dict[str, Brewery]
    shards: list[int] = field(default_factory=list)   # [jitsi] shards: the room shards' instances
    visitors: list[int] = field(default_factory=list)  # [jitsi] visitors: node v's instance

    @property
    def service_instance(self) -> Optional[int]:
        return self.plan.service_instance()


def layout(jp: JitsiPlan, names: list[str]) -> JitsiLayout:
    n = len(names)
    main = Side(jp.domain, jp.client)
    pool = pool_of(jp, n)
    if jp.shards:   # every room shard hosts every tenant (hosts() adds the replicas)
        tenants = [Side(t, 0, tenant=True) for t in jp.tenants]
    else:
        tenants = [Side(t, pool[rendezvous_pick(t, [names[i] for i in pool])], tenant=True)
                   for t in jp.tenants]
    brews = {}
    for k in KINDS:
        i = getattr(jp, k)
        if i is None:
            continue
        brews[k] = Brewery(k, i, main.auth_domain if i == jp.client else jp.service_domain)
    return JitsiLayout(jp, main, tenants, brews, list(range(jp.shards or 0)),
                       list(range(n - jp.visitors, n)) if jp.shards else [])


def hosts(jl: JitsiLayout) -> list[HostPlan]:
    """The preset's [[host]]s, in a stable order."""
    jp = jl.plan
    out: list[HostPlan] = []

    def side(s: Side, with_breweries: bool) -> None:
        n0 = len(out)
        side_(s, with_breweries)
        if jl.shards:     # every room shard hosts the client side and each tenant's
            for h in out[n0:]:
                h.replicas = [i for i in jl.shards if i != h.instance]
                h.origin = re.sub(r"^\[jitsi\] (domain|tenants \([^)]*\))", r"\g<0> (shards)",
                                  h.origin)

    def side_(s: Side, with_breweries: bool) -> None:
        origin = f"[jitsi] tenants ({s.domain})" if s.tenant else "[jitsi] domain"
        role = "jitsi-tenant" if s.tenant else ""
        web = ["bosh", "websocket"] if jp.http_port and (jl.shards or not s.tenant) else []
        mods = web + ([] if s.tenant else [m for m in jp.client_modules if m not in web])
        # Jitsi's conference MUC: rooms unlocked at once, and with room shards only the focus
        # (a global admin) creates them, as jicofo does in a stock install.
        # Jitsi's focus component: Jitsi Meet sends its conference request to focus.D, which
        # forwards it to the focus user (jicofo's Client connection), as in a stock install.
        focus = ([(f"focus.{s.domain}", "client_proxy", {"target_address": f"focus@{s.auth_domain}"})]
                 if jp.focus_component else [])
        out.append(HostPlan(s.domain, s.instance, jp.auth, muc=[s.conference], modules=mods,
                            origin=origin, role=role, components=focus,
                            plugin_paths=[jp.prosody_plugins] if focus else [],
                            muc_options={"restrict_room_creation": True} if jl.shards else {}))
        if jp.guests:
            out.append(HostPlan(s.guest, s.instance, AUTH_ANONYMOUS, modules=list(web),
                                origin=origin + " guests", role=role))
        here = [b for b in jl.breweries.values() if with_breweries and b.instance == s.instance]
        focus_opts = _focus_login_opts(jl)
        out.append(HostPlan(s.auth_domain, s.instance, AUTH_INTERNAL,
                            muc=[f"internal.{s.auth_domain}"] if here else [],
                            accounts=["focus"] + [b.kind for b in here], admins=["focus"],
                            options=focus_opts,
                            muc_options={"muc_room_default_public_jids": True} if here else {},
                            origin=origin + " (auth domain)", role=role))
        if not s.tenant and "jibri" in jl.breweries:
            out.append(HostPlan(f"recorder.{s.domain}", s.instance, AUTH_INTERNAL,
                                accounts=["recorder"], origin="[jitsi] jibri (recorder domain)"))

    side(jl.main, with_breweries=True)
    s = jl.service_instance
    if s is not None:
        kinds = [b.kind for b in jl.breweries.values() if b.instance == s]
        out.append(HostPlan(jp.service_domain, s, AUTH_INTERNAL, muc=[f"internal.{jp.service_domain}"],
                            accounts=kinds + ["focus"], admins=["focus"],
                            muc_options={"muc_room_default_public_jids": True},
                            origin="[jitsi] service_domain"))
    for t in jl.tenants:
        side(t, with_breweries=False)
    for v, i in enumerate(jl.visitors):
        origin = f"[jitsi] visitors ({jp.vnode(v)})"
        out.append(HostPlan(jp.visitor_domain(v), i, AUTH_ANONYMOUS,
                            muc=[f"conference.{jp.visitor_domain(v)}"], modules=["bosh", "websocket"],
                            muc_options={"restrict_room_creation": True}, origin=origin,
                            role="jitsi-visitor"))
        # the jicofos of the node's shard log in here (its own port), as focus@auth.D
        out.append(HostPlan(jl.main.auth_domain, i, AUTH_INTERNAL, accounts=["focus"],
                            admins=["focus"], options=_focus_login_opts(jl), routed=False,
                            origin=origin + " (auth domain)", role="jitsi-visitor"))
    return out


def _focus_login_opts(jl: JitsiLayout) -> dict:
    """tls = "terminate" with shards: the jicofos log in on a loopback c2s port in plaintext;
    only the auth domains allow that, every other host keeps TLS-only."""
    return ({"c2s_require_encryption": False, "allow_unencrypted_plain_auth": True}
            if jl.shards and jl.plan.jicofo_port else {})


# --------------------------------------------------------------------------------------------
# snippets (HOCON for jicofo, jvb, jibri; Java properties for jigasi)

def hq(s: str) -> str:
    """A HOCON quoted string (JSON string syntax is valid HOCON)."""
    return json.dumps(s)


HEADER = ("# Generated by xmpp-shard-deploy from {src}. Contains passwords: keep it mode 0600.\n"
          "# Merge into {target}; every XMPP connection goes to the proxy ({host}:{port}),\n"
          "# which routes it by domain to the right Prosody instance.\n")


@dataclass
class Endpoint:
    host: str
    port: int
    use_tls: bool
    verify: bool


def jicofo_conf(jl: JitsiLayout, side: Side, ep: Endpoint, pw, src: str,
                shard: Optional["ShardJicofo"] = None) -> str:
    """jicofo.conf for the jicofo serving `side` (the main domain, or one tenant); with `shard`,
    the jicofo of one room shard: its Client connection goes straight to that shard."""
    main = jl.main
    own_instance = side.instance
    resource = "focus" if not side.tenant else f"focus-{side.domain}"
    client_resource = resource
    cep = ep
    if shard is not None:
        # Service: unique on the shared brewery. Client: "focus" on every shard (each has its
        # own Prosody), where the focus component of Jitsi Meet (or a client) reaches it.
        resource, client_resource = shard.service_resource, "focus"
        cep = shard.client
    brew = dict(jl.breweries)
    if side.tenant:
        brew = {k: b for k, b in brew.items() if k == "jvb"}
    service = next((b for b in brew.values() if b.instance != own_instance), None)
    L = [HEADER.format(src=src, target="/etc/jitsi/jicofo/jicofo.conf" if not side.tenant
                       else f"the jicofo.conf of the jicofo serving {side.domain}",
                       host=ep.host, port=ep.port).rstrip("\n")]
    if shard is not None:
        L = [f"# Generated by xmpp-shard-deploy from {src}. Contains passwords: keep it mode 0600."]
    if side.tenant:
        L.append(f"# Tenant {side.domain}: its own jicofo; the bridges are shared (JvbBrewery on "
                 f"instance {brew['jvb'].instance}).")
    if shard is not None:
        L += [f"# Room shard {shard.index} ({shard.name}) of {len(jl.shards)}: this jicofo's Client "
              f"connection goes straight to",
              f"# {shard.name}'s c2s port {cep.host}:{cep.port} (every shard hosts "
              f"{side.domain}, so the proxy could not",
              "# tell the jicofos apart); its Service connection goes through the proxy. Install as",
              f"# /etc/jitsi/jicofo/jicofo-{shard.unit}.conf and run it as jicofo@{shard.unit} "
              "(systemd/jicofo@.service).",
              '# It includes the stock jicofo.conf and overrides the connections and the REST port.',
              'include file("/etc/jitsi/jicofo/jicofo.conf")']
    L += ["jicofo {", "  xmpp {", "    client {",
          "      enabled = true",
          f"      hostname = {hq(cep.host)}",
          f"      port = {cep.port}",
          f"      domain = {hq(side.auth_domain)}",
          f"      xmpp-domain = {hq(side.domain)}",
          '      username = "focus"',
          f"      password = {hq(pw(f'focus@{side.auth_domain}'))}",
          f"      conference-muc-jid = {hq(side.conference)}"]
    if shard is not None:
        L.append(f"      resource = {hq(client_resource)}")
    L += [f"      disable-certificate-verification = {str(not cep.verify).lower()}",
          f"      use-tls = {str(cep.use_tls).lower()}",
          "    }"]
    if service is not None:
        L += ["    service {",
              "      enabled = true",
              f"      hostname = {hq(ep.host)}",
              f"      port = {ep.port}",
              f"      domain = {hq(service.auth_domain)}",
              f"      xmpp-domain = {hq(service.auth_domain)}",
              '      username = "focus"',
              f"      resource = {hq(resource)}",
              f"      password = {hq(pw(f'focus@{service.auth_domain}'))}",
              f"      disable-certificate-verification = {str(not ep.verify).lower()}",
              f"      use-tls = {str(ep.use_tls).lower()}",
              "    }"]
    if "jibri" in brew and not side.tenant:
        L.append(f"    trusted-domains = [ {hq('recorder.' + main.domain)} ]")
    vis = shard.visitors if shard is not None and not side.tenant else []
    if vis:
        # Jitsi's visitors: one connection per node of this shard, as focus@auth.D on its port
        L.append("    visitors {")
        for node, vep in vis:
            vd = f"{node}.{side.domain}"
            L += [f"      {node} {{", "        enabled = true",
                  f"        conference-service = {hq('conference.' + vd)}",
                  f"        hostname = {hq(vep.host)}", f"        port = {vep.port}",
                  f"        domain = {hq(side.auth_domain)}", f"        xmpp-domain = {hq(vd)}",
                  '        username = "focus"',
                  f"        password = {hq(pw(f'focus@{side.auth_domain}'))}",
                  f"        disable-certificate-verification = {str(not vep.verify).lower()}",
                  f"        use-tls = {str(vep.use_tls).lower()}", "      }"]
        L.append("    }")
    L.append("  }")
    if vis:
        L += ["  visitors {", "    enabled = true", "  }"]
    for kind, section in (("jvb", "bridge"), ("jibri", "jibri"), ("jigasi", "jigasi")):
        b = brew.get(kind)
        if b is None:
            continue
        conn = "Client" if b.instance == own_instance else "Service"
        L += [f"  {section} {{",
              f"    brewery-jid = {hq(b.jid)}",
              f"    xmpp-connection-name = {conn}",
              "  }"]
    if shard is not None:
        L += ["  # one REST/health port per jicofo on this host",
              "  rest {", f"    port = {shard.rest_port}", "  }"]
    L += ["}", ""]
    return "\n".join(L)


@dataclass
class ShardJicofo:
    """A jicofo of room shard `index` (instance `name`) for one side (the meeting domain or a
    tenant), reaching its shard at `client`; its files and unit are jicofo-`unit`."""
    index: int
    name: str
    client: Endpoint
    rest_port: int
    unit: str = ""
    service_resource: str = ""
    side: Optional[Side] = None
    visitors: list = field(default_factory=list)   # [(vnode, Endpoint)]: this shard's nodes


JICOFO_REST_PORT = 8888


def shard_jicofos(jl: JitsiLayout, instances) -> list[ShardJicofo]:
    """One jicofo per room shard and side (the meeting domain, then each tenant): its Client
    connection goes straight to its shard (the c2s port, or with [plan] tls = "terminate" the
    shard's loopback jicofo_port), REST ports 8888 + j over all of them. `instances`: the
    layout's InstanceSpecs."""
    jp = jl.plan
    out = []
    for j, side in enumerate([jl.main] + jl.tenants):
        for k in jl.shards:
            spec = instances[k]
            ep = (Endpoint("127.0.0.1", jp.jicofo_port + k, False, False) if jp.jicofo_port
                  else Endpoint(spec.interface, spec.port, False, False))
            unit = spec.name if not side.tenant else f"{spec.name}-{side.domain}"
            vis = [] if side.tenant else [
                (jp.vnode(v), Endpoint("127.0.0.1", jp.jicofo_port + jp.shards + v, False, False)
                 if jp.jicofo_port else Endpoint(instances[i].interface, instances[i].port, False, False))
                for v, i in enumerate(jl.visitors) if jp.visitor_shard(v) == k]
            out.append(ShardJicofo(k, spec.name, ep, JICOFO_REST_PORT + j * len(jl.shards) + k,
                                   unit, f"focus-{unit}", side, vis))
    return out


def jvb_conf(jl: JitsiLayout, k: int, ep: Endpoint, pw, src: str) -> str:
    b = jl.breweries["jvb"]
    nick = f"jvb-{k}"
    L = [HEADER.format(src=src, target=f"/etc/jitsi/videobridge/jvb.conf of bridge {k}",
                       host=ep.host, port=ep.port).rstrip("\n"),
         "# muc_nickname must be unique per bridge (one file per bridge: [jitsi] bridges).",
         "videobridge {", "  apis {", "    xmpp-client {", "      configs {",
         "        xmpp-shard {",
         f"          hostname = {hq(ep.host)}",
         f"          port = {ep.port}",
         f"          domain = {hq(b.auth_domain)}",
         '          username = "jvb"',
         f"          password = {hq(pw(f'jvb@{b.auth_domain}'))}",
         f"          muc_jids = {hq(b.jid)}",
         f"          muc_nickname = {hq(nick)}",
         f"          disable_certificate_verification = {str(not ep.verify).lower()}",
         "        }", "      }", "    }", "  }", "}", ""]
    return "\n".join(L)


def jibri_conf(jl: JitsiLayout, ep: Endpoint, pw, src: str) -> str:
    b = jl.breweries["jibri"]
    main = jl.main
    L = [HEADER.format(src=src, target="/etc/jitsi/jibri/jibri.conf", host=ep.host,
                       port=ep.port).rstrip("\n"),
         "# nickname must be unique per Jibri.",
         "jibri {", "  api {", "    xmpp {", "      environments = [", "        {",
         '          name = "xmpp-shard"',
         f"          xmpp-server-hosts = [ {hq(ep.host)} ]",
         f"          xmpp-domain = {hq(main.domain)}",
         "          control-login {",
         f"            domain = {hq(b.auth_domain)}",
         f"            port = {ep.port}",
         '            username = "jibri"',
         f"            password = {hq(pw(f'jibri@{b.auth_domain}'))}",
         "          }",
         "          control-muc {",
         f"            domain = {hq(b.muc)}",
         f"            room-name = {hq(b.room)}",
         '            nickname = "jibri-1"',
         "          }",
         "          call-login {",
         f"            domain = {hq('recorder.' + main.domain)}",
         '            username = "recorder"',
         f"            password = {hq(pw(f'recorder@recorder.{main.domain}'))}",
         "          }",
         '          strip-from-room-domain = "conference."',
         "          usage-timeout = 0",
         f"          trust-all-xmpp-certs = {str(not ep.verify).lower()}",
         "        }", "      ]", "    }", "  }", "}", ""]
    return "\n".join(L)


def jigasi_properties(jl: JitsiLayout, ep: Endpoint, pw, src: str) -> str:
    import base64
    b = jl.breweries["jigasi"]
    main = jl.main
    acc = "net.java.sip.communicator.impl.protocol.jabber.acc-xmpp-shard"
    jid = f"jigasi@{b.auth_domain}"
    L = [HEADER.format(src=src, target="/etc/jitsi/jigasi/sip-communicator.properties",
                       host=ep.host, port=ep.port).rstrip("\n"),
         "# The control account that joins the Jigasi brewery (PASSWORD is base64, as Jigasi reads it).",
         "org.jitsi.jigasi.BREWERY_ENABLED=true",
         f"{acc}=acc-xmpp-shard",
         f"{acc}.ACCOUNT_UID=Jabber:{jid}@{ep.host}",
         f"{acc}.USER_ID={jid}",
         f"{acc}.PASSWORD={base64.b64encode(pw(jid).encode()).decode()}",
         f"{acc}.IS_SERVER_OVERRIDDEN=true",
         f"{acc}.SERVER_ADDRESS={ep.host}",
         f"{acc}.SERVER_PORT={ep.port}",
         f"{acc}.ALLOW_NON_SECURE={str(not ep.use_tls).lower()}",
         f"{acc}.AUTO_GENERATE_RESOURCE=true",
         f"{acc}.PROTOCOL=Jabber",
         f"{acc}.IS_ACCOUNT_DISABLED=false",
         f"{acc}.BREWERY={b.jid}",
         f"{acc}.DOMAIN_BASE={main.domain}",
         ""]
    return "\n".join(L)


def http_lua(port: int, default_host: str, *, trusted: bool = True,
             note: Optional[str] = None) -> list[str]:
    """Global lines for an instance serving WebSocket and BOSH (`bosh`/`websocket` under its
    hosts) on a loopback HTTP port, behind the proxy's HTTP listener or a web server that did the
    TLS. The one place these settings are written: [jitsi] http_port, [jitsi] shards and
    visitors, and [[host]] http (plan.py). `trusted`: the proxy (or nginx) on loopback sends
    X-Forwarded-For; `note`: a comment before the consider_*_secure lines."""
    L = [f"http_ports = {{ {int(port)} }}",
         'http_interfaces = { "127.0.0.1" }',
         f"http_default_host = {lua_str(default_host)}"]
    if trusted:
        L.append('trusted_proxies = { "127.0.0.1" }')
    if note:
        L.append(f"-- {note}")
    return L + ["consider_bosh_secure = true", "consider_websocket_secure = true"]


def client_instance_lua(jp: JitsiPlan) -> str:
    """Global lines for the client instance: Prosody's HTTP server for BOSH and WebSocket on
    loopback (the web server in front, e.g. Jitsi's nginx, terminates TLS and proxies to it)."""
    if not jp.http_port:
        return ""
    return "\n".join(["-- [jitsi] http_port: BOSH and WebSocket for the browsers, behind the web server."]
                     + http_lua(jp.http_port, jp.domain, trusted=False))


def shard_instance_lua(jp: JitsiPlan, k: int) -> str:
    """Global lines for room shard k: BOSH and WebSocket on its own loopback HTTP port, behind
    the proxy's HTTP listener (which hashes ?room= over the shards) and the web server. With
    [jitsi] jicofo_port ([plan] tls = "terminate"), also a loopback c2s port for its jicofos."""
    L = [f"-- [jitsi] shards: room shard {k} of {jp.shards}; the proxy's HTTP listener "
         f"(port {jp.http_port}) hashes rooms over the shards."]
    L += http_lua(jp.shard_http_port + k, jp.domain, note=SECURE_NOTE)
    if jp.jicofo_port:
        L += ["-- This shard's jicofos log in here (plaintext, loopback; only the auth domains allow",
              "-- it). Clients come through the proxy's TLS to mod_xmpp_shard's port.",
              f"c2s_ports = {{ {jp.jicofo_port + k} }}",
              'c2s_interfaces = { "127.0.0.1" }']
    return "\n".join(L)


SECURE_NOTE = "the proxy (or nginx) did the TLS: Prosody counts these sessions as secure"


def visitor_instance_lua(jp: JitsiPlan, v: int) -> str:
    """Global lines for visitor node v: BOSH and WebSocket for vN.D on its loopback HTTP port
    (the proxy sends ?vnode=vN here), and with [jitsi] jicofo_port a loopback c2s port for the
    jicofos of its shard."""
    L = [f"-- [jitsi] visitors: visitor node {jp.vnode(v)} of room shard {jp.visitor_shard(v)}; the "
         f"proxy sends ?vnode={jp.vnode(v)} here."]
    L += http_lua(jp.visitor_http_ports()[v], jp.visitor_domain(v))
    if jp.jicofo_port:
        L += ["-- The jicofos of its shard log in here (plaintext, loopback; only auth. allows it).",
              f"c2s_ports = {{ {jp.visitor_jicofo_ports()[v]} }}",
              'c2s_interfaces = { "127.0.0.1" }']
    return "\n".join(L)


def drop_focus_components(plan) -> list[str]:
    """Remove the focus.D client_proxy components from a parsed plan (`run` does when
    jitsi-meet-prosody's module is not installed); returns their domains."""
    gone = []
    for h in plan.hosts:
        keep = [c for c in h.components if c[1] != "client_proxy"]
        gone += [c[0] for c in h.components if c[1] == "client_proxy"]
        if len(keep) != len(h.components):
            h.components = keep
            h.plugin_paths = [] if not keep else h.plugin_paths
    return gone


def client_proxy_found(jp: JitsiPlan) -> bool:
    """Whether Prosody would find mod_client_proxy (in [jitsi] prosody_plugins or its own
    module directory)."""
    from pathlib import Path
    for d in (jp.prosody_plugins, "/usr/lib/prosody/modules"):
        if (Path(d) / "mod_client_proxy.lua").is_file() or \
                (Path(d) / "mod_client_proxy" / "mod_client_proxy.lua").is_file():
            return True
    return False


NGINX_UPSTREAM = "xmpp_shard"


def nginx_upstream(jp: JitsiPlan, src: str, host: str = "127.0.0.1") -> str:
    """The `upstream` block naming the proxy's HTTP listener, for the http level of nginx's
    config (outside `server`: Debian's nginx.conf includes /etc/nginx/conf.d/*.conf there, or
    paste it at the top of the site file). `keepalive` lets nginx reuse its connections to the
    proxy for BOSH, which the proxy routes request by request (docs/CONFIG.md, "HTTP
    listeners")."""
    return "\n".join([
        f"# Generated by xmpp-shard-deploy from {src}: [jitsi] shards = {jp.shards}.",
        "# The proxy's HTTP listener, for the /xmpp-websocket and /http-bind locations of",
        "# nginx-xmpp-shard.conf. It goes outside `server`, at nginx's http level: copy it to",
        "# /etc/nginx/conf.d/xmpp-shard-upstream.conf (Debian's nginx.conf includes that directory",
        "# there), or paste it at the top of Jitsi's site file.",
        f"upstream {NGINX_UPSTREAM} {{",
        f"    server {host}:{jp.http_port};",
        "    keepalive 32;",
        "}",
        "",
    ])


def nginx_snippet(jp: JitsiPlan, src: str, tls: bool = False) -> str:
    """The /xmpp-websocket and /http-bind locations of Jitsi's nginx site, pointed at the proxy's
    HTTP listener through the `upstream` of nginx_upstream() (the static files stay with nginx).
    `tls`: the listener terminates TLS ([plan] tls = "terminate"), so nginx speaks HTTPS to it,
    with the Host as SNI (the proxy picks the certificate by it)."""
    up = f"{'https' if tls else 'http'}://{NGINX_UPSTREAM}"
    ssl = (["    proxy_ssl_server_name on;", "    proxy_ssl_name $host;"] if tls else [])
    return "\n".join([
        f"# Generated by xmpp-shard-deploy from {src}: [jitsi] shards = {jp.shards}.",
        f"# Replaces the /xmpp-websocket and /http-bind locations of Jitsi's site for {jp.domain}",
        "# (/etc/nginx/sites-available/" + jp.domain + ".conf): include it in its `server { listen 443 ssl; ... }`",
        "# block and delete the site's own two locations. The proxy hashes ?room= over the room shards.",
        f"# The upstream {NGINX_UPSTREAM} is in nginx-xmpp-shard-upstream.conf (outside `server`).",
        *(["# The proxy's HTTP listener terminates TLS too ([plan] tls = \"terminate\"): browsers may",
           f"# also use wss://{jp.domain}:{jp.http_port}/xmpp-websocket directly."] if tls else []),
        "location = /xmpp-websocket {",
        f"    proxy_pass {up};",
        *ssl,
        "    proxy_http_version 1.1;",
        "    proxy_set_header Upgrade $http_upgrade;",
        '    proxy_set_header Connection "upgrade";',
        "    proxy_set_header Host $http_host;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    proxy_read_timeout 900s;",
        "    tcp_nodelay on;",
        "}",
        "location = /http-bind {",
        f"    proxy_pass {up};",
        *ssl,
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";',
        "    proxy_set_header Host $http_host;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    proxy_read_timeout 150s;",
        "}",
        "",
    ])
