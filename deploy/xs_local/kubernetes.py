"""`generate --target kubernetes`: the shard plan -> Kubernetes manifests, rendered by the same
code as the systemd target (plan.expand, prosody.render_config, ProxyConfig.render, jitsi.*),
with the paths, interfaces and ports adapted for pods (deploy/README.md, "Kubernetes").

    OUT/prosody-configmap.yaml      ConfigMap prosody-config: one prosody.cfg.lua per pod
                                    (key POD.cfg.lua; pod prosody-K is the plan's instance K)
    OUT/prosody-accounts-secret.yaml   Secret prosody-accounts: each pod's service users,
                                    registered by the pods' init container (prosodyctl, stdin)
    OUT/prosody-modules-configmap.yaml [plan] tls = "terminate": mod_xmpp_shard.lua
    OUT/prosody-service.yaml        headless Service prosody (port xmpp-client: SRV records
                                    _xmpp-client._tcp.prosody.NAMESPACE.svc...), and with
                                    [kubernetes] backends = "service" one ClusterIP Service per pod
    OUT/prosody-statefulset.yaml    StatefulSet prosody: one pod per instance, CPU request = limit
                                    = 1 (memory too: Guaranteed QoS, so a static CPU manager
                                    gives each shard a core of its own)
    OUT/prosody-pdb.yaml            PodDisruptionBudget: one shard down at a time
    OUT/proxy-configmap.yaml        ConfigMap xmpp-shard-proxy-config: proxy.toml
    OUT/proxy-deployment.yaml       Deployment xmpp-shard-proxy (replicas >= 2), readiness on
                                    /healthz, Prometheus scrape annotations
    OUT/proxy-service.yaml          Service xmpp-shard: 5222 (+ Direct TLS, + the HTTP listener)
    OUT/proxy-pdb.yaml              PodDisruptionBudget: all replicas but one may not go at once
    OUT/jitsi-secret.yaml           [jitsi]: jicofo and jvb (jibri, jigasi) snippets (passwords,
                                    hence a Secret, as the systemd target writes them 0600)
    OUT/jitsi-nginx-configmap.yaml  [jitsi] shards: the /xmpp-websocket and /http-bind locations
                                    (xmpp-shard.conf) and their upstream (xmpp-shard-upstream.conf)
    OUT/accounts.txt                jid password (0600), kept across runs like the systemd target's

The [kubernetes] table (k8splan.py; plan.py only lets it through) is documented in
deploy/README.md.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from pathlib import Path

from . import jitsi, k8syaml
from .generate import OutFile, new_password, plan_label, read_passwords, write_files, write_passwords
from .k8smanifests import manifests
from .k8splan import (DATA_DIR, HTTP_PORT, JICOFO_PORT, METRICS_PORT, PROSODY_DIR, PROXY_DIR,
                      XMPP_PORT, KubePlan, _cpus, backend_host, parse_kubernetes, pod_name,
                      proxy_host)
from .plan import Plan, PlanError, expand
from .prosody import ProsodyInstance
from .tls import INSTALLED_MODULES, proxy_cert_dir, tls_profile

# --------------------------------------------------------------------------------------------
# adapting the rendering for pods

def _set_lua(lua: str, name: str, value: str) -> str:
    """Replace the assignment line of setting `name` in raw Lua (the preset's lines)."""
    return re.sub(rf"(?m)^{name} = .*$", lambda m: f"{name} = {value}", lua)


def _pod_lua(lua: str, kp: KubePlan, terminate: bool) -> str:
    """The instance's Lua with loopback listeners opened to the pod network and the per-instance
    ports made the pods' common ones; logging to the console (kubectl logs)."""
    trusted = "{ " + ", ".join(f'"{x}"' for x in kp.trusted_proxies) + " }"
    lua = _set_lua(lua, "http_ports", f"{{ {HTTP_PORT} }}")
    lua = _set_lua(lua, "http_interfaces", '{ "*" }')
    lua = _set_lua(lua, "trusted_proxies", trusted)
    if terminate:   # a room shard's (or visitor node's) loopback c2s port for its jicofos
        lua = _set_lua(lua, "c2s_ports", f"{{ {JICOFO_PORT} }}")
        lua = _set_lua(lua, "c2s_interfaces", '{ "*" }')
    extra = ["-- Kubernetes: log to the console (kubectl logs); the proxy's pods connect from the "
             "pod network.",
             'log = { { levels = { min = "info" }, to = "console" } }']
    if terminate:
        extra.append(f"xmpp_shard_trusted_proxies = {trusted}")
    return "\n".join(x for x in (lua.strip("\n"), "\n".join(extra)) if x)


@dataclass
class KubeRender:
    kube: KubePlan
    layout: object
    prosody: dict[str, str]         # POD.cfg.lua -> text
    accounts: dict[str, str]        # POD -> "jid password" lines
    proxy_toml: str
    jitsi_files: dict[str, str]     # snippet name -> text (passwords)
    nginx: str = ""
    http_pods: bool = False         # Prosody serves HTTP in the pods
    shard_c2s: bool = False         # the jicofo c2s port of the shards (and visitor nodes)
    nginx_upstream: str = ""        # the upstream block for nginx's http level


def render(plan: Plan, passwords: dict[str, str]) -> KubeRender:
    kp = parse_kubernetes(plan)
    metrics = plan.proxy.get("metrics", f"127.0.0.1:{METRICS_PORT}")
    if not isinstance(metrics, str) or not metrics.rpartition(":")[2].isdigit() \
            or int(metrics.rpartition(":")[2]) == 0:
        raise PlanError(f"{plan_label(plan)}: [proxy] metrics: the Kubernetes target needs the "
                        f"metrics endpoint on a fixed port (readiness is its /healthz), got {metrics!r}")
    mport = int(metrics.rpartition(":")[2])
    if not plan.port:
        raise PlanError(f"{plan_label(plan)}: [plan] port: 0 (a free port) means nothing for a "
                        f"Service: the Kubernetes target needs a fixed port")
    tls = tls_profile(plan)
    kplan = copy.deepcopy(plan)
    kplan.interface = "0.0.0.0"
    kplan.listen = "0.0.0.0"
    if tls.terminate:
        kplan.prosody_modules = INSTALLED_MODULES
    n = plan.instances
    layout = expand(kplan, [XMPP_PORT] * n, listen_port=plan.port, direct_tls_port=plan.direct_tls_port,
                    ncpu=max(n, 1), out=PROXY_DIR, password=new_password, passwords=passwords)
    jp = plan.jitsi
    shard_c2s = bool(jp is not None and jp.shards and jp.jicofo_port)
    prosody, accounts = {}, {}
    http_pods = False
    for k, spec in enumerate(layout.instances):
        spec.data_dir = DATA_DIR
        spec.log_file = DATA_DIR / "prosody.log"      # replaced by the console log line
        spec.pidfile = DATA_DIR / "prosody.pid"
        spec.certs_dir = Path(plan.certs.dir) if plan.certs.mode == "existing" and plan.certs.dir \
            else Path("/etc/prosody/certs")
        spec.lua = _pod_lua(spec.lua, kp, tls.terminate)
        http_pods = http_pods or "http_ports = " in spec.lua
        text = ProsodyInstance(spec, Path(PROSODY_DIR)).render()
        text = text.replace(f"Prosody instance {spec.name!r},",
                            f"Prosody instance {spec.name!r} (pod {pod_name(k)}),", 1)
        prosody[f"{pod_name(k)}.cfg.lua"] = text
        accounts[pod_name(k)] = "".join(f"{a.jid} {a.password}\n" for a in spec.accounts)

    cfg = layout.proxy
    cfg.comment = (f"Generated by xmpp-shard-deploy generate --target kubernetes from "
                   f"{plan_label(plan)}.\nDo not edit: edit the plan and generate again. Backends: "
                   + ("each pod's own Service (a stable address)." if kp.backends == "service" else
                      "pod DNS names, resolved when this file is loaded (SIGHUP or a restart after "
                      "a pod moves)."))
    cfg.proxy["metrics"] = f"0.0.0.0:{mport}"
    if not cfg.proxy.get("workers"):
        # "one per core" would count the node's cores, not the pod's CPU limit
        cfg.proxy["workers"] = max(1, math.ceil(_cpus(kp.proxy_cpu)))
    for l in cfg.listeners:
        host, _, port = str(l["bind"]).rpartition(":")
        l["bind"] = f"0.0.0.0:{port}"
    names = [s.name for s in layout.instances]
    for b in cfg.backends:       # an instance's XMPP port, or NAME-http: its HTTP port
        if b["name"] in names:
            b["address"] = f"{backend_host(kp, names.index(b['name']))}:{XMPP_PORT}"
        elif b["name"].endswith("-http") and b["name"][:-5] in names:
            b["address"] = f"{backend_host(kp, names.index(b['name'][:-5]))}:{HTTP_PORT}"
        else:
            raise PlanError(f"{plan_label(plan)}: the proxy's backend {b['name']!r} is no "
                            f"instance's: the Kubernetes target cannot place it")

    jfiles: dict[str, str] = {}
    nginx = nginx_upstream = ""
    jl = layout.jitsi
    if jl is not None:
        src = plan_label(plan)
        ep = jitsi.Endpoint(jp.xmpp_host or proxy_host(kp), plan.port, tls.components_use_tls,
                            tls.components_verify_certificates)
        pw = layout.password
        if jl.shards:
            vnodes = {jp.vnode(v): i for v, i in enumerate(getattr(jl, "visitors", []))}
            for sj in jitsi.shard_jicofos(jl, layout.instances):
                sj.client = jitsi.Endpoint(backend_host(kp, sj.index),
                                           JICOFO_PORT if shard_c2s else XMPP_PORT, False, False)
                # [jitsi] visitors: this shard's nodes, reached like the shard itself
                sj.visitors = [(node, jitsi.Endpoint(backend_host(kp, vnodes[node]),
                                                     JICOFO_PORT if shard_c2s else XMPP_PORT,
                                                     False, False))
                               for node, _ep in getattr(sj, "visitors", [])]
                jfiles[f"jicofo-{sj.unit}.conf"] = jitsi.jicofo_conf(jl, sj.side, ep, pw, src, shard=sj)
            nginx = jitsi.nginx_snippet(jp, src, tls.terminate)
            nginx_upstream = jitsi.nginx_upstream(jp, src, proxy_host(kp))
        else:
            jfiles["jicofo.conf"] = jitsi.jicofo_conf(jl, jl.main, ep, pw, src)
        for b in range(1, jp.bridges + 1):
            jfiles["jvb.conf" if b == 1 else f"jvb-{b}.conf"] = jitsi.jvb_conf(jl, b, ep, pw, src)
        if "jibri" in jl.breweries:
            jfiles["jibri.conf"] = jitsi.jibri_conf(jl, ep, pw, src)
        if "jigasi" in jl.breweries:
            jfiles["jigasi-sip-communicator.properties"] = jitsi.jigasi_properties(jl, ep, pw, src)
        for t in ([] if jl.shards else jl.tenants):
            jfiles[f"jicofo-{t.domain}.conf"] = jitsi.jicofo_conf(jl, t, ep, pw, src)
    return KubeRender(kp, layout, prosody, accounts, cfg.render(), jfiles, nginx, http_pods,
                      shard_c2s, nginx_upstream)


def render_files(plan: Plan, passwords: dict[str, str]) -> tuple[KubeRender, list[OutFile]]:
    r = render(plan, passwords)
    head = (f"# Generated by xmpp-shard-deploy generate --target kubernetes from "
            f"{plan_label(plan)}.\n# Do not edit: edit the plan and generate again.\n")
    files = []
    for name, docs in manifests(plan, r).items():
        secret = any(d["kind"] == "Secret" for d in docs)
        files.append(OutFile(name, head + k8syaml.dump_all(docs), 0o600 if secret else 0o644))
    return r, files


def generate(plan: Plan, out: Path, *, force: bool = False):
    """Write the manifests under `out` (idempotent, the systemd target's overwrite rules and
    manifest). Returns (KubeRender, WriteResult)."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    r, files = render_files(plan, read_passwords(out))
    res = write_files(out, files, force=force)
    write_passwords(out, r.layout)
    return r, files, res


def cmd_generate(args, plan: Plan, out: Path) -> int:
    """`xmpp-shard-deploy generate --target kubernetes PLAN --out DIR` (cli.py)."""
    r, files, res = generate(plan, out, force=args.force)
    kp = r.kube
    print(f"generate --target kubernetes: plan {plan_label(plan)}, namespace {kp.namespace}, "
          f"{plan.instances} Prosody pod(s) ({kp.prosody_image}), {kp.proxy_replicas} proxy "
          f"replica(s) ({kp.proxy_image})")
    for f in files:
        print(f"  {out}/{f.rel}")
    print("  backends: " + ", ".join(f"{s.name}={backend_host(kp, k)}"
                                     for k, s in enumerate(r.layout.instances)))
    summary = [f"{label}: {len(items)}" for label, items in
               (("created", res.created), ("updated", res.updated),
                ("overwritten (--force)", res.forced)) if items]
    print("generate: " + (", ".join(summary) if summary else "nothing changed")
          + f" ({len(res.unchanged)} unchanged); passwords in {out}/accounts.txt (0600)")
    tls = tls_profile(plan)
    if tls.terminate:
        names = sorted({Path(c[k]).name for c in tls.proxy_certificates for k in ("cert", "key")})
        existing = plan.certs.mode == "existing" and plan.certs.dir
        src = plan.certs.dir if existing else f"{out}/certs"
        how = ("[certs] dir" if existing else
               f"`xmpp-shard-deploy certs {plan_label(plan)} --out {out}` makes them")
        print(f"generate: note: the proxy's certificates come from the Secret {kp.certs_secret} "
              f"(mounted at {proxy_cert_dir(plan, PROXY_DIR)}; {how}):\n  kubectl -n "
              f"{kp.namespace} create secret generic {kp.certs_secret} "
              + " ".join(f"--from-file={src}/{n}" for n in names)
              + "\n  (only these files: never the CA's key)")
    print(f"next: kubectl create namespace {kp.namespace}; kubectl apply -f {out}/")
    return 0
