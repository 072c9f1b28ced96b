"""The Kubernetes objects of a rendered plan (kubernetes.render()): {file name: documents}.
Names, ports and paths come from k8splan.py; every file's content is in kubernetes.py's render.
"""

from __future__ import annotations

import re
from pathlib import Path

from .k8splan import (ACCOUNTS_DIR, DATA_DIR, HTTP_PORT, JICOFO_PORT, PROSODY_DIR, PROXY, PROXY_DIR,
                      PROXY_SVC, STS, XMPP_PORT, KubePlan, _meta, _selector, _sha, pod_name)
from .plan import Plan
from .tls import INSTALLED_MODULES, MODULE, module_dir, proxy_cert_dir, tls_profile

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


def manifests(plan: Plan, r) -> dict[str, list[dict]]:
    """File name -> its documents; `r` is kubernetes.render()'s KubeRender."""
    kp, layout = r.kube, r.layout
    tls = tls_profile(plan)
    n = plan.instances
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
    # proxy.toml, and with tls = "terminate" the certificates it names, relative to it
    # (certs/DOMAIN.crt): one projected volume, so that the Secret's keys are the files it needs
    xmounts = [{"name": "config", "mountPath": str(PROXY_DIR), "readOnly": True}]
    sources = [{"configMap": {"name": f"{PROXY}-config"}}]
    if tls.terminate:
        cdir = proxy_cert_dir(plan, PROXY_DIR)
        names = sorted({Path(c[k]).name for c in tls.proxy_certificates for k in ("cert", "key")})
        if cdir.parent == PROXY_DIR:
            sources.append({"secret": {"name": kp.certs_secret, "items": [
                {"key": f, "path": f"{cdir.name}/{f}"} for f in names]}})
        else:       # [certs] mode = "existing": the absolute [certs] dir
            xmounts.append({"name": "certs", "mountPath": str(cdir), "readOnly": True})
    xvolumes = [{"name": "config", "projected": {"sources": sources}}]
    if tls.terminate and proxy_cert_dir(plan, PROXY_DIR).parent != PROXY_DIR:
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
            "data": {"xmpp-shard-upstream.conf": r.nginx_upstream, "xmpp-shard.conf": r.nginx}}]
    return docs
