#!/usr/bin/env bash
# Installs what is missing, builds everything with warnings as errors, then runs every test:
#   1. the normal build: Catch2 unit tests (CTest), then the integration tests against real
#      Prosody instances through the proxy (pytest under Debian's python3, for slixmpp);
#   2. the same unit and integration suites again under AddressSanitizer + UBSan;
#   3. the multi-worker integration tests once more under ThreadSanitizer;
#   4. a fuzz smoke run: each libFuzzer target for 15 s (scripts/fuzz.sh);
#   5. a 2-minute soak (scripts/soak.sh).
# XS_SANITIZERS=0 skips stages 2 to 4, XS_SOAK_DURATION=0 stage 5 (quicker local runs); CI
# runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { echo "== $* (at $((SECONDS / 60))m$((SECONDS % 60))s)"; }
bash scripts/setup.sh
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

run_suite() {  # BUILD_DIR CTEST_EXCLUDE_REGEX [pytest args...]
  local build=$1 exclude=$2; shift 2
  stage "unit tests ($build)"
  ctest --test-dir "$build" --output-on-failure -j2 ${exclude:+-E "$exclude"}
  stage "integration tests ($build): real Prosody, through the proxy"
  # Debian's python3-slixmpp imports only under Debian's interpreter.
  XS_PROXY_BIN="$PWD/$build/bin/xmpp-shard-proxy" /usr/bin/python3 -m pytest tests/integration \
    -q -p no:cacheprovider "$@"
}

stage "build"
# Line tables only (-g1): backtraces and sanitizer reports keep file:line, and the builds take
# about a quarter less time than with full debug information.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXS_WERROR=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
cmake --build build -j2
run_suite build ""

if [ "${XS_SANITIZERS:-1}" != 0 ]; then
  stage "AddressSanitizer + UndefinedBehaviorSanitizer"
  # Warnings are enforced by the normal build; with sanitizers GCC 12 reports false
  # maybe-uninitialized warnings inside std::regex, so these builds do not use -Werror.
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXS_WERROR=OFF \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-g1 -DNDEBUG" \
    -DCMAKE_CXX_FLAGS="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
  # The proxy and the unit tests of what it links; the load generator and the Python-only
  # deploy tests gain nothing from a second run here, nor does the client-library interop
  # matrix (the doors' code paths it crosses are run by the other suites).
  cmake --build build-asan -j2 --target xmpp-shard-proxy xs_unit_tests xs_config_tests xs_tls_tests xs_proxy_tests xs_session_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_suite build-asan "loadgen" -m "not no_sanitizer" \
    -k "not deploy and not deb and not loadgen and not dashboard and not run_local and not xs_local and not interop"

  stage "ThreadSanitizer (multi-worker paths)"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXS_WERROR=OFF -DXS_BUILD_TESTS=OFF \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-g1 -DNDEBUG" \
    -DCMAKE_CXX_FLAGS="-O1 -fsanitize=thread -fno-omit-frame-pointer"
  cmake --build build-tsan -j2 --target xmpp-shard-proxy
  TSAN_OPTIONS="halt_on_error=1 exitcode=66" XS_PROXY_BIN="$PWD/build-tsan/bin/xmpp-shard-proxy" \
    /usr/bin/python3 -m pytest tests/integration -q -p no:cacheprovider -m multiworker

  stage "fuzz smoke: every libFuzzer target for ${XS_FUZZ_SECONDS:-15}s (clang, build-fuzz)"
  XS_FUZZ_JOBS=2 XS_FUZZ_SEED=${XS_FUZZ_SEED:-6120} bash scripts/fuzz.sh "${XS_FUZZ_SECONDS:-15}"
fi

# Soak: logins, join storms, backend restarts and reloads against the normal build; memory,
# descriptors and long-lived sessions checked at the end. XS_SOAK_DURATION=0 skips it.
if [ "${XS_SOAK_DURATION:-2m}" != 0 ]; then
  stage "soak (${XS_SOAK_DURATION:-2m})"
  XS_PROXY_BIN="$PWD/build/bin/xmpp-shard-proxy" bash scripts/soak.sh "${XS_SOAK_DURATION:-2m}"
fi
stage "done"
