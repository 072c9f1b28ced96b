"""The TLS seam: every TLS-related setting the generator writes comes from `tls_profile()`.

Today the proxy relays plaintext (STARTTLS passthrough is the client's business with the
backend, and the backends offer none), so:
  - each Prosody instance listens on loopback, offers no STARTTLS (no `tls` module) and accepts
    PLAIN over the unencrypted loopback hop;
  - jicofo, the bridges, Jibri and Jigasi reach the proxy without TLS (`use-tls = false`);
  - the proxy's listener and backends carry no TLS or PROXY-protocol keys.

When the proxy terminates TLS (CONTRACT.md "TLS") and speaks PROXY v2 to the backends, this is
the one function to change: give the listener `tls = "terminate"` and [[certificate]] tables
from the certificates `certs` makes, give the backends `proxy_protocol = "v2"`, replace the two
Prosody lines with the project's trust module (deploy/prosody-modules/mod_xmpp_shard.lua,
installed by the Debian package in /usr/lib/xmpp-shard/prosody-modules: plugin_paths,
xmpp_shard_ports on a port per instance, which the proxy's backend address then points at),
and let the components verify certificates. Nothing else in deploy/ decides about TLS.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TlsProfile:
    # Lines in every Prosody instance's global section (plaintext hop from the proxy).
    prosody_lines: tuple[str, ...]
    # Extra keys for the proxy's [[listener]] and each [[backend]].
    proxy_listener: dict = field(default_factory=dict)
    proxy_backend: dict = field(default_factory=dict)
    # [[certificate]] tables for the proxy (none while it does not terminate TLS).
    proxy_certificates: tuple[dict, ...] = ()
    # Jitsi components talking to the proxy.
    components_use_tls: bool = False
    components_verify_certificates: bool = False


def tls_profile(plan=None) -> TlsProfile:
    """The TLS settings for a plan (the same for every plan until the TLS issue lands)."""
    return TlsProfile(
        prosody_lines=(
            "-- Plaintext between proxy and backend, on loopback only. The TLS issue replaces these two",
            "-- lines (TLS terminated at the proxy, and the project's own trust module).",
            "c2s_require_encryption = false",
            "allow_unencrypted_plain_auth = true",
        ),
    )
