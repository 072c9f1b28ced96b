#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz, replays every regression
# input and seed through CTest, then fuzzes each target for a bounded time and prints, per
# target: executions, coverage (cov = edges, ft = features), corpus size and crashes.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]     default 60; CI's smoke stage runs 20
#   XS_FUZZ_TARGETS="fuzz_config ..."             only these targets
#   XS_FUZZ_JOBS=2                                run that many targets at once (default 1)
#   XS_FUZZ_SEED=N                                libFuzzer's -seed (CI: fixed, reproducible)
#
# New inputs go to build-fuzz/fuzz-corpus/<target> (the repo's seeds under tests/fuzz/corpus are
# read, never written); a crash leaves its input in build-fuzz/fuzz-artifacts/<target>/ and the
# script exits 1. Keep a fixed crash as tests/fuzz/regressions/<target>/<name>: the CTest entry
# fuzz.regressions.<target> replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-60}
BUILD=build-fuzz
bash scripts/setup.sh >/dev/null   # clang, libclang-rt-14-dev (libFuzzer), expat

SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Fuzz -DXS_FUZZ=ON \
  -DXS_BUILD_TESTS=ON -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only -fno-omit-frame-pointer $SAN" >/dev/null
cmake --build "$BUILD" -j2 --target xs_fuzz

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
# ubsan.supp: undefined behaviour found, reported and not fixed yet (tests/fuzz/known-bugs).
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$PWD/tests/fuzz/ubsan.supp}
echo "== fuzz: replay regression inputs and seed corpora"
ctest --test-dir "$BUILD" -L fuzz --output-on-failure -j2

targets=${XS_FUZZ_TARGETS:-$(cd "$BUILD/bin" && ls fuzz_* 2>/dev/null | sort | tr '\n' ' ')}
[ -n "$targets" ] || { echo "fuzz: no targets built"; exit 1; }

max_len() {
  case $1 in
    fuzz_stream_header) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

run_one() {  # TARGET
  local t=$1 work="$BUILD/fuzz-corpus/$1" art="$BUILD/fuzz-artifacts/$1/" log="$BUILD/fuzz-logs/$1.log"
  mkdir -p "$work" "$art" "$(dirname "$log")"
  : >"$log.start"
  local args=(-max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048
              -print_final_stats=1 -artifact_prefix="$art" -close_fd_mask=1)
  local dict=tests/fuzz/dict/${t#fuzz_}.dict
  [ -f "$dict" ] || dict=tests/fuzz/dict/$t.dict
  [ -f "$dict" ] && args+=(-dict="$dict")
  [ -n "${XS_FUZZ_SEED:-}" ] && args+=(-seed="$XS_FUZZ_SEED")
  local seeds=()
  [ -d "tests/fuzz/corpus/$t" ] && seeds+=("tests/fuzz/corpus/$t")
  [ -d "tests/fuzz/regressions/$t" ] && seeds+=("tests/fuzz/regressions/$t")
  set +e
  "$BUILD/bin/$t" "${args[@]}" "$work" "${seeds[@]}" >"$log" 2>&1
  local rc=$?
  set -e
  echo "$rc" >"$log.rc"
}

echo "== fuzz: ${SECS}s per target: $targets"
jobs_max=${XS_FUZZ_JOBS:-1}
for t in $targets; do
  run_one "$t" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
done
wait

status=0
printf '%-22s %12s %10s %8s %8s %6s %8s\n' target executions exec/s cov ft corpus crashes
for t in $targets; do
  log="$BUILD/fuzz-logs/$t.log"
  rc=$(cat "$log.rc" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  crashes=$(find "$BUILD/fuzz-artifacts/$t" -type f -newer "$log.start" 2>/dev/null | wc -l)
  [ "$rc" = 0 ] || crashes=$((crashes > 0 ? crashes : 1))
  printf '%-22s %12s %10s %8s %8s %6s %8s\n' "$t" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
  if [ "$rc" != 0 ]; then
    status=1
    echo "--- $t failed (exit $rc); log $log; tail:"
    grep -v '^#[0-9]' "$log" | tail -40
  fi
done
exit $status
