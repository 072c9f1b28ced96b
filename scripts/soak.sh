#!/usr/bin/env bash
# Soak run: the proxy in front of three real Prosody instances for DURATION (default 1h) under a
# mix of logins, MUC join storms, backend restarts and SIGHUP reloads; checks at the end that no
# long-lived session was lost, that the proxy's memory, descriptors and gauges are back near
# their start, and prints the start and end memory. See tests/soak/soak.py (--help for knobs).
#
#   bash scripts/soak.sh [DURATION] [soak.py options]     e.g. 2m, 90s, 1h
#   XS_PROXY_BIN=...   the proxy binary (default build/bin/xmpp-shard-proxy, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-1h}
[ $# -gt 0 ] && shift
if [ -z "${XS_PROXY_BIN:-}" ]; then
  bash scripts/setup.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j2 --target xmpp-shard-proxy
fi
ulimit -n 65536 2>/dev/null || true
# Debian's python3-slixmpp imports only under Debian's interpreter.
exec /usr/bin/python3 tests/soak/soak.py "$DURATION" "$@"
