"""Shard plans: the one parser of deploy/plans/*.toml, and their expansion into Prosody
instance specs, proxy routes and accounts. The format is documented at the top of
deploy/plans/local.toml; keep the two in step.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .prosody import AUTH_ANONYMOUS, AUTH_INTERNAL, Account, InstanceSpec, Muc, VirtualHost
from .proxyconf import ProxyConfig


class PlanError(ValueError):
    pass


@dataclass
class HostPlan:
    domain: str
    instance: int
    auth: str = AUTH_INTERNAL
    muc: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)


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

    def pool(self) -> list[int]:
        """Instances serving "*": those no [[host]] names, or every instance if none is left."""
        owned = {h.instance for h in self.hosts}
        rest = [i for i in range(self.instances) if i not in owned]
        return rest or list(range(self.instances))


@dataclass
class Layout:
    """A plan made concrete: ports chosen, passwords generated."""
    plan: Plan
    instances: list[InstanceSpec]
    proxy: ProxyConfig
    accounts: list[Account]     # each account once; a tenant account exists on every pool
                                # instance, with the same password


def _norm_domain(d, where: str) -> str:
    if not isinstance(d, str) or not d.strip():
        raise PlanError(f"{where}: a domain must be a non-empty string, got {d!r}")
    d = d.strip().lower().rstrip(".")
    if "*" in d or "/" in d or "@" in d or " " in d:
        raise PlanError(f"{where}: {d!r} is not a plain domain")
    return d


def _str_list(v, where: str) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise PlanError(f"{where}: expected a list of non-empty strings, got {v!r}")
    return list(v)


def _check_keys(table: dict, allowed: set, where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise PlanError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def default_cpus() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def parse_plan(data: dict, ncpu: Optional[int] = None, source: Optional[Path] = None) -> Plan:
    where = str(source) if source else "plan"
    _check_keys(data, {"plan", "host", "tenants", "proxy"}, where)
    p = data.get("plan", {})
    _check_keys(p, {"instances", "listen", "port"}, f"{where} [plan]")
    n = p.get("instances", "auto")
    if n == "auto":
        n = max(2, ncpu if ncpu is not None else default_cpus())
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise PlanError(f"{where} [plan]: instances must be \"auto\" or a positive integer, got {n!r}")
    port = p.get("port", 5222)
    if not isinstance(port, int) or not (0 <= port <= 65535):
        raise PlanError(f"{where} [plan]: port must be 0..65535, got {port!r}")
    plan = Plan(instances=n, listen=p.get("listen", "127.0.0.1"), port=port, source=source)

    seen: dict[str, str] = {}

    def claim(domain: str, what: str) -> None:
        if domain in seen:
            raise PlanError(f"{where}: {domain} appears twice ({seen[domain]} and {what})")
        seen[domain] = what

    for i, h in enumerate(data.get("host", [])):
        w = f"{where} [[host]] #{i + 1}"
        _check_keys(h, {"domain", "instance", "auth", "muc", "accounts"}, w)
        dom = _norm_domain(h.get("domain"), w)
        inst = h.get("instance")
        if not isinstance(inst, int) or isinstance(inst, bool) or not (0 <= inst < n):
            raise PlanError(f"{w} ({dom}): instance must be an integer in 0..{n - 1}, got {inst!r}")
        auth = h.get("auth", AUTH_INTERNAL)
        if auth not in (AUTH_INTERNAL, AUTH_ANONYMOUS):
            raise PlanError(f"{w} ({dom}): auth must be {AUTH_INTERNAL!r} or {AUTH_ANONYMOUS!r}")
        mucs = [_norm_domain(m, w) for m in _str_list(h.get("muc"), w + " muc")]
        accounts = _str_list(h.get("accounts"), w + " accounts")
        if accounts and auth == AUTH_ANONYMOUS:
            raise PlanError(f"{w} ({dom}): an anonymous host has no accounts")
        claim(dom, w)
        for m in mucs:
            claim(m, w + " muc")
        plan.hosts.append(HostPlan(dom, inst, auth, mucs, accounts))

    if "tenants" in data:
        t = data["tenants"]
        w = f"{where} [tenants]"
        _check_keys(t, {"domains", "accounts"}, w)
        plan.tenant_domains = [_norm_domain(d, w) for d in _str_list(t.get("domains"), w + " domains")]
        for d in plan.tenant_domains:
            claim(d, w)
        plan.tenant_accounts = _str_list(t.get("accounts"), w + " accounts")

    proxy = data.get("proxy", {})
    if not isinstance(proxy, dict):
        raise PlanError(f"{where}: [proxy] must be a table")
    plan.proxy = dict(proxy)
    return plan


def load_plan(path, ncpu: Optional[int] = None, instances=None) -> Plan:
    """Read and check a plan file; `instances` ("auto" or a number) overrides [plan] instances."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"{path}: {e}") from None
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


def expand(plan: Plan, ports: list[int], *, listen_port: int, ncpu: Optional[int] = None,
           password: Callable[[], str] = lambda: secrets.token_urlsafe(12)) -> Layout:
    """Concrete instances (instance i on ports[i], pinned to core i mod ncpu), the proxy
    config and the accounts with fresh passwords."""
    if len(ports) != plan.instances:
        raise ValueError(f"need {plan.instances} ports, got {len(ports)}")
    ncpu = ncpu or default_cpus()
    cpus = sorted(os.sched_getaffinity(0))[:ncpu] or list(range(ncpu))
    specs = [InstanceSpec(instance_name(i), ports[i], cpu=cpus[i % len(cpus)])
             for i in range(plan.instances)]
    accounts: list[Account] = []
    for h in plan.hosts:
        s = specs[h.instance]
        s.hosts.append(VirtualHost(h.domain, h.auth))
        s.mucs += [Muc(m) for m in h.muc]
        for user in h.accounts:
            a = Account(user, h.domain, password())
            s.accounts.append(a)
            accounts.append(a)
    pool = plan.pool()
    if plan.tenant_domains is not None:
        for d in plan.tenant_domains:
            for i in pool:
                specs[i].hosts.append(VirtualHost(d))
            for user in plan.tenant_accounts:
                a = Account(user, d, password())
                accounts.append(a)
                for i in pool:
                    specs[i].accounts.append(a)

    cfg = ProxyConfig(comment=f"Generated by xs_local from {plan.source or 'a plan'}. Do not edit.")
    cfg.proxy = {"drain_timeout": "5s", **plan.proxy}
    cfg.add_listener("c2s", f"{plan.listen}:{listen_port}")
    for s in specs:
        cfg.add_backend(s.name, s.address)
    for i, s in enumerate(specs):
        if s.domains and any(h.instance == i for h in plan.hosts):
            owned = [h.domain for h in plan.hosts if h.instance == i]
            cfg.add_route(owned, [s.name], name=s.name)
    if plan.tenant_domains is not None:
        cfg.add_route(["*"], [specs[i].name for i in pool], name="tenants", balance="hash")
    return Layout(plan, specs, cfg, accounts)
