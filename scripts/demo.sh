#!/usr/bin/env bash
# Quick start: installs what is missing, starts a private MariaDB with a sample `shop` database,
# and runs a real backup to local storage, then `list`. Everything lives under .demo/.
#   scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=$root/.demo
port=${DEMO_PORT:-3399}

scripts/install-deps.sh
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
cargo build --release --locked -q
bin=$root/target/release/sqlguard

scripts/mariadb.sh start "$demo/mariadb" "$port"
cli=(mariadb --defaults-file="$demo/mariadb/client.cnf")
if ! "${cli[@]}" -e 'USE shop' 2>/dev/null; then
  echo "creating the sample shop database"
  "${cli[@]}" -e 'CREATE DATABASE shop CHARACTER SET utf8mb4'
  { echo 'SET @scale=5000;'; cat scripts/shop.sql; } | "${cli[@]}" shop
fi

cat >"$demo/sqlguard.yaml" <<YAML
# Written by scripts/demo.sh. See examples/ and the README for every key.
servers:
  demo:
    host: 127.0.0.1
    port: $port
    user: root
    password_file: $demo/mariadb/root-password
    databases:
      include: ["shop"]
storage:
  local:
    type: local
    path: $demo/backups
backup_types:
  daily:
    schedule: "30 2 * * *"
    compression: {algorithm: zstd, level: 3}
    retention: {keep_last: 7, keep_within: 14d}
  manual:
    retention: {keep_last: 10}
YAML

export SQLGUARD_CONFIG=$demo/sqlguard.yaml
set -x
"$bin" config check
"$bin" backup --type daily
"$bin" list
"$bin" report
"$bin" report --format html -o "$demo/report.html"
{ set +x; } 2>/dev/null
echo
echo "The dashboard is $demo/report.html (open it in a browser)."
echo "Backups are in $demo/backups. Try: SQLGUARD_CONFIG=$demo/sqlguard.yaml $bin list --json"
echo "Stop the demo server with: scripts/mariadb.sh stop $demo/mariadb"
