#!/usr/bin/env bash
# Fuzzes what reads untrusted input, for a bounded time: the config loader, the index and
# manifest parser (with everything derived from an index), the cron converter, the dump
# statement splitter and the binary log event framing (cargo-fuzz, libFuzzer, the nightly toolchain), then runs the binary-level
# random-input test at a larger size. Not part of the test command: a fuzz build of the whole
# tree takes minutes on 2 cores.
#   scripts/fuzz.sh                 # 120 s per target, 3,000 random-input runs
#   FUZZ_SECONDS=600 scripts/fuzz.sh
# A crash is saved under fuzz/artifacts/<target>/; make it a regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-120}
runs=${RANDOM_RUNS:-3000}

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

targets=(config index cron sqlscan binlog)
# Every target builds first: a target that no longer compiles fails here, loudly, instead of
# fuzzing nothing.
for target in "${targets[@]}"; do
  cargo +nightly fuzz build "$target"
done
# Crashes of earlier runs stay under fuzz/artifacts (ignored by git); only this run's count.
started=$(mktemp)
out=$(mktemp)
trap 'rm -f "$started" "$out"' EXIT
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds}s"
  mkdir -p "fuzz/corpus/$target"
  rc=0
  cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$out" 2>&1 || rc=$?
  grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb|==|INFO: seed)' "$out" || true
  if [ -n "$(find "fuzz/artifacts/$target" -name 'crash-*' -newer "$started" 2>/dev/null)" ]; then
    echo "fuzz target $target found a crash: see fuzz/artifacts/$target" >&2
    exit 1
  fi
  if [ "$rc" != 0 ]; then
    tail -20 "$out" >&2
    echo "fuzz target $target failed (exit $rc)" >&2
    exit 1
  fi
done

echo "== random input to the binary: $runs runs"
SQLGUARD_TEST_RANDOM_RUNS=$runs cargo nextest run --locked random_input --no-capture 2>&1 \
  | grep -E 'random input|exit codes|PASS|FAIL'
