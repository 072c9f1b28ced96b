"""Everything the benchmark runs against, brought up once and torn down at the end, so that every
topology is measured in the same run on the same processes:

  single     one Prosody serving every domain, pinned to core 0            (topology A)
  p0, p1     the manual split: client side on core 0, auth + brewery on 1  (B, and behind C, D, E)
  proxy      xmpp-shard in front of p0/p1 (client -> p0, auth -> p1, every other domain
             rendezvous-hashed over p0/p1) and of the stub backends        (C, D)
  haproxy    HAProxy in TCP mode, same routes by a payload match           (E)
  stubs      xmpp-shard-stub-backend: echo and discard, for the proxy alone

Every instance also serves the tenant domains (anonymous, each with its own MUC), so a tenant
storm lands on whichever instance the hash picks.
"""
from __future__ import annotations

import os
import resource
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from xs_local import (Account, InstanceSpec, Muc, ProsodyInstance, ProxyConfig, VirtualHost,
                      free_port, wait_port)
from xs_local import procs
from xs_local.prosody import AUTH_ANONYMOUS

from .haproxy import HAProxyConfig, HAProxyProcess

CLIENT = "meet.test"
GUEST = "guest.meet.test"
CONFERENCE = "conference.meet.test"
AUTH = "auth.meet.test"
BREWERY = "internal.auth.meet.test"
TENANTS = [f"t{i:02d}.tenant.test" for i in range(1, 17)]
STUB_ECHO = "echo.stub.test"
STUB_DISCARD = "discard.stub.test"
PASSWORDS = {"jvb": "jvb-bench-pw", "focus": "focus-bench-pw"}


def tenant_muc(d: str) -> str:
    return f"conference.{d}"


def set_autogroup_nice(pid: int, nice: int) -> bool:
    """With sched_autogroup (on by default), every session (setsid) is its own scheduling group
    and a process's nice value only counts inside its group; the group's own nice is set here.
    Children started by xs_local.procs.spawn get a session each, hence one call per process."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
        return True
    except OSError:
        return False


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Topology:
    name: str                  # "A" .. "E"
    title: str
    server: str                # where clients connect
    brewery_server: str        # where bridges and the focus connect
    watch: dict[str, int] = field(default_factory=dict)   # name -> pid


class Stack:
    def __init__(self, base: Path, bin_dir: Path, proxy_workers: int = 1, haproxy_threads: int = 1,
                 nice: int = 0):
        self.base = Path(base)
        self.bin_dir = Path(bin_dir)
        self.proxy_workers = proxy_workers
        self.haproxy_threads = haproxy_threads
        self.instances: dict[str, ProsodyInstance] = {}
        self.proxy_proc: Optional[subprocess.Popen] = None
        self.haproxy: Optional[HAProxyProcess] = None
        self.stubs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}
        self._logs: list = []
        self.nice = nice

    def _boost(self, pid) -> None:
        if self.nice and pid:
            set_autogroup_nice(pid, self.nice)

    # -- pieces -----------------------------------------------------------------------------

    def _instance_specs(self) -> list[InstanceSpec]:
        cpus = sorted(os.sched_getaffinity(0))
        c0, c1 = cpus[0], cpus[1 % len(cpus)]
        tenants = [VirtualHost(d, AUTH_ANONYMOUS) for d in TENANTS]
        tenant_mucs = [Muc(tenant_muc(d)) for d in TENANTS]
        accounts = [Account(u, AUTH, p) for u, p in PASSWORDS.items()]
        client_hosts = [VirtualHost(CLIENT), VirtualHost(GUEST, AUTH_ANONYMOUS)]
        return [
            InstanceSpec("single", free_port(), cpu=c0, hosts=client_hosts + [VirtualHost(AUTH)] + tenants,
                         mucs=[Muc(CONFERENCE), Muc(BREWERY)] + tenant_mucs, accounts=accounts),
            InstanceSpec("p0", free_port(), cpu=c0, hosts=client_hosts + tenants,
                         mucs=[Muc(CONFERENCE)] + tenant_mucs),
            InstanceSpec("p1", free_port(), cpu=c1, hosts=[VirtualHost(AUTH)] + tenants,
                         mucs=[Muc(BREWERY)] + tenant_mucs, accounts=accounts),
        ]

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.base / f"{name}.log", "ab")
        self._logs.append(log)
        return procs.spawn(cmd, stdout=log, stderr=subprocess.STDOUT)

    def start_stubs(self) -> None:
        for name, extra in (("stub-echo", ["--echo"]), ("stub-discard", [])):
            port = free_port()
            self.ports[name] = port
            self.stubs[name] = self._spawn(name, [str(self.bin_dir / "xmpp-shard-stub-backend"),
                                                  "--listen", f"127.0.0.1:{port}", *extra])
            wait_port("127.0.0.1", port, timeout=10, proc=self.stubs[name], what=name)
            self._boost(self.stubs[name].pid)

    def proxy_config(self) -> ProxyConfig:
        cfg = ProxyConfig(comment="xmpp-shard benchmark (loadgen/bench)",
                          proxy={"workers": self.proxy_workers, "metrics": "", "drain_timeout": "2s"})
        cfg.add_listener("c2s", f"127.0.0.1:{self.ports['proxy']}")
        for n in ("p0", "p1"):
            cfg.add_backend(n, self.instances[n].address)
        cfg.add_backend("stub-echo", f"127.0.0.1:{self.ports['stub-echo']}")
        cfg.add_backend("stub-discard", f"127.0.0.1:{self.ports['stub-discard']}")
        cfg.add_route([CLIENT, GUEST], ["p0"], name="client")
        cfg.add_route([AUTH], ["p1"], name="auth")
        cfg.add_route([STUB_ECHO], ["stub-echo"], name="stub-echo")
        cfg.add_route([STUB_DISCARD], ["stub-discard"], name="stub-discard")
        cfg.add_route(["*"], ["p0", "p1"], name="tenants", balance="hash")
        return cfg

    def start_proxy(self) -> None:
        self.ports.setdefault("proxy", free_port())
        path = self.base / "proxy.toml"
        path.write_text(self.proxy_config().render())
        self.proxy_proc = self._spawn("proxy", [str(self.bin_dir / "xmpp-shard-proxy"), "--config", str(path)])
        wait_port("127.0.0.1", self.ports["proxy"], timeout=10, proc=self.proxy_proc, what="proxy")
        self._boost(self.proxy_proc.pid)

    def stop_proxy(self) -> None:
        if self.proxy_proc is not None:
            procs.stop(self.proxy_proc, timeout=5)
            self.proxy_proc = None

    def start_haproxy(self) -> None:
        self.ports.setdefault("haproxy", free_port())
        cfg = HAProxyConfig(
            bind=f"127.0.0.1:{self.ports['haproxy']}", nbthread=self.haproxy_threads,
            routes=[([AUTH], "p1"), ([STUB_ECHO], "stub-echo"), ([STUB_DISCARD], "stub-discard"),
                    ([CLIENT, GUEST], "p0")],
            backends={"p0": self.instances["p0"].address, "p1": self.instances["p1"].address,
                      "stub-echo": f"127.0.0.1:{self.ports['stub-echo']}",
                      "stub-discard": f"127.0.0.1:{self.ports['stub-discard']}"},
            default_backend="p0")
        self.haproxy = HAProxyProcess(cfg, self.base / "haproxy").start()
        self._boost(self.haproxy.pid)

    def stop_haproxy(self) -> None:
        if self.haproxy:
            self.haproxy.stop()
            self.haproxy = None

    def restart_front(self) -> None:
        """Fresh proxy and HAProxy processes (memory measurements start from a clean heap)."""
        self.stop_proxy()
        self.stop_haproxy()
        self.start_proxy()
        self.start_haproxy()

    # -- whole stack ------------------------------------------------------------------------

    def up(self) -> None:
        raise_nofile()
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o711)
        for spec in self._instance_specs():
            self.instances[spec.name] = ProsodyInstance(spec, self.base)
        for inst in self.instances.values():
            inst.prepare()
        for inst in self.instances.values():
            inst.start()
            self._boost(inst.pid)
        self.start_stubs()
        self.start_proxy()
        self.start_haproxy()

    def down(self) -> None:
        self.stop_proxy()
        self.stop_haproxy()
        for p in self.stubs.values():
            procs.stop(p, timeout=5)
        self.stubs.clear()
        for inst in self.instances.values():
            inst.stop()
        for f in self._logs:
            f.close()
        self._logs.clear()

    # -- topologies -------------------------------------------------------------------------

    def topology(self, name: str) -> Topology:
        single, p0, p1 = (self.instances[n] for n in ("single", "p0", "p1"))
        px = f"127.0.0.1:{self.ports['proxy']}"
        hx = f"127.0.0.1:{self.ports['haproxy']}"
        split = {"prosody-0": p0.pid, "prosody-1": p1.pid}
        if name == "A":
            return Topology("A", "one Prosody, direct", single.address, single.address,
                            {"prosody": single.pid})
        if name == "B":
            return Topology("B", "manual split, direct to each instance", p0.address, p1.address, dict(split))
        if name == "C":
            return Topology("C", "xmpp-shard in front of the split", px, px,
                            {"proxy": self.proxy_proc.pid, **split})
        if name == "D":
            return Topology("D", "xmpp-shard, tenant domains hashed over 2 instances", px, px,
                            {"proxy": self.proxy_proc.pid, **split})
        if name == "E":
            return Topology("E", "HAProxy (TCP, payload match) in front of the split", hx, hx,
                            {"haproxy": self.haproxy.pid, **split})
        raise KeyError(name)

    def stub(self, kind: str) -> str:
        return f"127.0.0.1:{self.ports['stub-' + kind]}"
