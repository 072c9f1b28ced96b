"""The proxy's TOML config (docs/CONFIG.md), built from plain values.

    cfg = ProxyConfig(proxy={"workers": 1, "metrics": "", "header_timeout": "2s"})
    cfg.add_listener("c2s", "127.0.0.1:5222")
    cfg.add_backend("prosody-0", "127.0.0.1:15222")
    cfg.add_route(["meet.localhost"], ["prosody-0"])
    cfg.add_route(["*"], ["prosody-2", "prosody-3"], balance="hash")
    text = cfg.render()

Values are emitted in order; keys the proxy does not know are the caller's business.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional


def toml_key(k: str) -> str:
    if k and all(c.isalnum() or c in "-_" for c in k):
        return k
    return toml_value(k)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v!r} to TOML")
        return repr(v)
    if isinstance(v, str):
        # JSON string escapes are valid TOML basic-string escapes (\" \\ \n \uXXXX ...).
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML: {v!r}")


def _table(header: str, values: dict) -> list[str]:
    lines = [header]
    for k, v in values.items():
        if v is None:
            continue
        lines.append(f"{toml_key(k)} = {toml_value(v)}")
    lines.append("")
    return lines


@dataclass
class ProxyConfig:
    proxy: dict = field(default_factory=dict)
    listeners: list[dict] = field(default_factory=list)
    backends: list[dict] = field(default_factory=list)
    routes: list[dict] = field(default_factory=list)
    comment: str = ""
    # [[certificate]] tables (cert, key, domains), written after the routes.
    tls_certificates: list[dict] = field(default_factory=list)

    def add_listener(self, name: str, bind: str, **extra) -> dict:
        d = {"name": name, "bind": bind, **extra}
        self.listeners.append(d)
        return d

    def add_backend(self, name: str, address: str, **extra) -> dict:
        d = {"name": name, "address": address, **extra}
        self.backends.append(d)
        return d

    def add_route(self, domains: list[str], backends: list[str], name: Optional[str] = None,
                  balance: Optional[str] = None, **extra) -> dict:
        d: dict = {}
        if name is not None:
            d["name"] = name
        d["domains"] = list(domains)
        d["backends"] = list(backends)
        if balance is not None:
            d["balance"] = balance
        d.update(extra)
        self.routes.append(d)
        return d

    def render(self) -> str:
        return render_proxy_config(self)

    def write(self, path: Path) -> Path:
        path = Path(path)
        path.write_text(self.render())
        return path


def render_proxy_config(cfg: ProxyConfig) -> str:
    lines: list[str] = []
    if cfg.comment:
        lines += [f"# {line}".rstrip() for line in cfg.comment.splitlines()] + [""]
    if cfg.proxy:
        lines += _table("[proxy]", cfg.proxy)
    for d in cfg.listeners:
        lines += _table("[[listener]]", d)
    for d in cfg.backends:
        lines += _table("[[backend]]", d)
    for d in cfg.routes:
        lines += _table("[[route]]", d)
    for d in getattr(cfg, "tls_certificates", []):
        lines += _table("[[certificate]]", d)
    return "\n".join(lines)
