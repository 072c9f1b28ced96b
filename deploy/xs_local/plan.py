"""Shard plans: the one parser of deploy/plans/*.toml, and their expansion into Prosody
instance specs, proxy routes and accounts. The format is documented in deploy/README.md
("The shard plan") and summarised at the top of deploy/plans/local.toml; keep them in step.

    plan = load_plan("deploy/plans/jitsi.toml")           # PlanError lists every problem
    lay = expand(plan, out=Path("/etc/xmpp-shard"))        # managed paths under out
    lay = expand(plan, ports, listen_port=5222)            # dev layout (tests, old callers)
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from . import jitsi as jitsi_mod
from .planmodel import (AUTHS, NAME_RE, HostPlan, PlanError, Problems, check_keys, is_int,
                        norm_domain, str_list)
from .prosody import AUTH_ANONYMOUS, AUTH_INTERNAL, Account, Component, InstanceSpec, Muc, VirtualHost
from .proxyconf import ProxyConfig
from . import tls as tls_mod
from .tls import tls_profile

__all__ = ["PlanError", "HostPlan", "InstancePlan", "Plan", "Layout", "parse_plan", "load_plan",
           "expand", "instance_name", "default_cpus"]

DEFAULT_BASE_PORT = 15222
PATH_KEYS = ("data", "log", "pidfile")
DEFAULT_PATHS = {"data": "{dir}/data", "log": "{dir}/log/prosody.log",
                 "pidfile": "{dir}/run/prosody.pid"}
PLACEHOLDERS = ("{name}", "{index}", "{dir}", "{out}")
TOP_KEYS = {"plan", "instance", "host", "tenants", "jitsi", "certs", "proxy", "backends",
            "kubernetes"}   # [kubernetes]: read by kubernetes.py (generate --target kubernetes)
PLAN_KEYS = {"name", "instances", "listen", "port", "base_port", "interface", "cores", "out",
             "data", "log", "pidfile", "proxy_bin", "prosody_bin", "lua", "tls", "direct_tls_port",
             "prosody_modules", "http_port", "http_base_port"}
INSTANCE_KEYS = {"index", "name", "port", "core", "tcp_backlog", "data", "log", "pidfile", "lua"}
HOST_KEYS = {"domain", "instance", "auth", "muc", "accounts", "admins", "modules", "options", "lua",
             "http"}
DEFAULT_HTTP_PORT = 5280    # [plan] http_port: the proxy's HTTP listener with [[host]] http
WEB_MODULES = ("bosh", "websocket")
CERT_MODES = ("self-signed", "ca", "existing")


@dataclass
class InstancePlan:
    """[[instance]]: overrides for one instance."""
    index: int
    name: Optional[str] = None
    port: Optional[int] = None
    core: Optional[int] = None
    tcp_backlog: Optional[int] = None
    paths: dict = field(default_factory=dict)     # data / log / pidfile templates
    lua: str = ""


@dataclass
class CertsPlan:
    mode: str = "self-signed"          # "self-signed", "ca" (sign with ca_cert/ca_key), "existing"
    dir: Optional[str] = None          # existing: DOMAIN.crt/DOMAIN.key live here
    ca_cert: Optional[str] = None      # ca: default {out}/certs/ca.crt (made if missing)
    ca_key: Optional[str] = None
    days: int = 825


@dataclass
class Plan:
    instances: int
    listen: str = "127.0.0.1"
    port: int = 5222
    hosts: list[HostPlan] = field(default_factory=list)
    tenant_domains: Optional[list[str]] = None      # None: no [tenants] table, no "*" route
    tenant_accounts: list[str] = field(default_factory=list)
    proxy: dict = field(default_factory=dict)       # [proxy] table, passed to the proxy as is
    source: Optional[Path] = None
    name: str = "shard"
    base_port: int = DEFAULT_BASE_PORT
    interface: str = "127.0.0.1"
    cores: Optional[int] = None                     # None: this machine's
    out: Optional[str] = None
    paths: dict = field(default_factory=lambda: dict(DEFAULT_PATHS))
    proxy_bin: str = "/usr/bin/xmpp-shard-proxy"
    prosody_bin: str = "/usr/bin/prosody"
    lua: str = ""
    instance_plans: dict[int, InstancePlan] = field(default_factory=dict)
    jitsi: Optional[jitsi_mod.JitsiPlan] = None
    certs: CertsPlan = field(default_factory=CertsPlan)
    backends: dict = field(default_factory=dict)    # [backends]: extra keys for every [[backend]]
    tls: str = "none"                               # [plan] tls: "terminate" or "none" (tls.py)
    direct_tls_port: int = 0                        # [plan] direct_tls_port: 0 = no Direct TLS
    prosody_modules: Optional[str] = None           # plugin_paths for mod_xmpp_shard (tls.py)
    visitor_nodes: int = 0                          # [jitsi] visitors: the last ones are prosody-vN
    http_port: int = 0                              # [plan] http_port: the proxy's HTTP listener
                                                    # for [[host]] http (0: none)
    http_base_port: int = 0                         # [plan] http_base_port: instance i's HTTP port
                                                    # is http_base_port + i

    def http_instances(self) -> list[int]:
        """The instances serving WebSocket and BOSH for [[host]] http domains."""
        return sorted({h.instance for h in self.hosts if h.http})

    def instance_http_port(self, i: int) -> int:
        return self.http_base_port + i

    def instance_names(self) -> list[str]:
        first = self.instances - self.visitor_nodes
        return [(self.instance_plans.get(i) or InstancePlan(i)).name
                or (instance_name(i) if i < first else f"prosody-v{i - first + 1}")
                for i in range(self.instances)]

    def instance_ports(self) -> list[int]:
        return [(self.instance_plans.get(i) or InstancePlan(i)).port or self.base_port + i
                for i in range(self.instances)]

    def pool(self) -> list[int]:
        """Instances serving "*": those no [[host]] names (Jitsi tenants aside), or every
        instance if none is left; with [jitsi] shards, the room shards (never the brewery)."""
        if self.jitsi is not None and self.jitsi.shards:
            return list(range(self.jitsi.shards))
        owned = {i for h in self.hosts if h.role != "jitsi-tenant" for i in h.all_instances}
        rest = [i for i in range(self.instances) if i not in owned]
        return rest or list(range(self.instances))

    def jitsi_layout(self) -> Optional[jitsi_mod.JitsiLayout]:
        return jitsi_mod.layout(self.jitsi, self.instance_names()) if self.jitsi else None


@dataclass
class Layout:
    """A plan made concrete: ports chosen, passwords generated, paths resolved."""
    plan: Plan
    instances: list[InstanceSpec]
    proxy: ProxyConfig
    accounts: list[Account]     # each account once; a tenant account exists on every pool
                                # instance, with the same password
    jitsi: Optional[jitsi_mod.JitsiLayout] = None
    out: Optional[Path] = None  # managed layout root (None: dev layout)
    listen_port: int = 5222

    @property
    def direct_tls_port(self) -> int:
        """The proxy's Direct TLS port (0: none)."""
        for l in self.proxy.listeners:
            if l.get("direct_tls"):
                return int(str(l["bind"]).rpartition(":")[2])
        return 0

    def password(self, jid: str) -> str:
        for a in self.accounts:
            if a.jid == jid:
                return a.password
        raise KeyError(f"no account {jid} in this plan")


def default_cpus() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def _port(v, key: str, problems: Problems, allow_zero: bool = False) -> Optional[int]:
    lo = 0 if allow_zero else 1
    if not is_int(v) or not (lo <= v <= 65535):
        problems.add(key, f"must be a port number {lo}..65535, got {v!r}")
        return None
    return v


def _template(v, key: str, problems: Problems) -> Optional[str]:
    if not isinstance(v, str) or not v:
        problems.add(key, f"must be a path (string), got {v!r}")
        return None
    probe = v
    for ph in PLACEHOLDERS:
        probe = probe.replace(ph, "")
    if "{" in probe or "}" in probe:
        problems.add(key, f"{v!r}: only the placeholders {', '.join(PLACEHOLDERS)} are known")
        return None
    if not (v.startswith("/") or v.startswith("{dir}") or v.startswith("{out}")):
        problems.add(key, f"{v!r} must be absolute or start with {{dir}} or {{out}}")
        return None
    return v


def _lua(v, key: str, problems: Problems) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        problems.add(key, f"must be a string of Lua lines, got {v!r}")
        return ""
    return v


def _listen_host(listen: str) -> str:
    return listen.strip("[]")


def _addresses_overlap(a: str, b: str) -> bool:
    wild = ("0.0.0.0", "::", "")
    return a in wild or b in wild or a == b


def parse_plan(data: dict, ncpu: Optional[int] = None, source: Optional[Path] = None) -> Plan:
    """Check a plan (a parsed TOML document) and return it; PlanError lists every problem."""
    pr = Problems(str(source) if source else "plan")
    check_keys(data, TOP_KEYS, "", pr)
    p = data.get("plan", {})
    if not check_keys(p, PLAN_KEYS, "[plan]", pr):
        p = {}

    n = p.get("instances", "auto")
    if n == "auto":
        n = max(2, ncpu if ncpu is not None else default_cpus())
    if not is_int(n) or n < 1 or n > 256:
        pr.add("[plan] instances", f"must be \"auto\" or an integer in 1..256, got {n!r}")
        pr.raise_if_any()
    plan = Plan(instances=n, source=source)
    plan.name = p.get("name", source.stem if source else "shard")
    if not isinstance(plan.name, str) or not NAME_RE.fullmatch(plan.name):
        pr.add("[plan] name", f"must match {NAME_RE.pattern}, got {plan.name!r}")
    plan.port = _port(p.get("port", 5222), "[plan] port", pr, allow_zero=True) or 0
    plan.base_port = _port(p.get("base_port", DEFAULT_BASE_PORT), "[plan] base_port", pr) or DEFAULT_BASE_PORT
    for key in ("listen", "interface", "out", "proxy_bin", "prosody_bin"):
        if key in p:
            v = p[key]
            if not isinstance(v, str) or not v:
                pr.add(f"[plan] {key}", f"must be a non-empty string, got {v!r}")
            else:
                setattr(plan, key, v)
    if plan.out is not None and not plan.out.startswith("/"):
        pr.add("[plan] out", f"must be an absolute path, got {plan.out!r}")
    cores = p.get("cores", "auto")
    if cores == "auto":
        plan.cores = None
    elif is_int(cores) and 1 <= cores <= 4096:
        plan.cores = cores
    else:
        pr.add("[plan] cores", f"must be \"auto\" or a positive integer, got {cores!r}")
    machine_cores = plan.cores or ncpu or default_cpus()
    for key in PATH_KEYS:
        if key in p:
            t = _template(p[key], f"[plan] {key}", pr)
            if t:
                plan.paths[key] = t
    plan.lua = _lua(p.get("lua"), "[plan] lua", pr)

    # [[instance]]
    insts = data.get("instance", [])
    if not isinstance(insts, list):
        pr.add("[[instance]]", "must be an array of tables ([[instance]])")
        insts = []
    for k, t in enumerate(insts):
        key = f"[[instance]] #{k + 1}"
        if not check_keys(t, INSTANCE_KEYS, key, pr):
            continue
        idx = t.get("index")
        if not is_int(idx) or not (0 <= idx < n):
            pr.add(f"{key} index", f"must be an integer in 0..{n - 1} (the instance it "
                                   f"describes), got {idx!r}")
            continue
        key = f"{key} (index {idx})"
        if idx in plan.instance_plans:
            pr.add(f"{key} index", f"instance {idx} is described twice")
            continue
        ip = InstancePlan(idx)
        if "name" in t:
            if not isinstance(t["name"], str) or not NAME_RE.fullmatch(t["name"]):
                pr.add(f"{key} name", f"must match {NAME_RE.pattern}, got {t['name']!r}")
            else:
                ip.name = t["name"]
        if "port" in t:
            ip.port = _port(t["port"], f"{key} port", pr)
        if "core" in t:
            c = t["core"]
            if not is_int(c) or c < 0:
                pr.add(f"{key} core", f"must be a core number >= 0, got {c!r}")
            elif c >= machine_cores:
                what = "[plan] cores" if plan.cores else "this machine"
                pr.add(f"{key} core", f"core {c} is beyond the machine's count: {what} has "
                                      f"{machine_cores} core(s), 0..{machine_cores - 1}")
            else:
                ip.core = c
        if "tcp_backlog" in t:
            b = t["tcp_backlog"]
            if not is_int(b) or not (1 <= b <= 65535):
                pr.add(f"{key} tcp_backlog", f"must be an integer in 1..65535, got {b!r}")
            else:
                ip.tcp_backlog = b
        for pk in PATH_KEYS:
            if pk in t:
                tv = _template(t[pk], f"{key} {pk}", pr)
                if tv:
                    ip.paths[pk] = tv
        ip.lua = _lua(t.get("lua"), f"{key} lua", pr)
        plan.instance_plans[idx] = ip

    jraw = data.get("jitsi")
    if isinstance(jraw, dict) and is_int(jraw.get("visitors")) and 0 < jraw["visitors"] < n:
        plan.visitor_nodes = jraw["visitors"]      # their default names (checked in jitsi.py)
    names = plan.instance_names()
    seen_names: dict[str, int] = {}
    for i, nm in enumerate(names):
        if nm in seen_names:
            pr.add(f"[[instance]] (index {i}) name", f"{nm!r} is also the name of instance {seen_names[nm]}")
        seen_names.setdefault(nm, i)

    # ports: instances among themselves, and against the proxy's listener and metrics
    ports = plan.instance_ports()
    if max(ports) > 65535:
        pr.add("[plan] base_port", f"{plan.base_port} + {n - 1} instances runs past 65535")
    owner: dict[int, str] = {}
    for i, port in enumerate(ports):
        ipl = plan.instance_plans.get(i)
        key = (f"[[instance]] (index {i}) port" if ipl and ipl.port
               else f"[plan] base_port (instance {i}: base_port + {i})")
        if port in owner:
            pr.add(key, f"port {port} of {names[i]} clashes with {owner[port]}")
        else:
            owner[port] = f"{names[i]}'s port ({key})"
    if plan.port and _addresses_overlap(_listen_host(plan.listen), plan.interface) and plan.port in owner:
        pr.add("[plan] port", f"the proxy's port {plan.port} clashes with {owner[plan.port]}")

    # hosts: [jitsi] preset first, then [[host]]
    hosts_raw = data.get("host", [])
    if not isinstance(hosts_raw, list):
        pr.add("[[host]]", "must be an array of tables ([[host]])")
        hosts_raw = []
    claimed: dict[str, str] = {}

    def claim(domain: str, what: str) -> None:
        if domain in claimed:
            why = ("; every room shard hosts it and the proxy routes it to the shards, so no "
                   "other route may own it" if "(shards)" in claimed[domain] else "")
            pr.add(what, f"{domain} is owned twice ({claimed[domain]} and {what}){why}")
        else:
            claimed[domain] = what

    if "jitsi" in data:
        plan.jitsi = jitsi_mod.parse_jitsi(data["jitsi"], n, pr)
        if plan.jitsi is not None and plan.jitsi.shards:
            _jicofo_port(plan.jitsi, p.get("tls", tls_mod.default_mode("certs" in data)), pr)
        if plan.jitsi is not None:
            hp = plan.jitsi.http_port
            if hp and (hp in owner or hp == plan.port):
                pr.add("[jitsi] http_port", f"port {hp} clashes with "
                                            f"{owner.get(hp, 'the proxy ([plan] port)')}")
            if plan.jitsi.shards:
                _check_shards(plan, pr, owner, machine_cores)
            for h in jitsi_mod.hosts(plan.jitsi_layout()):
                if h.routed:
                    claim(h.domain, h.origin)
                for m in h.muc:
                    claim(m, h.origin + " muc")
                for c in h.components:
                    claim(c[0], h.origin + " component")
                plan.hosts.append(h)

    for i, h in enumerate(hosts_raw):
        key = f"[[host]] #{i + 1}"
        if not check_keys(h, HOST_KEYS, key, pr):
            continue
        dom = norm_domain(h.get("domain"), f"{key} domain", pr)
        if dom is None:
            continue
        key = f"{key} ({dom})"
        inst = h.get("instance")
        if not is_int(inst) or not (0 <= inst < n):
            pr.add(f"{key} instance", f"must be an integer in 0..{n - 1}, got {inst!r}")
            continue
        auth = h.get("auth", AUTH_INTERNAL)
        if auth not in AUTHS:
            pr.add(f"{key} auth", f"must be {AUTH_INTERNAL!r} or {AUTH_ANONYMOUS!r}, got {auth!r}")
        mucs = [m for j, x in enumerate(str_list(h.get("muc"), f"{key} muc", pr))
                if (m := norm_domain(x, f"{key} muc[{j}]", pr))]
        accounts = str_list(h.get("accounts"), f"{key} accounts", pr)
        if accounts and auth == AUTH_ANONYMOUS:
            pr.add(f"{key} accounts", "an anonymous host has no accounts")
        admins = str_list(h.get("admins"), f"{key} admins", pr)
        for a in admins:
            if a not in accounts:
                pr.add(f"{key} admins", f"{a!r} is not one of this host's accounts {accounts}")
        modules = str_list(h.get("modules"), f"{key} modules", pr)
        options = h.get("options", {})
        if not isinstance(options, dict):
            pr.add(f"{key} options", f"must be a table of Prosody settings, got {options!r}")
            options = {}
        http = h.get("http", False)
        if not isinstance(http, bool):
            pr.add(f"{key} http", f"must be true or false, got {http!r}")
            http = False
        elif http and "jitsi" in data:
            pr.add(f"{key} http", "not with a [jitsi] table: its http_port (or shards) gives the "
                                  "instances their HTTP side")
            http = False
        claim(dom, key)
        for m in mucs:
            claim(m, f"{key} muc")
        plan.hosts.append(HostPlan(dom, inst, auth, mucs, accounts, admins, modules, options,
                                   _lua(h.get("lua"), f"{key} lua", pr), origin=key, http=http))

    if "tenants" in data:
        t = data["tenants"]
        if check_keys(t, {"domains", "accounts"}, "[tenants]", pr):
            plan.tenant_domains = []
            for j, d in enumerate(str_list(t.get("domains"), "[tenants] domains", pr)):
                nd = norm_domain(d, f"[tenants] domains[{j}]", pr)
                if nd:
                    claim(nd, "[tenants] domains")
                    plan.tenant_domains.append(nd)
            plan.tenant_accounts = str_list(t.get("accounts"), "[tenants] accounts", pr)

    if "certs" in data:
        c = data["certs"]
        if check_keys(c, {"mode", "dir", "ca_cert", "ca_key", "days"}, "[certs]", pr):
            cp = CertsPlan()
            cp.mode = c.get("mode", "self-signed")
            if cp.mode not in CERT_MODES:
                pr.add("[certs] mode", f"must be one of {list(CERT_MODES)}, got {cp.mode!r}")
            for k in ("dir", "ca_cert", "ca_key"):
                if k in c:
                    v = c[k]
                    if not isinstance(v, str) or not v.startswith("/"):
                        pr.add(f"[certs] {k}", f"must be an absolute path, got {v!r}")
                    else:
                        setattr(cp, k, v)
            if cp.mode == "existing" and not cp.dir:
                pr.add("[certs] dir", "mode = \"existing\" needs the directory holding DOMAIN.crt and DOMAIN.key")
            if (cp.ca_cert is None) != (cp.ca_key is None):
                pr.add("[certs] ca_key" if cp.ca_key is None else "[certs] ca_cert",
                       "ca_cert and ca_key go together")
            days = c.get("days", 825)
            if not is_int(days) or not (1 <= days <= 3650):
                pr.add("[certs] days", f"must be an integer in 1..3650, got {days!r}")
            else:
                cp.days = days
            plan.certs = cp

    _parse_http(p, plan, pr, owner)
    _parse_tls(p, data, plan, pr, owner)

    for key in ("proxy", "backends"):
        tbl = data.get(key, {})
        if not isinstance(tbl, dict):
            pr.add(f"[{key}]", "must be a table")
        else:
            setattr(plan, key, dict(tbl))
    if "name" in plan.backends or "address" in plan.backends:
        pr.add("[backends]", "name and address are set per instance; [backends] holds the "
                             "other [[backend]] keys (check, max_sessions, ...)")
    metrics = plan.proxy.get("metrics")
    if isinstance(metrics, str) and metrics.rpartition(":")[2].isdigit():
        mport = int(metrics.rpartition(":")[2])
        if mport and mport in owner:
            pr.add("[proxy] metrics", f"port {mport} clashes with {owner[mport]}")
        if mport and mport == plan.port:
            pr.add("[proxy] metrics", f"port {mport} is also the proxy's [plan] port")
        if mport and mport == plan.direct_tls_port:
            pr.add("[proxy] metrics", f"port {mport} is also the proxy's [plan] direct_tls_port")

    pr.raise_if_any()
    return plan


def _check_shards(plan: Plan, pr: Problems, owner: dict, machine_cores: int) -> None:
    """[jitsi] shards: cores, and the shards' HTTP ports against every other port."""
    jp = plan.jitsi
    if jp.shards > machine_cores:
        what = f"[plan] cores = {plan.cores}" if plan.cores else "this machine"
        pr.add("[jitsi] shards", f"{jp.shards} room shards on {machine_cores} core(s) ({what}): "
                                 f"shards would share cores; at most {machine_cores}")
    taken = dict(owner)
    if plan.port:
        taken.setdefault(plan.port, "the proxy's [plan] port")
    if jp.http_port:
        taken.setdefault(jp.http_port, "the proxy's HTTP listener ([jitsi] http_port)")
    for k, port in enumerate(jp.shard_http_ports()):
        if port in taken:
            pr.add("[jitsi] shard_http_port", f"shard {k}'s HTTP port {port} (shard_http_port + "
                                              f"{k}) clashes with {taken[port]}")
    names = plan.instance_names()
    n, s = plan.instances, jp.shards
    http = [(f"shard {k}'s", p, k) for k, p in enumerate(jp.shard_http_ports())] + [
        (f"visitor node {jp.vnode(v)}'s", p, s + v) for v, p in enumerate(jp.visitor_http_ports())]
    jic = [(f"shard {k}'s", p, k) for k, p in enumerate(jp.jicofo_ports())] + [
        (f"visitor node {jp.vnode(v)}'s", p, s + v) for v, p in enumerate(jp.visitor_jicofo_ports())]
    for who, port, j in http:
        if port in taken:
            pr.add("[jitsi] shard_http_port", f"{who} HTTP port {port} (shard_http_port + "
                                              f"{j}) clashes with {taken[port]}")
    for who, port, j in jic:
        if port in taken:
            pr.add("[jitsi] jicofo_port", f"{who} jicofo port {port} (jicofo_port + {j}) "
                                          f"clashes with {taken[port]}")
        elif port in [p for _, p, _ in http]:
            pr.add("[jitsi] jicofo_port", f"{who} jicofo port {port} (jicofo_port + {j}) "
                                          f"is also a shard's or visitor node's HTTP port "
                                          f"([jitsi] shard_http_port)")
    node = lambda j: names[j] if j < s else names[n - jp.visitors + j - s]     # noqa: E731
    for who, port, j in http:
        owner.setdefault(port, f"{node(j)}'s HTTP port ([jitsi] shard_http_port + {j})")
    for who, port, j in jic:
        owner.setdefault(port, f"{node(j)}'s jicofo port ([jitsi] jicofo_port + {j})")
    if jp.http_port:
        owner.setdefault(jp.http_port, "the proxy's HTTP listener ([jitsi] http_port)")


def _parse_http(p: dict, plan: Plan, pr: Problems, owner: dict) -> None:
    """[plan] http_port, http_base_port: the proxy's HTTP listener (WebSocket, BOSH) for the
    [[host]]s with http = true, and their instances' loopback HTTP ports."""
    insts = plan.http_instances()
    if not insts:
        for key in ("http_port", "http_base_port"):
            if key in p:
                pr.add(f"[plan] {key}", "no [[host]] has http = true (the domains the proxy's "
                                        "HTTP listener serves)")
        return
    hp = _port(p.get("http_port", DEFAULT_HTTP_PORT), "[plan] http_port", pr)
    if hp is None:
        return
    if hp == plan.port:
        pr.add("[plan] http_port", f"port {hp} is also the proxy's [plan] port")
    elif hp in owner:
        pr.add("[plan] http_port", f"port {hp} clashes with {owner[hp]}")
    bp = _port(p.get("http_base_port", hp + 1), "[plan] http_base_port", pr)
    if bp is None:
        return
    plan.http_port, plan.http_base_port = hp, bp
    owner.setdefault(hp, "the proxy's HTTP listener ([plan] http_port)")
    names = plan.instance_names()
    for i in insts:
        port = plan.instance_http_port(i)
        if port > 65535 or port == hp or port == plan.port or port in owner:
            what = ("past 65535" if port > 65535 else "the proxy's [plan] http_port" if port == hp
                    else "the proxy's [plan] port" if port == plan.port else owner[port])
            pr.add("[plan] http_base_port", f"{names[i]}'s HTTP port {port} (http_base_port + {i}) "
                                            f"clashes with {what}")
        else:
            owner[port] = f"{names[i]}'s HTTP port ([plan] http_base_port + {i})"


def _jicofo_port(jp, tls_mode, pr: Problems) -> None:
    """[jitsi] jicofo_port: with tls = "terminate" a shard has no c2s port of its own (clients
    reach mod_xmpp_shard's through the proxy), so its jicofos get a loopback one; default: the
    ports after the shards' HTTP ports."""
    if tls_mode != "terminate":
        if jp.jicofo_port is not None:
            pr.add("[jitsi] jicofo_port", "only with [plan] tls = \"terminate\" (with \"none\" "
                                          "each jicofo logs in on its shard's c2s port)")
            jp.jicofo_port = None
        return
    if jp.jicofo_port is None:
        jp.jicofo_port = jp.shard_http_port + jp.shards + jp.visitors


def _assigns(lua: str, name: str) -> bool:
    return bool(re.search(rf"^\s*{name}\s*=", lua or "", re.M))


def _parse_tls(p: dict, data: dict, plan: Plan, pr: Problems, owner: dict) -> None:
    """[plan] tls, direct_tls_port, prosody_modules (see tls.py for what the modes write)."""
    mode = p.get("tls", tls_mod.default_mode("certs" in data))
    if mode not in tls_mod.MODES:
        pr.add("[plan] tls", f"must be one of {list(tls_mod.MODES)}, got {mode!r}")
        return
    plan.tls = mode
    if "prosody_modules" in p:
        v = p["prosody_modules"]
        if not isinstance(v, str) or not v.startswith("/"):
            pr.add("[plan] prosody_modules", f"must be an absolute path (the directory holding "
                                             f"mod_xmpp_shard.lua), got {v!r}")
        else:
            plan.prosody_modules = v
    if "direct_tls_port" in p:
        dp = _port(p["direct_tls_port"], "[plan] direct_tls_port", pr, allow_zero=True)
        if dp and mode != "terminate":
            pr.add("[plan] direct_tls_port", "Direct TLS needs [plan] tls = \"terminate\" (the "
                                             "proxy does the TLS; in \"none\" mode nobody would)")
        elif dp:
            if dp == plan.port:
                pr.add("[plan] direct_tls_port", f"port {dp} is also the proxy's [plan] port")
            elif _addresses_overlap(_listen_host(plan.listen), plan.interface) and dp in owner:
                pr.add("[plan] direct_tls_port", f"port {dp} clashes with {owner[dp]}")
            elif plan.jitsi is not None and plan.jitsi.http_port == dp:
                pr.add("[plan] direct_tls_port", f"port {dp} clashes with [jitsi] http_port")
            elif plan.http_port == dp:
                pr.add("[plan] direct_tls_port", f"port {dp} clashes with [plan] http_port (the "
                                                 f"proxy's HTTP listener)")
            else:
                plan.direct_tls_port = dp
    if mode != "terminate":
        return
    if not tls_mod.cert_domains(plan):
        pr.add("[plan] tls", "\"terminate\" needs at least one domain to hold a certificate "
                             "([[host]], [jitsi] or [tenants] domains), and this plan has none; "
                             "set tls = \"none\" or add domains")
    # The generator's plugin_paths line loads mod_xmpp_shard; raw Lua that assigns plugin_paths
    # replaces it, so it must name the module's directory itself.
    mdir = plan.prosody_modules or tls_mod.module_dir()
    for key, lua in [("[plan] lua", plan.lua)] + [
            (f"[[instance]] (index {i}) lua", ip.lua) for i, ip in sorted(plan.instance_plans.items())]:
        if _assigns(lua, "plugin_paths") and mdir not in lua:
            pr.add(key, f"assigns plugin_paths, which replaces the line loading mod_xmpp_shard "
                        f"([plan] tls = \"terminate\"): add {mdir!r} to it")
        for opt in ("c2s_require_encryption", "allow_unencrypted_plain_auth"):
            if _assigns(lua, opt):
                pr.add(key, f"assigns {opt}: with [plan] tls = \"terminate\" Prosody keeps its "
                            f"secure default (mod_xmpp_shard marks the proxy's TLS sessions secure)")


def load_plan(path, ncpu: Optional[int] = None, instances=None) -> Plan:
    """Read and check a plan file; `instances` ("auto" or a number) overrides [plan] instances."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"{path}: not valid TOML: {e}") from None
    if instances is not None:
        if instances != "auto":
            try:
                instances = int(instances)
            except ValueError:
                raise PlanError(f"instances must be \"auto\" or a number, got {instances!r}") from None
        data.setdefault("plan", {})["instances"] = instances
    return parse_plan(data, ncpu=ncpu, source=path)


def instance_name(i: int) -> str:
    return f"prosody-{i}"


def _expand_path(tpl: str, *, name: str, index: int, dir_: Path, out: Path) -> Path:
    return Path(tpl.replace("{name}", name).replace("{index}", str(index))
                .replace("{dir}", str(dir_)).replace("{out}", str(out)))


def http_front(cfg: ProxyConfig, plan: Plan, tls, port: int, backends: list[tuple]) -> None:
    """The proxy's HTTP listener `http` (XMPP over WebSocket and BOSH) and a backend NAME-http
    per instance serving them, for [jitsi] shards and [[host]] http alike. Plaintext on loopback
    behind a web server; with tls = "terminate" the proxy does HTTPS/wss itself (ALPN http/1.1,
    the certificate by SNI), on the plan's address like its XMPP listener.
    backends: (instance name, its loopback HTTP port, extra backend keys)."""
    if tls.terminate:
        cfg.add_listener("http", f"{plan.listen}:{port}", protocol="http", **tls.proxy_listener)
    else:
        cfg.add_listener("http", f"127.0.0.1:{port}", protocol="http")
    for name, bport, extra in backends:
        cfg.add_backend(f"{name}-http", f"127.0.0.1:{bport}", check="http",
                        check_path="/http-bind", **extra)


def expand(plan: Plan, ports: Optional[list[int]] = None, *, listen_port: Optional[int] = None,
           direct_tls_port: Optional[int] = None,
           ncpu: Optional[int] = None, out: Optional[Path] = None,
           password: Callable[[], str] = lambda: secrets.token_urlsafe(12),
           passwords: Optional[dict] = None) -> Layout:
    """Concrete instances, the proxy config and the accounts.

    ports: per-instance ports (default: the plan's; c2s, or mod_xmpp_shard's with [plan] tls =
    "terminate"); listen_port, direct_tls_port: the proxy's (default: the plan's). Instance i is pinned to its [[instance]] core, else to core i mod ncpu. With `out`,
    instances get the managed layout under out/prosody/<name>/ (paths from the plan).
    Passwords come from `passwords` (jid -> password) when present, else from `password()`."""
    if ports is None:
        ports = plan.instance_ports()
    if len(ports) != plan.instances:
        raise ValueError(f"need {plan.instances} ports, got {len(ports)}")
    listen_port = plan.port if listen_port is None else listen_port
    ncpu = ncpu or plan.cores or default_cpus()
    cpus = sorted(os.sched_getaffinity(0))[:ncpu] or list(range(ncpu))
    if plan.cores and ncpu == plan.cores:
        cpus = list(range(ncpu))
    names = plan.instance_names()
    known = dict(passwords or {})

    def pw_for(jid: str) -> str:
        if jid not in known:
            known[jid] = password()
        return known[jid]

    specs = []
    for i in range(plan.instances):
        ip = plan.instance_plans.get(i) or InstancePlan(i)
        jp = plan.jitsi
        preset = ""
        if jp is not None and jp.shards:
            preset = (jitsi_mod.shard_instance_lua(jp, i) if i < jp.shards else
                      jitsi_mod.visitor_instance_lua(jp, i - (plan.instances - jp.visitors))
                      if i >= plan.instances - jp.visitors else "")
        elif jp is not None and jp.client == i:
            preset = jitsi_mod.client_instance_lua(jp)
        elif i in plan.http_instances():
            web = [h.domain for h in plan.hosts if h.http and h.instance == i]
            preset = "\n".join([f"-- [[host]] http: WebSocket and BOSH for {', '.join(web)}, behind "
                                f"the proxy's HTTP listener (port {plan.http_port})."]
                               + jitsi_mod.http_lua(plan.instance_http_port(i), web[0],
                                                    note=jitsi_mod.SECURE_NOTE))
        s = InstanceSpec(names[i], ports[i], cpu=ip.core if ip.core is not None else cpus[i % len(cpus)],
                         interface=plan.interface, tcp_backlog=ip.tcp_backlog, index=i,
                         lua="\n".join(x for x in (preset, plan.lua.strip("\n"), ip.lua.strip("\n")) if x))
        if out is not None:
            d = Path(out) / "prosody" / names[i]
            tp = {**plan.paths, **ip.paths}
            s.data_dir, s.log_file, s.pidfile = (
                _expand_path(tp[k], name=names[i], index=i, dir_=d, out=Path(out)) for k in PATH_KEYS)
            s.certs_dir = (Path(plan.certs.dir) if plan.certs.mode == "existing" and plan.certs.dir
                           else d / "certs")
        specs.append(s)

    accounts: list[Account] = []
    for h in plan.hosts:
        for i in h.all_instances:       # [jitsi] shards: the same host on every room shard
            s = specs[i]
            web = [m for m in WEB_MODULES if h.http and m not in h.modules]
            s.hosts.append(VirtualHost(h.domain, h.auth, modules=list(h.modules) + web,
                                       options=dict(h.options), lua=h.lua))
            s.mucs += [Muc(m, options=dict(h.muc_options)) for m in h.muc]
            s.components += [Component(d, mod, dict(opts)) for d, mod, opts in h.components]
            s.plugin_paths += [d for d in h.plugin_paths if d not in s.plugin_paths]
            for user in h.accounts:
                a = Account(user, h.domain, pw_for(f"{user}@{h.domain}"))
                s.accounts.append(a)
                if i == h.instance and a.jid not in {x.jid for x in accounts}:
                    accounts.append(a)
                if user in h.admins:
                    s.admins.append(a.jid)
    pool = plan.pool()
    if plan.tenant_domains is not None:
        for d in plan.tenant_domains:
            for i in pool:
                specs[i].hosts.append(VirtualHost(d))
            for user in plan.tenant_accounts:
                a = Account(user, d, pw_for(f"{user}@{d}"))
                accounts.append(a)
                for i in pool:
                    specs[i].accounts.append(a)

    tls = tls_profile(plan)
    for s in specs:
        s.tls = tls
    cfg = ProxyConfig(comment=f"Generated by xmpp-shard-deploy from {plan.source or 'a plan'}. "
                              f"Do not edit: edit the plan and generate again.")
    cfg.proxy = dict(plan.proxy)
    cfg.add_listener("c2s", f"{plan.listen}:{listen_port}", **tls.proxy_listener)
    direct = plan.direct_tls_port if direct_tls_port is None else direct_tls_port
    if tls.terminate and direct:
        cfg.add_listener("c2s-direct", f"{plan.listen}:{direct}", **tls.proxy_listener,
                         direct_tls=True)
    cfg.tls_certificates = [dict(c) for c in tls.proxy_certificates]
    for s in specs:
        cfg.add_backend(s.name, s.address, **{**plan.backends, **tls.proxy_backend})
    jp = plan.jitsi
    sharded = jp is not None and bool(jp.shards)
    web = plan.http_instances()
    xmpp_only = ({"listeners": [l["name"] for l in cfg.listeners]} if sharded or web else {})
    shared = [h for h in plan.hosts if h.replicas]
    if shared:
        # Every room shard hosts these; a plain XMPP client of them lands on the first healthy
        # shard (browsers come over the HTTP listener, by room; each jicofo connects straight).
        cfg.add_route([h.domain for h in shared], [specs[i].name for i in shared[0].all_instances],
                      name="shards", **xmpp_only)
    for i, s in enumerate(specs):
        owned = [h.domain for h in plan.hosts if h.instance == i and not h.replicas and h.routed]
        if owned:
            cfg.add_route(owned, [s.name], name=s.name, **xmpp_only)
    if plan.tenant_domains is not None:
        cfg.add_route(["*"], [specs[i].name for i in pool], name="tenants", balance="hash",
                      **xmpp_only)
    if web:
        # [[host]] http: each instance's http domains, by Host, to its HTTP port.
        http_front(cfg, plan, tls, plan.http_port,
                   [(specs[i].name, plan.instance_http_port(i), {}) for i in web])
        for i in web:
            cfg.add_route([h.domain for h in plan.hosts if h.http and h.instance == i],
                          [f"{specs[i].name}-http"], name=f"{specs[i].name}-http",
                          listeners=["http"])
    if sharded:
        # Visitor nodes: only requests with ?vnode=vN reach them (and such requests only them).
        vis = list(range(plan.instances - jp.visitors, plan.instances)) if jp.visitors else []
        http_front(cfg, plan, tls, jp.http_port,
                   [(specs[k].name, port, {}) for k, port in enumerate(jp.shard_http_ports())]
                   + [(specs[vis[v]].name, port, {"vnode": jp.vnode(v)})
                      for v, port in enumerate(jp.visitor_http_ports())])
        cfg.add_route([jp.domain] + list(jp.tenants),
                      [f"{specs[k].name}-http" for k in list(range(jp.shards)) + vis],
                      name="rooms", balance="hash", hash_key="room", listeners=["http"])
    return Layout(plan, specs, cfg, accounts, plan.jitsi_layout(), Path(out) if out else None,
                  listen_port)
