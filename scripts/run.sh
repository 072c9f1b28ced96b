#!/usr/bin/env bash
# Quick start: installs what is missing, builds, then runs local Prosody instances (each pinned
# to its own core) behind the proxy, from the default shard plan (deploy/plans/local.toml: TLS
# terminated at the proxy with a local CA; the banner prints the CA and a client command to try).
# Ctrl-C stops everything.
#   --plaintext   run deploy/plans/local-plaintext.toml instead (no TLS anywhere)
# Other arguments go to `xmpp-shard-deploy run` (e.g. a plan file, --port N, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
for a in "$@"; do
  if [ "$a" = "--plaintext" ]; then
    args+=(deploy/plans/local-plaintext.toml)
  else
    args+=("$a")
  fi
done
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
exec /usr/bin/python3 deploy/xmpp-shard-deploy run "${args[@]}"
