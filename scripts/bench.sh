#!/usr/bin/env bash
# Benchmark (not a test): sqlguard side by side with the shell pipelines it replaces and with its
# peers (Debian's mydumper/myloader and automysqlbackup), in the same run, on databases generated
# from scripts/shop.sql. Prints wall-time ratios and peak RSS (/usr/bin/time -v) and writes
# BENCHMARKS.md at the repository root.
#   scripts/bench.sh [SECTION…]     # no section: all of them (always run in this order)
#     backup   sqlguard vs `mariadb-dump | zstd -3 -T0` and `| xz -6 -T0`, ~100 MB of SQL
#     encrypt  the ~100 MB backup with and without age encryption (zstd -3), interleaved runs:
#              the median wall-time ratio (the overhead of encrypting)
#     rss      sqlguard's peak RSS for ~100 MB (zstd, xz) and ~1 GB (zstd, against the pipe) dumps
#     many     5 databases of ~166 MiB: sqlguard `parallel: 1` and `parallel: 2`, the shell loop,
#              the loop two at a time, bare dumps two at a time (the floor of any tool that runs
#              one dump per database), mydumper -t 2 (plain and -c), automysqlbackup; the shell
#              loop's CPU against the core count
#     many-emp the same over 5 databases shaped like the employees sample the issue measured with
#              (scripts/bench/employees.sql: ~166 MiB of SQL each, compressing 4.4:1, not 15:1)
#     restore  one backup of ~157 MiB of SQL: `zstd -dc | mariadb` vs `sqlguard restore`, then
#              `myloader -t 2` vs `sqlguard restore --jobs 2`; interleaved runs, min and median
#     s3       sqlguard to S3 (s3s-fs on loopback) against local storage, zstd and uncompressed;
#              the peer `mariadb-dump | rclone rcat` against `mariadb-dump > f; sync f`
#     index    backup/list/report/prune over a migrated 0.1 index of 1k, 10k and 100k records,
#              and a real prune that removes ~99% of 100k records
#     binlog   `sqlguard binlog` on a private MariaDB with binary logging: a run with nothing
#              new against one `SHOW BINARY LOGS` round trip, and shipping ~200 MB of binary log
#              against `mariadb-binlog --raw` alone (and `| zstd -3`); interleaved runs
# Environment:
#   BENCH_DIV=N          divide every database size by N (a quick trial: BENCH_DIV=100 BENCH_RUNS=2)
#   BENCH_RUNS=N         runs per contender in `restore`, `encrypt` and `s3` (default 5)
#   BENCH_MANY_RUNS=N    rounds of the `many` section's four repeated contenders (default 3)
#   BENCH_INDEX_SIZES    index sizes (default "1000 10000 100000"; the real prune runs on the largest)
#   BENCH_INDEX_REPS=N   runs per index operation, the median is reported (default 3)
#   BENCH_XZ_LEVEL       level of the xz pair (default 6)
#   BENCH_PORT, BENCH_S3_PORT   ports of the private MariaDB and S3 servers (default 3398, 3397)
#   BENCH_BINLOG_PORT    port of the `binlog` section's MariaDB with binary logging (default 3396)
#   BENCH_KEEP_SERVER=1  leave the MariaDB server running (else stopped at the end if this run started it)
# The generated databases stay in target/bench/mariadb and are generated once. At full size that
# is about 13.3 million orders (2 GiB of SQL; the ~1 GB database takes longest).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
all_sections=(backup encrypt rss many many-emp restore s3 index binlog)
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
declare -A want=()
for a in "$@"; do
  case "$a" in
  -h | --help) usage; exit 0 ;;
  backup | encrypt | rss | many | many-emp | restore | s3 | index | binlog) want[$a]=1 ;;
  *) echo "unknown section '$a' (sections: ${all_sections[*]})" >&2; exit 2 ;;
  esac
done
[ $# -eq 0 ] && for s in "${all_sections[@]}"; do want[$s]=1; done
sections=()
for s in "${all_sections[@]}"; do [ -n "${want[$s]:-}" ] && sections+=("$s"); done

div=${BENCH_DIV:-1}
runs=${BENCH_RUNS:-5}
index_sizes=(${BENCH_INDEX_SIZES:-1000 10000 100000})
index_reps=${BENCH_INDEX_REPS:-3}
xz_level=${BENCH_XZ_LEVEL:-6}
port=${BENCH_PORT:-3398}
s3_port=${BENCH_S3_PORT:-3397}
scaled() { local n=$(($1 / div)); [ "$n" -lt 1000 ] && n=1000; echo "$n"; }
# Orders of scripts/shop.sql: 1,000,000 orders ≈ 157 MiB of SQL.
o100=$(scaled 650000)      # ≈ 100 MB
o1g=$(scaled 6400000)      # ≈ 1 GB
omany=$(scaled 1050000)    # ≈ 166 MiB, five of them
emp_employees=$(scaled 300024) emp_salaries=$(scaled 2844047)   # the employees sample: ≈ 166 MiB
orestore=$(scaled 1000000) # ≈ 157 MiB
work=$root/target/bench
run=$work/run # this run's dumps, stores and restored data; removed at the end
log=$work/log # /usr/bin/time output and stderr of every measured command (kept)
mkdir -p "$work"
rm -rf "$run" "$log"
mkdir -p "$run" "$log"
# sqlguard reads SQLGUARD_* variables over its config: none of the caller's may leak in.
while read -r v; do unset "$v"; done < <(compgen -e | grep '^SQLGUARD_' || true)
bench_start=$SECONDS
gen_secs=0

scripts/install-deps.sh --test
need_peers=()
peers=()
[ -n "${want[many]:-}${want[many-emp]:-}${want[restore]:-}" ] && peers+=(mydumper automysqlbackup)
[ -n "${want[s3]:-}" ] && peers+=(rclone)
for p in "${peers[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_peers+=("$p")
done
if [ "${#need_peers[@]}" -gt 0 ]; then
  echo "installing the peers: ${need_peers[*]}"
  sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_peers[@]}" >/dev/null
fi
cargo build --release --locked -q
bin=$root/target/release/sqlguard

mariadb_started=
if ! { [ -f "$work/mariadb/pid" ] && kill -0 "$(cat "$work/mariadb/pid")" 2>/dev/null; }; then
  mariadb_started=1
fi
MARIADB_NO_LOG_BIN=1 scripts/mariadb.sh start "$work/mariadb" "$port" >/dev/null
cli=(mariadb --defaults-file="$work/mariadb/client.cnf")
s3_started=
binlog_started=
cleanup() {
  local rc=$?
  [ -n "$s3_started" ] && scripts/s3.sh stop "$work/s3" >/dev/null 2>&1
  [ -n "$binlog_started" ] && scripts/mariadb.sh stop "$work/mariadb-binlog" >/dev/null 2>&1
  "${cli[@]}" -e "DROP DATABASE IF EXISTS bench_restore" 2>/dev/null || true
  rm -rf "$run"
  if [ -n "$mariadb_started" ] && [ -z "${BENCH_KEEP_SERVER:-}" ]; then
    scripts/mariadb.sh stop "$work/mariadb"
  fi
  [ "$rc" = 0 ] || echo "bench.sh failed (exit $rc); logs in $log" >&2
}
trap cleanup EXIT
q() { "${cli[@]}" -N -B -e "$1"; }
mariadbd_pid=$(cat "$work/mariadb/pid")

# Every client tool here (mariadb-dump, mariadb, mydumper, myloader, automysqlbackup's mysqldump)
# reads the password from this file, never from its command line.
cat >"$work/client.cnf" <<CNF
[client]
host=127.0.0.1
port=$port
protocol=tcp
user=root
password="$(cat "$work/mariadb/root-password")"
CNF
chmod 600 "$work/client.cnf"

# generated DB: scripts/shop.sql ran to its end in DB (its event exists, its helper table is gone).
generated() {
  [ "$(q "SELECT (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA='$1' AND EVENT_NAME='purge_audit_log')
               - (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$1' AND TABLE_NAME='seq')")" = 1 ]
}
# gen DB ORDERS: generates DB with ORDERS orders unless a complete one is there (kept between runs).
gen() {
  generated "$1" && return 0
  echo "generating database $1 with $2 orders (once; kept in $work/mariadb)…"
  local t0=$SECONDS
  q "DROP DATABASE IF EXISTS \`$1\`; CREATE DATABASE \`$1\` CHARACTER SET utf8mb4"
  { echo "SET @scale=$2;"; cat scripts/shop.sql; } | "${cli[@]}" "$1"
  gen_secs=$((gen_secs + SECONDS - t0))
  echo "  generated in $((SECONDS - t0)) s"
}

# The tiny database `db00`: the index section's backups, and the source of the dump flags below.
if ! q "SELECT 1 FROM db00.t LIMIT 1" >/dev/null 2>&1; then
  q "CREATE DATABASE IF NOT EXISTS db00 CHARACTER SET utf8mb4;
     CREATE TABLE IF NOT EXISTS db00.t (id INT PRIMARY KEY, note VARCHAR(100)) ENGINE=InnoDB;
     INSERT IGNORE INTO db00.t VALUES (1, 'tiny'), (2, 'database'), (3, 'for the index benchmark')"
fi

# sg_config FILE STORE ALGO LEVEL PARALLEL DB…: one server `bench`, type `manual`. STORE is a
# directory (local storage) or `s3` (the bucket of the s3 section); either way it is named `local`.
sg_config() {
  local file=$1 store=$2 algo=$3 level=$4 parallel=$5
  shift 5
  local dbs storage_yaml level_yaml=", level: $level"
  dbs=$(printf '"%s", ' "$@")
  storage_yaml="  local: {type: local, path: $store}"
  if [ "$store" = s3 ]; then
    storage_yaml="  local:
    type: s3
    endpoint: http://127.0.0.1:$s3_port
    bucket: $bucket
    path_style: true
    access_key_id_file: $work/s3/access-key
    secret_access_key_file: $work/s3/secret-key"
  fi
  [ "$algo" = none ] && level_yaml=
  cat >"$file" <<YAML
servers:
  bench:
    host: 127.0.0.1
    port: $port
    user: root
    password_file: $work/mariadb/root-password
    databases: {include: [${dbs%, }]}
    parallel: $parallel
storage:
$storage_yaml
backup_types:
  manual:
    compression: {algorithm: $algo$level_yaml, threads: 0}
    retention: {keep_last: 1}
YAML
}
sg() { "$bin" --config "$1" --no-progress "${@:2}"; }
# newest CONFIG FIELD…: fields of the newest record of CONFIG's index, one per line.
newest() {
  sg "$1" list --json --limit 1 | python3 -c 'import json, sys
r = json.load(sys.stdin)["backups"][0]
print("\n".join(str(r[f]) for f in sys.argv[1:]))' "${@:2}"
}

# The baselines dump with exactly the flags sqlguard uses: read from `sqlguard -v backup`.
sg_config "$run/flags.yaml" "$run/flags-store" zstd 3 1 db00
flags=$(sg "$run/flags.yaml" -v backup 2>&1 >/dev/null |
  sed -n 's/^\([0-9TZ:-]* \)\{0,1\}sqlguard: running [^ ]*dump --defaults-file=[^ ]* \(.*\) -- db00$/\2/p' | head -1)
read -ra dump_flags <<<"$flags"
if [ "${#dump_flags[@]}" -eq 0 ]; then
  echo "warning: could not read sqlguard's dump flags from -v; using the ones sqlguard used when this script was written" >&2
  dump_flags=(--single-transaction --skip-lock-tables --quick --routines --triggers --events --hex-blob
    --default-character-set=utf8mb4 --no-tablespaces --max-allowed-packet=1G --comments)
fi
dump_cmd() { printf '%q ' mariadb-dump --defaults-file="$work/client.cnf" "${dump_flags[@]}" -- "$1"; }
client_flags=(--default-character-set=utf8mb4 --max-allowed-packet=1G) # as sqlguard restore's client

# measure NAME CMD…: runs CMD under /usr/bin/time -v (stdout to /dev/null, page cache dropped
# first); records wall seconds (bash's clock, ms resolution), peak RSS (KiB: the largest process
# of CMD's tree), user+sys CPU seconds of CMD's tree, and the CPU seconds mariadbd used meanwhile.
declare -A wall rss cpu srv failed
clk=$(getconf CLK_TCK)
srv_ticks() { awk '{print $14 + $15}' "/proc/$mariadbd_pid/stat"; }
measure() {
  local name=$1 f s0 t0 t1
  shift
  f=$log/${name//[^A-Za-z0-9._-]/_}
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  s0=$(srv_ticks)
  t0=$EPOCHREALTIME
  /usr/bin/time -v -o "$f.time" "$@" >/dev/null 2>"$f.err" || {
    # A baseline may fail (MAY_FAIL=1): that is a result, recorded and printed, not the end.
    if [ -n "${MAY_FAIL:-}" ]; then
      failed[$name]=$(grep -m1 -iE 'error|lost' "$f.err" || head -1 "$f.err")
      echo "  $name FAILED: ${failed[$name]}"
    else
      echo "$name failed: $*" >&2
      cat "$f.err" >&2
      grep -E 'exit|signal' "$f.time" >&2 || true
      exit 1
    fi
  }
  t1=$EPOCHREALTIME
  wall[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  srv[$name]=$(awk -v a="$s0" -v b="$(srv_ticks)" -v c="$clk" 'BEGIN { printf "%.2f", (b - a) / c }')
  rss[$name]=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$f.time")
  cpu[$name]=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$f.time")
  printf '  %-34s %8.3f s  peak RSS %7.1f MiB  CPU %7.2f s  server CPU %7.2f s\n' \
    "$name" "${wall[$name]}" "$(mib_k "${rss[$name]}")" "${cpu[$name]}" "${srv[$name]}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mib_k() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }        # KiB → MiB
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }      # bytes → MiB
secs() { awk -v s="$1" 'BEGIN { printf (s < 10 ? "%.3f" : "%.1f"), s }'; }
du_b() { du -sb "$@" | awk '{s += $1} END {print s + 0}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
fix2() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
minimum() { printf '%s\n' "$@" | sort -g | head -1; }
maximum() { printf '%s\n' "$@" | sort -g | tail -1; }
# warm DB…: one untimed dump of each DB, so that no contender pays for the server's first read.
declare -A warmed
warm() {
  local d
  for d in "$@"; do
    [ -n "${warmed[$d]:-}" ] && continue
    eval "$(dump_cmd "$d")" >/dev/null
    warmed[$d]=1
  done
}
# section NAME TITLE: starts a section's part of BENCHMARKS.md.
md=$run/md
mkdir -p "$md"
section() {
  cur=$md/$1.md
  printf '\n## %s\n\n' "$2" >"$cur"
  printf '\n== %s ==\n' "$2"
}
out() { printf '%s\n' "$@" >>"$cur"; }

db_collation() { q "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='$1'"; }

backup_pair() { # TAG DB ALGO LEVEL [N]: `mariadb-dump | ALGO` and sqlguard on DB, N times each
  local tag=$1 db=$2 algo=$3 level=$4 n=${5:-1} ext=zst comp i who sfx
  comp="zstd -$level -T0 -q"
  [ "$algo" = xz ] && { ext=xz; comp="xz -$level -T0"; }
  sg_config "$run/sqlguard.yaml" "$run/store" "$algo" "$level" 1 "$db"
  for i in $(seq 1 "$n"); do
    sfx=
    [ "$n" -gt 1 ] && sfx=" #$i"
    # Interleaved in alternating order when repeated, as the restore pairs.
    for who in $([ $((i % 2)) = 1 ] && echo pipe sqlguard || echo sqlguard pipe); do
      rm -rf "$run/store" "$run/base.$ext"
      if [ "$who" = pipe ]; then
        MAY_FAIL=1 measure "$tag pipe $algo$sfx" bash -c "set -o pipefail; $(dump_cmd "$db") | $comp > $run/base.$ext"
        size["$tag pipe $algo"]=$(du_b "$run/base.$ext")
      else
        measure "$tag sqlguard $algo$sfx" "$bin" --config "$run/sqlguard.yaml" --no-progress -q backup
        size["$tag sqlguard $algo"]=$(newest "$run/sqlguard.yaml" compressed_bytes)
        raw[$tag]=$(newest "$run/sqlguard.yaml" raw_bytes)
      fi
    done
  done
  rm -rf "$run/store" "$run/base.$ext"
  [ "$n" -gt 1 ] || return 0
  # The pair's figures under the plain names: median wall and CPU, largest peak RSS; and the
  # ratio of each pair.
  local w=() r=() c=() pairs=()
  for who in pipe sqlguard; do
    w=() r=() c=()
    for i in $(seq 1 "$n"); do
      w+=("${wall[$tag $who $algo #$i]}") r+=("${rss[$tag $who $algo #$i]}") c+=("${cpu[$tag $who $algo #$i]}")
    done
    wall[$tag $who $algo]=$(median "${w[@]}") rss[$tag $who $algo]=$(maximum "${r[@]}")
    cpu[$tag $who $algo]=$(fix2 "$(median "${c[@]}")")
  done
  for i in $(seq 1 "$n"); do
    pairs+=("$(awk -v a="${wall[$tag sqlguard $algo #$i]}" -v b="${wall[$tag pipe $algo #$i]}" 'BEGIN { printf "%.3f", a / b }')")
  done
  pair_ratios[$tag $algo]="${pairs[*]} (median $(fix2 "$(median "${pairs[@]}")"))"
}
declare -A size raw pair_ratios

# ---------------------------------------------------------------------------------------------
if [ -n "${want[backup]:-}" ]; then
  section backup "Backup: sqlguard vs mariadb-dump | compressor (~100 MB of SQL)"
  db=bench_$o100
  gen "$db" "$o100"
  warm "$db"
  backup_pair 100M "$db" zstd 3 "$runs"
  backup_pair 100M "$db" xz "$xz_level"
  out "Database \`$db\` ($o100 orders): $(mib "${raw[100M]}") MiB of SQL. The pipe runs \`mariadb-dump\` with sqlguard's flags" \
    "(\`${dump_flags[*]}\`) into a file (no fsync); sqlguard streams the same dump to local storage (temp file, fsync, rename)." \
    "The zstd pair runs $runs times each, interleaved in alternating order (median wall and CPU, largest peak RSS); xz runs once each." "" \
    "| run | wall s | peak RSS MiB | CPU s (user+sys) | output MiB | ratio (sqlguard / pipe, wall) |" \
    "| --- | ---: | ---: | ---: | ---: | ---: |"
  for a in zstd xz; do
    label_p="\`mariadb-dump \| zstd -3 -T0 > f\`" label_s="sqlguard backup, zstd 3, threads 0"
    [ "$a" = xz ] && label_p="\`mariadb-dump \| xz -$xz_level -T0 > f\`" label_s="sqlguard backup, xz $xz_level, threads 0"
    for who in pipe sqlguard; do
      n="100M $who $a"
      l=$label_p r=
      [ "$who" = sqlguard ] && { l=$label_s; r=$(ratio "${wall[$n]}" "${wall[100M pipe $a]}"); }
      if [ -n "${failed[100M pipe $a]:-}" ]; then
        [ "$who" = pipe ] && r="FAILED after $(secs "${wall[$n]}") s: ${failed[$n]}" || r="n/a: the pipe failed"
      fi
      out "| $l | $(secs "${wall[$n]}") | $(mib_k "${rss[$n]}") | ${cpu[$n]} | $(mib "${size[$n]}") | ${r:-} |"
    done
  done
  out "" "- zstd, sqlguard / pipe pair by pair: ${pair_ratios[100M zstd]}"
  for a in zstd xz; do
    [ -n "${failed[100M pipe $a]:-}" ] && out "" \
      "The \`| $a\` pipe failed in this run: \`${failed[100M pipe $a]}\`. A compressor that stops reading for longer than" \
      "the server's \`net_write_timeout\` (60 s) makes the server drop the dump; sqlguard reads the dump steadily (8 MiB read-ahead," \
      "xz in 2 MiB blocks), which is what its own run above shows."
  done
fi

# ---------------------------------------------------------------------------------------------
if [ -n "${want[encrypt]:-}" ]; then
  section encrypt "Encryption: the ~100 MB backup with and without age (zstd 3)"
  command -v age-keygen >/dev/null || { echo "age-keygen is missing (scripts/install-deps.sh --test installs age)" >&2; exit 1; }
  db=bench_$o100
  gen "$db" "$o100"
  warm "$db"
  age-keygen -o "$run/age-key.txt" 2>/dev/null
  recipient=$(age-keygen -y "$run/age-key.txt")
  sg_config "$run/plain.yaml" "$run/store-plain" zstd 3 1 "$db"
  sg_config "$run/age.yaml" "$run/store-age" zstd 3 1 "$db"
  printf 'encryption:\n  age_recipients: ["%s"]\n' "$recipient" >>"$run/age.yaml"
  enc_plain=() enc_age=()
  for i in $(seq "$runs"); do # interleaved, so that drift on the machine hits both alike
    rm -rf "$run/store-plain" "$run/store-age"
    measure "encrypt plain $i" "$bin" --config "$run/plain.yaml" --no-progress -q backup
    enc_plain+=("${wall[encrypt plain $i]}")
    measure "encrypt age $i" "$bin" --config "$run/age.yaml" --no-progress -q backup
    enc_age+=("${wall[encrypt age $i]}")
  done
  enc_raw=$(newest "$run/age.yaml" raw_bytes)
  enc_size=$(newest "$run/age.yaml" compressed_bytes)
  plain_size=$(newest "$run/plain.yaml" compressed_bytes)
  # The encrypted object decrypts with the stock age CLI to the whole dump (untimed).
  obj=$(find "$run/store-age" -name '*.sql.zst.age' | head -1)
  got=$(age -d -i "$run/age-key.txt" "$obj" | zstd -dc | wc -c)
  [ "$got" = "$enc_raw" ] || { echo "age -d | zstd -d gave $got bytes, the index says $enc_raw" >&2; exit 1; }
  mp=$(median "${enc_plain[@]}") ma=$(median "${enc_age[@]}")
  enc_ratio=$(ratio "$ma" "$mp")
  out "Database \`$db\` ($o100 orders): $(mib "$enc_raw") MiB of SQL, sqlguard to local storage with zstd 3 (threads 0)," \
    "without and with \`encryption: {age_recipients: [one X25519 key]}\`; $runs runs each, interleaved, page cache dropped before each." \
    "The encrypted object was decrypted with the stock \`age -d\` and decompressed to the dump's $enc_raw bytes." "" \
    "| run | median wall s | min wall s | max wall s | peak RSS MiB (last run) | stored MiB |" \
    "| --- | ---: | ---: | ---: | ---: | ---: |" \
    "| zstd 3 | $(secs "$mp") | $(secs "$(minimum "${enc_plain[@]}")") | $(secs "$(maximum "${enc_plain[@]}")") | $(mib_k "${rss[encrypt plain $runs]}") | $(mib "$plain_size") |" \
    "| zstd 3 + age | $(secs "$ma") | $(secs "$(minimum "${enc_age[@]}")") | $(secs "$(maximum "${enc_age[@]}")") | $(mib_k "${rss[encrypt age $runs]}") | $(mib "$enc_size") |" "" \
    "Encrypted / plain (median wall): **$enc_ratio** (target: at most 1.10)."
  echo "  encrypted / plain (median wall): $enc_ratio"
  rm -rf "$run/store-plain" "$run/store-age"
fi

# ---------------------------------------------------------------------------------------------
if [ -n "${want[rss]:-}" ]; then
  section rss "Peak RSS: ~100 MB and ~1 GB dumps"
  db=bench_$o100
  gen "$db" "$o100"
  if [ -z "${wall[100M sqlguard zstd]:-}" ]; then # the backup section did not run
    warm "$db"
    backup_pair 100M "$db" zstd 3 "$runs"
    backup_pair 100M "$db" xz "$xz_level"
  fi
  db1=bench_$o1g
  gen "$db1" "$o1g"
  warm "$db1"
  backup_pair 1G "$db1" zstd 3
  out "Peak RSS is the largest single process of the command's tree (GNU time's maximum resident set size):" \
    "for sqlguard, sqlguard itself (mariadb-dump is smaller); for the pipe, the largest of mariadb-dump and the compressor." "" \
    "| dump | SQL MiB | sqlguard peak RSS MiB | pipe peak RSS MiB | sqlguard wall s | pipe wall s | ratio (sqlguard / pipe, wall) |" \
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for t in "100M zstd" "100M xz" "1G zstd"; do
    read -r tag a <<<"$t"
    lvl=3
    [ "$a" = xz ] && lvl=$xz_level
    dbn=bench_$o100
    [ "$tag" = 1G ] && dbn=$db1
    s="$tag sqlguard $a" p="$tag pipe $a"
    r=$(ratio "${wall[$s]}" "${wall[$p]}")
    [ -n "${failed[$p]:-}" ] && r="n/a: the pipe failed after $(secs "${wall[$p]}") s"
    out "| \`$dbn\`, $a $lvl | $(mib "${raw[$tag]}") | $(mib_k "${rss[$s]}") | $(mib_k "${rss[$p]}") | $(secs "${wall[$s]}") | $(secs "${wall[$p]}") | $r |"
  done
  out "" "The xz pair runs on the ~100 MB database only."
fi

# ---------------------------------------------------------------------------------------------
# many_bench KEY WHAT: the many-databases comparison over the five databases in `dbs` (WHAT
# describes them); results are kept under keys starting with KEY.
many_bench() {
  local mk=$1 what=$2
  # expect_files WHO N DIR GLOB: WHO wrote N files named GLOB under DIR (one per database).
  expect_files() {
    local n
    n=$(find "$3" -name "$4" | wc -l)
    [ "$n" = "$2" ] || { echo "$1 wrote $n files $4, not $2" >&2; exit 1; }
  }
  sg_config "$run/sqlguard1.yaml" "$run/store" zstd 3 1 "${dbs[@]}"
  sg_config "$run/sqlguard2.yaml" "$run/store" zstd 3 2 "${dbs[@]}"
  # What a shell does with one database, and a bare dump (nothing compressed, nothing written):
  # run one database after another (the loop), and two at a time (xargs -P 2).
  one_db="set -o pipefail; $(dump_cmd '$1') | zstd -3 -T0 -q > $run/loop/\$1.sql.zst && sync $run/loop/\$1.sql.zst"
  one_db=${one_db//\\\$1/\$1}
  bare_db="$(dump_cmd '$1') > /dev/null"
  bare_db=${bare_db//\\\$1/\$1}
  # many_run WHO [SUFFIX]: one run of a contender that is repeated.
  many_run() {
    local name="$mk $1${2:-}"
    rm -rf "$run/store" "$run/loop"
    mkdir -p "$run/loop"
    case "$1" in
    "sqlguard parallel 1" | "sqlguard parallel 2")
      measure "$name" "$bin" --config "$run/sqlguard${1##* }.yaml" --no-progress -q backup
      expect_files "$1" 5 "$run/store" '*.sql.zst'
      size[$mk $1]=$(du_b "$run/store")
      ;;
    "shell loop")
      measure "$name" bash -c "for db in ${dbs[*]}; do bash -c $(printf %q "$one_db") _ \$db || exit; done"
      expect_files "$1" 5 "$run/loop" '*.sql.zst'
      size[$mk $1]=$(du_b "$run/loop")
      ;;
    "shell loop -P2")
      measure "$name" bash -c "printf '%s\n' ${dbs[*]} | xargs -P 2 -I{} bash -c $(printf %q "$one_db") _ {}"
      expect_files "$1" 5 "$run/loop" '*.sql.zst'
      size[$mk $1]=$(du_b "$run/loop")
      ;;
    "bare -P2")
      measure "$name" bash -c "printf '%s\n' ${dbs[*]} | xargs -P 2 -I{} bash -c $(printf %q "$bare_db") _ {}"
      size[$mk $1]=0
      ;;
    esac
  }
  # The four contenders the parallel target is read against run in interleaved rounds (the order
  # reversed every other round); each round's ratios cancel the server's drift between rounds.
  many_runs=${BENCH_MANY_RUNS:-3}
  many_who=("sqlguard parallel 2" "shell loop" "shell loop -P2" "bare -P2")
  for i in $(seq 1 "$many_runs"); do
    order=("${many_who[@]}")
    [ $((i % 2)) = 0 ] && order=("${many_who[3]}" "${many_who[2]}" "${many_who[1]}" "${many_who[0]}")
    for who in "${order[@]}"; do many_run "$who" " #$i"; done
  done
  for who in "${many_who[@]}"; do
    w=() r=() c=() v=()
    for i in $(seq 1 "$many_runs"); do
      w+=("${wall[$mk $who #$i]}") r+=("${rss[$mk $who #$i]}") c+=("${cpu[$mk $who #$i]}") v+=("${srv[$mk $who #$i]}")
    done
    wall[$mk $who]=$(median "${w[@]}") rss[$mk $who]=$(maximum "${r[@]}")
    cpu[$mk $who]=$(fix2 "$(median "${c[@]}")") srv[$mk $who]=$(fix2 "$(median "${v[@]}")")
  done
  # round_ratios A B: A's wall / B's wall in each round, then their median.
  round_ratios() {
    local i rs=()
    for i in $(seq 1 "$many_runs"); do
      rs+=("$(awk -v a="${wall[$mk $1 #$i]}" -v b="${wall[$mk $2 #$i]}" 'BEGIN { printf "%.3f", a / b }')")
    done
    echo "**$(fix2 "$(median "${rs[@]}")")** (round by round: ${rs[*]})"
  }
  many_run "sqlguard parallel 1"
  many_raw=$(sg "$run/sqlguard1.yaml" list --json | python3 -c 'import json, sys
print(sum(r["raw_bytes"] for r in json.load(sys.stdin)["backups"]))')
  rm -rf "$run/store" "$run/loop"

  regex="^($(IFS='|'; echo "${dbs[*]}"))\\."
  mydumper_flags=(-t 2 -G -E -R -x "$regex")
  measure "$mk mydumper" bash -c "mydumper --defaults-file=$work/client.cnf $(printf '%q ' "${mydumper_flags[@]}") -o $run/mydumper && sync $run/mydumper/*"
  expect_files mydumper 5 "$run/mydumper" '*-schema-create.sql'
  size[$mk mydumper]=$(du_b "$run/mydumper")
  rm -rf "$run/mydumper"
  # The same with its compression (-c: gzip, the only one mydumper 0.10 has), as the others compress.
  measure "$mk mydumper -c" bash -c "mydumper --defaults-file=$work/client.cnf $(printf '%q ' "${mydumper_flags[@]}") -c -o $run/mydumper && sync $run/mydumper/*"
  expect_files "mydumper -c" 5 "$run/mydumper" '*-schema-create.sql.gz'
  size[$mk mydumper -c]=$(du_b "$run/mydumper")
  rm -rf "$run/mydumper"

  # automysqlbackup reads /etc/default/automysqlbackup and, with no USERNAME/PASSWORD there, runs
  # `mysqldump --defaults-file=/etc/mysql/debian.cnf`. Both paths are bound to this run's files in
  # a private mount namespace (nothing on the system changes; no password on a command line);
  # where that is not allowed, a copy of the script with the two paths replaced runs instead.
  amb_dir=$run/automysqlbackup
  cat >"$run/automysqlbackup.conf" <<CONF
# The Debian defaults, except: these 5 databases, this directory, no monthly run (it would dump
# them a second time on the 1st), the log on stdout rather than mailed, --single-transaction.
DBHOST=127.0.0.1
DBNAMES="${dbs[*]}"
BACKUPDIR="$amb_dir"
MAILCONTENT="stdout"
MAXATTSIZE="4000"
MAILADDR="root"
MDBNAMES=""
DBEXCLUDE=""
CREATE_DATABASE=yes
SEPDIR=yes
DOWEEKLY=6
DOMONTHLY=00
COMP=gzip
COMPDIRECT=no
COMMCOMP=no
LATEST=no
MAX_ALLOWED_PACKET=
SOCKET=
ROUTINES=yes
OPTIONS="--single-transaction"
CONF
  amb_sync="find $amb_dir -name '*.gz' -exec sync {} +"
  if unshare -m --propagation private true 2>/dev/null && [ -f /etc/default/automysqlbackup ] && [ -f /etc/mysql/debian.cnf ]; then
    amb_how="its config file /etc/default/automysqlbackup and /etc/mysql/debian.cnf bound to this run's files in a private mount namespace"
    measure "$mk automysqlbackup" unshare -m --propagation private bash -c \
      "mount --bind $run/automysqlbackup.conf /etc/default/automysqlbackup && mount --bind $work/client.cnf /etc/mysql/debian.cnf && /usr/sbin/automysqlbackup > $run/automysqlbackup.out && $amb_sync"
  else
    amb_how="a copy of /usr/sbin/automysqlbackup reading this run's config file and client.cnf"
    sed -e "s#/etc/default/automysqlbackup#$run/automysqlbackup.conf#g" -e "s#/etc/mysql/debian.cnf#$work/client.cnf#g" \
      /usr/sbin/automysqlbackup >"$run/automysqlbackup.sh"
    measure "$mk automysqlbackup" bash -c "bash $run/automysqlbackup.sh > $run/automysqlbackup.out && $amb_sync"
  fi
  expect_files automysqlbackup 5 "$amb_dir" '*.sql.gz'
  size[$mk automysqlbackup]=$(du_b "$amb_dir")
  rm -rf "$amb_dir"

  seq_w=${wall[$mk sqlguard parallel 1]} par_w=${wall[$mk sqlguard parallel 2]} loop_w=${wall[$mk shell loop]}
  loop_cores=$(awk -v c="${cpu[$mk shell loop]}" -v w="$loop_w" 'BEGIN { printf "%.2f", c / w }')
  loop_all=$(awk -v c="${cpu[$mk shell loop]}" -v s="${srv[$mk shell loop]}" -v w="$loop_w" 'BEGIN { printf "%.2f", (c + s) / w }')
  headroom=$(awk -v u="$loop_all" -v n="$(nproc)" 'BEGIN { printf "%.2f", n / u }')
  ceiling=$(awk -v x="$headroom" 'BEGIN { if (x > 2) x = 2; printf "%.2f", x }')
  # Whole databases, two at a time: five of about the same size run as two pairs, then one
  # alone. A pair asks for twice one dump's cores, so it takes max(1, 2u/n) times one dump.
  best=$(awk -v u="$loop_all" -v n="$(nproc)" 'BEGIN { p = 2 * u / n; if (p < 1) p = 1; s = u / n; if (s < 1) s = 1; printf "%.2f", (2 * p + s) / 5 }')
  floor=$(awk -v c="${cpu[$mk shell loop]}" -v s="${srv[$mk shell loop]}" -v n="$(nproc)" -v w="$loop_w" 'BEGIN { printf "%.2f", (c + s) / n / w }')
  out "Databases \`${dbs[0]}\` … \`${dbs[4]}\` ($what; $(mib "$many_raw") MiB of SQL in all)." \
    "Every contender but the bare dumps writes to local disk and makes its files durable (sqlguard fsyncs; the others are followed by \`sync FILE…\`, inside the timing)." \
    "\`parallel: 2\`, the loop, the loop two at a time and the bare dumps run $many_runs times each in interleaved rounds (the order reversed every other round; median wall, CPU and server CPU, largest peak RSS); the others run once." \
    "CPU is user+sys of the contender's process tree; server CPU is what mariadbd used meanwhile." "" \
    "| contender | wall s | ratio to the shell loop | peak RSS MiB | CPU s | cores used (CPU / wall) | server CPU s | output MiB |" \
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for c in "sqlguard parallel 1|sqlguard backup, \`parallel: 1\` (zstd 3)" \
    "sqlguard parallel 2|sqlguard backup, \`parallel: 2\` (zstd 3), median of $many_runs" \
    "shell loop|shell loop: \`for db: mariadb-dump … \| zstd -3 -T0 > f; sync f\`, median of $many_runs" \
    "shell loop -P2|the loop's body, two databases at a time (\`xargs -P 2\`), median of $many_runs" \
    "bare -P2|\`mariadb-dump … > /dev/null\`, two databases at a time (nothing compressed or written), median of $many_runs" \
    "mydumper|\`mydumper ${mydumper_flags[*]:0:5} -x '^(…)\\.'\` (uncompressed, default chunking)" \
    "mydumper -c|\`mydumper ${mydumper_flags[*]:0:5} -c -x '^(…)\\.'\` (gzip, the only compression of mydumper $(dpkg-query -W -f='${Version}' mydumper | sed 's/-.*//'))" \
    "automysqlbackup|automysqlbackup (Debian defaults: dump to a file, then gzip -6)"; do
    n="$mk ${c%%|*}"
    o=$(mib "${size[$n]}")
    [ "${c%%|*}" = "bare -P2" ] && o="–"
    out "| ${c#*|} | $(secs "${wall[$n]}") | $(ratio "${wall[$n]}" "$loop_w") | $(mib_k "${rss[$n]}") | ${cpu[$n]} | $(awk -v c="${cpu[$n]}" -v w="${wall[$n]}" 'BEGIN { printf "%.2f", c / w }') | ${srv[$n]} | $o |"
  done
  out "" "- \`parallel: 2\` / the shell loop, round by round: $(round_ratios "sqlguard parallel 2" "shell loop")" \
    "- \`parallel: 2\` / the loop's body two at a time, round by round: $(round_ratios "sqlguard parallel 2" "shell loop -P2") (what sqlguard's parallel dumps cost over a shell's)" \
    "- bare dumps two at a time / the shell loop, round by round: $(round_ratios "bare -P2" "shell loop"):" \
    "  no tool that runs one \`mariadb-dump\` per database two at a time can be faster here, whatever it does with the bytes." \
    "- parallel gain (sqlguard \`parallel: 1\` wall / \`parallel: 2\` wall): **$(ratio "$seq_w" "$par_w")**" \
    "- sqlguard \`parallel: 2\` / \`mydumper -t 2\` (wall): **$(ratio "$par_w" "${wall[$mk mydumper]}")**, / \`mydumper -t 2 -c\`: **$(ratio "$par_w" "${wall[$mk mydumper -c]}")**; sqlguard \`parallel: 1\` / automysqlbackup (wall): **$(ratio "$seq_w" "${wall[$mk automysqlbackup]}")**" \
    "- the shell loop uses $loop_cores cores of client CPU (mariadb-dump + zstd), $loop_all with the server's, out of $(nproc):" \
    "  two dumps at once can gain at most min(2, $(nproc) / $loop_all = $headroom) = **${ceiling}×**, against the $(ratio "$seq_w" "$par_w")× measured." \
    "- whole databases two at a time: five of about the same size run as two pairs, then one alone, and a pair asks for 2 × $loop_all cores of $(nproc);" \
    "  so the best \`parallel: 2\` can do is (2 × max(1, 2 × $loop_all / $(nproc)) + 1) / 5 = **$best** of the loop's wall time, against the $(ratio "$par_w" "$loop_w") measured." \
    "- the CPU floor: the loop's work (its CPU and the server's, ${cpu[$mk shell loop]} + ${srv[$mk shell loop]} s) spread over all $(nproc) cores takes **$floor** of the loop's wall time; no way of running the same dumps and compression can be faster here." \
    "- mydumper flags: \`mydumper --defaults-file=client.cnf ${mydumper_flags[*]:0:5} -x '$regex' -o DIR\` (threads 2, triggers, events, routines; no compression, no \`-r\`/\`-F\`: one file per table, 1 MB statements), password from the defaults file." \
    "- automysqlbackup $(dpkg-query -W -f='${Version}' automysqlbackup): configured through $amb_how (5 databases, \`OPTIONS=\"--single-transaction\"\`, \`DOMONTHLY=00\`, otherwise the Debian defaults: gzip after the dump)."
}

if [ -n "${want[many]:-}" ]; then
  section many "Many databases: 5 × ~166 MiB of orders (scripts/shop.sql)"
  dbs=()
  for i in 1 2 3 4 5; do
    dbs+=("many_${omany}_$i")
    gen "many_${omany}_$i" "$omany"
  done
  warm "${dbs[@]}"
  many_bench many "$omany orders each"
fi

# gen_employees DB: generates DB shaped like the employees sample unless a complete one is there.
gen_employees() {
  [ "$(q "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$1' AND TABLE_NAME='salaries'")" = 1 ] &&
    [ "$(q "SELECT COUNT(*) FROM \`$1\`.salaries")" = "$emp_salaries" ] && return 0
  echo "generating database $1 shaped like the employees sample (once; kept in $work/mariadb)…"
  local t0=$SECONDS
  q "DROP DATABASE IF EXISTS \`$1\`; CREATE DATABASE \`$1\` CHARACTER SET utf8mb4"
  { echo "SET @employees=$emp_employees, @dept_emp=$(scaled 331603), @titles=$(scaled 443308), @salaries=$emp_salaries;"
    cat scripts/bench/employees.sql; } | "${cli[@]}" "$1"
  gen_secs=$((gen_secs + SECONDS - t0))
  echo "  generated in $((SECONDS - t0)) s"
}

if [ -n "${want[many-emp]:-}" ]; then
  section many-emp "Many databases shaped like the issue's: 5 × the employees sample (~166 MiB each)"
  dbs=()
  for i in 1 2 3 4 5; do
    dbs+=("emp_${emp_salaries}_$i")
    gen_employees "emp_${emp_salaries}_$i"
  done
  warm "${dbs[@]}"
  out "The issue measured its many-databases figures on five copies of the employees sample schema. These are generated on the server" \
    "by scripts/bench/employees.sql: the same six tables, column types, keys and row counts, deterministic values. It compresses about" \
    "4.4:1 with zstd -3 where the orders above compress about 15:1, so the compressor costs about as much CPU as the dump or the server." ""
  many_bench many-emp "$emp_employees employees, $emp_salaries salaries each"
fi

# ---------------------------------------------------------------------------------------------
if [ -n "${want[restore]:-}" ]; then
  section restore "Restore: one backup of ~157 MiB of SQL"
  db=bench_$orestore
  gen "$db" "$orestore"
  rows=$(q "SELECT COUNT(*) FROM \`$db\`.order_items")
  collation=$(db_collation "$db")
  sg_config "$run/restore.yaml" "$run/restore-store" zstd 3 1 "$db"
  sg "$run/restore.yaml" -q backup >/dev/null
  mapfile -t rec < <(newest "$run/restore.yaml" id key raw_bytes compressed_bytes)
  rid=${rec[0]} file=$run/restore-store/${rec[1]}
  target=bench_restore
  # Every run starts from a quiet server: the previous run's dirty pages written out first, so
  # that no run pays for its predecessor's background writes.
  drop() {
    local pct
    q "DROP DATABASE IF EXISTS $target"
    pct=$(q "SELECT @@innodb_max_dirty_pages_pct")
    q "SET GLOBAL innodb_max_dirty_pages_pct=0"
    for _ in $(seq 1 1200); do
      [ "$(q "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='INNODB_BUFFER_POOL_PAGES_DIRTY'")" = 0 ] && break
      sleep 0.05
    done
    q "SET GLOBAL innodb_max_dirty_pages_pct=$pct"
  }
  check() { # NAME: the restored database holds the source's rows
    local n
    n=$(q "SELECT COUNT(*) FROM $target.order_items")
    [ "$n" = "$rows" ] || { echo "$1 restored $n order_items rows, the source has $rows" >&2; exit 1; }
  }
  pipe_cmd="set -o pipefail; zstd -dc -q $file | mariadb --defaults-file=$work/client.cnf ${client_flags[*]} $target"
  # Interleaved in alternating order (A B, B A, A B, …), so that neither always runs second.
  single() { # WHICH RUN
    drop
    if [ "$1" = pipe ]; then
      q "CREATE DATABASE $target COLLATE $collation"
      measure "restore pipe #$2" bash -c "$pipe_cmd"
      if [ "$2" = "$runs" ]; then check "zstd -dc | mariadb"; fi
    else
      measure "restore sqlguard #$2" "$bin" --config "$run/restore.yaml" --no-progress -q restore "$rid" --to-server bench --to-database "$target"
      if [ "$2" = "$runs" ]; then check "sqlguard restore"; fi
    fi
  }
  for i in $(seq 1 "$runs"); do
    if [ $((i % 2)) = 1 ]; then single pipe "$i"; single sqlguard "$i"; else single sqlguard "$i"; single pipe "$i"; fi
  done
  drop
  mydumper_r=(-t 2 -G -E -R -B "$db")
  myloader_r=(-t 2 -d "$run/mydumper-restore" -B "$target")
  mydumper --defaults-file="$work/client.cnf" "${mydumper_r[@]}" -o "$run/mydumper-restore"
  parallel() { # WHICH RUN
    drop
    if [ "$1" = myloader ]; then
      measure "restore myloader #$2" myloader --defaults-file="$work/client.cnf" "${myloader_r[@]}"
      if [ "$2" = "$runs" ]; then check "myloader"; fi
    else
      measure "restore sqlguard jobs 2 #$2" "$bin" --config "$run/restore.yaml" --no-progress -q restore "$rid" --to-server bench --to-database "$target" --jobs 2 --no-binlog
      if [ "$2" = "$runs" ]; then check "sqlguard restore --jobs 2"; fi
    fi
  }
  for i in $(seq 1 "$runs"); do
    if [ $((i % 2)) = 1 ]; then parallel myloader "$i"; parallel sqlguard "$i"; else parallel sqlguard "$i"; parallel myloader "$i"; fi
  done
  drop
  rm -rf "$run/mydumper-restore" "$run/restore-store"

  out "Backup \`$rid\` of \`$db\` ($orestore orders): $(mib "${rec[2]}") MiB of SQL, $(mib "${rec[3]}") MiB zstd 3. $runs runs of each contender, interleaved" \
    "in alternating order (A B, B A, A B, …); before every run the target database is dropped and the server's dirty pages are written out (\`innodb_max_dirty_pages_pct=0\` until none is left), and the pipe's database is created empty with the source's collation \`$collation\`." \
    "Each last run is checked: the restored \`order_items\` has the source's $rows rows." "" \
    "| contender | runs | min s | median s | max peak RSS MiB | median CPU s | median server CPU s |" \
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  declare -A med
  for c in "pipe|\`zstd -dc f \| mariadb ${client_flags[*]} db\`" \
    "sqlguard|\`sqlguard restore ID --to-server bench --to-database db\` (1 session)" \
    "myloader|\`myloader --defaults-file=client.cnf -t 2 -d DIR -B db\`" \
    "sqlguard jobs 2|\`sqlguard restore ID … --jobs 2 --no-binlog\`"; do
    k=${c%%|*} ws=() rs=() cs=() ss=()
    for i in $(seq 1 "$runs"); do
      n="restore $k #$i"
      ws+=("${wall[$n]}") rs+=("${rss[$n]}") cs+=("${cpu[$n]}") ss+=("${srv[$n]}")
    done
    med[$k]=$(median "${ws[@]}")
    out "| ${c#*|} | $runs | $(secs "$(minimum "${ws[@]}")") | $(secs "${med[$k]}") | $(mib_k "$(maximum "${rs[@]}")") | $(fix2 "$(median "${cs[@]}")") | $(fix2 "$(median "${ss[@]}")") |"
  done
  # Each pair's ratio (its two runs are back to back) cancels the machine's drift between
  # pairs, which the ratio of the two medians does not: the pairs' median is the headline.
  pairs=() jpairs=()
  for i in $(seq 1 "$runs"); do
    pairs+=("$(awk -v a="${wall[restore sqlguard #$i]}" -v b="${wall[restore pipe #$i]}" 'BEGIN { printf "%.3f", a / b }')")
    jpairs+=("$(awk -v a="${wall[restore sqlguard jobs 2 #$i]}" -v b="${wall[restore myloader #$i]}" 'BEGIN { printf "%.3f", a / b }')")
  done
  out "" "- single session, sqlguard / \`zstd -dc | mariadb\`, median of the $runs pairs: **$(fix2 "$(median "${pairs[@]}")")**" \
    "  (pair by pair: ${pairs[*]}; ratio of the two median walls: $(ratio "${med[sqlguard]}" "${med[pipe]}"))" \
    "- two sessions, sqlguard \`--jobs 2\` / \`myloader -t 2\`, median of the $runs pairs: **$(fix2 "$(median "${jpairs[@]}")")**" \
    "  (pair by pair: ${jpairs[*]}; ratio of the two median walls: $(ratio "${med[sqlguard jobs 2]}" "${med[myloader]}"))" \
    "- sqlguard's own gain, 1 session / \`--jobs 2\` (median wall): $(ratio "${med[sqlguard]}" "${med[sqlguard jobs 2]}")" \
    "- myloader restores a dump of \`mydumper --defaults-file=client.cnf ${mydumper_r[*]} -o DIR\` (taken once, untimed; uncompressed, one file per table);" \
    "  myloader's defaults otherwise: 1000 queries per transaction, binary log off for its sessions (\`--no-binlog\` does the same for sqlguard; the bench server runs without a binary log anyway)." \
    "- mydumper and myloader read the password from \`--defaults-file\`, as every other client here."
fi

# ---------------------------------------------------------------------------------------------
if [ -n "${want[s3]:-}" ]; then
  section s3 "S3 vs local storage"
  db=bench_$o100
  gen "$db" "$o100"
  warm "$db"
  scripts/s3.sh start "$work/s3" "$s3_port" >/dev/null
  s3_started=1
  bucket=bench-$$
  mkdir -p "$work/s3/data/$bucket"
  s3_run() { # ALGO WHERE RUN
    if [ "$2" = local ]; then
      rm -rf "$run/store"
      sg_config "$run/sqlguard.yaml" "$run/store" "$1" 3 1 "$db"
      measure "s3 $1 local #$3" "$bin" --config "$run/sqlguard.yaml" --no-progress -q backup
      size[s3 $1]=$(newest "$run/sqlguard.yaml" compressed_bytes)
      raw[s3]=$(newest "$run/sqlguard.yaml" raw_bytes)
    else
      sg_config "$run/sqlguard.yaml" s3 "$1" 3 1 "$db"
      local t0
      t0=$(awk '{print $14 + $15}' "/proc/$(cat "$work/s3/pid")/stat")
      # -v: the log says how long the server took to complete the multipart upload.
      measure "s3 $1 s3 #$3" "$bin" --config "$run/sqlguard.yaml" --no-progress -v backup
      s3done[s3 $1 s3 #$3]=$(sed -n 's/.*completed the upload of .* in \([0-9.]*\)s$/\1/p' "$log/s3_$1_s3__$3.err" | tail -1)
      s3cpu[s3 $1 s3 #$3]=$(awk -v a="$t0" -v c="$clk" '{ printf "%.2f", ($14 + $15 - a) / c }' "/proc/$(cat "$work/s3/pid")/stat")
    fi
  }
  declare -A s3cpu s3done
  # Interleaved in alternating order, as the restore pairs.
  for algo in zstd none; do
    for i in $(seq 1 "$runs"); do
      if [ $((i % 2)) = 1 ]; then s3_run "$algo" local "$i"; s3_run "$algo" s3 "$i"; else s3_run "$algo" s3 "$i"; s3_run "$algo" local "$i"; fi
    done
  done
  # A peer on the same server: rclone streaming the dump (uncompressed) to the bucket, against
  # the same dump into a local file made durable; interleaved, as above. Its config file holds
  # the test server's keys (mode 600, removed with the run).
  (umask 077
   printf '[bench]\ntype = s3\nprovider = Other\nendpoint = http://127.0.0.1:%s\nforce_path_style = true\naccess_key_id = %s\nsecret_access_key = %s\n' \
     "$s3_port" "$(cat "$work/s3/access-key")" "$(cat "$work/s3/secret-key")" >"$run/rclone.conf")
  # (AWS_CA_BUNDLE, when the caller has one, makes rclone 1.60 refuse to start over plain http.)
  rclone_cmd="set -o pipefail; $(dump_cmd "$db") | env -u AWS_CA_BUNDLE rclone --config $run/rclone.conf rcat bench:$bucket/rclone.sql"
  file_cmd="set -o pipefail; $(dump_cmd "$db") > $run/dump.sql && sync $run/dump.sql"
  for i in $(seq 1 "$runs"); do
    for who in $([ $((i % 2)) = 1 ] && echo file rclone || echo rclone file); do
      if [ "$who" = file ]; then measure "s3 pipe file #$i" bash -c "$file_cmd"; else measure "s3 pipe rclone #$i" bash -c "$rclone_cmd"; fi
    done
  done
  [ "$(du_b "$work/s3/data/$bucket/rclone.sql")" = "$(du_b "$run/dump.sql")" ] ||
    { echo "rclone's object and the local dump differ in size" >&2; exit 1; }
  rm -f "$run/dump.sql" "$run/rclone.conf"
  rm -rf "$work/s3/data/$bucket" "$run/store"
  scripts/s3.sh stop "$work/s3"
  s3_started=
  out "sqlguard backs up \`$db\` ($(mib "${raw[s3]}") MiB of SQL) to local storage and to an S3-compatible server on loopback (s3s-fs $("$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")" --version 2>/dev/null | awk '{print $NF}'), which writes to the same disk)." "" \
    "$runs runs of each, interleaved in alternating order (local S3, S3 local, …), page cache dropped before each; median wall times, largest peak RSS." "" \
    "CPU is user+sys (median): sqlguard's process tree (with mariadb-dump), mariadbd's, and the S3 server's; all share the same 2 cores." "" \
    "Completion is the median time of the CompleteMultipartUpload request (from \`sqlguard -v\`), which s3s-fs answers by reading every part back and writing the object again; the last column leaves it out of the S3 wall time." "" \
    "| compression | object MiB | local wall s | S3 wall s | ratio (S3 / local, median wall) | local peak RSS MiB | S3 peak RSS MiB | sqlguard CPU s, local / S3 | mariadbd CPU s, local / S3 | S3 server CPU s | completion s | ratio without it |" \
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  declare -A s3_median s3_floor
  for algo in zstd none; do
    lw=() sw=() lr=() sr=() lc=() sc=() lv=() sv=() xc=() dn=()
    for i in $(seq 1 "$runs"); do
      l="s3 $algo local #$i" r="s3 $algo s3 #$i"
      lw+=("${wall[$l]}") sw+=("${wall[$r]}") lr+=("${rss[$l]}") sr+=("${rss[$r]}")
      lc+=("${cpu[$l]}") sc+=("${cpu[$r]}") lv+=("${srv[$l]}") sv+=("${srv[$r]}") xc+=("${s3cpu[$r]}")
      # A run's S3 wall time without its completion (a single PUT has none).
      dn+=("$(awk -v w="${wall[$r]}" -v d="${s3done[$r]:-0}" 'BEGIN { printf "%.3f", w - d }')")
    done
    ml=$(median "${lw[@]}") ms=$(median "${sw[@]}")
    s3_median[$algo]=$ms
    # The CPU of an S3 run (sqlguard's tree, mariadbd's, the S3 server's) spread over every core,
    # against the local wall time: what sharing one machine with the S3 server costs at least.
    s3_floor[$algo]=$(awk -v a="$(median "${sc[@]}")" -v b="$(median "${sv[@]}")" -v c="$(median "${xc[@]}")" -v n="$(nproc)" -v w="$ml" \
      'BEGIN { printf "%.2f s of CPU: **%.2f**", a + b + c, (a + b + c) / n / w }')
    lab="zstd 3, threads 0"
    [ "$algo" = none ] && lab="none (uncompressed: many multipart parts)"
    done_s=—
    if [ -n "${s3done[s3 $algo s3 #1]:-}" ]; then
      ds=()
      for i in $(seq 1 "$runs"); do ds+=("${s3done[s3 $algo s3 #$i]:-0}"); done
      done_s=$(secs "$(median "${ds[@]}")")
    fi
    out "| $lab | $(mib "${size[s3 $algo]}") | $(secs "$ml") | $(secs "$ms") | $(ratio "$ms" "$ml") | $(mib_k "$(maximum "${lr[@]}")") | $(mib_k "$(maximum "${sr[@]}")") | $(fix2 "$(median "${lc[@]}")") / $(fix2 "$(median "${sc[@]}")") | $(fix2 "$(median "${lv[@]}")") / $(fix2 "$(median "${sv[@]}")") | $(fix2 "$(median "${xc[@]}")") | $done_s | $(ratio "$(median "${dn[@]}")" "$ml") |"
  done
  out "" "CPU floor of the uncompressed S3 runs: sqlguard's, mariadbd's and the S3 server's CPU (${s3_floor[none]} of the local wall time once spread over all $(nproc) cores)." \
    "All three share this machine; against a real S3 service, the server's share runs elsewhere."
  pw=() rw=() pr=()
  for i in $(seq 1 "$runs"); do
    pw+=("${wall[s3 pipe file #$i]}") rw+=("${wall[s3 pipe rclone #$i]}")
    pr+=("$(awk -v a="${wall[s3 pipe rclone #$i]}" -v b="${wall[s3 pipe file #$i]}" 'BEGIN { printf "%.3f", a / b }')")
  done
  out "" "The same server with a peer, uncompressed: \`mariadb-dump … | rclone rcat\` (rclone $(dpkg-query -W -f='${Version}' rclone | sed 's/[+-].*//'), its defaults: 5 MiB parts, 4 in flight)" \
    "against \`mariadb-dump … > f; sync f\`, $runs runs of each, interleaved: median $(secs "$(median "${rw[@]}")") s against $(secs "$(median "${pw[@]}")") s," \
    "**$(fix2 "$(median "${pr[@]}")")** pair by pair (${pr[*]}). sqlguard's uncompressed backup to S3 (dump, hash, inventory, manifest and index included)" \
    "against rclone's upload of the same dump, medians: **$(ratio "${s3_median[none]}" "$(median "${rw[@]}")")**."
fi

# ---------------------------------------------------------------------------------------------
if [ -n "${want[index]:-}" ]; then
  section index "Index operations over indexes of ${index_sizes[*]} records"
  store=$run/index-store
  cat >"$run/index.yaml" <<YAML
servers:
  bench:
    host: 127.0.0.1
    port: $port
    user: root
    password_file: $work/mariadb/root-password
    databases: {include: ["db00"]}
storage:
  local: {type: local, path: $store}
backup_types:
  hourly:
    compression: {algorithm: zstd, level: 3}
    retention: {keep_within: 2d}
  daily:
    compression: {algorithm: zstd, level: 3}
    retention: {keep_last: 2}
YAML
  ix() { "$bin" --config "$run/index.yaml" --no-progress "$@"; }
  ops=("backup|ix -q backup --type hourly" "list50|ix list --limit 50" "listdb|ix list --db db07 --json"
    "reportjson|ix report --json" "reporthtml|ix report --format html -o $run/report.html" "dryrun|ix prune --dry-run")
  # measure_reps KEY CMD…: index_reps runs (each after $pre, if set); wall[KEY] the median,
  # rss[KEY] the largest.
  pre=
  measure_reps() {
    local key=$1 i ws=() rs=()
    shift
    for i in $(seq 1 "$index_reps"); do
      [ -z "$pre" ] || eval "$pre"
      measure "$key #$i" "$@"
      ws+=("${wall[$key #$i]}") rs+=("${rss[$key #$i]}")
    done
    wall[$key]=$(median "${ws[@]}") rss[$key]=$(maximum "${rs[@]}")
  }
  pre='rm -rf "$store"'
  measure_reps "index empty backup" "$bin" --config "$run/index.yaml" --no-progress -q backup --type hourly
  pre=
  for n in "${index_sizes[@]}"; do
    rm -rf "$store"
    python3 scripts/bench/seed-index.py "$store" bench "$n" --objects >/dev/null
    measure "index $n migration" "$bin" --config "$run/index.yaml" --no-progress -q backup --type hourly
    for o in "${ops[@]}"; do
      read -ra cmd <<<"${o#*|}"
      measure_reps "index $n ${o%%|*}" "$bin" --config "$run/index.yaml" --no-progress "${cmd[@]:1}"
    done
  done
  html_size=$(du_b "$run/report.html")
  big=$(printf '%s\n' "${index_sizes[@]}" | sort -g | tail -1)
  small=$(printf '%s\n' "${index_sizes[@]}" | sort -g | head -1)
  rm -rf "$store"
  t0=$EPOCHREALTIME
  python3 scripts/bench/seed-index.py "$store" bench "$big" --objects >/dev/null
  seed_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  # The baseline: `rm` of exactly the files prune removed, in an identical copy of the storage.
  cp -a "$store" "$store.rm"
  measure "index $big objects migration" "$bin" --config "$run/index.yaml" --no-progress -q backup --type hourly
  objects() { # the objects and manifests under storage $1, sorted
    (cd "$1" && find bench -path bench/index -prune -o -type f \( -name '*.sql.zst' -o -name '*.manifest.json' \) -print | LC_ALL=C sort)
  }
  objects "$store" >"$run/files.before"
  measure "index $big prune" "$bin" --config "$run/index.yaml" --no-progress -q prune
  objects "$store" >"$run/files.after"
  LC_ALL=C comm -23 "$run/files.before" "$run/files.after" >"$run/files.removed"
  before=$(grep -c '\.sql\.zst$' "$run/files.before" || true)
  removed=$(grep -c '\.sql\.zst$' "$run/files.removed" || true)
  removed_files=$(wc -l <"$run/files.removed")
  measure "index $big rm" bash -c "cd $store.rm && xargs -d '\n' rm -- < $run/files.removed"
  records_after=$(ix list --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["backups"]))')
  rm -rf "$store" "$store.rm" "$run/report.html" "$run"/files.*

  head="| operation |"
  sep="| --- |"
  for n in "${index_sizes[@]}"; do head+=" $n: wall s | $n: peak RSS MiB |"; sep+=" ---: | ---: |"; done
  out "A synthetic sqlguard 0.1 index (\`scripts/bench/seed-index.py STORE bench N --objects\`: 20 databases \`db00\`…\`db19\`, hourly and daily records," \
    "one run in 50 failed, a sparse object and a manifest for each success, which prune checks) in fresh local storage; the first sqlguard write (a tiny backup of \`db00\`, type hourly) migrates it." \
    "Then each operation runs ${index_reps}× (median wall, largest peak RSS), output to /dev/null, page cache dropped before each run." \
    "The growth column is the ratio of the ${big}-record wall time to the ${small}-record one (${big}/${small} = $((big / small))× the records)." "" \
    "$head growth (wall) |" "$sep ---: |"
  labels=("migration|migration: first tiny backup after seeding" "backup|tiny backup (\`db00\`, 3 rows)" "list50|\`list --limit 50\`"
    "listdb|\`list --db db07 --json\`" "reportjson|\`report --json\`" "reporthtml|\`report --format html -o f\`" "dryrun|\`prune --dry-run\`")
  for l in "${labels[@]}"; do
    k=${l%%|*} row="| ${l#*|} |"
    for n in "${index_sizes[@]}"; do row+=" $(secs "${wall[index $n $k]}") | $(mib_k "${rss[index $n $k]}") |"; done
    out "$row $(ratio "${wall[index $big $k]}" "${wall[index $small $k]}") |"
  done
  out "" "- tiny backup against an empty storage (emptied before each of its ${index_reps} runs): $(secs "${wall[index empty backup]}") s, peak RSS $(mib_k "${rss[index empty backup]}") MiB;" \
    "  the same backup over the ${big}-record index / over an empty storage (wall): **$(ratio "${wall[index $big backup]}" "${wall[index empty backup]}")**" \
    "- the HTML report of the ${big}-record index: $(mib "$html_size") MiB" \
    "- real \`prune\` of the ${big}-record index seeded with \`--objects\` (seeding: ${seed_s} s; migrated first by a tiny backup: $(secs "${wall[index $big objects migration]}") s):" \
    "  retention hourly \`keep_within: 2d\`, daily \`keep_last: 2\`; it removed $removed of $before objects ($(awk -v a="$removed" -v b="$before" 'BEGIN { printf "%.1f", 100 * a / b }')%) and their manifests, $records_after records left," \
    "  in **$(secs "${wall[index $big prune]}") s**, peak RSS $(mib_k "${rss[index $big prune]}") MiB;" \
    "  \`rm\` of the same $removed_files files (\`xargs rm\` in an identical copy of the storage) took $(secs "${wall[index $big rm]}") s: prune / rm (wall) **$(ratio "${wall[index $big prune]}" "${wall[index $big rm]}")**"
fi

# ---------------------------------------------------------------------------------------------
if [ -n "${want[binlog]:-}" ]; then
  section binlog "Binary log archive: sqlguard binlog vs mariadb-binlog --raw"
  bport=${BENCH_BINLOG_PORT:-3396}
  rm -rf "$work/mariadb-binlog"
  scripts/mariadb.sh start "$work/mariadb-binlog" "$bport" >/dev/null
  binlog_started=1
  bcli=(mariadb --defaults-file="$work/mariadb-binlog/client.cnf")
  cat >"$run/binlog.cnf" <<CNF
[client]
host=127.0.0.1
port=$bport
protocol=tcp
user=root
password="$(cat "$work/mariadb-binlog/root-password")"
CNF
  chmod 600 "$run/binlog.cnf"
  bl_config() { # FILE STORE
    cat >"$1" <<YAML
servers:
  bench:
    host: 127.0.0.1
    port: $bport
    user: root
    password_file: $work/mariadb-binlog/root-password
    binlog: {compression: {algorithm: zstd, level: 3}}
storage:
  local: {type: local, path: $2}
YAML
  }
  # Nothing new: one archive run that caught up, then runs that find nothing, against the one
  # round trip they need (`SHOW BINARY LOGS` through the client).
  "${bcli[@]}" -e "CREATE DATABASE bl; CREATE TABLE bl.t (id INT PRIMARY KEY, pad VARCHAR(255)) ENGINE=InnoDB; INSERT INTO bl.t VALUES (0, 'x')"
  bl_config "$run/bl-idle.yaml" "$run/bl-idle"
  "$bin" --config "$run/bl-idle.yaml" --no-progress -q binlog
  idle_sg=() idle_rt=()
  for i in $(seq "$runs"); do
    measure "binlog idle sqlguard $i" "$bin" --config "$run/bl-idle.yaml" --no-progress -q binlog
    idle_sg+=("${wall[binlog idle sqlguard $i]}")
    measure "binlog idle query $i" mariadb --defaults-file="$run/binlog.cnf" -N -B -e "SHOW BINARY LOGS"
    idle_rt+=("${wall[binlog idle query $i]}")
  done
  new_segments=$(sg "$run/bl-idle.yaml" list --type binlog --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["backups"]))')
  # Busy: ~200 MB of row events in the current file (FLUSH first, so a fresh archive, which
  # starts with the current file, ships exactly what the tool copies).
  rows=$(scaled 700000)
  "${bcli[@]}" bl -e "FLUSH BINARY LOGS; INSERT INTO t SELECT seq, REPEAT('x', 250) FROM seq_1_to_$rows"
  bfile=$("${bcli[@]}" -N -B -e "SHOW MASTER STATUS" | cut -f1)
  bsize=$("${bcli[@]}" -N -B -e "SHOW MASTER STATUS" | cut -f2)
  busy_raw=() busy_zstd=() busy_sg=()
  for i in $(seq "$runs"); do
    rm -rf "$run/bl-raw" "$run/bl-busy" && mkdir -p "$run/bl-raw"
    measure "binlog busy raw $i" mariadb-binlog --defaults-file="$run/binlog.cnf" --read-from-remote-server --raw \
      --result-file="$run/bl-raw/" "$bfile"
    busy_raw+=("${wall[binlog busy raw $i]}")
    rm -rf "$run/bl-raw" && mkdir -p "$run/bl-raw" && ln -s /dev/stdout "$run/bl-raw/$bfile"
    measure "binlog busy raw+zstd $i" bash -c "set -o pipefail; mariadb-binlog --defaults-file=$run/binlog.cnf --read-from-remote-server --raw --result-file=$run/bl-raw/ $bfile | zstd -3 -q > $run/bl-raw.zst"
    busy_zstd+=("${wall[binlog busy raw+zstd $i]}")
    bl_config "$run/bl-busy.yaml" "$run/bl-busy"
    measure "binlog busy sqlguard $i" "$bin" --config "$run/bl-busy.yaml" --no-progress -q binlog
    busy_sg+=("${wall[binlog busy sqlguard $i]}")
  done
  shipped=$(sg "$run/bl-busy.yaml" list --type binlog --json | python3 -c 'import json, sys
print(sum(r["raw_bytes"] for r in json.load(sys.stdin)["backups"] if r["status"] == "success"))')
  stored=$(du_b "$run/bl-busy")
  mi=$(median "${idle_sg[@]}") mq=$(median "${idle_rt[@]}")
  mr=$(median "${busy_raw[@]}") mz=$(median "${busy_zstd[@]}") ms=$(median "${busy_sg[@]}")
  mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
  out "A private MariaDB with \`--log-bin --binlog-format=ROW\`; sqlguard with \`binlog: {compression: zstd 3}\` to local storage; $runs runs each, interleaved, page cache dropped before each." "" \
    "**Nothing new** (the archive caught up): median $(secs "$mi") s per \`sqlguard binlog\` run (config, index summary, one \`SHOW BINARY LOGS\`, the state file), against $(secs "$mq") s for the \`SHOW BINARY LOGS\` round trip alone through the client: $(ratio "$mi" "$mq")×. Segments those runs stored: $((new_segments - 1)) (the first, catching up, stored 1)." "" \
    "**Busy**: $(mib "$bsize") MiB of row events ($rows rows of ~260 bytes) in one file, shipped whole:" "" \
    "| run | median wall s | min | max | MB/s of binlog | peak RSS MiB (last run) |" \
    "| --- | ---: | ---: | ---: | ---: | ---: |" \
    "| \`mariadb-binlog --raw\` to a file | $(secs "$mr") | $(secs "$(minimum "${busy_raw[@]}")") | $(secs "$(maximum "${busy_raw[@]}")") | $(mbps "$bsize" "$mr") | $(mib_k "${rss[binlog busy raw $runs]}") |" \
    "| \`mariadb-binlog --raw \| zstd -3\` | $(secs "$mz") | $(secs "$(minimum "${busy_zstd[@]}")") | $(secs "$(maximum "${busy_zstd[@]}")") | $(mbps "$bsize" "$mz") | $(mib_k "${rss[binlog busy raw+zstd $runs]}") |" \
    "| \`sqlguard binlog\` (checks each event's CRC32, zstd 3, SHA-256, fsync, index) | $(secs "$ms") | $(secs "$(minimum "${busy_sg[@]}")") | $(secs "$(maximum "${busy_sg[@]}")") | $(mbps "$shipped" "$ms") | $(mib_k "${rss[binlog busy sqlguard $runs]}") |" "" \
    "sqlguard / raw copy (median wall): **$(ratio "$ms" "$mr")**; sqlguard / raw | zstd: **$(ratio "$ms" "$mz")**; stored $(mib "$stored") MiB for $(mib "$shipped") MiB shipped."
  echo "  binlog idle: sqlguard / round trip $(ratio "$mi" "$mq"); busy: sqlguard / raw $(ratio "$ms" "$mr"), / raw|zstd $(ratio "$ms" "$mz")"
  scripts/mariadb.sh stop "$work/mariadb-binlog" >/dev/null
  binlog_started=
fi

# ---------------------------------------------------------------------------------------------
total=$((SECONDS - bench_start))
hms() { printf '%dh %02dm %02ds' $(($1 / 3600)) $(($1 % 3600 / 60)) $(($1 % 60)); }
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && commit+=" (working tree modified)"
{
  echo "# Benchmarks"
  echo
  echo "Written by \`scripts/bench.sh ${sections[*]}\`: sqlguard side by side with the shell pipelines it replaces and its peers, in one run on one machine."
  echo "It is a benchmark, not a test: read the ratios, not the absolute times."
  if [ "$div" != 1 ]; then
    echo
    echo "**A trial run: every database is scaled down by BENCH_DIV=$div** (the section titles give the full sizes)."
  fi
  echo
  echo "| | |"
  echo "| --- | --- |"
  echo "| date | $(date -u '+%Y-%m-%d %H:%M UTC') |"
  echo "| machine | $(nproc) cores (\`nproc\`), $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM |"
  echo "| MariaDB | server $(q 'SELECT VERSION()') (binary log $(q 'SELECT IF(@@log_bin, "on", "off")'), buffer pool $(q 'SELECT @@innodb_buffer_pool_size DIV 1048576') MiB); $(mariadb-dump --version) |"
  echo "| peers | mydumper/myloader $(dpkg-query -W -f='${Version}' mydumper 2>/dev/null || echo -) ($(mydumper --version 2>/dev/null | awk '{sub(/,$/, "", $2); print $1, $2}')), automysqlbackup $(dpkg-query -W -f='${Version}' automysqlbackup 2>/dev/null || echo -) |"
  echo "| compressors | $(zstd --version | sed 's/^\*\*\* //; s/, by.*//'), $(xz --version | head -1) |"
  echo "| sqlguard | $("$bin" --version), commit $commit |"
  echo "| sizes | BENCH_DIV=$div: ~100 MB = $o100 orders, ~1 GB = $o1g, many = 5 × $omany, many-emp = 5 × $emp_employees employees, restore = $orestore; restore runs: $runs; index sizes: ${index_sizes[*]} × $index_reps runs |"
  echo
  echo "Wall time is measured around each command; peak RSS and CPU come from \`/usr/bin/time -v\`; server CPU is mariadbd's, from /proc."
  echo "Before every measured command the page cache is dropped; before the first command on a database, one untimed dump warms the server."
  echo "Every database client reads the password from a defaults file; none is on a command line (only the throwaway S3 server of \`scripts/s3.sh\` gets its generated key on one)."
  for s in "${sections[@]}"; do cat "$md/$s.md"; done
  echo
  echo "## Running time"
  echo
  echo "The whole benchmark took **$(hms "$total")** ($(hms "$gen_secs") of it generating databases, which later runs reuse)."
} >"$root/BENCHMARKS.md"
echo
cat "$root/BENCHMARKS.md"
echo
echo "written: $root/BENCHMARKS.md"
