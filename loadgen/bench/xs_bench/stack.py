"""Everything the benchmark runs against, brought up once and torn down at the end, so that every
topology is measured in the same run on the same processes:

  single     one Prosody serving every domain, pinned to core 0            (topology A)
  p0, p1     the manual split: client side on core 0, auth + brewery on 1  (B, and behind C, D, E)
  proxy      xmpp-shard in front of p0/p1 (client -> p0, auth -> p1, every other domain
             rendezvous-hashed over p0/p1) and of the stub backends        (C, D)
  haproxy    HAProxy in TCP mode, same routes by a payload match           (E)
  stubs      xmpp-shard-stub-backend: echo and discard, for the proxy alone

With web_shards = N > 0 (part `web`), also the room-sharded topologies of one meeting domain,
participants over XMPP over WebSocket (and BOSH) with ?room=:
  web        one Prosody serving everything, mod_websocket + mod_bosh on its http port, core 0 (A-web)
  w1..wN     room shards: each hosts the meeting domain (guest.meet.test, conference.meet.test)
             with its own http port; pinned to cores 0, 1, 0, 1, ...
  wb         the brewery of F, G, H (auth.meet.test, internal.auth.meet.test), NOT pinned: on
             2 cores it must share one with a shard; pinned beside w2 it would take half of
             w2's core (CFS splits a core evenly between two busy processes) and w2, with half
             of the rooms, would set the storm's p99 (run 20261204-190712 did that)
  proxy      also http listeners web1..webN hashing ?room= over w1..wK (F: K = 2), and a
             second XMPP listener "brew" routing auth.meet.test to wb
  haproxy-web, nginx   HAProxy 2.6 (http mode, url_param room, consistent) and nginx (hash
             $arg_room consistent) with one frontend / server block per K (G, H)

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
from .web import FrontProcess, ShardSet

CLIENT = "meet.test"
GUEST = "guest.meet.test"
CONFERENCE = "conference.meet.test"
AUTH = "auth.meet.test"
BREWERY = "internal.auth.meet.test"
TENANTS = [f"t{i:02d}.tenant.test" for i in range(1, 17)]
STUB_ECHO = "echo.stub.test"
STUB_DISCARD = "discard.stub.test"
PASSWORDS = {"jvb": "jvb-bench-pw", "focus": "focus-bench-pw"}


def http_lua(http_port: int) -> str:
    """Global settings for a web instance's HTTP side (mod_http, mod_websocket, mod_bosh), as
    tests/integration/http_support.py and deploy/xs_local/jitsi.py render them."""
    return "\n".join([
        f"http_ports = {{ {int(http_port)} }}",
        'http_interfaces = { "127.0.0.1" }',
        f'http_default_host = "{GUEST}"',
        'trusted_proxies = { "127.0.0.1" }',
        "consider_websocket_secure = true",
        "consider_bosh_secure = true",
        "cross_domain_websocket = true",
        "cross_domain_bosh = true",
        "bosh_max_inactivity = 30",
    ])


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
                 nice: int = 0, web_shards: int = 0):
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
        self.web_shards = web_shards
        self.http_ports: dict[str, int] = {}          # instance -> its http port (web instances)
        self.web_fronts: dict[str, FrontProcess] = {}  # "haproxy", "nginx"

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
        ] + self._web_specs(cpus, accounts)

    def _web_specs(self, cpus: list[int], accounts: list) -> list[InstanceSpec]:
        if not self.web_shards:
            return []
        out = []
        meeting = [VirtualHost(CLIENT), VirtualHost(GUEST, AUTH_ANONYMOUS)]
        for name, cpu, extra_hosts, extra_mucs, accts in (
                [("web", cpus[0], [VirtualHost(AUTH)], [Muc(BREWERY)], accounts)]
                + [(f"w{k + 1}", cpus[k % len(cpus)], [], [], []) for k in range(self.web_shards)]):
            hp = free_port()
            self.http_ports[name] = hp
            out.append(InstanceSpec(name, free_port(), cpu=cpu, hosts=meeting + extra_hosts,
                                    mucs=[Muc(CONFERENCE)] + extra_mucs, accounts=accts,
                                    modules=["websocket", "bosh"], lua=http_lua(hp)))
        out.append(InstanceSpec("wb", free_port(), cpu=None, hosts=[VirtualHost(AUTH)], mucs=[Muc(BREWERY)],
                                accounts=accounts))
        return out

    def http_address(self, name: str) -> str:
        return f"127.0.0.1:{self.http_ports[name]}"

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
        xmpp = {"listeners": ["c2s"]} if self.web_shards else {}
        cfg.add_route([CLIENT, GUEST], ["p0"], name="client", **xmpp)
        cfg.add_route([AUTH], ["p1"], name="auth", **xmpp)
        cfg.add_route([STUB_ECHO], ["stub-echo"], name="stub-echo", **xmpp)
        cfg.add_route([STUB_DISCARD], ["stub-discard"], name="stub-discard", **xmpp)
        cfg.add_route(["*"], ["p0", "p1"], name="tenants", balance="hash", **xmpp)
        # The room shards: one http listener per shard count K, rooms hashed over w1..wK; the
        # brewery of F on its own instance through a second XMPP listener.
        if self.web_shards:
            self.ports.setdefault("proxy-brew", free_port())
            cfg.add_listener("brew", f"127.0.0.1:{self.ports['proxy-brew']}")
            cfg.add_backend("wb", self.instances["wb"].address)
            cfg.add_route([AUTH], ["wb"], name="brewery", listeners=["brew"])
        for k in range(1, self.web_shards + 1):
            self.ports.setdefault(f"proxy-web{k}", free_port())
            cfg.add_listener(f"web{k}", f"127.0.0.1:{self.ports[f'proxy-web{k}']}", protocol="http")
        for n in [f"w{k + 1}" for k in range(self.web_shards)]:
            cfg.add_backend(f"{n}-http", self.http_address(n))
        for k in range(1, self.web_shards + 1):
            cfg.add_route([CLIENT, GUEST], [f"w{j + 1}-http" for j in range(k)], name=f"rooms{k}",
                          balance="hash", hash_key="room", listeners=[f"web{k}"])
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

    def web_sets(self) -> list[ShardSet]:
        return [ShardSet(f"rooms{k}", "", [(f"w{j + 1}", self.http_address(f"w{j + 1}")) for j in range(k)])
                for k in range(1, self.web_shards + 1)]

    def start_web_front(self, kind: str, nofile: int = 0) -> None:
        sets = self.web_sets()
        for s in sets:
            key = f"{kind}-{s.name}"
            self.ports.setdefault(key, free_port())
            s.bind = f"127.0.0.1:{self.ports[key]}"
        self.web_fronts[kind] = FrontProcess(kind, sets, self.base / f"{kind}-web", nofile=nofile).start()
        self._boost(self.web_fronts[kind].pid)

    def stop_web_front(self, kind: str) -> None:
        f = self.web_fronts.pop(kind, None)
        if f:
            f.stop()

    def restart_web_front(self, kind: str, nofile: int = 0) -> None:
        """A fresh process of one web front ("proxy", "haproxy", "nginx"): memory from a clean heap;
        nofile > 0: HAProxy and nginx configured for that many descriptors (the proxy needs no
        setting: it uses whatever RLIMIT_NOFILE it inherits)."""
        if kind == "proxy":
            self.stop_proxy()
            self.start_proxy()
        else:
            self.stop_web_front(kind)
            self.start_web_front(kind, nofile=nofile)

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
        for name, hp in self.http_ports.items():
            wait_port("127.0.0.1", hp, timeout=15, proc=self.instances[name].proc, what=f"{name} http")
        self.start_stubs()
        self.start_proxy()
        self.start_haproxy()
        if self.web_shards:
            self.start_web_front("haproxy")
            self.start_web_front("nginx")

    def down(self) -> None:
        self.stop_proxy()
        self.stop_haproxy()
        for kind in list(self.web_fronts):
            self.stop_web_front(kind)
        for p in self.stubs.values():
            procs.stop(p, timeout=5)
        self.stubs.clear()
        for inst in self.instances.values():
            inst.stop()
        for f in self._logs:
            f.close()
        self._logs.clear()

    def restart_instances(self, names: list[str]) -> None:
        """Fresh Prosody processes for `names`: the same configs, ports, data (accounts) and
        cores; returns once their c2s and http ports accept again."""
        insts = [self.instances[n] for n in names]
        for inst in insts:
            inst.stop()
        for inst in insts:
            inst.spawn()
        for inst in insts:
            inst.wait_ready()
            self._boost(inst.pid)
            if inst.name in self.http_ports:
                wait_port("127.0.0.1", self.http_ports[inst.name], timeout=15, proc=inst.proc,
                          what=f"{inst.name} http")

    def storm_instances(self, name: str) -> list[str]:
        """The Prosody instances a storm on topology `name` uses (participants and brewery): those
        whose processes the topology watches."""
        pids = set(self.topology(name).watch.values())
        return [n for n, inst in self.instances.items() if inst.pid in pids]

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
        return self.web_topology(name)

    def web_topology(self, name: str) -> Topology:
        """A-web; F, G, H over K = 2 shards; F1..F4, G1.., H1.. over K shards. Participants
        connect to `server` over WebSocket/BOSH (an http port), the brewery to `brewery_server`
        (XMPP on TCP) on wb: through the proxy's XMPP listener "brew" for F (routed by domain,
        auth.meet.test -> wb, as C routes it to p1), straight to wb for G and H (an http front
        does not route XMPP streams)."""
        if name == "A-web":
            w = self.instances["web"]
            return Topology("A-web", "one Prosody serving everything, participants to its http port",
                            self.http_address("web"), w.address, {"prosody": w.pid})
        kind, k = name[0], int(name[1:] or 2)
        if kind not in "FGH" or not 1 <= k <= self.web_shards:
            raise KeyError(name)
        shards = {f"prosody-{j + 1}": self.instances[f"w{j + 1}"].pid for j in range(k)}
        shards["brewery"] = self.instances["wb"].pid
        p1 = self.instances["wb"].address
        if kind == "F":
            return Topology(name, f"xmpp-shard http listener, rooms hashed over {k} instances",
                            f"127.0.0.1:{self.ports[f'proxy-web{k}']}", f"127.0.0.1:{self.ports['proxy-brew']}",
                            {"proxy": self.proxy_proc.pid, **shards})
        front = "haproxy" if kind == "G" else "nginx"
        title = ("HAProxy http mode, url_param room, consistent" if kind == "G"
                 else "nginx, hash $arg_room consistent")
        return Topology(name, f"{title}, over {k} instances", self.web_fronts[front].port(f"rooms{k}"), p1,
                        {front: self.web_fronts[front].pid, **shards})

    def stub(self, kind: str) -> str:
        return f"127.0.0.1:{self.ports['stub-' + kind]}"
