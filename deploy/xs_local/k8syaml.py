"""A small deterministic YAML emitter for the Kubernetes manifests (kubernetes.py): mappings in
insertion order, lists, ints, bools, None and strings. The deploy tool stays on Python's standard
library (the Debian package does not pull in python3-yaml).

Strings are plain when nothing could read them as another type (letters first, no ':', '#' or
spaces, not a YAML 1.1 boolean or null), JSON-quoted otherwise (a JSON string is a valid YAML
double-quoted scalar), and literal blocks (`|`, `|-`, `|+`) when they span lines, so that config
files inside ConfigMaps stay readable. tests/integration/test_deploy_kubernetes.py reads the
output back with PyYAML and with the npm `yaml` package.
"""

from __future__ import annotations

import json
import re

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
_RESERVED = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"}


def scalar(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        if _PLAIN.fullmatch(v) and v.lower() not in _RESERVED:
            return v
        return json.dumps(v, ensure_ascii=False)
    raise TypeError(f"cannot write {type(v).__name__} to YAML: {v!r}")


def _block(text: str, indent: str) -> list[str]:
    """A literal block scalar for a multi-line string (its header is returned first)."""
    body = text.rstrip("\n")
    trailing = len(text) - len(body)
    chomp = "-" if trailing == 0 else ("" if trailing == 1 else "+")
    lines = body.split("\n")
    ind = "2" if lines and lines[0][:1] in (" ", "\t") else ""
    out = [f"|{ind}{chomp}"]
    for line in lines:
        out.append(f"{indent}{line}" if line else "")
    if chomp == "+":
        out += [""] * (trailing - 1)
    return out


def _is_block(v) -> bool:
    return isinstance(v, str) and "\n" in v


def _emit(v, indent: str) -> list[str]:
    """Lines for a mapping or list value at `indent` (a scalar is handled by the caller)."""
    out: list[str] = []
    if isinstance(v, dict):
        for k, x in v.items():
            key = scalar(str(k))
            if isinstance(x, (dict, list)) and x:
                out.append(f"{indent}{key}:")
                out += _emit(x, indent + ("  " if isinstance(x, dict) else ""))
            elif _is_block(x):
                head, *rest = _block(x, indent + "  ")
                out.append(f"{indent}{key}: {head}")
                out += rest
            else:
                out.append(f"{indent}{key}: {_inline(x)}")
        return out
    if isinstance(v, list):
        for x in v:
            if isinstance(x, (dict, list)) and x:
                sub = _emit(x, indent + "  ")
                out.append(f"{indent}- {sub[0][len(indent) + 2:]}")
                out += sub[1:]
            elif _is_block(x):
                head, *rest = _block(x, indent + "  ")
                out.append(f"{indent}- {head}")
                out += rest
            else:
                out.append(f"{indent}- {_inline(x)}")
        return out
    raise TypeError(f"expected a mapping or a list, got {v!r}")


def _inline(x) -> str:
    if isinstance(x, dict):
        return "{}"
    if isinstance(x, list):
        return "[]"
    return scalar(x)


def dump(doc: dict) -> str:
    """One YAML document (no `---`), ending with a newline."""
    return "\n".join(_emit(doc, "")) + "\n"


def dump_all(docs: list[dict]) -> str:
    return "".join(("---\n" if i else "") + dump(d) for i, d in enumerate(docs))
