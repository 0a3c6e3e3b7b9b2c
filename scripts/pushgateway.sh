#!/usr/bin/env bash
# Starts or stops a private Prometheus Pushgateway (Debian's prometheus-pushgateway) on 127.0.0.1.
#   scripts/pushgateway.sh start DIR PORT
#   scripts/pushgateway.sh stop DIR
set -euo pipefail
cmd=${1:?usage: pushgateway.sh start DIR PORT | stop DIR}
dir=${2:?directory}
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
case "$cmd" in
start)
  port=${3:?port}
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then exit 0; fi
  command -v prometheus-pushgateway >/dev/null \
    || { echo "prometheus-pushgateway missing: run scripts/install-deps.sh --test" >&2; exit 1; }
  # An empty persistence file keeps it from writing under /var/lib.
  prometheus-pushgateway --web.listen-address="127.0.0.1:$port" --persistence.file= \
    </dev/null >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 200); do
    if curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then echo "$port" >"$dir/port"; exit 0; fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.05
  done
  echo "pushgateway did not start; see $dir/log" >&2; cat "$dir/log" >&2; exit 1
  ;;
stop) [ -f "$dir/pid" ] && { kill "$(cat "$dir/pid")" 2>/dev/null || true; rm -f "$dir/pid"; } ;;
*) exit 2 ;;
esac
