#!/usr/bin/env bash
# Starts or stops a private Prometheus Pushgateway (Debian's prometheus-pushgateway) on 127.0.0.1.
#   scripts/pushgateway.sh start DIR PORT
#   scripts/pushgateway.sh stop DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cmd=${1:?usage: pushgateway.sh start DIR PORT | stop DIR}
dir=$(mkdir -p "${2:?directory}" && cd "$2" && pwd)
case "$cmd" in
start)
  port=${3:?port}
  svc_alive "$dir" && exit 0
  command -v prometheus-pushgateway >/dev/null \
    || { echo "prometheus-pushgateway missing: run scripts/install-deps.sh --test" >&2; exit 1; }
  # An empty persistence file keeps it from writing under /var/lib.
  prometheus-pushgateway --web.listen-address="127.0.0.1:$port" --persistence.file= \
    </dev/null >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  svc_wait "$dir" "$port" pushgateway curl -sf "http://127.0.0.1:$port/-/ready"
  ;;
stop) svc_stop "$dir" ;;
*) echo "usage: pushgateway.sh start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
