"""One local Prosody instance: render its config, prepare its directory and accounts,
start it pinned to a CPU core as the prosody user, stop it, read its log.

Facts this relies on (Debian 12, Prosody 0.12.3, as its modules' source and the tests show):
- Prosody refuses to run as root, so it runs as the `prosody` user and everything it writes
  (data_path, log file, pidfile) is owned by that user.
- `prosodyctl --config F adduser JID` (or `passwd JID`) reads the password twice from stdin,
  works before the server starts, and switches to the prosody user when run as root; it checks
  that the log file is writable, so accounts are made after the chown.
- `prosodyctl check config` fails on deprecated options (`daemonize`, `legacy_ssl_ports`):
  the foreground flag `-F` replaces the first, `c2s_direct_tls_ports` the second.
- A successful login is logged at info as `Authenticated as user@domain`.

Two directory layouts, one renderer:
- dev (an InstanceSpec without explicit paths; the tests' fixtures): everything under
  `base_dir/<name>/`, the whole directory owned by the prosody user.
- managed (paths set, as the shard-plan generator does): the instance directory and its config
  stay root's (group prosody, read-only for it); Prosody owns only its data directory, its log
  file and its pidfile (and the directories made for them).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import procs
from .ports import wait_port
from .tls import PLAINTEXT, TlsProfile

PROSODY_USER = "prosody"
AUTH_INTERNAL = "internal_hashed"
AUTH_ANONYMOUS = "anonymous"
BASE_MODULES = ("roster", "saslauth", "disco", "ping")

_AUTH_RE = re.compile(r"Authenticated as (\S+)")


@dataclass
class VirtualHost:
    domain: str
    auth: str = AUTH_INTERNAL          # "internal_hashed" or "anonymous"
    modules: list[str] = field(default_factory=list)     # modules_enabled under this host
    options: dict = field(default_factory=dict)           # more settings under this host
    lua: str = ""                      # raw Lua lines appended under this host


@dataclass
class Muc:
    domain: str                        # e.g. conference.meet.example.com, internal.auth.meet...
    locking: bool = False              # muc_room_locking; False so plain joins work without Jicofo
    modules: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    lua: str = ""


@dataclass
class Component:
    """A non-MUC component, e.g. Jitsi's `Component "focus.D" "client_proxy"`."""
    domain: str
    module: str
    options: dict = field(default_factory=dict)


@dataclass
class Account:
    user: str
    domain: str
    password: str

    @property
    def jid(self) -> str:
        return f"{self.user}@{self.domain}"


@dataclass
class InstanceSpec:
    name: str
    port: int                          # c2s port on 127.0.0.1
    hosts: list[VirtualHost] = field(default_factory=list)
    mucs: list[Muc] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    cpu: Optional[int] = None          # pin to this core (taskset -c)
    interface: str = "127.0.0.1"
    tcp_backlog: Optional[int] = None  # Prosody's default is 128
    # Managed layout (all four set by the plan generator; None: the dev layout under the
    # instance directory).
    data_dir: Optional[Path] = None
    log_file: Optional[Path] = None
    pidfile: Optional[Path] = None
    certs_dir: Optional[Path] = None
    admins: list[str] = field(default_factory=list)  # global admins (e.g. Jitsi's focus user)
    modules: list[str] = field(default_factory=list)  # extra global modules_enabled
    lua: str = ""                      # raw Lua lines for the global section
    components: list[Component] = field(default_factory=list)
    plugin_paths: list[str] = field(default_factory=list)   # more plugin_paths (e.g. Jitsi's)
    index: Optional[int] = None        # position in a shard plan
    tls: Optional[TlsProfile] = None   # the plan's TLS profile (tls.py); None: plaintext. With
                                       # "terminate", `port` is mod_xmpp_shard's, not a c2s port

    @property
    def domains(self) -> list[str]:
        return [h.domain for h in self.hosts]

    @property
    def address(self) -> str:
        return f"{self.interface}:{self.port}"

    @property
    def managed(self) -> bool:
        return self.data_dir is not None


@dataclass(frozen=True)
class InstancePaths:
    root: Path
    config: Path
    data: Path
    log: Path
    pidfile: Path
    certs: Path
    stdout: Path


def instance_paths(spec: InstanceSpec, root: Path) -> InstancePaths:
    root = Path(root)
    if spec.managed:
        log = Path(spec.log_file)
        return InstancePaths(root, root / "prosody.cfg.lua", Path(spec.data_dir), log,
                             Path(spec.pidfile), Path(spec.certs_dir or root / "certs"),
                             log.parent / f"{log.stem}.stdout.log")
    return InstancePaths(root, root / "prosody.cfg.lua", root / "data", root / "prosody.log",
                         root / "prosody.pid", root / "certs", root / "stdout.log")


def lua_str(s: str) -> str:
    """A Lua double-quoted string literal."""
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{out}"'


def lua_value(v) -> str:
    """A Lua literal for a TOML value (bool, number, string, list, table)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return lua_str(v)
    if isinstance(v, (list, tuple)):
        return "{ " + ", ".join(lua_value(x) for x in v) + " }" if v else "{ }"
    if isinstance(v, dict):
        items = []
        for k, x in v.items():
            key = k if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) else f"[{lua_str(k)}]"
            items.append(f"{key} = {lua_value(x)}")
        return "{ " + ", ".join(items) + " }" if items else "{ }"
    raise TypeError(f"cannot write {type(v).__name__} to Lua: {v!r}")


def _section(w, modules: list[str], options: dict, lua: str) -> None:
    if modules:
        w(f"\tmodules_enabled = {lua_value(list(modules))}")
    for k, v in options.items():
        w(f"\t{k} = {lua_value(v)}")
    for line in lua.strip("\n").splitlines() if lua.strip() else []:
        w(f"\t{line.strip()}")


def render_config(spec: InstanceSpec, root: Path) -> str:
    """A self-contained Prosody config: no default ports other than this instance's c2s port,
    no s2s, its own data, pid and log files. Passes `prosodyctl check config`."""
    p = instance_paths(spec, root)
    L: list[str] = []
    # Settings the plan's raw Lua assigns replace the renderer's own line (Prosody warns about
    # duplicates, and prosodyctl then fails on some commands).
    overridden = set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=", spec.lua, re.M))

    def w(line: str) -> None:
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*) = ", line)
        if not (m and m.group(1) in overridden):
            L.append(line)
    w(f"-- Prosody instance {spec.name!r}, generated by xs_local (xmpp-shard). Do not edit.")
    w(f"pidfile = {lua_str(str(p.pidfile))}")
    w(f"data_path = {lua_str(str(p.data))}")
    w(f'log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = {lua_str(str(p.log))} }} }}')
    prof = spec.tls or PLAINTEXT
    for line in prof.port_lines(spec):
        w(line)
    if not prof.terminate:  # behind a terminating proxy Prosody does no TLS: no certificates
        w(f"certificates = {lua_str(str(p.certs))}")
    w("-- Empty port lists so instances never fight over Prosody's default ports.")
    for opt in ("s2s_ports", "c2s_direct_tls_ports", "s2s_direct_tls_ports",
                "http_ports", "https_ports", "component_ports"):
        w(f"{opt} = {{ }}")
    if spec.tcp_backlog:
        w(f"network_settings = {{ tcp_backlog = {int(spec.tcp_backlog)} }}")
    w('modules_disabled = { "s2s" }')
    mods = list(BASE_MODULES)
    for m in list(prof.prosody_modules) + list(spec.modules):
        if m not in mods:
            mods.append(m)
    w(f"modules_enabled = {lua_value(mods)}")
    if spec.admins:
        w(f"admins = {lua_value(list(spec.admins))}")
    if spec.plugin_paths and not prof.terminate:    # terminate: security_lines() writes it
        w(f"plugin_paths = {lua_value(list(spec.plugin_paths))}")
    for line in prof.security_lines(spec):
        w(line)
    if spec.lua.strip():
        w("-- From the shard plan:")
        L.extend(spec.lua.strip("\n").splitlines())
    w("")
    for h in spec.hosts:
        w(f"VirtualHost {lua_str(h.domain)}")
        w(f"\tauthentication = {lua_str(h.auth)}")
        _section(w, h.modules, h.options, h.lua)
        w("")
    for m in spec.mucs:
        w(f"Component {lua_str(m.domain)} \"muc\"")
        w(f"\tmuc_room_locking = {'true' if m.locking else 'false'}")
        _section(w, m.modules, m.options, m.lua)
        w("")
    for c in spec.components:
        w(f"Component {lua_str(c.domain)} {lua_str(c.module)}")
        _section(w, [], c.options, "")
        w("")
    return "\n".join(L)


def _chown_tree(path: Path, user: str) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(user)
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


def _chown(path: Path, user: Optional[str], group: Optional[str] = None) -> None:
    """chown one path (root only; a no-op otherwise)."""
    if os.geteuid() != 0:
        return
    try:
        uid = pwd.getpwnam(user).pw_uid if user else -1
        gid = grp.getgrnam(group).gr_gid if group else (pwd.getpwnam(user).pw_gid if user else -1)
    except KeyError:        # no such user/group here (e.g. no prosody package): leave it
        return
    os.chown(path, uid, gid, follow_symlinks=False)


def _make_dir_for(path: Path, user: str, mode: int = 0o750) -> None:
    """Create `path` (and missing parents) for `user`; every directory made here is owned by
    `user`, existing ones are left alone."""
    missing = []
    p = Path(path)
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(mode=mode)
        os.chmod(d, mode)
        _chown(d, user)


def _check_reachable(path: Path, user: str) -> None:
    """Prosody (as `user`) must be able to traverse every ancestor of its directory."""
    if os.geteuid() != 0:
        return
    uid = pwd.getpwnam(user).pw_uid
    for p in Path(path).resolve().parents:
        st = p.stat()
        if st.st_uid == uid:
            continue
        if not st.st_mode & stat.S_IXOTH:
            raise RuntimeError(
                f"{p} is not traversable by user {user!r} (mode {stat.filemode(st.st_mode)}); "
                f"use xs_local.prosody.make_base_dir() or chmod o+x it")


def make_base_dir(prefix: str = "xs-local-", parent: Optional[str] = None) -> Path:
    """A fresh temporary directory that the prosody user may traverse (mode 0711)."""
    import tempfile
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(d, 0o711)
    return d


def require_prosody() -> None:
    for tool in ("prosody", "prosodyctl"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool!r} not found: install Debian's prosody package")


class ProsodyInstance:
    """A Prosody process whose directory is `base_dir/<name>/`."""

    def __init__(self, spec: InstanceSpec, base_dir: Path):
        self.spec = spec
        self.root = Path(base_dir) / spec.name
        self.paths = instance_paths(spec, self.root)
        self.config_path = self.paths.config
        self.log_path = self.paths.log
        self.stdout_path = self.paths.stdout
        self.data_path = self.paths.data
        self.proc: Optional[subprocess.Popen] = None
        self._stdout = None

    # -- setup ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def port(self) -> int:
        return self.spec.port

    @property
    def address(self) -> str:
        return f"{self.spec.interface}:{self.spec.port}"

    def render(self) -> str:
        return render_config(self.spec, self.root) + "\n"

    def prepare(self, fresh: bool = False) -> None:
        """Create the directory, write the config, chown, register the spec's accounts.
        `fresh` first deletes the data and log of an earlier run in the same directory."""
        require_prosody()
        if fresh:
            shutil.rmtree(self.data_path, ignore_errors=True)
            for f in (self.log_path, self.stdout_path, self.paths.pidfile):
                f.unlink(missing_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        if self.spec.managed:
            os.chmod(self.root, 0o750)
            _chown(self.root, "root", PROSODY_USER)
            self.config_path.write_text(self.render())
            self.make_dirs()
        else:
            os.chmod(self.root, 0o750)
            self.data_path.mkdir(exist_ok=True)
            if self.uses_certs:
                self.paths.certs.mkdir(exist_ok=True)
            self.config_path.write_text(self.render())
            self.log_path.touch()
            _chown_tree(self.root, PROSODY_USER)
        _check_reachable(self.root, PROSODY_USER)
        self.ensure_accounts(self.spec.accounts)

    @property
    def uses_certs(self) -> bool:
        """Whether the instance has a certificates directory (not behind a terminating proxy)."""
        return not (self.spec.tls or PLAINTEXT).terminate

    def make_dirs(self) -> None:
        """Managed layout: the config stays root's (group prosody); Prosody owns its data
        directory, log file and pidfile, and the directories made for them."""
        if self.root.exists():
            os.chmod(self.root, 0o750)
            _chown(self.root, "root", PROSODY_USER)
        if os.geteuid() == 0 and self.config_path.exists():
            os.chmod(self.config_path, 0o640)
            _chown(self.config_path, "root", PROSODY_USER)
        _make_dir_for(self.data_path, PROSODY_USER)
        _chown(self.data_path, PROSODY_USER)
        _make_dir_for(self.paths.log.parent, PROSODY_USER)
        _make_dir_for(self.paths.pidfile.parent, PROSODY_USER)
        if not self.log_path.exists():
            self.log_path.touch(mode=0o640)
        _chown(self.log_path, PROSODY_USER)
        if self.uses_certs and not self.paths.certs.exists():
            self.paths.certs.mkdir(mode=0o750, parents=True)
            _chown(self.paths.certs, "root", PROSODY_USER)

    def ensure_accounts(self, accounts: list[Account]) -> None:
        """Create each account, or set its password if it exists (idempotent). The password
        goes to prosodyctl on stdin, never on a command line."""
        if accounts:
            _check_reachable(self.root, PROSODY_USER)
        for acc in accounts:
            self.set_password(acc.user, acc.domain, acc.password)
        if os.geteuid() == 0 and self.data_path.exists():
            _chown_tree(self.data_path, PROSODY_USER)

    def set_password(self, user: str, domain: str, password: str) -> None:
        if domain not in self.spec.domains:
            raise ValueError(f"{self.name}: {domain} is not a VirtualHost here ({self.spec.domains})")
        jid = f"{user}@{domain}"
        out = ""
        for verb in ("adduser", "passwd"):
            r = subprocess.run(["prosodyctl", "--config", str(self.config_path), verb, jid],
                               input=f"{password}\n{password}\n", capture_output=True, text=True,
                               timeout=60, env=self._env())
            if r.returncode == 0:
                return
            out += r.stdout + r.stderr
            if "already exists" not in out:
                break
        raise RuntimeError(f"{self.name}: prosodyctl could not create {jid}: {out.strip()}")

    def register(self, user: str, domain: str, password: str, chown: bool = True) -> None:
        """Create an account (works whether or not the server runs)."""
        self.set_password(user, domain, password)
        if chown:
            _chown_tree(self.data_path, PROSODY_USER)

    def check_config(self) -> tuple[bool, str]:
        """`prosodyctl check config` on this instance's file: (passed, output)."""
        try:
            _check_reachable(self.root, PROSODY_USER)
        except RuntimeError as e:
            return False, str(e)
        r = subprocess.run(["prosodyctl", "--config", str(self.config_path), "check", "config"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                           env=self._env())
        text = (r.stdout + r.stderr).strip()
        # Prosody logs config warnings (e.g. a duplicate option) but still exits 0.
        return r.returncode == 0 and "Configuration warning" not in text, text

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
        env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        env["HOME"] = str(self.root)
        return env

    # -- process -------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Start in the foreground (-F) as the prosody user, pinned to spec.cpu; return once
        the c2s port accepts."""
        if self.running():
            return
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self, cpu: Optional[int] = None) -> None:
        """Start the process and return at once (see wait_ready). `cpu` overrides spec.cpu."""
        self._close_stdout()
        self._stdout = open(self.stdout_path, "ab")
        self.proc = procs.spawn(
            ["prosody", "--config", str(self.config_path), "-F"],
            user=PROSODY_USER, cpu=self.spec.cpu if cpu is None else cpu, stdout=self._stdout,
            stderr=subprocess.STDOUT, env=self._env(), cwd=str(self.root))

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until the c2s port accepts; on failure stop it and raise with the log tails."""
        try:
            wait_port(self.spec.interface, self.spec.port, timeout=timeout, proc=self.proc,
                      what=f"prosody {self.name}")
        except Exception as e:
            self.stop()
            raise RuntimeError(f"{e}\n--- {self.log_path} (tail) ---\n{self.log_tail()}"
                               f"\n--- {self.stdout_path} (tail) ---\n{self._tail(self.stdout_path)}") from None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code."""
        rc = None
        if self.proc is not None:
            rc = procs.stop(self.proc, timeout=timeout)
        self._close_stdout()
        return rc

    def kill(self) -> Optional[int]:
        """SIGKILL at once (a crash, as far as peers can tell)."""
        rc = None
        if self.proc is not None:
            rc = procs.kill(self.proc)
        self._close_stdout()
        return rc

    def _close_stdout(self) -> None:
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = None

    # -- log -----------------------------------------------------------------------------

    def log_mark(self) -> int:
        """An offset into the log; pass it as `since` to look only at later lines."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return self._tail(self.log_path, lines)

    @staticmethod
    def _tail(path: Path, lines: int = 30) -> str:
        try:
            return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no file)"

    def authenticated(self, since: int = 0) -> list[str]:
        """JIDs (user@domain, as logged) that authenticated on this instance since `since`."""
        return _AUTH_RE.findall(self.log_text(since))

    def wait_authenticated(self, jid: str, since: int = 0, timeout: float = 5.0) -> bool:
        """Wait until `jid` shows up as authenticated in the log (compared case-insensitively)."""
        deadline = time.monotonic() + timeout
        want = jid.lower()
        while True:
            if any(j.lower() == want for j in self.authenticated(since)):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def __repr__(self) -> str:
        return f"<ProsodyInstance {self.name} {self.address} pid={self.pid}>"
