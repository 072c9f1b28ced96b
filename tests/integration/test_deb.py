"""The Debian package: build it with cpack from the build directory under test, install it with
dpkg on this machine, run `xmpp-shard-proxy --check` on the installed config (and the installed
deploy tool's `check` on the installed plan, and `generate`, `check` and `where` on the shipped
room-sharded example), check that the maintainer scripts started,
enabled and overwrote nothing, then purge it and leave the machine as it was (the xmpp-shard
system user, which Debian practice keeps on purge, is removed by the test if it made it).

Runs as root only (CI); skipped where a real xmpp-shard package or /etc/xmpp-shard exists,
so it never touches an operator's install."""

import grp
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from deploy_support import REPO
from xs_local.prosody import make_base_dir

PKG = "xmpp-shard"
ETC = Path("/etc/xmpp-shard")


def sh(*cmd, check=True, timeout=300, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def dpkg(*args, check=True):
    """dpkg, waiting while another dpkg/apt holds the lock."""
    deadline = time.monotonic() + 120
    while True:
        r = sh("dpkg", *args, check=False)
        if r.returncode == 0 or "lock" not in r.stderr or time.monotonic() > deadline:
            break
        time.sleep(2)
    if check and r.returncode != 0:
        raise AssertionError(f"dpkg {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def installed() -> bool:
    r = sh("dpkg-query", "-W", "-f=${Status}", PKG, check=False)
    return r.returncode == 0 and "install ok installed" in r.stdout


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def proxy_processes() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.readlink(d / "exe") == "/usr/bin/xmpp-shard-proxy":
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def unit_links() -> set[str]:
    base = Path("/etc/systemd/system")
    return {str(p) for p in base.rglob("*") if "xmpp-shard" in p.name or "prosody-shard" in p.name} \
        if base.exists() else set()


@pytest.fixture(scope="module")
def build_dir(proxy_bin) -> Path:
    b = Path(proxy_bin).resolve().parent.parent
    if not (b / "CPackConfig.cmake").exists():
        pytest.fail(f"{b}/CPackConfig.cmake missing: configure the build with this checkout's "
                    f"CMakeLists.txt (it includes cmake/Packaging.cmake)", pytrace=False)
    return b


EXAMPLES = Path("/usr/share/doc/xmpp-shard/examples/plans")


def rooms_example_generates(tmp: Path) -> None:
    """The installed tool generates the shipped room-sharded example (its data, log and pidfile
    paths left at their defaults under the output, so nothing is written outside `tmp`): one
    jicofo snippet per shard, jicofo@.service, the nginx snippet, shards where only the focus
    creates rooms; `check` passes on it and `where` answers."""
    plan = tmp / "jitsi-rooms.toml"
    plan.write_text("".join(l for l in (EXAMPLES / "jitsi-rooms.toml").read_text().splitlines(True)
                            if not l.startswith(("data ", "log ", "pidfile ", "out "))))
    out = tmp / "rooms-out"
    sh("/usr/bin/xmpp-shard-deploy", "generate", plan, "--out", out)
    for f in ("jitsi/jicofo-shard-a.conf", "jitsi/jicofo-shard-c.conf", "jitsi/nginx-xmpp-shard.conf",
              "systemd/jicofo@.service", "prosody/brewery/prosody.cfg.lua"):
        assert (out / f).is_file(), f
    shard = (out / "prosody/shard-b/prosody.cfg.lua").read_text()
    assert "restrict_room_creation = true" in shard
    assert 'Component "focus.meet.example.com" "client_proxy"' in shard    # Jitsi's focus component
    assert "Adding a shard" in (out / "REPORT.txt").read_text()
    r = sh("/usr/bin/xmpp-shard-deploy", "check", plan, "--out", out, check=False)
    assert r.returncode == 0 and r.stdout.count("prosodyctl check config") == 4, r.stdout + r.stderr
    r = sh("/usr/bin/xmpp-shard-deploy", "where", plan, "SomeRoom")
    assert r.stdout.startswith("someroom: shard-"), r.stdout


@pytest.mark.no_sanitizer  # packaging, not memory safety: once, in the normal build
@pytest.mark.timeout(600)
def test_deb_installs_checks_and_purges_cleanly(build_dir, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("installing a .deb needs root (CI runs as root)")
    if installed() or ETC.exists():
        pytest.skip(f"{PKG} is installed here, or {ETC} exists: not touching an operator's install")
    for tool in ("cpack", "dpkg", "dpkg-deb", "dpkg-shlibdeps"):
        assert shutil.which(tool), f"{tool} missing (cmake, dpkg-dev)"

    user_before = user_exists("xmpp-shard")
    links_before = unit_links()
    t0 = time.monotonic()
    sh("cpack", "-G", "DEB", "--config", build_dir / "CPackConfig.cmake", "-B", tmp_path, timeout=600)
    debs = list(tmp_path.glob("xmpp-shard_*.deb"))
    assert len(debs) == 1, list(tmp_path.iterdir())
    deb = debs[0]
    build_secs = time.monotonic() - t0
    contents = sh("dpkg-deb", "-c", deb).stdout
    for f in ("./usr/bin/xmpp-shard-proxy", "./usr/bin/xmpp-shard-deploy",
              "./lib/systemd/system/prosody-shard@.service", "./lib/systemd/system/xmpp-shard-proxy.service",
              "./etc/xmpp-shard/proxy.toml", "./etc/xmpp-shard/plan.toml",
              "./usr/lib/xmpp-shard/deploy/xs_local/cli.py",
              "./usr/share/doc/xmpp-shard/examples/plans/jitsi.toml",
              # the room-sharded preset: its example plan and the code of its templates
              "./usr/share/doc/xmpp-shard/examples/plans/jitsi-rooms.toml",
              "./usr/lib/xmpp-shard/deploy/xs_local/jitsi.py", "./usr/lib/xmpp-shard/deploy/xs_local/focus.py"):
        assert f in contents, f"{f} not in the package:\n{contents}"
    for mod in sorted((REPO / "deploy" / "prosody-modules").glob("*.lua")):
        assert f"./usr/lib/xmpp-shard/prosody-modules/{mod.name}" in contents, mod.name
    assert "__pycache__" not in contents
    info = sh("dpkg-deb", "-I", deb).stdout
    assert "Depends:" in info and "python3" in info and "conffiles" in info

    try:
        dpkg("-i", deb)
        assert installed()
        # The installed proxy accepts the installed default config.
        r = sh("/usr/bin/xmpp-shard-proxy", "--config", ETC / "proxy.toml", "--check", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        # The installed deploy tool works from /usr/lib and checks the installed plan
        # (prosodyctl check config on a rendering; nothing written outside a temporary dir).
        r = sh("/usr/bin/xmpp-shard-deploy", "check", ETC / "plan.toml", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "prosodyctl check config" in r.stdout and "/usr/bin/xmpp-shard-proxy --check" in r.stdout
        tmp = make_base_dir("xs-deb-rooms-")     # traversable by prosody (prosodyctl)
        try:
            rooms_example_generates(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        assert not list(Path("/usr/lib/xmpp-shard").rglob("__pycache__")), "bytecode left next to the modules"
        assert not Path("/var/lib/xmpp-shard").exists() and not Path("/var/log/xmpp-shard").exists()
        # The system user exists; nothing was started, enabled or linked.
        u = pwd.getpwnam("xmpp-shard")
        assert u.pw_uid < 1000 and u.pw_shell.endswith("nologin"), u
        assert proxy_processes() == [], "the package started the proxy"
        assert unit_links() == links_before, "the package enabled or linked units"
        conff = sh("dpkg-query", "-W", "-f=${Conffiles}", PKG).stdout
        assert "/etc/xmpp-shard/proxy.toml" in conff and "/etc/xmpp-shard/plan.toml" in conff
        # An operator's edit survives a reinstall (dpkg keeps modified conffiles).
        edited = (ETC / "proxy.toml").read_text() + "# edited by the operator\n"
        (ETC / "proxy.toml").write_text(edited)
        dpkg("-i", deb)
        assert (ETC / "proxy.toml").read_text() == edited
    finally:
        if installed() or sh("dpkg-query", "-W", PKG, check=False).returncode == 0:
            dpkg("--purge", PKG)
        if not user_before and user_exists("xmpp-shard"):
            sh("userdel", "xmpp-shard", check=False)
            try:
                grp.getgrnam("xmpp-shard")
                sh("groupdel", "xmpp-shard", check=False)
            except KeyError:
                pass
    # Purged: nothing of it is left.
    assert not installed()
    assert sh("dpkg-query", "-W", PKG, check=False).returncode != 0, "dpkg still knows the package"
    for p in ("/usr/bin/xmpp-shard-proxy", "/usr/bin/xmpp-shard-deploy", "/usr/lib/xmpp-shard",
              "/lib/systemd/system/prosody-shard@.service", "/lib/systemd/system/xmpp-shard-proxy.service",
              "/usr/share/doc/xmpp-shard", str(ETC)):
        assert not Path(p).exists(), f"{p} left after purge"
    assert user_exists("xmpp-shard") == user_before
    assert unit_links() == links_before
    print(f"deb: built in {build_secs:.1f}s ({deb.stat().st_size // 1024} KiB)")
