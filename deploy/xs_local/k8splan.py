"""The [kubernetes] table of a shard plan (deploy/README.md, "Kubernetes") and the names the
manifests share: the pods' ports and paths, resource names, each pod's address for the proxy.
kubernetes.py renders the manifests with them (k8smanifests.py builds the objects).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .plan import Plan
from .planmodel import Problems, check_keys, is_int

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
