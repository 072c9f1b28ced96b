"""`xmpp-shard-deploy generate / accounts / certs / check` on a small plan, without starting
servers: snapshot (golden) files, idempotence, never overwriting what it did not write,
passwords kept in 0600 files and never printed unless asked, `check` running
`prosodyctl check config` on every instance, and the Debian package's defaults staying equal
to what the generator renders.

Golden files: tests/integration/data/deploy-golden/ (paths and passwords normalised). Refresh:
    XS_UPDATE_GOLDEN=1 /usr/bin/python3 -m pytest tests/integration/test_deploy_generate.py
then review the diff by eye.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from deploy_support import GOLDEN, HERE, REPO, compare_golden, normalise, read_accounts, read_hocon, tool
from xs_local.generate import PACKAGE_DEFAULT_MARKER, package_defaults
from xs_local.prosody import make_base_dir

SMALL = HERE / "data" / "deploy-small.toml"
SKIP_IN_GOLDEN = {"accounts.txt", ".xmpp-shard-manifest.json"}


@pytest.fixture
def gen():
    """Generate the small plan into a fresh directory the prosody user can traverse
    (pytest's tmp_path is not: its parent is mode 0700)."""
    base = make_base_dir("xs-deploy-gen-")
    out = base / "out"

    def run(*extra, plan=SMALL, check=True):
        return tool("generate", plan, "--out", out, *extra, check=check)
    run.out = out
    run.base = base
    yield run
    shutil.rmtree(base, ignore_errors=True)


def generated_texts(out: Path) -> dict[str, str]:
    """Every file generate wrote (logs, passwords and the manifest aside)."""
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*"))
            if p.is_file() and str(p.relative_to(out)) not in SKIP_IN_GOLDEN
            and p.suffix != ".log"}


def test_small_plan_matches_the_golden_files(gen):
    r = gen()
    pw = read_accounts(gen.out)
    actual = {rel: normalise(text, gen.out, SMALL, pw) for rel, text in generated_texts(gen.out).items()}
    # No password anywhere in the normalised files but in placeholders.
    for rel, text in actual.items():
        for p in pw.values():
            assert p not in text, f"{rel} still holds a password"
    problems = compare_golden(actual, GOLDEN / "small")
    assert not problems, ("generated files differ from tests/integration/data/deploy-golden/small "
                          "(refresh with XS_UPDATE_GOLDEN=1 if intended):\n" + "\n".join(problems))
    assert "generate: created:" in r.stdout


def tls_plan(base: Path, extra_plan: str = 'direct_tls_port = 5223\n',
             certs: str = '[certs]\nmode = "ca"\n') -> Path:
    """The small plan in terminate mode: [certs] present (so tls defaults to "terminate")."""
    p = base / "small-tls.toml"
    p.write_text(SMALL.read_text().replace("[plan]\n", "[plan]\n" + extra_plan, 1) + "\n" + certs)
    return p


def test_small_plan_in_terminate_mode_matches_the_golden_files(gen):
    from xs_local.tls import module_dir
    plan = tls_plan(gen.base)
    gen(plan=plan)
    pw = read_accounts(gen.out)
    actual = {rel: normalise(text, gen.out, plan, pw).replace(module_dir(), "@MODULES@")
              for rel, text in generated_texts(gen.out).items()}
    problems = compare_golden(actual, GOLDEN / "small-tls")
    assert not problems, ("generated files differ from tests/integration/data/deploy-golden/small-tls "
                          "(XS_UPDATE_GOLDEN=1 refreshes them):\n" + "\n".join(problems))
    px = tomllib.loads((gen.out / "proxy.toml").read_text())
    assert [l.get("tls") for l in px["listener"]] == ["terminate", "terminate"]
    assert all(b["proxy_protocol"] == "v2" for b in px["backend"])
    assert {c["domains"][0] for c in px["certificate"]} >= {"meet.test", "guest.meet.test", "team.test", "chat.test"}
    for name in ("client", "brewery", "pool"):
        cfg = (gen.out / "prosody" / name / "prosody.cfg.lua").read_text()
        assert "allow_unencrypted_plain_auth = true" not in cfg and "xmpp_shard_ports" in cfg
    j = read_hocon((gen.out / "jitsi" / "jicofo.conf").read_text())["jicofo"]["xmpp"]
    assert j["client"]["use-tls"] is True and j["client"]["disable-certificate-verification"] is False
    jigasi = (gen.out / "jitsi" / "jigasi-sip-communicator.properties").read_text()
    assert "ALLOW_NON_SECURE=false" in jigasi
    assert "components verify the proxy's certificate" in (gen.out / "REPORT.txt").read_text()


def test_terminate_mode_with_self_signed_certificates_disables_verification_and_says_so(gen):
    plan = tls_plan(gen.base, extra_plan='tls = "terminate"\n', certs="")
    gen(plan=plan)
    j = read_hocon((gen.out / "jitsi" / "jicofo.conf").read_text())["jicofo"]["xmpp"]
    assert j["client"]["use-tls"] is True and j["client"]["disable-certificate-verification"] is True
    jvb = read_hocon((gen.out / "jitsi" / "jvb.conf").read_text())
    assert jvb["videobridge"]["apis"]["xmpp-client"]["configs"]["xmpp-shard"]["disable_certificate_verification"] is True
    assert "trust-all-xmpp-certs = true" in (gen.out / "jitsi" / "jibri.conf").read_text()
    report = (gen.out / "REPORT.txt").read_text()
    assert "certificate verification is DISABLED" in report and 'mode = "self-signed"' in report


def test_the_debian_packages_defaults_are_what_the_generator_renders():
    actual = package_defaults(REPO / "deploy" / "plans" / "jitsi-classic.toml")
    problems = []
    for name, text in actual.items():
        if os.environ.get("XS_UPDATE_GOLDEN"):
            (REPO / "deploy" / "debian" / name).write_text(text)
        have = (REPO / "deploy" / "debian" / name).read_text()
        if have != text:
            problems.append(f"deploy/debian/{name} differs from the generator's rendering "
                            f"(refresh with XS_UPDATE_GOLDEN=1)")
    assert not problems, "\n".join(problems)
    assert actual["proxy.toml"].startswith(PACKAGE_DEFAULT_MARKER + "\n")


def test_generate_twice_changes_nothing(gen):
    gen()
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in gen.out.rglob("*") if p.is_file()}
    r = gen()
    assert "generate: nothing changed" in r.stdout, r.stdout
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in gen.out.rglob("*") if p.is_file()}
    assert before == after


def test_it_never_overwrites_a_file_it_did_not_write(gen):
    gen.out.mkdir()
    (gen.out / "proxy.toml").write_text("# the operator's own proxy config\n")
    r = gen(check=False)
    assert r.returncode == 1, r
    assert f"{gen.out / 'proxy.toml'}: not created by xmpp-shard-deploy" in r.stderr, r.stderr
    assert "nothing was written" in r.stderr
    assert sorted(p.name for p in gen.out.iterdir()) == ["proxy.toml"], "it wrote something anyway"
    assert (gen.out / "proxy.toml").read_text() == "# the operator's own proxy config\n"
    r = gen("--force")
    assert "overwritten (--force): 1" in r.stdout, r.stdout
    assert "[[listener]]" in (gen.out / "proxy.toml").read_text()


def test_an_edited_file_is_kept_and_an_unedited_one_follows_the_plan(gen, tmp_path):
    gen()
    cfg = gen.out / "prosody" / "client" / "prosody.cfg.lua"
    cfg.write_text(cfg.read_text() + "-- edited by hand\n")
    # The plan changes the proxy port: proxy.toml (untouched) would follow, but the edited
    # instance config blocks the whole run.
    plan2 = tmp_path / "small2.toml"
    plan2.write_text(SMALL.read_text().replace("port = 5222", "port = 5269"))
    r = gen(plan=plan2, check=False)
    assert r.returncode == 1 and f"{cfg}: edited since xmpp-shard-deploy wrote it" in r.stderr, r
    assert 'bind = "0.0.0.0:5222"' in (gen.out / "proxy.toml").read_text()
    cfg.write_text(cfg.read_text().replace("-- edited by hand\n", ""))
    r = gen(plan=plan2)
    assert "updated:" in r.stdout and 'bind = "0.0.0.0:5269"' in (gen.out / "proxy.toml").read_text()


def test_the_package_default_proxy_config_may_be_replaced(gen):
    gen.out.mkdir()
    (gen.out / "proxy.toml").write_text(PACKAGE_DEFAULT_MARKER + "\n[[listener]]\n")
    gen()
    assert not (gen.out / "proxy.toml").read_text().startswith(PACKAGE_DEFAULT_MARKER)


def test_passwords_stay_in_0600_files_and_are_printed_only_when_asked(gen):
    r = gen()
    pw = read_accounts(gen.out)
    assert set(pw) >= {"focus@auth.meet.test", "focus@auth.jvb.meet.test", "jvb@auth.jvb.meet.test",
                       "jibri@auth.jvb.meet.test", "jigasi@auth.meet.test", "recorder@recorder.meet.test",
                       "focus@auth.team.test", "bot@chat.test"}
    assert len(set(pw.values())) == len(pw), "passwords repeat"
    assert stat.S_IMODE((gen.out / "accounts.txt").stat().st_mode) == 0o600
    for f in (gen.out / "jitsi").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert not any(p in r.stdout + r.stderr for p in pw.values()), "generate printed a password"
    # kept across runs, also after --force
    gen("--force")
    assert read_accounts(gen.out) == pw
    a = tool("accounts", SMALL, "--out", gen.out, check=True)
    assert not any(p in a.stdout + a.stderr for p in pw.values()), "accounts printed a password"
    assert "8 registered" in a.stdout or "registered with prosodyctl" in a.stdout, a.stdout
    shown = tool("accounts", SMALL, "--out", gen.out, "--show", check=True)
    assert f"jvb@auth.jvb.meet.test {pw['jvb@auth.jvb.meet.test']}" in shown.stdout
    # the accounts exist, in the owning instance's data directory only
    data = gen.out / "prosody"
    assert (data / "brewery" / "data" / "auth%2ejvb%2emeet%2etest" / "accounts" / "jvb.dat").exists()
    assert not (data / "client" / "data" / "auth%2ejvb%2emeet%2etest").exists()


def test_snippets_point_every_component_at_the_proxy(gen):
    gen()
    pw = read_accounts(gen.out)
    jicofo = read_hocon((gen.out / "jitsi" / "jicofo.conf").read_text())["jicofo"]
    c, s = jicofo["xmpp"]["client"], jicofo["xmpp"]["service"]
    assert (c["hostname"], c["port"], s["hostname"], s["port"]) == ("127.0.0.1", 5222, "127.0.0.1", 5222)
    assert c["domain"] == "auth.meet.test" and c["password"] == pw["focus@auth.meet.test"]
    assert s["domain"] == "auth.jvb.meet.test" and s["password"] == pw["focus@auth.jvb.meet.test"]
    assert jicofo["bridge"] == {"brewery-jid": "JvbBrewery@internal.auth.jvb.meet.test",
                                "xmpp-connection-name": "Service"}
    assert jicofo["jibri"]["xmpp-connection-name"] == "Service"
    assert jicofo["jigasi"] == {"brewery-jid": "JigasiBrewery@internal.auth.meet.test",
                                "xmpp-connection-name": "Client"}
    jvb = read_hocon((gen.out / "jitsi" / "jvb.conf").read_text())
    x = jvb["videobridge"]["apis"]["xmpp-client"]["configs"]["xmpp-shard"]
    assert x["muc_jids"] == "JvbBrewery@internal.auth.jvb.meet.test" and x["port"] == 5222
    assert x["password"] == pw["jvb@auth.jvb.meet.test"]
    tenant = read_hocon((gen.out / "jitsi" / "jicofo-team.test.conf").read_text())["jicofo"]
    assert tenant["xmpp"]["client"]["domain"] == "auth.team.test"
    assert tenant["xmpp"]["service"]["resource"] == "focus-team.test"
    assert set(tenant) == {"xmpp", "bridge"}


def test_units_pin_each_instance_to_its_core(gen):
    gen()
    sysd = gen.out / "systemd"
    tpl = (sysd / "prosody-shard@.service").read_text()
    assert f"--config {gen.out}/prosody/%i/prosody.cfg.lua -F" in tpl
    for d in ("User=prosody", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n"):
        assert d in tpl, d
    cores = {"client": 0, "brewery": 1, "pool": 1}       # pool: [[instance]] core = 1
    for name, core in cores.items():
        drop = (sysd / f"prosody-shard@{name}.service.d" / "10-xmpp-shard.conf").read_text()
        assert f"CPUAffinity={core}\n" in drop
        assert f"ReadWritePaths={gen.out}/prosody/{name}/data\n" in drop
    target = (sysd / "xmpp-shard.target").read_text()
    assert all(f"prosody-shard@{n}.service" in target for n in cores)
    proxy = (sysd / "xmpp-shard-proxy.service").read_text()
    assert f"--config {gen.out}/proxy.toml" in proxy and "User=xmpp-shard" in proxy
    if Path("/usr/bin/systemd-analyze").exists():
        # Syntax only: the binaries and users need not exist here.
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(sysd / "xmpp-shard.target")],
                           capture_output=True, text=True, timeout=60)
        assert "Unknown key" not in r.stderr and "Unknown section" not in r.stderr, r.stderr


def test_check_runs_prosodyctl_on_every_generated_instance(gen, proxy_bin, tmp_path):
    gen()
    r = tool("check", SMALL, "--out", gen.out, "--proxy", proxy_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("client", "brewery", "pool"):
        assert f"prosodyctl check config {gen.out}/prosody/{name}/prosody.cfg.lua: ok" in r.stdout
    assert f"--check {gen.out}/proxy.toml: ok" in r.stdout
    # A config that Prosody rejects is reported, naming the instance; so is a stale directory.
    bad = tmp_path / "bad.toml"
    bad.write_text(SMALL.read_text().replace("tcp_backlog = 511", 'tcp_backlog = 511\nlua = "this is not Lua"'))
    gen("--force", plan=bad)
    r = tool("check", bad, "--out", gen.out, "--proxy", proxy_bin)
    assert r.returncode == 1, r
    assert f"prosodyctl check config {gen.out}/prosody/brewery/prosody.cfg.lua:" in r.stderr, r.stderr
    r = tool("check", SMALL, "--out", gen.out, "--proxy", proxy_bin)
    assert r.returncode == 1 and "out of date with the plan" in r.stderr, r


def test_certs_self_signed_and_ca(gen, tmp_path):
    gen()
    r = tool("certs", SMALL, "--out", gen.out, check=True)
    certs = gen.out / "prosody" / "brewery" / "certs"
    crt, key = certs / "auth.jvb.meet.test.crt", certs / "internal.auth.jvb.meet.test.key"
    assert crt.exists() and key.exists(), r.stdout
    assert stat.S_IMODE(key.stat().st_mode) == 0o640
    text = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    assert "DNS:auth.jvb.meet.test" in text
    again = tool("certs", SMALL, "--out", gen.out, check=True)
    assert "0 made" in again.stdout
    ca_plan = tmp_path / "ca.toml"       # tls = "none": certificates for the instances
    ca_plan.write_text(SMALL.read_text().replace("[plan]\n", '[plan]\ntls = "none"\n', 1)
                       + '\n[certs]\nmode = "ca"\n')
    out2 = gen.base / "out2"
    tool("generate", ca_plan, "--out", out2, check=True)
    r = tool("certs", ca_plan, "--out", out2, check=True)
    ca = out2 / "certs" / "ca.crt"
    assert ca.exists() and "update-ca-certificates" in r.stdout
    v = subprocess.run(["openssl", "verify", "-CAfile", str(ca),
                        str(out2 / "prosody" / "client" / "certs" / "meet.test.crt")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v.stdout + v.stderr


def test_manifest_lists_what_it_wrote(gen):
    gen()
    m = json.loads((gen.out / ".xmpp-shard-manifest.json").read_text())
    assert set(m["files"]) == set(generated_texts(gen.out)) - {".xmpp-shard-manifest.json"}
    for rel, sha in m["files"].items():
        assert re.fullmatch(r"[0-9a-f]{64}", sha), rel
    toml = tomllib.loads((gen.out / "proxy.toml").read_text())
    assert [b["name"] for b in toml["backend"]] == ["client", "brewery", "pool"]


def test_certs_and_check_in_terminate_mode(gen, proxy_bin):
    """Terminate mode: `certs` makes the proxy's certificates (OUT/certs/, signed by the local
    CA), none for Prosody; `check` names [plan] tls while they are missing, then passes
    (prosodyctl and the proxy's --check)."""
    plan = tls_plan(gen.base)
    gen(plan=plan)
    r = tool("check", plan, "--out", gen.out, "--proxy", proxy_bin)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "[plan] tls" in r.stderr and "certificates are missing" in r.stderr and "certs" in r.stderr, r.stderr
    r = tool("certs", plan, "--out", gen.out, check=True)
    assert f"for the proxy" in r.stdout and "update-ca-certificates" in r.stdout, r.stdout
    ca = gen.out / "certs" / "ca.crt"
    for d in ("meet.test", "guest.meet.test", "auth.jvb.meet.test", "team.test", "chat.test"):
        crt = gen.out / "certs" / f"{d}.crt"
        v = subprocess.run(["openssl", "verify", "-CAfile", str(ca), "-verify_hostname", d, str(crt)],
                           capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
        assert stat.S_IMODE((gen.out / "certs" / f"{d}.key").stat().st_mode) == 0o640
    assert not (gen.out / "certs" / "conference.meet.test.crt").exists()     # MUCs: no client names them
    for name in ("client", "brewery", "pool"):                            # Prosody holds none
        assert not (gen.out / "prosody" / name / "certs").exists()
        assert "certificates =" not in (gen.out / "prosody" / name / "prosody.cfg.lua").read_text()
    r = tool("check", plan, "--out", gen.out, "--proxy", proxy_bin)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'tls = "terminate": 9 certificate(s) for the proxy: ok' in r.stdout
    assert f"--check {gen.out}/proxy.toml: ok" in r.stdout
    for name in ("client", "brewery", "pool"):
        assert f"prosodyctl check config {gen.out}/prosody/{name}/prosody.cfg.lua: ok" in r.stdout
    # A plan that is not generated: check renders it (with throwaway certificates) and passes.
    r = tool("check", plan, "--proxy", proxy_bin)
    assert r.returncode == 0, r.stdout + r.stderr


def test_terminate_mode_with_existing_certificates_names_the_dir(gen, proxy_bin, tmp_path):
    plan = tls_plan(gen.base, extra_plan="", certs=f'[certs]\nmode = "existing"\ndir = "{tmp_path}/none"\n')
    r = tool("check", plan, "--proxy", proxy_bin)
    assert r.returncode == 1 and "[certs] dir" in r.stderr and f"{tmp_path}/none/meet.test.crt" in r.stderr, r
