#!/usr/bin/env bash
# Installs what is missing, builds everything with warnings as errors, then runs every test:
# the Catch2 unit tests (CTest) and the integration tests against real Prosody instances.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

BUILD=${XS_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXS_WERROR=ON
cmake --build "$BUILD" -j2

echo "== unit tests"
ctest --test-dir "$BUILD" --output-on-failure -j2

echo "== integration tests (real Prosody, through the proxy)"
# Debian's python3-slixmpp imports only under Debian's interpreter.
XS_PROXY_BIN="$PWD/$BUILD/bin/xmpp-shard-proxy" /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider
