#!/usr/bin/env bash
# Quick start: installs what is missing, builds, then runs local Prosody instances (each pinned
# to its own core) behind the proxy, from the default shard plan. Ctrl-C stops everything.
# Arguments go to `xmpp-shard-deploy run` (e.g. a plan file, --port N, --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
exec /usr/bin/python3 deploy/xmpp-shard-deploy run "$@"
