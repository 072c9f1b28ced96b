"""Fixtures for the integration tests: real Prosody instances (session-scoped), proxies with
generated configs (per test or per module), fake backends, a per-test deadline.

Run from the repo root:   /usr/bin/python3 -m pytest tests/integration
Proxy binary:             $XS_PROXY_BIN, default build/bin/xmpp-shard-proxy under the repo.
Keep the temp dir:        XS_IT_KEEP=1 (its path is printed at the end).

Instances (all on 127.0.0.1, free ports, own data dirs, accounts with random passwords):
  client  meet.test (+ conference.meet.test MUC), guest.meet.test (anonymous)  alice@meet.test
  auth    auth.meet.test (+ internal.auth.meet.test brewery MUC)   jvb@, focus@auth.meet.test
  pool0..pool2   the tenant domains t01..t12.tenant.test, each with user@ on ALL pool
                 instances (same password), so the logs tell which one the hash picked
"""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import pytest

# Support modules whose asserts should read like the tests' own (before any test imports them).
pytest.register_assert_rewrite("http_support", "tls_support", "srv_support", "ops_support")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "deploy"))
sys.path.insert(0, str(HERE))

from xs_local import (Account, InstanceSpec, Muc, ProsodyInstance, ProxyConfig,  # noqa: E402
                      VirtualHost, free_port, wait_port)
from xs_local import procs  # noqa: E402
from xs_local.prosody import AUTH_ANONYMOUS, make_base_dir  # noqa: E402
from xs_fakes import FakeBackend  # noqa: E402

CLIENT = "meet.test"
GUEST = "guest.meet.test"
CONFERENCE = "conference.meet.test"
AUTH = "auth.meet.test"
BREWERY = "internal.auth.meet.test"
TENANTS = [f"t{i:02d}.tenant.test" for i in range(1, 13)]

DEFAULT_TEST_TIMEOUT = 90

# Short timeouts so refusals and drains are quick; tests override what they exercise.
DEFAULT_PROXY_OPTS = {
    "workers": 1,
    "metrics": "",
    "header_timeout": "5s",
    "max_header_bytes": 4096,
    "drain_timeout": "3s",
    "connect_timeout": "2s",
    "backend_timeout": "5s",
}


def _raise_nofile() -> None:
    """Enough descriptors for hundreds of sessions; children (Prosody, proxy) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


_raise_nofile()


def pwgen() -> str:
    # Never starting with '-' or '_': command-line clients (argparse, Getopt::Long) would take a
    # leading '-' for an option.
    return "p" + secrets.token_urlsafe(12)


# --------------------------------------------------------------------------------------------
# session setup, markers, report

def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test deadline (default %d s)"
                            % DEFAULT_TEST_TIMEOUT)
    config.addinivalue_line("markers", "multiworker: exercises several worker threads "
                            "(scripts/test.sh runs these again under ThreadSanitizer)")
    config.addinivalue_line("markers", "no_sanitizer: measures memory or speed, meaningless "
                            "under sanitizers (skipped in the sanitizer stage by -m)")
    config._xs_figures = {}


def pytest_sessionstart(session):
    problems = []
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        problems.append(f"run with Debian's /usr/bin/python3 (this is {sys.executable}): "
                        "python3-slixmpp is installed only for it")
    try:
        import slixmpp  # noqa: F401
    except ImportError as e:
        problems.append(f"cannot import slixmpp ({e}): apt-get install python3-slixmpp")
    for tool in ("prosody", "prosodyctl", "setpriv", "taskset"):
        if not shutil.which(tool):
            problems.append(f"{tool!r} not on PATH (prosody / util-linux packages)")
    if problems:
        pytest.exit("integration prerequisites missing:\n  " + "\n  ".join(problems), returncode=2)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    figs = getattr(config, "_xs_figures", {})
    if figs:
        terminalreporter.section("xmpp-shard integration figures")
        for k, v in figs.items():
            terminalreporter.write_line(f"{k}: {v}")


@pytest.fixture
def figures(request):
    """Record a figure for the end-of-run summary: figures['name'] = value."""
    return request.config._xs_figures


@pytest.fixture(autouse=True)
def _deadline(request):
    """Fail (not hang) a test that runs past its deadline."""
    m = request.node.get_closest_marker("timeout")
    secs = m.args[0] if m else DEFAULT_TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded its {secs}s deadline")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, secs)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def base_dir():
    d = make_base_dir("xs-it-")
    yield d
    if os.environ.get("XS_IT_KEEP"):
        print(f"\nintegration files kept in {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def proxy_bin() -> Path:
    p = Path(os.environ.get("XS_PROXY_BIN") or REPO / "build" / "bin" / "xmpp-shard-proxy")
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"proxy binary {p} not found or not executable: build it "
                    f"(cmake --build build) or set XS_PROXY_BIN", pytrace=False)
    return p


# --------------------------------------------------------------------------------------------
# Prosody instances

class Cluster:
    def __init__(self, base: Path):
        ncpu = len(os.sched_getaffinity(0))
        cpus = sorted(os.sched_getaffinity(0))
        self.accounts: dict[str, Account] = {}

        def acc(user, domain):
            a = Account(user, domain, pwgen())
            self.accounts[a.jid] = a
            return a

        specs = [
            InstanceSpec("client", free_port(), cpu=cpus[0 % ncpu],
                         hosts=[VirtualHost(CLIENT), VirtualHost(GUEST, AUTH_ANONYMOUS)],
                         mucs=[Muc(CONFERENCE)], accounts=[acc("alice", CLIENT)]),
            InstanceSpec("auth", free_port(), cpu=cpus[1 % ncpu],
                         hosts=[VirtualHost(AUTH)], mucs=[Muc(BREWERY)],
                         accounts=[acc("jvb", AUTH), acc("focus", AUTH)]),
        ]
        tenant_accounts = [acc("user", d) for d in TENANTS]
        for i in range(3):
            specs.append(InstanceSpec(f"pool{i}", free_port(), cpu=cpus[(2 + i) % ncpu],
                                      hosts=[VirtualHost(d) for d in TENANTS],
                                      accounts=list(tenant_accounts)))
        self.instances = [ProsodyInstance(s, base) for s in specs]
        self.client, self.auth = self.instances[0], self.instances[1]
        self.pool = self.instances[2:]

    def by_name(self, name: str) -> ProsodyInstance:
        return next(i for i in self.instances if i.name == name)

    def password(self, jid: str) -> str:
        return self.accounts[jid].password

    def start(self) -> None:
        with ThreadPoolExecutor(max_workers=2) as ex:
            list(ex.map(lambda i: i.prepare(), self.instances))
        for inst in self.instances:
            inst.start()

    def stop(self) -> None:
        for inst in self.instances:
            inst.stop()

    def check_alive(self) -> None:
        dead = [f"{i.name} (exit {i.proc.returncode if i.proc else '?'})\n{i.log_tail(10)}"
                for i in self.instances if not i.running()]
        if dead:
            pytest.fail("Prosody instance(s) died:\n" + "\n".join(dead), pytrace=False)

    def marks(self) -> dict[str, int]:
        return {i.name: i.log_mark() for i in self.instances}

    def who_authenticated(self, jid: str, since: dict[str, int], timeout: float = 5.0) -> list[str]:
        """Names of the instances whose log shows `jid` authenticating since `since`."""
        deadline = time.monotonic() + timeout
        while True:
            hits = [i.name for i in self.instances
                    if any(j.lower() == jid.lower() for j in i.authenticated(since.get(i.name, 0)))]
            if hits or time.monotonic() > deadline:
                return hits
            time.sleep(0.05)

    def proxy_config(self, **proxy_opts) -> ProxyConfig:
        """The standard layout: client and guest domains -> client, auth -> auth, * -> pool."""
        cfg = ProxyConfig(proxy={**DEFAULT_PROXY_OPTS, **proxy_opts})
        for inst in self.instances:
            cfg.add_backend(inst.name, inst.address)
        cfg.add_route([CLIENT, GUEST], ["client"], name="client")
        cfg.add_route([AUTH], ["auth"], name="auth")
        cfg.add_route(["*"], [p.name for p in self.pool], name="tenants", balance="hash")
        return cfg


@pytest.fixture(scope="session")
def _cluster(base_dir):
    c = Cluster(base_dir / "cluster")
    (base_dir / "cluster").mkdir()
    os.chmod(base_dir / "cluster", 0o711)
    try:
        c.start()
    except Exception as e:  # noqa: BLE001
        c.stop()
        pytest.fail(f"could not start the Prosody instances: {e}", pytrace=False)
    yield c
    c.stop()


@pytest.fixture
def cluster(_cluster) -> Cluster:
    """The session's Prosody instances, checked alive before and after the test."""
    _cluster.check_alive()
    yield _cluster
    _cluster.check_alive()


# --------------------------------------------------------------------------------------------
# Proxies

class ProxyProcess:
    def __init__(self, binary: Path, cfg: ProxyConfig, workdir: Path):
        self.binary = binary
        self.cfg = cfg
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.dir / "proxy.toml"
        self.stderr_path = self.dir / "stderr.log"
        self.proc: Optional[subprocess.Popen] = None
        self.expected_exit = False        # the test stops it itself
        host, port = cfg.listeners[0]["bind"].rsplit(":", 1)
        self.host, self.port = host.strip("[]"), int(port)
        self.config_path.write_text(cfg.render())

    def start(self, timeout: float = 10.0) -> "ProxyProcess":
        self._err = open(self.stderr_path, "ab")
        self.proc = procs.spawn([str(self.binary), "--config", str(self.config_path)],
                                stdout=self._err, stderr=subprocess.STDOUT)
        try:
            wait_port(self.host, self.port, timeout=timeout, proc=self.proc, what="xmpp-shard-proxy")
        except Exception as e:  # noqa: BLE001
            self.kill()
            pytest.fail(f"{e}\nconfig:\n{self.config_path.read_text()}\nstderr:\n{self.stderr_tail()}",
                        pytrace=False)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> Optional[int]:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc is not None:
            procs.kill(self.proc)

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_tail(self, n: int = 40) -> str:
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def finish(self) -> Optional[str]:
        """Stop it (SIGTERM, bounded wait, SIGKILL). Returns a problem description or None."""
        problem = None
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            if not self.expected_exit:
                problem = f"proxy exited on its own during the test with code {self.proc.returncode}"
        else:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait(15)
            if rc is None:
                self.kill()
                problem = "proxy did not exit within 15 s of SIGTERM (killed)"
            elif rc != 0:
                problem = f"proxy exited with code {rc} after SIGTERM (contract: 0)"
        if getattr(self, "_err", None):
            self._err.close()
        return problem


class ProxyFactory:
    def __init__(self, binary: Path, base: Path):
        self.binary = binary
        self.base = base
        self.started: list[ProxyProcess] = []

    def start(self, cfg: ProxyConfig, *, port: Optional[int] = None, listener: str = "c2s",
              **listener_opts) -> ProxyProcess:
        if not cfg.listeners:
            # free_port() only probes: the metrics port already written in the config is not
            # bound yet, so the kernel may hand the same number out again.
            metrics = str(cfg.proxy.get("metrics", ""))
            taken = {int(metrics.rsplit(":", 1)[1])} if metrics.rsplit(":", 1)[-1].isdigit() else set()
            while not port or port in taken:
                port = free_port()
            cfg.add_listener(listener, f"127.0.0.1:{port}", **listener_opts)
        n = len(list(self.base.glob("proxy-*")))
        p = ProxyProcess(self.binary, cfg, self.base / f"proxy-{n:03d}")
        self.started.append(p)
        return p.start()

    def close(self) -> list[str]:
        problems = []
        for p in self.started:
            prob = p.finish()
            print(f"--- proxy {p.dir} (port {p.port}) stderr tail ---\n{p.stderr_tail()}")
            if prob:
                problems.append(f"{prob}\n{p.stderr_tail()}")
        self.started.clear()
        return problems


@pytest.fixture
def proxies(proxy_bin, base_dir):
    """proxies.start(cfg) -> a running ProxyProcess; all are stopped after the test, and a
    proxy that crashed or did not exit 0 on SIGTERM fails the test's teardown."""
    f = ProxyFactory(proxy_bin, base_dir / "proxies")
    yield f
    problems = f.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def module_proxies(proxy_bin, base_dir):
    f = ProxyFactory(proxy_bin, base_dir / "proxies")
    yield f
    problems = f.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def fake():
    """One FakeBackend("xmpp") (stream header and empty features back) shared by a module."""
    fb = FakeBackend("xmpp")
    yield fb
    fb.close()


@pytest.fixture
def fake_backends():
    """fake_backends(mode) -> a FakeBackend listening on 127.0.0.1; closed after the test."""
    made: list[FakeBackend] = []

    def make(mode: str = "xmpp", **kw) -> FakeBackend:
        fb = FakeBackend(mode, **kw)
        made.append(fb)
        return fb
    yield make
    for fb in made:
        fb.close()


def dead_address() -> str:
    """A loopback address where nothing listens (connection refused)."""
    return f"127.0.0.1:{free_port()}"
