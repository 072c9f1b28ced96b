"""`certs`: a certificate for every domain of every instance (VirtualHosts and components),
in the instance's certificates directory as DOMAIN.crt / DOMAIN.key (Prosody's convention).

Modes ([certs] mode in the plan):
  self-signed  one P-256 self-signed certificate per domain (the default)
  ca           signed by a CA: [certs] ca_cert / ca_key, or a local CA made once under
               OUT/certs/ (ca.crt is what components and clients should trust)
  existing     nothing is made: the instances' `certificates` points at [certs] dir, and
               missing DOMAIN.crt / DOMAIN.key there are reported
Existing files are kept (delete one to have it made again). Keys are mode 0640, group prosody.

Where ([plan] tls, see tls.py):
  none       per instance: OUT/prosody/NAME/certs/DOMAIN.crt for each VirtualHost and component
  terminate  for the proxy only (Prosody needs none): OUT/certs/DOMAIN.crt for each domain a
             client may name (VirtualHosts and tenants), keys group xmpp-shard (the proxy's user)
             when that group exists; with "existing", [certs] dir must hold them
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .plan import Layout
from .prosody import PROSODY_USER, _chown, instance_paths
from .systemd import PROXY_USER
from .tls import cert_domains, proxy_cert_dir, tls_profile


@dataclass
class CertsResult:
    made: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ca: Path | None = None


def _openssl(*args: str) -> None:
    if not shutil.which("openssl"):
        raise RuntimeError("openssl not found: apt-get install openssl")
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {r.stderr.strip()}")


def _group_exists(name: str) -> bool:
    import grp
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _secure_key(path: Path, group: str = PROSODY_USER) -> None:
    os.chmod(path, 0o640)
    _chown(path, "root", group)


def _make_ca(crt: Path, key: Path, days: int) -> None:
    crt.parent.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", str(days), "-subj", "/CN=xmpp-shard local CA", "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", str(key), "-out", str(crt))
    os.chmod(key, 0o600)


def _make_cert(certs: Path, domain: str, days: int, ca: tuple[Path, Path] | None,
               group: str = PROSODY_USER) -> None:
    key, crt = certs / f"{domain}.key", certs / f"{domain}.crt"
    san = f"subjectAltName=DNS:{domain},DNS:*.{domain}"
    if ca is None:
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-days", str(days), "-subj", f"/CN={domain}", "-addext", san,
                 "-keyout", str(key), "-out", str(crt))
    else:
        with tempfile.TemporaryDirectory() as td:
            csr = Path(td) / "req.csr"
            ext = Path(td) / "ext.cnf"
            ext.write_text(f"{san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n")
            _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-subj", f"/CN={domain}", "-keyout", str(key), "-out", str(csr))
            _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
                     "-CAcreateserial", "-days", str(days), "-extfile", str(ext), "-out", str(crt))
    _secure_key(key, group)
    os.chmod(crt, 0o644)


def make_certs(layout: Layout) -> CertsResult:
    cp = layout.plan.certs
    res = CertsResult()
    ca = None
    if cp.mode == "ca":
        crt = Path(cp.ca_cert) if cp.ca_cert else layout.out / "certs" / "ca.crt"
        key = Path(cp.ca_key) if cp.ca_key else layout.out / "certs" / "ca.key"
        if not (crt.exists() and key.exists()):
            if cp.ca_cert:
                raise RuntimeError(f"[certs] ca_cert / ca_key: {crt} or {key} does not exist")
            _make_ca(crt, key, cp.days)
            res.made.append(str(crt))
        ca = (crt, key)
        res.ca = crt
    if tls_profile(layout.plan).terminate:
        _proxy_certs(layout, ca, res)
        return res
    for spec in layout.instances:
        certs = instance_paths(spec, layout.out / "prosody" / spec.name).certs
        for domain in spec.domains + [m.domain for m in spec.mucs]:
            have = (certs / f"{domain}.crt").exists() and (certs / f"{domain}.key").exists()
            if cp.mode == "existing":
                (res.kept if have else res.missing).append(f"{certs}/{domain}.crt")
                continue
            if have:
                res.kept.append(f"{certs}/{domain}.crt")
                continue
            certs.mkdir(parents=True, exist_ok=True)
            _make_cert(certs, domain, cp.days, ca)
            res.made.append(f"{certs}/{domain}.crt")
    return res


def _proxy_certs(layout: Layout, ca, res: CertsResult) -> None:
    """[plan] tls = "terminate": one certificate per client-facing domain, for the proxy."""
    cp = layout.plan.certs
    certs = proxy_cert_dir(layout.plan, layout.out)
    group = PROXY_USER if _group_exists(PROXY_USER) else "root"
    for domain in cert_domains(layout.plan):
        have = (certs / f"{domain}.crt").exists() and (certs / f"{domain}.key").exists()
        if cp.mode == "existing" or have:
            (res.kept if have else res.missing).append(f"{certs}/{domain}.crt")
            continue
        if not certs.exists():
            certs.mkdir(mode=0o755, parents=True)
        _make_cert(certs, domain, cp.days, ca, group)
        res.made.append(f"{certs}/{domain}.crt")


def missing_proxy_certs(layout: Layout) -> list[str]:
    """The proxy's certificate files (terminate mode) that do not exist."""
    missing = []
    for c in tls_profile(layout.plan).proxy_certificates:
        for k in ("cert", "key"):
            p = Path(c[k])
            p = p if p.is_absolute() else (layout.out or Path(".")) / p
            if not p.exists():
                missing.append(str(p))
    return missing
