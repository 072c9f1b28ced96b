"""xs_local: the one piece of code that runs local Prosody instances and the proxy.

Used by the local runner (deploy/run-local) and the integration tests
(tests/integration). Standard library only; runs under Debian's /usr/bin/python3.

Modules:
  ports      free ports, waiting for a port to accept
  procs      starting child processes that die with us (pdeath signal), stopping them
  prosody    one Prosody instance: config rendering, dirs, accounts, start/stop, log reading
  proxyconf  the proxy's TOML config (docs/CONFIG.md)
  plan       the shard plan file (deploy/plans/*.toml) -> instances, routes, accounts
  runner     the local runner behind deploy/run-local
  focus      the runner's simulated focus for room-sharded Jitsi plans (jicofo's stand-in)
"""

from .ports import free_port, port_accepts, port_is_free, wait_port
from .prosody import Account, InstanceSpec, Muc, ProsodyInstance, VirtualHost
from .proxyconf import ProxyConfig, render_proxy_config

__all__ = [
    "Account", "InstanceSpec", "Muc", "ProsodyInstance", "VirtualHost",
    "ProxyConfig", "render_proxy_config",
    "free_port", "port_accepts", "port_is_free", "wait_port",
]
