#!/usr/bin/env bash
# The whole test suite: installs the test dependencies, then format, lint, and every test
# (unit and integration, against real servers started on 127.0.0.1).
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test
# The tests start shared servers under target/tmp and leave them for the next test process.
cleanup() {
  scripts/mariadb.sh stop target/tmp/it-mariadb >/dev/null 2>&1 || true
  for s in s3 moto pushgateway; do scripts/$s.sh stop "target/tmp/it-$s" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
# Each run starts from no server data, as on a fresh clone: the databases, buckets and groups
# the tests make are theirs to leave, and runs on one machine would otherwise pile them up
# (tens of GB over a day of runs).
cleanup
rm -rf target/tmp/it-mariadb target/tmp/it-s3 target/tmp/it-moto target/tmp/it-pushgateway

cargo fmt --check
cargo clippy --locked --all-targets -q -- -D warnings
# The fuzz targets call the library: checked here (stable, no libFuzzer run) so that an API
# change cannot leave them broken until the next scripts/fuzz.sh.
cargo check --locked -q --manifest-path fuzz/Cargo.toml --target-dir target/fuzz-check
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi
