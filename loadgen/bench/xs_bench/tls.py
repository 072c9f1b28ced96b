"""STARTTLS on an xs_local Prosody instance.

xs_local renders instances for plaintext behind the proxy (no `tls` module). For the loadgen's
STARTTLS path we add self-signed P-256 certificates for every VirtualHost into the instance's
`certificates` directory and enable the `tls` module, after `ProsodyInstance.prepare()` and
before `start()`. Encryption stays optional (c2s_require_encryption = false from xs_local).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from xs_local.prosody import PROSODY_USER, ProsodyInstance, _chown_tree

_MODULES = 'modules_enabled = { "roster", "saslauth", "disco", "ping" }'


def make_cert(certs: Path, domain: str) -> None:
    certs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "30", "-subj", f"/CN={domain}", "-addext", f"subjectAltName=DNS:{domain}",
         "-keyout", str(certs / f"{domain}.key"), "-out", str(certs / f"{domain}.crt")],
        check=True, capture_output=True, timeout=30)


def enable_starttls(inst: ProsodyInstance) -> None:
    """Call after prepare(), before start()."""
    text = inst.config_path.read_text()
    if _MODULES not in text:
        raise RuntimeError(f"{inst.config_path}: xs_local's modules_enabled line changed; "
                           f"update xs_bench.tls")
    certs = inst.root / "certs"
    for d in inst.spec.domains:
        make_cert(certs, d)
    inst.config_path.write_text(text.replace(_MODULES, _MODULES[:-2] + ', "tls" }'))
    _chown_tree(inst.root, PROSODY_USER)
