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
    OUT/accounts.txt                jid password (0600), kept across runs like the systemd target's

The [kubernetes] table of the plan (read here; plan.py only lets it through) is documented in
deploy/README.md.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import jitsi, k8syaml
from .generate import OutFile, new_password, plan_label, read_passwords, write_files, write_passwords
from .plan import Plan, PlanError, expand
from .planmodel import Problems, check_keys, is_int
from .prosody import ProsodyInstance
from .tls import INSTALLED_MODULES, MODULE, module_dir, proxy_cert_dir, tls_profile

# In the pods: every Prosody listens on the same ports (one pod each), the proxy on the plan's.
XMPP_PORT = 5222          # c2s, or mod_xmpp_shard's PROXY v2 port with tls = "terminate"
HTTP_PORT = 5280          # BOSH / WebSocket ([jitsi] http_port or shards)
JICOFO_PORT = 5223        # [jitsi] shards with tls = "terminate": the jicofos' plaintext c2s
METRICS_PORT = 9464       # the proxy's /metrics and /healthz (unless [proxy] metrics names one)
PROXY_DIR = Path("/etc/xmpp-shard")          # proxy.toml (and certs/) in the proxy's pods
PROSODY_DIR = "/etc/prosody-shard"           # POD.cfg.lua in the Prosody pods
DATA_DIR = Path("/var/lib/prosody")
ACCOUNTS_DIR = "/run/xmpp-shard/accounts"
STS = "prosody"
PROXY = "xmpp-shard-proxy"
PROXY_SVC = "xmpp-shard"
KEYS = {"namespace", "cluster_domain", "prosody_image", "proxy_image", "proxy_replicas",
        "prosody_memory", "proxy_cpu", "proxy_memory", "storage", "storage_class",
        "trusted_proxies", "service_type", "backends", "certs_secret"}
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?")


@dataclass
class KubePlan:
    namespace: str = "xmpp-shard"
    cluster_domain: str = "cluster.local"
    prosody_image: str = "xmpp-shard-prosody:latest"
    proxy_image: str = "xmpp-shard:latest"
    proxy_replicas: int = 2
    prosody_memory: str = "1Gi"
    proxy_cpu: str = "1"
    proxy_memory: str = "512Mi"
    storage: str = ""                 # "": emptyDir; else a PersistentVolumeClaim of this size
    storage_class: str = ""
    trusted_proxies: list[str] = field(default_factory=lambda: [
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"])
    service_type: str = "ClusterIP"
    backends: str = "service"         # "service": a ClusterIP Service per pod; "pod": pod DNS
    certs_secret: str = "xmpp-shard-certs"


def parse_kubernetes(plan: Plan) -> KubePlan:
    """The plan file's [kubernetes] table (every problem at once, naming the key)."""
    kp = KubePlan()
    if plan.source is None:
        return kp
    with open(plan.source, "rb") as f:
        t = tomllib.load(f).get("kubernetes", {})
    pr = Problems(str(plan.source))
    if not check_keys(t, KEYS, "[kubernetes]", pr):
        pr.raise_if_any()
    for key in ("namespace", "certs_secret"):
        if key in t:
            if not isinstance(t[key], str) or not _DNS_LABEL.fullmatch(t[key]):
                pr.add(f"[kubernetes] {key}", f"must be a DNS label (a-z, 0-9, '-'), got {t[key]!r}")
            else:
                setattr(kp, key, t[key])
    for key in ("cluster_domain", "prosody_image", "proxy_image", "storage_class"):
        if key in t:
            if not isinstance(t[key], str) or not t[key] or any(c.isspace() for c in t[key]):
                pr.add(f"[kubernetes] {key}", f"must be a non-empty string without spaces, got {t[key]!r}")
            else:
                setattr(kp, key, t[key])
    for key in ("prosody_memory", "proxy_cpu", "proxy_memory", "storage"):
        if key in t:
            v = t[key]
            if not isinstance(v, str) or not (_QUANTITY.fullmatch(v) or (key == "storage" and v == "")):
                pr.add(f"[kubernetes] {key}", f"must be a Kubernetes quantity string (\"1\", "
                                              f"\"500m\", \"512Mi\"), got {v!r}")
            else:
                setattr(kp, key, v)
    if "proxy_replicas" in t:
        v = t["proxy_replicas"]
        if not is_int(v) or not (1 <= v <= 100):
            pr.add("[kubernetes] proxy_replicas", f"must be an integer in 1..100 (2 or more for "
                                                  f"availability), got {v!r}")
        else:
            kp.proxy_replicas = v
    if "trusted_proxies" in t:
        v = t["trusted_proxies"]
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
            pr.add("[kubernetes] trusted_proxies", f"must be a non-empty list of addresses or "
                                                   f"CIDR ranges (the pod network), got {v!r}")
        else:
            kp.trusted_proxies = list(v)
    for key, allowed in (("service_type", ("ClusterIP", "NodePort", "LoadBalancer")),
                         ("backends", ("service", "pod"))):
        if key in t:
            if t[key] not in allowed:
                pr.add(f"[kubernetes] {key}", f"must be one of {list(allowed)}, got {t[key]!r}")
            else:
                setattr(kp, key, t[key])
    pr.raise_if_any()
    return kp


# --------------------------------------------------------------------------------------------
# names

def pod_name(k: int) -> str:
    return f"{STS}-{k}"


def backend_host(kp: KubePlan, k: int) -> str:
    """Where the proxy reaches pod k: its own ClusterIP Service (stable while the pod is
    replaced), or its DNS name under the headless Service (an address that changes with the pod;
    the proxy resolves host names only when it loads its config)."""
    svc = f"svc.{kp.cluster_domain}"
    if kp.backends == "pod":
        return f"{pod_name(k)}.{STS}.{kp.namespace}.{svc}"
    return f"{pod_name(k)}.{kp.namespace}.{svc}"


def proxy_host(kp: KubePlan) -> str:
    return f"{PROXY_SVC}.{kp.namespace}.svc.{kp.cluster_domain}"


def _meta(kp: KubePlan, name: str, component: str, **extra) -> dict:
    d = {"name": name, "namespace": kp.namespace,
         "labels": {"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": "xmpp-shard",
                    "app.kubernetes.io/managed-by": "xmpp-shard-deploy"}}
    d.update(extra)
    return d


def _selector(component: str) -> dict:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": "xmpp-shard"}


def _cpus(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# adapting the rendering for pods

def _set_lua(lua: str, name: str, value: str) -> str:
    """Replace the assignment line of setting `name` in raw Lua (the preset's lines)."""
    return re.sub(rf"(?m)^{name} = .*$", lambda m: f"{name} = {value}", lua)


def _pod_lua(lua: str, kp: KubePlan, terminate: bool, shard_c2s: bool) -> str:
    """The instance's Lua with loopback listeners opened to the pod network and the per-instance
    ports made the pods' common ones; logging to the console (kubectl logs)."""
    trusted = "{ " + ", ".join(f'"{x}"' for x in kp.trusted_proxies) + " }"
    lua = _set_lua(lua, "http_ports", f"{{ {HTTP_PORT} }}")
    lua = _set_lua(lua, "http_interfaces", '{ "*" }')
    lua = _set_lua(lua, "trusted_proxies", trusted)
    if shard_c2s:
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
    shard_c2s: bool = False         # the shards' jicofo c2s port


def render(plan: Plan, passwords: dict[str, str]) -> KubeRender:
    kp = parse_kubernetes(plan)
    metrics = plan.proxy.get("metrics", f"127.0.0.1:{METRICS_PORT}")
    if not isinstance(metrics, str) or not metrics.rpartition(":")[2].isdigit() \
            or int(metrics.rpartition(":")[2]) == 0:
        raise PlanError(f"{plan_label(plan)}: [proxy] metrics: the Kubernetes target needs the "
                        f"metrics endpoint on a fixed port (readiness is its /healthz), got {metrics!r}")
    mport = int(metrics.rpartition(":")[2])
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
        spec.lua = _pod_lua(spec.lua, kp, tls.terminate, shard_c2s and k < jp.shards)
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
    for b in cfg.backends:
        if b["name"].endswith("-http") and b["name"][:-5] in names[: (jp.shards or 0) if jp else 0]:
            b["address"] = f"{backend_host(kp, names.index(b['name'][:-5]))}:{HTTP_PORT}"
        else:
            b["address"] = f"{backend_host(kp, names.index(b['name']))}:{XMPP_PORT}"

    jfiles: dict[str, str] = {}
    nginx = ""
    jl = layout.jitsi
    if jl is not None:
        src = plan_label(plan)
        ep = jitsi.Endpoint(jp.xmpp_host or proxy_host(kp), plan.port, tls.components_use_tls,
                            tls.components_verify_certificates)
        pw = layout.password
        if jl.shards:
            for sj in jitsi.shard_jicofos(jl, layout.instances):
                sj.client = jitsi.Endpoint(backend_host(kp, sj.index),
                                           JICOFO_PORT if shard_c2s else XMPP_PORT, False, False)
                jfiles[f"jicofo-{sj.unit}.conf"] = jitsi.jicofo_conf(jl, sj.side, ep, pw, src, shard=sj)
            nginx = jitsi.nginx_snippet(jp, src, proxy_host(kp) if tls.terminate else None)
            nginx = nginx.replace(f"http://127.0.0.1:{jp.http_port}",
                                  f"http://{proxy_host(kp)}:{jp.http_port}")
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
                      shard_c2s)


# --------------------------------------------------------------------------------------------
# manifests

def _port(name: str, port: int) -> dict:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


def _svc_port(name: str, port: int, target=None) -> dict:
    return {"name": name, "port": port, "targetPort": target or name, "protocol": "TCP"}


def _pdb(kp: KubePlan, name: str, component: str, spec: dict) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": _meta(kp, name, component),
            "spec": {**spec, "selector": {"matchLabels": _selector(component)}}}


def _drain_seconds(plan: Plan) -> int:
    v = str(plan.proxy.get("drain_timeout", "30s"))
    m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)", v)
    if not m:
        return 30
    mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    return int(float(m.group(1)) * mult + 0.999)


_REGISTER = """\
set -eu
cfg="%s/$POD_NAME.cfg.lua"
f="%s/$POD_NAME"
[ -s "$f" ] || exit 0
while read -r jid pw; do
  [ -n "$jid" ] || continue
  printf '%%s\\n%%s\\n' "$pw" "$pw" | prosodyctl --config "$cfg" adduser "$jid" >/dev/null 2>&1 ||
    printf '%%s\\n%%s\\n' "$pw" "$pw" | prosodyctl --config "$cfg" passwd "$jid"
  echo "registered $jid"
done < "$f"
""" % (PROSODY_DIR, ACCOUNTS_DIR)


def manifests(plan: Plan, r: KubeRender) -> dict[str, list[dict]]:
    """File name -> its documents."""
    kp, layout = r.kube, r.layout
    tls = tls_profile(plan)
    n = plan.instances
    jp = plan.jitsi
    docs: dict[str, list[dict]] = {}
    pcomp, xcomp = "prosody", PROXY

    docs["prosody-configmap.yaml"] = [{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": _meta(kp, "prosody-config", pcomp), "data": dict(r.prosody)}]
    docs["prosody-accounts-secret.yaml"] = [{
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": _meta(kp, "prosody-accounts", pcomp), "stringData": dict(r.accounts)}]
    if tls.terminate:
        mod = Path(module_dir()) / f"mod_{MODULE}.lua"
        docs["prosody-modules-configmap.yaml"] = [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(kp, "xmpp-shard-prosody-modules", pcomp),
            "data": {mod.name: mod.read_text()}}]

    ports = [_port("xmpp-client", XMPP_PORT)]
    if r.http_pods:
        ports.append(_port("http", HTTP_PORT))
    if r.shard_c2s:
        ports.append(_port("jicofo-c2s", JICOFO_PORT))
    svc_ports = [_svc_port(p["name"], p["containerPort"]) for p in ports]
    services = [{
        "apiVersion": "v1", "kind": "Service",
        "metadata": _meta(kp, STS, pcomp, annotations={
            "xmpp-shard/srv": f"_xmpp-client._tcp.{STS}.{kp.namespace}.svc.{kp.cluster_domain}"}),
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                 "selector": _selector(pcomp), "ports": svc_ports}}]
    if kp.backends == "service":
        for k in range(n):
            services.append({
                "apiVersion": "v1", "kind": "Service",
                "metadata": _meta(kp, pod_name(k), pcomp, annotations={
                    "xmpp-shard/instance": layout.instances[k].name}),
                "spec": {"type": "ClusterIP", "publishNotReadyAddresses": True,
                         "selector": {**_selector(pcomp),
                                      "statefulset.kubernetes.io/pod-name": pod_name(k)},
                         "ports": svc_ports}})
    docs["prosody-service.yaml"] = services

    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    mounts = [{"name": "config", "mountPath": PROSODY_DIR, "readOnly": True},
              {"name": "data", "mountPath": str(DATA_DIR)}]
    if tls.terminate:
        mounts.append({"name": "modules", "mountPath": INSTALLED_MODULES, "readOnly": True})
    res = {"cpu": "1", "memory": kp.prosody_memory}
    volumes = [{"name": "config", "configMap": {"name": "prosody-config"}},
               {"name": "accounts", "secret": {"secretName": "prosody-accounts"}}]
    if tls.terminate:
        volumes.append({"name": "modules", "configMap": {"name": "xmpp-shard-prosody-modules"}})
    if not kp.storage:
        volumes.append({"name": "data", "emptyDir": {}})
    sts_spec = {
        "serviceName": STS, "replicas": n, "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": _selector(pcomp)},
        "template": {
            "metadata": {"labels": _meta(kp, "x", pcomp)["labels"],
                         "annotations": {"xmpp-shard/config-sha256": _sha("".join(
                             r.prosody[k] for k in sorted(r.prosody)))}},
            "spec": {
                "terminationGracePeriodSeconds": 30,
                "initContainers": [{
                    "name": "accounts", "image": kp.prosody_image,
                    "command": ["/bin/sh", "-c", _REGISTER], "env": env,
                    "volumeMounts": mounts + [{"name": "accounts", "mountPath": ACCOUNTS_DIR,
                                               "readOnly": True}],
                    "resources": {"requests": dict(res), "limits": dict(res)}}],
                "containers": [{
                    "name": "prosody", "image": kp.prosody_image,
                    "command": ["prosody", "--config", f"{PROSODY_DIR}/$(POD_NAME).cfg.lua", "-F"],
                    "env": env, "ports": ports,
                    "readinessProbe": {"tcpSocket": {"port": "xmpp-client"},
                                       "periodSeconds": 5, "failureThreshold": 3},
                    "resources": {"requests": dict(res), "limits": dict(res)},
                    "volumeMounts": mounts}],
                "volumes": volumes}}}
    if kp.storage:
        pvc = {"metadata": {"name": "data"},
               "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": kp.storage}}}}
        if kp.storage_class:
            pvc["spec"]["storageClassName"] = kp.storage_class
        sts_spec["volumeClaimTemplates"] = [pvc]
    docs["prosody-statefulset.yaml"] = [{
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": _meta(kp, STS, pcomp, annotations={"xmpp-shard/instances": ", ".join(
            f"{pod_name(k)}={s.name}" for k, s in enumerate(layout.instances))}),
        "spec": sts_spec}]
    docs["prosody-pdb.yaml"] = [_pdb(kp, STS, pcomp, {"maxUnavailable": 1})]

    # the proxy
    docs["proxy-configmap.yaml"] = [{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": _meta(kp, f"{PROXY}-config", xcomp), "data": {"proxy.toml": r.proxy_toml}}]
    mport = int(r.layout.proxy.proxy["metrics"].rpartition(":")[2])
    xports, sports = [], []
    for l in layout.proxy.listeners:
        port = int(str(l["bind"]).rpartition(":")[2])
        name = {"c2s": "xmpp-client", "c2s-direct": "xmpps-client", "http": "http"}.get(
            l["name"], l["name"])[:15]
        xports.append(_port(name, port))
        sports.append(_svc_port(name, port))
    xports.append(_port("metrics", mport))
    xmounts = [{"name": "config", "mountPath": str(PROXY_DIR), "readOnly": True}]
    xvolumes = [{"name": "config", "configMap": {"name": f"{PROXY}-config"}}]
    if tls.terminate:
        xmounts.append({"name": "certs", "mountPath": str(proxy_cert_dir(plan, PROXY_DIR)),
                        "readOnly": True})
        xvolumes.append({"name": "certs", "secret": {"secretName": kp.certs_secret}})
    xres = {"cpu": kp.proxy_cpu, "memory": kp.proxy_memory}
    docs["proxy-deployment.yaml"] = [{
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(kp, PROXY, xcomp),
        "spec": {
            "replicas": kp.proxy_replicas,
            "selector": {"matchLabels": _selector(xcomp)},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": _meta(kp, "x", xcomp)["labels"],
                             "annotations": {"prometheus.io/scrape": "true",
                                             "prometheus.io/port": str(mport),
                                             "prometheus.io/path": "/metrics",
                                             "xmpp-shard/config-sha256": _sha(r.proxy_toml)}},
                "spec": {
                    "terminationGracePeriodSeconds": _drain_seconds(plan) + 5,
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100, "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": _selector(xcomp)}}}]}},
                    "containers": [{
                        "name": "proxy", "image": kp.proxy_image,
                        "command": ["xmpp-shard-proxy", "--config", f"{PROXY_DIR}/proxy.toml"],
                        "ports": xports,
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"},
                                           "periodSeconds": 2, "failureThreshold": 1},
                        "resources": {"requests": dict(xres), "limits": dict(xres)},
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "runAsUser": 65534,
                                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": xmounts}],
                    "volumes": xvolumes}}}}]
    docs["proxy-service.yaml"] = [{
        "apiVersion": "v1", "kind": "Service",
        "metadata": _meta(kp, PROXY_SVC, xcomp),
        "spec": {"type": kp.service_type, "selector": _selector(xcomp), "ports": sports}}]
    docs["proxy-pdb.yaml"] = [_pdb(kp, PROXY, xcomp, {"maxUnavailable": 1}
                                   if kp.proxy_replicas > 1 else {"minAvailable": 0})]

    if r.jitsi_files:
        docs["jitsi-secret.yaml"] = [{
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _meta(kp, "jitsi-snippets", "jitsi"), "stringData": dict(r.jitsi_files)}]
    if r.nginx:
        docs["jitsi-nginx-configmap.yaml"] = [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(kp, "jitsi-nginx", "jitsi"),
            "data": {"xmpp-shard.conf": r.nginx}}]
    return docs


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
        print(f"generate: note: the proxy's certificates come from the Secret {kp.certs_secret} "
              f"(mounted at {proxy_cert_dir(plan, PROXY_DIR)}): make them (`xmpp-shard-deploy "
              f"certs {plan_label(plan)} --out DIR`, or your own), then\n  kubectl -n "
              f"{kp.namespace} create secret generic {kp.certs_secret} "
              + " ".join(f"--from-file=DIR/certs/{n}" for n in names)
              + "\n  (only these files: never the CA's key)")
    print(f"next: kubectl create namespace {kp.namespace}; kubectl apply -f {out}/")
    return 0
