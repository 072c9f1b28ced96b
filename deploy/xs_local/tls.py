"""The TLS seam: every TLS-related setting the generator writes comes from `tls_profile()`.

A plan chooses one of two modes with `[plan] tls` (default: "terminate" when the plan has a
[certs] table, else "none"):

"terminate" (docs/CONFIG.md, "TLS"): the proxy does TLS with every client and Prosody has none.
  - the proxy's listener gets `tls = "terminate"` (STARTTLS offered and required); with
    `[plan] direct_tls_port` a second listener `c2s-direct` does XEP-0368 Direct TLS;
  - one [[certificate]] per client-facing domain (every VirtualHost of the plan, tenants
    included; MUC components are never a stream's `to`), `domains = [DOMAIN]`, pointing at the
    files `xmpp-shard-deploy certs` makes: `certs/DOMAIN.crt` / `.key` relative to proxy.toml
    (OUT/certs/, next to the local CA), or `[certs] dir` with `[certs] mode = "existing"`. The
    proxy picks one by SNI, else by the stream's `to`;
  - every [[backend]] gets `proxy_protocol = "v2"`, and its address is the instance's port,
    which is now mod_xmpp_shard's (`xmpp_shard_ports`), not a c2s port: the instances have no
    c2s port at all (`c2s_ports = { }`), only the module's, on their loopback interface,
    trusting the proxy's address (`xmpp_shard_trusted_proxies`);
  - each Prosody instance loads the project's trust module (deploy/prosody-modules/
    mod_xmpp_shard.lua: `plugin_paths` is the directory next to this code, i.e. the checkout's
    deploy/prosody-modules, or /usr/lib/xmpp-shard/prosody-modules from the Debian package;
    `[plan] prosody_modules` overrides it) and keeps Prosody's own security defaults
    (c2s_require_encryption = true, no allow_unencrypted_plain_auth): the module marks the
    sessions the proxy terminated as secure, so SASL PLAIN works there and nowhere else;
  - the Jitsi components use TLS (`use-tls = true`, Jigasi `ALLOW_NON_SECURE=false`) and verify
    the proxy's certificate when it comes from a CA they can be made to trust (`[certs] mode =
    "ca"`: the local CA or the plan's; "existing": the operator's certificates, assumed to be
    from a CA the machine trusts). Self-signed certificates cannot be verified: the snippets
    disable verification and REPORT.txt says so.

"none": plaintext everywhere, as before TLS termination existed:
  - each Prosody instance listens on a loopback c2s port, offers no STARTTLS (no `tls` module)
    and accepts PLAIN over the unencrypted hop (the two lines of `_PLAINTEXT`);
  - jicofo, the bridges, Jibri and Jigasi reach the proxy without TLS (`use-tls = false`);
  - the proxy's listener and backends carry no TLS or PROXY-protocol keys.

Nothing else in deploy/ decides about TLS: plan.py parses the keys, and asks this module for the
listener, backend and certificate tables, and for the per-instance Prosody lines (through
InstanceSpec.tls); certs.py asks `proxy_cert_dir()` where the proxy's certificates go.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

MODES = ("terminate", "none")
INSTALLED_MODULES = "/usr/lib/xmpp-shard/prosody-modules"
MODULE = "xmpp_shard"
# Relative to proxy.toml (the proxy resolves [[certificate]] paths against its config's folder).
PROXY_CERTS = "certs"

_PLAINTEXT = (
    "-- Plaintext between proxy and backend, on loopback only ([plan] tls = \"none\").",
    "c2s_require_encryption = false",
    "allow_unencrypted_plain_auth = true",
)


def module_dir() -> str:
    """Where mod_xmpp_shard.lua is: next to this code (a checkout's deploy/prosody-modules, or
    the Debian package's /usr/lib/xmpp-shard/prosody-modules next to /usr/lib/xmpp-shard/deploy),
    else the package's path."""
    here = Path(__file__).resolve().parent
    for d in (here.parent / "prosody-modules", here.parent.parent / "prosody-modules"):
        if (d / f"mod_{MODULE}.lua").is_file():
            return str(d)
    return INSTALLED_MODULES


def default_mode(has_certs_table: bool) -> str:
    return "terminate" if has_certs_table else "none"


def _lua_list(items) -> str:
    return "{ " + ", ".join('"' + str(x).replace("\\", "\\\\").replace('"', '\\"') + '"'
                            for x in items) + " }" if items else "{ }"


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.strip("[]")).is_loopback
    except ValueError:
        return addr == "localhost"


@dataclass(frozen=True)
class TlsProfile:
    mode: str = "none"
    module_dir: str = ""
    # Extra keys for the proxy's [[listener]] and each [[backend]].
    proxy_listener: dict = field(default_factory=dict)
    proxy_backend: dict = field(default_factory=dict)
    # [[certificate]] tables for the proxy (none while it does not terminate TLS).
    proxy_certificates: tuple[dict, ...] = ()
    # Jitsi components talking to the proxy.
    components_use_tls: bool = False
    components_verify_certificates: bool = False
    # Why the components do (not) verify, for REPORT.txt.
    components_note: str = ""

    @property
    def terminate(self) -> bool:
        return self.mode == "terminate"

    @property
    def prosody_modules(self) -> tuple[str, ...]:
        """Global modules_enabled the mode needs."""
        return (MODULE,) if self.terminate else ()

    def port_lines(self, spec) -> list[str]:
        """Where an instance listens: its c2s port (none), or only mod_xmpp_shard's port
        (terminate), on spec.interface."""
        iface = spec.interface
        if not self.terminate:
            return [f"c2s_ports = {{ {int(spec.port)} }}",
                    f"c2s_interfaces = {_lua_list([iface])}"]
        trusted = ["127.0.0.1", "::1"]
        if not _is_loopback(iface) and iface not in trusted:
            trusted.append(iface)
        return ["-- [plan] tls = \"terminate\": no c2s port; the proxy connects to mod_xmpp_shard's",
                "-- port with a PROXY v2 header (deploy/prosody-modules/README.md).",
                "c2s_ports = { }",
                f"xmpp_shard_ports = {{ {int(spec.port)} }}",
                f"xmpp_shard_interfaces = {_lua_list([iface])}",
                f"xmpp_shard_trusted_proxies = {_lua_list(trusted)}"]

    def security_lines(self, spec) -> list[str]:
        if not self.terminate:
            return list(_PLAINTEXT)
        extra = [d for d in getattr(spec, "plugin_paths", []) if d != self.module_dir]
        return [f"plugin_paths = {_lua_list([self.module_dir] + extra)}",
                "-- TLS is terminated by the proxy and mod_xmpp_shard marks those sessions secure, so",
                "-- Prosody keeps its secure defaults (written out; no \"tls\" module, no certificate):",
                "c2s_require_encryption = true",
                "allow_unencrypted_plain_auth = false"]


PLAINTEXT = TlsProfile()


def proxy_cert_dir(plan, out: Optional[Path]) -> Path:
    """Where the proxy's certificate files are (what `certs` fills in terminate mode)."""
    if plan.certs.mode == "existing" and plan.certs.dir:
        return Path(plan.certs.dir)
    return (Path(out) if out is not None else Path(".")) / PROXY_CERTS


def cert_domains(plan) -> list[str]:
    """The domains a client may name in a stream's `to` (or the SNI): every VirtualHost of the
    plan (the [jitsi] preset's and [[host]]s), then the [tenants] domains; MUCs excluded."""
    seen: list[str] = []
    for h in plan.hosts:
        if h.domain not in seen:
            seen.append(h.domain)
    for d in plan.tenant_domains or []:
        if d not in seen:
            seen.append(d)
    return seen


def tls_profile(plan=None) -> TlsProfile:
    """The TLS settings for a plan (None: the plaintext profile of hand-made instances)."""
    if plan is None or getattr(plan, "tls", "none") != "terminate":
        return PLAINTEXT
    existing = plan.certs.mode == "existing" and plan.certs.dir
    prefix = str(Path(plan.certs.dir)) + "/" if existing else PROXY_CERTS + "/"
    certs = tuple({"cert": f"{prefix}{d}.crt", "key": f"{prefix}{d}.key", "domains": [d]}
                  for d in cert_domains(plan))
    verify = plan.certs.mode in ("ca", "existing")
    if plan.certs.mode == "ca":
        note = ("the components verify the proxy's certificate: make them trust the CA "
                "(`xmpp-shard-deploy certs` prints it; update-ca-certificates also feeds Java's "
                "cacerts through ca-certificates-java)")
    elif plan.certs.mode == "existing":
        note = ("the components verify the proxy's certificate ([certs] mode = \"existing\": "
                "issued by a CA this machine trusts, e.g. a public one)")
    else:
        note = ("certificate verification is DISABLED in the snippets: [certs] mode = "
                "\"self-signed\" leaves nothing to verify against; use mode = \"ca\" (a local CA "
                "the components trust) or \"existing\" (certificates from a trusted CA)")
    return TlsProfile(
        mode="terminate",
        module_dir=plan.prosody_modules or module_dir(),
        proxy_listener={"tls": "terminate"},
        proxy_backend={"proxy_protocol": "v2"},
        proxy_certificates=certs,
        components_use_tls=True,
        components_verify_certificates=verify,
        components_note=note,
    )
