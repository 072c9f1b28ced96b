#!/usr/bin/env bash
# Installs every Debian package the build and the tests need. Idempotent: packages already
# present are skipped, and apt-get runs only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  clang libclang-rt-14-dev  # libFuzzer targets (scripts/fuzz.sh)
  libuv1-dev libc-ares-dev libpugixml-dev libexpat1-dev libssl-dev libtomlplusplus-dev prometheus-cpp-dev catch2
  prosody lua-unbound python3 python3-slixmpp python3-pytest openssl procps iproute2 prometheus
  haproxy  # loadgen/bench: topology E (HAProxy in TCP mode)
  # tests/integration/test_interop.py: client implementations through every door of the proxy
  go-sendxmpp python3-nbxmpp gir1.2-glib-2.0 glib-networking libstrophe-dev sendxmpp
  libhttp-parser-dev  # tests/unit and tests/fuzz: an oracle for routing/http_head
  nginx-light  # tests/integration/test_deploy_rooms.py: `nginx -t` on the generated site snippet
  dnsmasq-base  # tests/integration/test_srv_discovery.py: SRV records for a test zone on loopback
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# npm: Debian's package, unless the installed nodejs bundles npm itself (and conflicts with it).
command -v npm >/dev/null 2>&1 || dpkg-query -W -f='${Status}' npm 2>/dev/null | grep -q 'install ok installed' || missing+=(npm)
npm_deps() {  # DIR WHAT: a test's npm packages, npm ci when missing or the lock changed
  local dir stamp sum
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/$1"
  stamp="$dir/node_modules/.xs-lock.sha256"
  sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ] && return 0
  { npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error && echo "$sum" >"$stamp"; } ||
    echo "setup: npm ci in $dir failed: $2 cannot run" >&2
}
web_deps() {
  npm_deps tests/web "test_http_front.py (strophe.js & co.)"
  npm_deps tests/k8s "test_deploy_kubernetes.py (kubernetes-models)"
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  web_deps
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts a system-wide Prosody on 5222 where systemd runs; our tests and the
# local runner start their own instances, so the packaged service is not needed.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prosody 2>/dev/null; then
  $SUDO systemctl stop prosody || true
fi
web_deps
echo "setup: done"
