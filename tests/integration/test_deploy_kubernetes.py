"""`xmpp-shard-deploy generate --target kubernetes` (deploy/xs_local/kubernetes.py, deploy/README.md
"Kubernetes"): golden files of the quick start's plan (deploy/plans/local.toml, two instances)
and of the room-sharded Jitsi preset (data/deploy-rooms.toml, two shards, with a [kubernetes]
table); every manifest of those and of two more variants (TLS terminated with a tenant; pod DNS
backends) validated against the Kubernetes API schemas by tests/k8s/validate.mjs (npm's
kubernetes-models; `npm ci --prefix tests/k8s`, which scripts/setup.sh runs); what the manifests
promise (CPU request = limit = 1 per shard, the headless Service's xmpp-client port, >= 2 proxy
replicas, readiness on /healthz, scrape annotations, PodDisruptionBudgets); and the proxy.toml of
the ConfigMap under the real `xmpp-shard-proxy --check`, with the in-cluster names resolved
through a private /etc/hosts (a mount namespace), and refused without them: the proxy resolves
backend host names when it loads its config.

Golden files: tests/integration/data/deploy-golden/k8s-local/ and k8s-rooms-2/. Refresh:
    XS_UPDATE_GOLDEN=1 /usr/bin/python3 -m pytest tests/integration/test_deploy_kubernetes.py
then review the diff by eye.
"""

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from deploy_support import GOLDEN, HERE, REPO, compare_golden, normalise, read_accounts, tool
from xs_local.certs import make_certs
from xs_local.plan import expand, parse_plan
from xs_local.prosody import make_base_dir
from xs_local.tls import module_dir

K8S = REPO / "tests" / "k8s"
VALIDATE = K8S / "validate.mjs"
LOCAL = REPO / "deploy" / "plans" / "local.toml"
ROOMS = HERE / "data" / "deploy-rooms.toml"
MODULES_CM = "prosody-modules-configmap.yaml"

ROOMS_KUBE = """
[kubernetes]
namespace = "jitsi"
prosody_image = "registry.example/xmpp-shard-prosody:0.12"
proxy_image = "registry.example/xmpp-shard:1.0"
proxy_replicas = 3
storage = "1Gi"
"""


def plan_text(name: str) -> str:
    if name == "local":
        return LOCAL.read_text()
    text = ROOMS.read_text()
    if name == "rooms-2":
        return text + ROOMS_KUBE
    if name == "rooms-2-tls":          # TLS at the proxy (a local CA), a tenant
        return (text.replace("[backends]", '[certs]\nmode = "ca"\n\n[backends]')
                .replace("bridges = 2", 'bridges = 2\ntenants = ["team.test"]'))
    if name == "rooms-2-pod":          # backends by pod DNS name (headless Service)
        return text + '\n[kubernetes]\nbackends = "pod"\nnamespace = "jitsi"\n'
    if name == "rooms-2-vis":          # three Jitsi visitor nodes, TLS at the proxy
        return (text.replace("instances = 3\n", "instances = 6\n")
                .replace("\nshards = 2\n", "\nshards = 2\nvisitors = 3\n")
                .replace("[backends]", '[certs]\nmode = "ca"\n\n[backends]'))
    raise KeyError(name)


VARIANTS = ["local", "rooms-2", "rooms-2-tls", "rooms-2-pod", "rooms-2-vis"]


@pytest.fixture
def base():
    b = make_base_dir("xs-deploy-k8s-")
    yield b
    shutil.rmtree(b, ignore_errors=True)


def generate(base: Path, name: str, *extra) -> tuple[Path, Path]:
    plan = base / f"{name}.toml"
    plan.write_text(plan_text(name))
    out = base / f"out-{name}"
    tool("generate", plan, "--out", out, "--target", "kubernetes", "--cores", "2", *extra,
         check=True)
    return plan, out


def manifests(out: Path) -> list[Path]:
    return sorted(out.glob("*.yaml"))


def node_validate(files, json_out=None) -> subprocess.CompletedProcess:
    """tests/k8s/validate.mjs on `files`; fails the test (not a skip) when it cannot run."""
    if not shutil.which("node"):
        pytest.fail("node is not installed: run scripts/setup.sh (Debian's nodejs and npm)",
                    pytrace=False)
    if not (K8S / "node_modules" / "kubernetes-models").is_dir():
        pytest.fail(f"the schema validator is not installed in {K8S}/node_modules: run "
                    f"scripts/setup.sh (npm ci --prefix tests/k8s)", pytrace=False)
    args = ["node", str(VALIDATE)] + (["--json", str(json_out)] if json_out else []) + list(map(str, files))
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=K8S)


def read_docs(base: Path, out: Path) -> dict[str, list[dict]]:
    """{file name: documents} as the npm yaml package reads them (and valid, or the test fails)."""
    j = base / "docs.json"
    r = node_validate(manifests(out), j)
    assert r.returncode == 0, r.stdout + r.stderr
    return {Path(k).name: v for k, v in json.loads(j.read_text()).items()}


def find(docs: dict, kind: str, name: str) -> dict:
    for ds in docs.values():
        for d in ds:
            if d["kind"] == kind and d["metadata"]["name"] == name:
                return d
    raise AssertionError(f"no {kind}/{name} in {sorted(docs)}")


# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["local", "rooms-2"])
def test_manifests_match_the_golden_files(base, name):
    plan, out = generate(base, name)
    pw = read_accounts(out)
    # the config checksums cover the plan's path (in proxy.toml's comment): checked below
    actual = {p.name: re.sub(r"(config-sha256: )\S+", r"\1@SHA@",
                             normalise(p.read_text(), out, plan, pw))
              for p in manifests(out) if p.name != MODULES_CM}
    problems = compare_golden(actual, GOLDEN / f"k8s-{name}")
    assert not problems, "\n".join(problems)
    for p in manifests(out):
        secret = "kind: Secret" in p.read_text()
        assert stat.S_IMODE(p.stat().st_mode) == (0o600 if secret else 0o644), p
    assert stat.S_IMODE((out / "accounts.txt").stat().st_mode) == 0o600
    # The Prosody module ships inside a ConfigMap with tls = "terminate" (the local plan): the
    # file as it is in deploy/prosody-modules (not in the golden files, so that it may change).
    if name == "local":
        docs = read_docs(base, out)
        cm = find(docs, "ConfigMap", "xmpp-shard-prosody-modules")
        assert cm["data"] == {"mod_xmpp_shard.lua":
                              (Path(module_dir()) / "mod_xmpp_shard.lua").read_text()}
        # the certificates proxy.toml names are the Secret's keys, projected next to it
        toml = tomllib.loads(find(docs, "ConfigMap", "xmpp-shard-proxy-config")["data"]["proxy.toml"])
        named = sorted(c[k] for c in toml["certificate"] for k in ("cert", "key"))
        vol = find(docs, "Deployment", "xmpp-shard-proxy")["spec"]["template"]["spec"]["volumes"][0]
        items = vol["projected"]["sources"][1]["secret"]["items"]
        assert sorted(i["path"] for i in items) == named
        assert all(i["path"] == f"certs/{i['key']}" for i in items)
    else:
        assert not (out / MODULES_CM).exists()


def test_generate_twice_changes_nothing_and_keeps_the_passwords(base):
    plan, out = generate(base, "rooms-2")
    before = {p.name: p.read_text() for p in manifests(out)}
    pw = read_accounts(out)
    r = tool("generate", plan, "--out", out, "--target", "kubernetes", check=True)
    assert "nothing changed" in r.stdout, r.stdout
    assert {p.name: p.read_text() for p in manifests(out)} == before
    assert read_accounts(out) == pw
    # an edited manifest is not overwritten without --force
    (out / "proxy-service.yaml").write_text("# mine\n")
    r = tool("generate", plan, "--out", out, "--target", "kubernetes")
    assert r.returncode == 1 and "proxy-service.yaml" in r.stderr, r.stderr
    tool("generate", plan, "--out", out, "--target", "kubernetes", "--force", check=True)
    assert (out / "proxy-service.yaml").read_text() == before["proxy-service.yaml"]


@pytest.mark.parametrize("name", VARIANTS)
def test_every_manifest_passes_the_kubernetes_schemas(base, name):
    _plan, out = generate(base, name)
    files = manifests(out)
    r = node_validate(files)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    kinds = r.stdout.count("\nok ") + r.stdout.startswith("ok ")
    assert f"validated {kinds} document(s), 0 problem(s)" in r.stdout, r.stdout


def test_the_validator_refuses_a_bad_manifest(base):
    """The schema check is real: a wrong type, a missing required field, an unknown kind fail."""
    bad = base / "bad.yaml"
    bad.write_text("apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: x\nspec:\n"
                   "  replicas: two\n  selector: {}\n---\napiVersion: v1\nkind: Service\n"
                   "metadata:\n  name: y\nspec:\n  ports:\n  - port: 5222\n    targetPort: {}\n"
                   "---\napiVersion: v1\nkind: Sevrice\nmetadata:\n  name: z\n")
    r = node_validate([bad])
    assert r.returncode == 1, r.stdout
    assert "/spec/replicas must be integer" in r.stdout, r.stdout
    assert "must have required property 'template'" in r.stdout or "template" in r.stdout, r.stdout
    assert "Sevrice is not a Kubernetes model" in r.stdout, r.stdout


def test_what_the_manifests_promise(base):
    plan, out = generate(base, "rooms-2")
    docs = read_docs(base, out)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for ds in docs.values() for d in ds)
    assert kinds == sorted([
        ("ConfigMap", "prosody-config"), ("Secret", "prosody-accounts"),
        ("Service", "prosody"), ("Service", "prosody-0"), ("Service", "prosody-1"),
        ("Service", "prosody-2"), ("StatefulSet", "prosody"),
        ("PodDisruptionBudget", "prosody"), ("ConfigMap", "xmpp-shard-proxy-config"),
        ("Deployment", "xmpp-shard-proxy"), ("Service", "xmpp-shard"),
        ("PodDisruptionBudget", "xmpp-shard-proxy"), ("Secret", "jitsi-snippets"),
        ("ConfigMap", "jitsi-nginx")])
    for ds in docs.values():
        for d in ds:
            assert d["metadata"]["namespace"] == "jitsi"
    # Prosody: one pod per instance, one core each (request = limit, Guaranteed QoS)
    sts = find(docs, "StatefulSet", "prosody")
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["serviceName"] == "prosody"
    for c in sts["spec"]["template"]["spec"]["containers"] + sts["spec"]["template"]["spec"]["initContainers"]:
        assert c["resources"]["requests"] == c["resources"]["limits"]
        assert c["resources"]["limits"]["cpu"] == "1"
        assert c["image"] == "registry.example/xmpp-shard-prosody:0.12"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    headless = find(docs, "Service", "prosody")
    assert headless["spec"]["clusterIP"] == "None"
    assert {"name": "xmpp-client", "port": 5222, "targetPort": "xmpp-client",
            "protocol": "TCP"} in headless["spec"]["ports"]
    # each pod's config in the ConfigMap, the plan's instance by the pod's ordinal
    cfgs = find(docs, "ConfigMap", "prosody-config")["data"]
    assert sorted(cfgs) == ["prosody-0.cfg.lua", "prosody-1.cfg.lua", "prosody-2.cfg.lua"]
    assert "'shard-a' (pod prosody-0)" in cfgs["prosody-0.cfg.lua"]
    assert "'brewery' (pod prosody-2)" in cfgs["prosody-2.cfg.lua"]
    for text in cfgs.values():
        assert "c2s_ports = { 5222 }" in text and '"127.0.0.1"' not in text
        assert 'to = "console"' in text and 'to = "file"' not in text
    assert "http_ports = { 5280 }" in cfgs["prosody-0.cfg.lua"]
    acc = find(docs, "Secret", "prosody-accounts")["stringData"]
    pw = read_accounts(out)
    assert f"focus@auth.meet.test {pw['focus@auth.meet.test']}\n" in acc["prosody-0"]
    assert f"jvb@auth.jvb.meet.test {pw['jvb@auth.jvb.meet.test']}\n" in acc["prosody-2"]
    # the proxy: replicas, readiness on /healthz at the metrics port (0.0.0.0), scraping
    dep = find(docs, "Deployment", "xmpp-shard-proxy")
    assert dep["spec"]["replicas"] == 3
    tpl = dep["spec"]["template"]
    assert tpl["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert tpl["metadata"]["annotations"]["prometheus.io/port"] == "9464"
    assert tpl["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    c = tpl["spec"]["containers"][0]
    assert c["image"] == "registry.example/xmpp-shard:1.0"
    assert c["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in c["ports"]
    toml = tomllib.loads(find(docs, "ConfigMap", "xmpp-shard-proxy-config")["data"]["proxy.toml"])
    assert toml["proxy"]["metrics"] == "0.0.0.0:9464"
    assert [l["bind"] for l in toml["listener"]] == ["0.0.0.0:5222", "0.0.0.0:26280"]
    assert {b["name"]: b["address"] for b in toml["backend"]} == {
        "shard-a": "prosody-0.jitsi.svc.cluster.local:5222",
        "shard-b": "prosody-1.jitsi.svc.cluster.local:5222",
        "brewery": "prosody-2.jitsi.svc.cluster.local:5222",
        "shard-a-http": "prosody-0.jitsi.svc.cluster.local:5280",
        "shard-b-http": "prosody-1.jitsi.svc.cluster.local:5280"}
    assert tpl["spec"]["terminationGracePeriodSeconds"] > 30       # drain_timeout (30 s) + 5
    svc = find(docs, "Service", "xmpp-shard")
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("xmpp-client", 5222),
                                                                       ("http", 26280)]
    assert find(docs, "PodDisruptionBudget", "xmpp-shard-proxy")["spec"]["maxUnavailable"] == 1
    assert find(docs, "PodDisruptionBudget", "prosody")["spec"]["maxUnavailable"] == 1
    # a config change rolls the pods (the checksum of the ConfigMap's data in the template)
    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()[:16]
    assert tpl["metadata"]["annotations"]["xmpp-shard/config-sha256"] == sha(
        find(docs, "ConfigMap", "xmpp-shard-proxy-config")["data"]["proxy.toml"])
    assert sts["spec"]["template"]["metadata"]["annotations"]["xmpp-shard/config-sha256"] == sha(
        "".join(cfgs[k] for k in sorted(cfgs)))
    # Jitsi: the snippets as in the systemd target, reaching the proxy's Service
    snippets = find(docs, "Secret", "jitsi-snippets")["stringData"]
    assert sorted(snippets) == ["jibri.conf", "jicofo-shard-a.conf", "jicofo-shard-b.conf",
                                "jvb-2.conf", "jvb.conf"]
    assert 'hostname = "xmpp-shard.jitsi.svc.cluster.local"' in snippets["jvb.conf"]
    assert 'hostname = "prosody-0.jitsi.svc.cluster.local"' in snippets["jicofo-shard-a.conf"]
    nginx = find(docs, "ConfigMap", "jitsi-nginx")["data"]
    assert "proxy_pass http://xmpp_shard;" in nginx["xmpp-shard.conf"]
    assert "server xmpp-shard.jitsi.svc.cluster.local:26280;" in nginx["xmpp-shard-upstream.conf"]


def test_pod_backends_use_the_headless_service_names(base):
    _plan, out = generate(base, "rooms-2-pod")
    docs = read_docs(base, out)
    toml = tomllib.loads(find(docs, "ConfigMap", "xmpp-shard-proxy-config")["data"]["proxy.toml"])
    assert toml["backend"][0]["address"] == "prosody-0.prosody.jitsi.svc.cluster.local:5222"
    assert not any(d["metadata"]["name"] == "prosody-0" for ds in docs.values() for d in ds)
    assert find(docs, "Service", "prosody")["spec"]["publishNotReadyAddresses"] is True


def _hosts_check(proxy_bin: Path, cfg: Path, hosts: list[str]) -> subprocess.CompletedProcess:
    """`xmpp-shard-proxy --check` in a mount namespace whose /etc/hosts names `hosts` (on
    127.0.0.x, as cluster DNS would) and whose resolver has no server: what the pod sees."""
    d = cfg.parent
    (d / "hosts").write_text("127.0.0.1 localhost\n" + "".join(
        f"127.0.0.{10 + i} {h}\n" for i, h in enumerate(hosts)))
    (d / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    script = (f"mount --bind {d}/hosts /etc/hosts && mount --bind {d}/resolv.conf "
              f"/etc/resolv.conf && exec {proxy_bin} --config {cfg} --check")
    unshare = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    return subprocess.run(unshare + ["sh", "-c", script], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("name", VARIANTS)
def test_the_configmaps_proxy_toml_passes_the_proxys_check(base, name, proxy_bin):
    plan, out = generate(base, name)
    docs = read_docs(base, out)
    text = find(docs, "ConfigMap", "xmpp-shard-proxy-config")["data"]["proxy.toml"]
    d = base / "proxy-pod"
    d.mkdir()
    cfg = d / "proxy.toml"
    cfg.write_text(text)
    toml = tomllib.loads(text)
    if "certificate" in toml:
        # the Secret the operator makes from `xmpp-shard-deploy certs`, mounted at certs/
        p = parse_plan(tomllib.loads(plan.read_text()), ncpu=2, source=plan)
        make_certs(expand(p, out=d, ncpu=2, password=lambda: "x"))
        assert (d / toml["certificate"][0]["cert"]).is_file()
    names = sorted({b["address"].rpartition(":")[0] for b in toml["backend"]})
    r = _hosts_check(proxy_bin, cfg, names)
    assert r.returncode == 0, r.stdout + r.stderr
    # The proxy resolves backend host names when it loads the file: without cluster DNS the
    # same file is refused, naming the name (deploy/README.md, "Kubernetes": the limits).
    r = _hosts_check(proxy_bin, cfg, names[1:])
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"cannot resolve '{names[0]}'" in r.stdout + r.stderr


def test_kubernetes_table_errors_name_the_key(base):
    plan = base / "bad.toml"
    plan.write_text(ROOMS.read_text() + '\n[kubernetes]\nproxy_replicas = 0\nnamespace = "No_"\n'
                    'backends = "dns"\nwrong = 1\n')
    r = tool("generate", plan, "--out", base / "o", "--target", "kubernetes")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "[kubernetes]: unknown key(s) ['wrong']" in r.stderr, r.stderr
    plan.write_text(ROOMS.read_text() + '\n[kubernetes]\nproxy_replicas = 0\nnamespace = "No_"\n'
                    'backends = "dns"\n')
    r = tool("generate", plan, "--out", base / "o", "--target", "kubernetes")
    assert r.returncode == 2, r.stdout + r.stderr
    for key in ("[kubernetes] proxy_replicas", "[kubernetes] namespace", "[kubernetes] backends"):
        assert key in r.stderr, r.stderr
    plan.write_text(ROOMS.read_text().replace("[backends]", '[proxy]\nmetrics = ""\n\n[backends]'))
    r = tool("generate", plan, "--out", base / "o", "--target", "kubernetes")
    assert r.returncode == 2 and "[proxy] metrics" in r.stderr, r.stderr
    plan.write_text(ROOMS.read_text().replace("port = 5222", "port = 0"))
    r = tool("generate", plan, "--out", base / "o", "--target", "kubernetes")
    assert r.returncode == 2 and "[plan] port" in r.stderr, r.stderr


def test_a_plan_with_a_kubernetes_table_still_generates_for_systemd(base):
    plan = base / "rooms.toml"
    plan.write_text(plan_text("rooms-2"))
    r = tool("generate", plan, "--out", base / "o", check=True)
    assert (base / "o" / "proxy.toml").is_file(), r.stdout
    assert not (base / "o" / "proxy-deployment.yaml").exists()


@pytest.mark.parametrize("name", ["local", "rooms-2", "rooms-2-tls", "rooms-2-vis"])
def test_the_pods_prosody_configs_pass_prosodyctl_check_config(base, name):
    if not shutil.which("prosodyctl"):
        pytest.fail("prosodyctl not found: run scripts/setup.sh (Debian's prosody)", pytrace=False)
    _plan, out = generate(base, name)
    docs = read_docs(base, out)
    d = make_base_dir("xs-k8s-pc-", str(base))
    for key, text in find(docs, "ConfigMap", "prosody-config")["data"].items():
        cfg = Path(d) / key
        cfg.write_text(text)
        r = subprocess.run(["prosodyctl", "--config", str(cfg), "check", "config"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(d)})
        text_out = r.stdout + r.stderr
        assert r.returncode == 0 and "Configuration warning" not in text_out, f"{key}:\n{text_out}"


def test_every_shipped_plan_renders_valid_manifests(base):
    """deploy/plans/*.toml (the package's examples) all render, and every manifest is valid."""
    files = []
    plans = sorted((REPO / "deploy" / "plans").glob("*.toml"))
    assert len(plans) >= 5
    for plan in plans:
        out = base / f"shipped-{plan.stem}"
        tool("generate", plan, "--out", out, "--target", "kubernetes", "--cores", "4", check=True)
        files += manifests(out)
        assert (out / "proxy-deployment.yaml").is_file() and (out / "prosody-statefulset.yaml").is_file()
    r = node_validate(files)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 problem(s)" in r.stdout


# A proxy pod, simulated: a network and mount namespace of its own (so it binds 0.0.0.0 like in
# the pod), the cluster names in /etc/hosts on loopback addresses, fake room shards answering
# HTTP on those addresses; the ConfigMap's proxy.toml unchanged. Prints JSON: the readiness
# probe's answer and the shard each room reached.
POD_SCENARIO = r'''
import http.server, json, os, re, socket, subprocess, sys, threading, time
proxy, cfg, hosts, resolv, port, rooms = sys.argv[1:7]
subprocess.run(["mount", "--bind", hosts, "/etc/hosts"], check=True)
subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"], check=True)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
addr = {}
for line in open(hosts):
    ip, *names = line.split()
    for n in names:
        addr[n] = ip
backends = re.findall(r'name = "([^"]+-http)"\naddress = "([^"]+):(\d+)"', open(cfg).read())
seen = []
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen.append((self.server.name, self.path))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
for name, host, p in backends:
    srv = http.server.ThreadingHTTPServer((addr[host], int(p)), H)
    srv.name = name[:-5]
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
proc = subprocess.Popen([proxy, "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
def get(p, path, host="meet.test"):
    try:
        with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return 0
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else 0
result = {"healthz": 0, "rooms": {}}
try:
    deadline = time.monotonic() + 30
    while result["healthz"] != 200 or {n for n, _ in seen} != {b[0][:-5] for b in backends}:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            sys.exit(f"not ready: healthz {result['healthz']}, checks seen {seen}: {proc.stderr.read()}")
        result["healthz"] = get(9464, "/healthz", "localhost")
        time.sleep(0.1)
    time.sleep(0.3)
    for room in rooms.split(","):
        seen.clear()
        status = get(int(port), f"/http-bind?room={room}")
        hits = [n for n, path in seen if "room=" in path]
        result["rooms"][room] = hits[0] if status == 200 and len(hits) == 1 else f"status {status} {seen}"
finally:
    proc.terminate()
    proc.wait(timeout=60)
print(json.dumps(result))
'''


def test_two_proxy_pods_with_the_configmap_agree_with_where(base, proxy_bin):
    """The Deployment's replicas run the same ConfigMap: two simulated proxy pods (each in its
    own network namespace, binding 0.0.0.0) become ready on the probe's /healthz at the metrics
    port, and send every room to the same shard, the one `xmpp-shard-deploy where` names."""
    if not shutil.which("ip"):
        pytest.fail("ip (iproute2) not found: run scripts/setup.sh", pytrace=False)
    plan, out = generate(base, "rooms-2")
    docs = read_docs(base, out)
    text = find(docs, "ConfigMap", "xmpp-shard-proxy-config")["data"]["proxy.toml"]
    dep = find(docs, "Deployment", "xmpp-shard-proxy")
    probe = dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]
    assert probe == {"path": "/healthz", "port": "metrics"}
    toml = tomllib.loads(text)
    http_port = next(int(l["bind"].rpartition(":")[2]) for l in toml["listener"] if l["name"] == "http")
    names = sorted({b["address"].rpartition(":")[0] for b in toml["backend"]})
    rooms = [f"Room{i}" for i in range(16)] + ["lobby", "standup"]
    (base / "scenario.py").write_text(POD_SCENARIO)
    got = []
    for replica in ("a", "b"):
        d = base / f"pod-{replica}"
        d.mkdir()
        (d / "proxy.toml").write_text(text)
        (d / "hosts").write_text("127.0.0.1 localhost\n" + "".join(
            f"127.0.0.{10 + i} {h}\n" for i, h in enumerate(names)))
        (d / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        unshare = ["unshare", "-n", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-n", "-m"]
        r = subprocess.run(unshare + ["/usr/bin/python3", str(base / "scenario.py"), str(proxy_bin),
                                      str(d / "proxy.toml"), str(d / "hosts"), str(d / "resolv.conf"),
                                      str(http_port), ",".join(rooms)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        res = json.loads(r.stdout.strip().splitlines()[-1])
        assert res["healthz"] == 200
        got.append(res["rooms"])
    assert got[0] == got[1], got
    w = tool("where", plan, *rooms, check=True)
    for room, line in zip(rooms, w.stdout.splitlines()):
        assert line.startswith(f"{room.lower()}: {got[0][room]} "), (line, got[0][room])
    assert set(got[0].values()) == {"shard-a", "shard-b"}, got[0]


def test_jicofos_reach_their_shard_and_visitor_nodes_by_pod_service(base):
    """tls = "terminate" with [jitsi] visitors: each shard's jicofo logs in on its shard's and
    its visitor nodes' jicofo port (5223, plaintext, the auth domain only) through their pod
    Services; the proxy's vnode backends are the nodes' HTTP ports."""
    _plan, out = generate(base, "rooms-2-vis")
    docs = read_docs(base, out)
    sts = find(docs, "StatefulSet", "prosody")
    assert sts["spec"]["replicas"] == 6
    ports = sts["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert [(p["name"], p["containerPort"]) for p in ports] == [
        ("xmpp-client", 5222), ("http", 5280), ("jicofo-c2s", 5223)]
    snippets = find(docs, "Secret", "jitsi-snippets")["stringData"]
    conf = snippets["jicofo-shard-a.conf"]
    hosts = re.findall(r'hostname = "([^"]+)"\n\s+port = (\d+)', conf)
    assert ("prosody-0.xmpp-shard.svc.cluster.local", "5223") in hosts       # its shard
    assert ("xmpp-shard.xmpp-shard.svc.cluster.local", "5222") in hosts      # the proxy
    visitors = [h for h in hosts if h[0] not in ("prosody-0.xmpp-shard.svc.cluster.local",
                                                "xmpp-shard.xmpp-shard.svc.cluster.local")]
    assert visitors and all(re.fullmatch(r"prosody-[345]\.xmpp-shard\.svc\.cluster\.local", h)
                            and p == "5223" for h, p in visitors), hosts
    assert "127.0.0.1" not in "".join(snippets.values())
    toml = tomllib.loads(find(docs, "ConfigMap", "xmpp-shard-proxy-config")["data"]["proxy.toml"])
    addr = {b["name"]: b["address"] for b in toml["backend"]}
    for v in (1, 2, 3):
        assert addr[f"prosody-v{v}"] == f"prosody-{2 + v}.xmpp-shard.svc.cluster.local:5222"
        assert addr[f"prosody-v{v}-http"] == f"prosody-{2 + v}.xmpp-shard.svc.cluster.local:5280"
    cfgs = find(docs, "ConfigMap", "prosody-config")["data"]
    assert "'prosody-v1' (pod prosody-3)" in cfgs["prosody-3.cfg.lua"]
    assert "c2s_ports = { 5223 }" in cfgs["prosody-3.cfg.lua"]
