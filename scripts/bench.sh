#!/usr/bin/env bash
# Benchmark (not a test): sqlguard against the plain shell pipelines it replaces, in the same run,
# on a generated database of a few hundred MB. Prints wall-time ratios and peak RSS.
#   scripts/bench.sh [SCALE] [XZ_LEVEL]    # SCALE orders (default 2000000 ≈ 350 MB of SQL)
# Set BENCH_SKIP_XZ=1 to skip the (slow) xz pair, BENCH_SKIP_S3=1 to skip the S3 pairs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scale=${1:-2000000}
xz_level=${2:-6}
work=$root/target/bench
port=${BENCH_PORT:-3398}
mkdir -p "$work"

scripts/install-deps.sh --test
cargo build --release --locked -q
bin=$root/target/release/sqlguard

MARIADB_NO_LOG_BIN=1 scripts/mariadb.sh start "$work/mariadb" "$port" >/dev/null
cli=(mariadb --defaults-file="$work/mariadb/client.cnf")
db=bench_$scale
if ! "${cli[@]}" -e "USE $db" 2>/dev/null; then
  echo "generating database $db with $scale orders (once)…"
  "${cli[@]}" -e "CREATE DATABASE $db CHARACTER SET utf8mb4"
  { echo "SET @scale=$scale;"; cat scripts/shop.sql; } | "${cli[@]}" "$db"
fi

# The baseline dumps with exactly the flags sqlguard uses (see `sqlguard -v backup`).
cat >"$work/client.cnf" <<CNF
[client]
host=127.0.0.1
port=$port
protocol=tcp
user=root
password="$(cat "$work/mariadb/root-password")"
CNF
chmod 600 "$work/client.cnf"
dump=(mariadb-dump --defaults-file="$work/client.cnf" --single-transaction --skip-lock-tables --quick
      --routines --triggers --events --hex-blob --default-character-set=utf8mb4 --no-tablespaces
      --max-allowed-packet=1G --comments -- "$db")

config() { # $1 algorithm, $2 level, $3 storage (local | s3)
  local storage_yaml="  local: {type: local, path: $work/store}"
  if [ "${3:-local}" = s3 ]; then
    storage_yaml="  local:
    type: s3
    endpoint: http://127.0.0.1:$s3_port
    bucket: $bucket
    path_style: true
    access_key_id: $(cat "$work/s3/access-key")
    secret_access_key: $(cat "$work/s3/secret-key")"
  fi
  local level_yaml=", level: $2"
  [ "$1" = none ] && level_yaml=
  cat >"$work/sqlguard.yaml" <<YAML
servers:
  bench:
    host: 127.0.0.1
    port: $port
    user: root
    password_file: $work/mariadb/root-password
    databases: {include: ["$db"]}
storage:
$storage_yaml
backup_types:
  manual:
    compression: {algorithm: $1$level_yaml, threads: 0}
    retention: {keep_last: 1}
YAML
}

# measure NAME CMD… : runs under /usr/bin/time -v; records wall seconds and peak RSS (KiB).
declare -A wall rss
measure() {
  local name=$1; shift
  sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -v -o "$work/time.$name" "$@" >/dev/null 2>"$work/err.$name" || { cat "$work/err.$name"; exit 1; }
  wall[$name]=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$work/time.$name")
  rss[$name]=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.$name")
  printf '%-22s %8.2f s  peak RSS %7d KiB\n' "$name" "${wall[$name]}" "${rss[$name]}"
}

raw=$("${dump[@]}" | wc -c)
echo "database $db: $raw bytes of SQL; $(nproc) cores"
rm -rf "$work/store"

measure "dump|zstd-3-T0" bash -c "$(printf '%q ' "${dump[@]}") | zstd -3 -T0 -q > $work/base.zst"
config zstd 3
measure "sqlguard-zstd-3" "$bin" --config "$work/sqlguard.yaml" --no-progress -q backup
ls -l "$work/base.zst" | awk '{print "baseline zstd bytes:", $5}'
"$bin" --config "$work/sqlguard.yaml" list --json | awk -F': ' '/compressed_bytes/ {print "sqlguard zstd bytes:", $2}' | head -1

if [ -z "${BENCH_SKIP_S3:-}" ]; then
  # The same backup to an S3-compatible server on loopback (s3s-fs) against local storage,
  # once zstd-compressed and once uncompressed (many multipart parts: shows memory stays flat).
  s3_port=${BENCH_S3_PORT:-3397}
  scripts/s3.sh start "$work/s3" "$s3_port" >/dev/null
  bucket=bench-$$
  mkdir -p "$work/s3/data/$bucket"
  for algo in zstd none; do
    rm -rf "$work/store"
    config "$algo" 3 local
    measure "sqlguard-$algo-local" "$bin" --config "$work/sqlguard.yaml" --no-progress -q backup
    config "$algo" 3 s3
    measure "sqlguard-$algo-s3" "$bin" --config "$work/sqlguard.yaml" --no-progress -q backup
  done
  rm -rf "$work/s3/data/$bucket" "$work/store"
  scripts/s3.sh stop "$work/s3"
fi

if [ -z "${BENCH_SKIP_XZ:-}" ]; then
  rm -rf "$work/store"
  measure "dump|xz-$xz_level-T0" bash -c "$(printf '%q ' "${dump[@]}") | xz -$xz_level -T0 > $work/base.xz"
  config xz "$xz_level"
  measure "sqlguard-xz-$xz_level" "$bin" --config "$work/sqlguard.yaml" --no-progress -q backup
fi

echo
echo "== ratios (sqlguard / shell pipeline; <= 1.05 is the target) =="
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "zstd wall: $(ratio "${wall[sqlguard-zstd-3]}" "${wall[dump|zstd-3-T0]}")   sqlguard peak RSS: $((rss[sqlguard-zstd-3] / 1024)) MiB (target < 100)"
if [ -z "${BENCH_SKIP_S3:-}" ]; then
  echo "s3/local wall, zstd: $(ratio "${wall[sqlguard-zstd-s3]}" "${wall[sqlguard-zstd-local]}")   none: $(ratio "${wall[sqlguard-none-s3]}" "${wall[sqlguard-none-local]}")   peak RSS to S3, none: $((rss[sqlguard-none-s3] / 1024)) MiB"
fi
if [ -z "${BENCH_SKIP_XZ:-}" ]; then
  echo "xz wall:   $(ratio "${wall[sqlguard-xz-$xz_level]}" "${wall[dump|xz-$xz_level-T0]}")   sqlguard peak RSS: $((rss[sqlguard-xz-$xz_level] / 1024)) MiB"
fi

echo
echo "== retention planning =="
cargo bench --locked -q --bench retention 2>/dev/null | tail -1
