#!/usr/bin/env bash
# Starts or stops a private MariaDB server on 127.0.0.1, as root or not, without systemd.
#   scripts/mariadb.sh start DIR PORT   # initialises DIR/data on first use; waits until ready
#   scripts/mariadb.sh stop DIR
# The root account gets password authentication over TCP with the password in DIR/root-password
# (generated on first use). Nothing here reads /etc/mysql (--no-defaults everywhere).
set -euo pipefail

cmd=${1:?usage: mariadb.sh start DIR PORT | stop DIR}
dir=${2:?directory}
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)

case "$cmd" in
start)
  port=${3:?port}
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    echo "mariadb already running in $dir (pid $(cat "$dir/pid"))"
    exit 0
  fi
  user_args=()
  [ "$(id -u)" = 0 ] && user_args=(--user=root)
  # A temp directory of its own: set up side by side in a shared /tmp (the tests start several
  # servers at once), a bootstrap now and then failed on a temporary table that was gone
  # ("Could not remove temporary table … error: 2").
  mkdir -p "$dir/tmp"
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults "${user_args[@]}" --datadir="$dir/data" --tmpdir="$dir/tmp" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
      || { cat "$dir/install.log" >&2; exit 1; }
    fresh=1
  fi
  # Binary logs as on a production primary (point-in-time recovery reads them), kept a day
  # (MARIADB_BINLOG_EXPIRE_SECONDS: the tests keep an hour); the benchmark turns them off with
  # MARIADB_NO_LOG_BIN=1, as its peers do.
  binlog_args=(--log-bin=binlog --server-id="$port" --binlog-format=ROW --max-binlog-size=256M --log-slave-updates
    --binlog-expire-logs-seconds="${MARIADB_BINLOG_EXPIRE_SECONDS:-86400}")
  [ -n "${MARIADB_NO_LOG_BIN:-}" ] && binlog_args=()
  mariadbd --no-defaults "${user_args[@]}" "${binlog_args[@]}" --datadir="$dir/data" --tmpdir="$dir/tmp" --socket="$dir/sock" \
    --port="$port" --bind-address=127.0.0.1 --pid-file="$dir/pid" --log-error="$dir/err.log" \
    --skip-name-resolve --innodb-buffer-pool-size=256M --max-allowed-packet=256M \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    </dev/null >/dev/null 2>&1 &
  # Before the password is set, root logs in over the socket without one.
  [ -n "${fresh:-}" ] && printf '[client]\nuser=root\nsocket=%s\n' "$dir/sock" >"$dir/client.cnf"
  ready=
  for _ in $(seq 1 300); do
    if mariadb-admin --defaults-file="$dir/client.cnf" ping >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$!" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$ready" ] || { echo "mariadb did not start; see $dir/err.log:" >&2; tail -20 "$dir/err.log" >&2; exit 1; }
  if [ -n "${fresh:-}" ]; then
    # mariadb-install-db also makes root@<this host's name>, which --skip-name-resolve can never
    # match: `mariadb-dump --system=users` (accounts backups) fails on such an account.
    for h in $(mariadb --defaults-file="$dir/client.cnf" -N -e \
      "SELECT host FROM mysql.user WHERE user = 'root' AND host NOT IN ('localhost', '127.0.0.1', '::1', '%')"); do
      mariadb --defaults-file="$dir/client.cnf" -e "DROP USER 'root'@'$h'"
    done
    pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    mariadb --defaults-file="$dir/client.cnf" <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED BY '$pw';
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$pw';
GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
SQL
    (umask 077
     printf '%s\n' "$pw" >"$dir/root-password"
     printf '[client]\nuser=root\npassword=%s\nsocket=%s\n' "$pw" "$dir/sock" >"$dir/client.cnf")
    chmod 600 "$dir/client.cnf"
  fi
  echo "$port" >"$dir/port"
  echo "mariadb ready on 127.0.0.1:$port (data in $dir)"
  ;;
stop)
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$dir/pid"
  fi
  ;;
*) echo "usage: mariadb.sh start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
