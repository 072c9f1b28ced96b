"""Helpers for the deploy tests (test_deploy_*.py, test_deb.py): running xmpp-shard-deploy,
normalising generated files for golden comparison, reading the HOCON snippets it writes, and
following a `run` in the background. Imports nothing from conftest.py.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TOOL = REPO / "deploy" / "xmpp-shard-deploy"
GOLDEN = HERE / "data" / "deploy-golden"
UPDATE_GOLDEN = bool(os.environ.get("XS_UPDATE_GOLDEN"))


def tool(*args, timeout: float = 120, check: bool = False, env=None) -> subprocess.CompletedProcess:
    """Run xmpp-shard-deploy; returns the CompletedProcess (text)."""
    r = subprocess.run(["/usr/bin/python3", str(TOOL), *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"xmpp-shard-deploy {' '.join(map(str, args))} -> {r.returncode}\n"
                             f"{r.stdout}\n{r.stderr}")
    return r


def read_accounts(out: Path) -> dict[str, str]:
    acc = {}
    for line in (Path(out) / "accounts.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            jid, pw = line.split()
            acc[jid] = pw
    return acc


def normalise(text: str, out: Path, plan: Path, passwords: dict[str, str]) -> str:
    """Replace what differs between runs: the output and plan paths, and the passwords."""
    text = text.replace(str(plan), "@PLAN@").replace(str(out), "@OUT@")
    for jid, pw in sorted(passwords.items(), key=lambda kv: -len(kv[1])):
        text = text.replace(base64.b64encode(pw.encode()).decode(), f"@PW64:{jid}@")
        text = text.replace(pw, f"@PW:{jid}@")
    return text


def compare_golden(actual: dict[str, str], golden_dir: Path) -> list[str]:
    """Compare {relative path: text} with the files under golden_dir (or rewrite them when
    XS_UPDATE_GOLDEN=1). Returns the differences."""
    import difflib
    problems = []
    if UPDATE_GOLDEN:
        for rel, text in actual.items():
            p = golden_dir / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        for p in golden_dir.rglob("*"):
            if p.is_file() and str(p.relative_to(golden_dir)) not in actual:
                p.unlink()
        return []
    have = {str(p.relative_to(golden_dir)) for p in golden_dir.rglob("*") if p.is_file()}
    for rel in sorted(have - set(actual)):
        problems.append(f"{rel}: in the golden files, no longer generated")
    for rel in sorted(set(actual) - have):
        problems.append(f"{rel}: generated, but no golden file")
    for rel in sorted(have & set(actual)):
        want = (golden_dir / rel).read_text()
        if want != actual[rel]:
            diff = "".join(difflib.unified_diff(want.splitlines(True), actual[rel].splitlines(True),
                                                f"golden/{rel}", f"generated/{rel}"))
            problems.append(diff)
    return problems


# --------------------------------------------------------------------------------------------
# HOCON, as far as the generator writes it: `name {` ... `}`, `key = value`, `key = [ a, b ]`

def read_hocon(text: str) -> dict:
    root: dict = {}
    stack: list = [root]
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("//"):
            continue
        top = stack[-1]
        if line == "{" and isinstance(top, list):          # an object in a list
            d: dict = {}
            top.append(d)
            stack.append(d)
        elif line.endswith("{") and "=" not in line:      # name {
            d = {}
            top[line[:-1].strip()] = d
            stack.append(d)
        elif line.endswith("= ["):                          # name = [  (a list of objects)
            lst: list = []
            top[line[:-3].strip()] = lst
            stack.append(lst)
        elif line in ("}", "]"):
            stack.pop()
        elif "=" in line:
            k, v = (x.strip() for x in line.split("=", 1))
            top[k] = _hocon_value(v)
        else:
            raise ValueError(f"unexpected HOCON line: {raw!r}")
    assert len(stack) == 1, "unbalanced braces"
    return root


def _hocon_value(v: str):
    import json
    if v.startswith("["):
        return [_hocon_value(x.strip()) for x in v.strip("[] ").split(",") if x.strip()]
    if v.startswith('"'):
        return json.loads(v)
    if v in ("true", "false"):
        return v == "true"
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    return v


# --------------------------------------------------------------------------------------------
# a `run` in the background

class Lines:
    """Collects a process's output lines; wait_for(pattern) polls them."""

    def __init__(self, pipe):
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self.t.start()

    def _pump(self, pipe):
        for raw in iter(pipe.readline, b""):
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def text(self) -> str:
        with self.lock:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float, proc: Optional[subprocess.Popen] = None) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            if proc is not None and proc.poll() is not None:
                time.sleep(0.2)
                m = re.search(pattern, self.text(), re.M)
                if m:
                    return m
                raise AssertionError(f"exited ({proc.returncode}) before {pattern!r}:\n{self.text()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout:g}s:\n{self.text()[-4000:]}")
            time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def stop_group(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(5)


def authenticated_in(log: Path, jid: str, timeout: float = 5.0) -> bool:
    """True once `Authenticated as <jid>` shows up in a Prosody log."""
    deadline = time.monotonic() + timeout
    want = f"Authenticated as {jid}".lower()
    while True:
        try:
            if want in log.read_text(errors="replace").lower():
                return True
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


class DeployRun:
    """`xmpp-shard-deploy run PLAN --free-ports --port 0` in the background, as a context manager:
    waits for "is up", keeps the output (`lines`) and removes the directory afterwards (unless
    XS_IT_KEEP is set). `log_of(name)` is an instance's Prosody log; `landed(jid, expect)` checks
    that `jid` authenticated on instance `expect` and on no other one of `names`."""

    def __init__(self, proxy_bin: Path, plan_text: str, prefix: str, names: list[str], up_timeout: float = 90):
        from xs_local.prosody import make_base_dir
        self.base = make_base_dir(prefix)
        self.plan = self.base / "plan.toml"
        self.plan.write_text(plan_text)
        self.out = self.base / "out"
        self.names = names
        self.proxy_bin = proxy_bin
        self.up_timeout = up_timeout

    def __enter__(self) -> "DeployRun":
        t0 = time.monotonic()
        self.p = subprocess.Popen(["/usr/bin/python3", str(TOOL), "run", str(self.plan), "--out", str(self.out),
                                   "--proxy", str(self.proxy_bin), "--free-ports", "--port", "0"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        self.lines = Lines(self.p.stdout)
        try:
            self.up = float(self.lines.wait_for(r"is up in ([\d.]+)s", self.up_timeout, proc=self.p).group(1))
            self.wall = time.monotonic() - t0
            self.port = int(self.lines.wait_for(r"^\s+proxy\s+127\.0\.0\.1:(\d+)", 5).group(1))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        stop_group(self.p)
        if not os.environ.get("XS_IT_KEEP"):
            import shutil
            shutil.rmtree(self.base, ignore_errors=True)

    def log_of(self, name: str) -> Path:
        return self.out / "prosody" / name / "log" / "prosody.log"

    def landed(self, jid: str, expect: str) -> None:
        assert authenticated_in(self.log_of(expect), jid), f"{jid} not authenticated on {expect}"
        others = [n for n in self.names if n != expect and authenticated_in(self.log_of(n), jid, timeout=0)]
        assert not others, f"{jid} also authenticated on {others}"
