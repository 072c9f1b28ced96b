"""The pieces of a shard plan shared by plan.py and jitsi.py: errors, value checks, hosts.

Every error names the file and the offending key (`plan.toml: [[instance]] #2 core: ...`), and
a plan's problems are collected and reported together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from .prosody import AUTH_ANONYMOUS, AUTH_INTERNAL


class PlanError(ValueError):
    """A bad plan. str() lists every problem, one per line; .problems has them as a list."""

    def __init__(self, problems):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class Problems:
    """Collects problems as `WHERE: KEY: message` lines."""

    def __init__(self, where: str):
        self.where = where
        self.items: list[str] = []

    def add(self, key: str, msg: str) -> None:
        self.items.append(f"{self.where}: {key}: {msg}" if key else f"{self.where}: {msg}")

    def raise_if_any(self) -> None:
        if self.items:
            raise PlanError(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")


def norm_domain(d: Any, key: str, problems: Problems) -> Optional[str]:
    """A plain domain, lower-cased, one trailing dot removed; None (and a problem) if bad."""
    if not isinstance(d, str) or not d.strip():
        problems.add(key, f"a domain must be a non-empty string, got {d!r}")
        return None
    d = d.strip().lower()
    if d.endswith("."):
        d = d[:-1]
    if len(d) > 253 or not all(_LABEL.fullmatch(p) for p in d.split(".")):
        problems.add(key, f"{d!r} is not a plain domain (letters, digits, '-', dots; no '*')")
        return None
    return d


def str_list(v: Any, key: str, problems: Problems) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        problems.add(key, f"expected a list of non-empty strings, got {v!r}")
        return []
    return list(v)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_keys(table: Any, allowed: set, key: str, problems: Problems) -> bool:
    """False (and a problem) if `table` is not a table; unknown keys are problems too."""
    if not isinstance(table, dict):
        problems.add(key, f"must be a table, got {table!r}")
        return False
    unknown = sorted(set(table) - allowed)
    if unknown:
        problems.add(key, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return True


@dataclass
class HostPlan:
    domain: str
    instance: int
    auth: str = AUTH_INTERNAL
    muc: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    admins: list[str] = field(default_factory=list)       # users here who are global admins
    modules: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    lua: str = ""
    muc_options: dict = field(default_factory=dict)
    origin: str = "[[host]]"      # where it came from (for messages): "[[host]] #2", "[jitsi] ..."
    role: str = ""                # "jitsi-tenant" for a Jitsi tenant's hosts (pool members)
    replicas: list[int] = field(default_factory=list)   # more instances hosting the same domain
                                                        # ([jitsi] shards: every room shard)
    components: list[tuple] = field(default_factory=list)  # (domain, module, options) beside it
    plugin_paths: list[str] = field(default_factory=list)  # where those modules are
    routed: bool = True           # False: a copy no route names ([jitsi] visitors' auth domain,
                                  # reached by the jicofos on the node's own port)
    http: bool = False            # [[host]] http: WebSocket and BOSH through the proxy's HTTP
                                  # listener ([plan] http_port) to its instance's HTTP port

    @property
    def all_instances(self) -> list[int]:
        return [self.instance] + [i for i in self.replicas if i != self.instance]


AUTHS = (AUTH_INTERNAL, AUTH_ANONYMOUS)
