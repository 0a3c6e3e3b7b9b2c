#!/usr/bin/env bash
# Starts or stops moto's S3 server on 127.0.0.1. The tests use it only where s3s-fs falls short:
# s3s-fs cannot list in-progress multipart uploads, which prune's orphan cleaning needs.
#   scripts/moto.sh start DIR PORT
#   scripts/moto.sh stop DIR
set -euo pipefail
cmd=${1:?usage: moto.sh start DIR PORT | stop DIR}
dir=${2:?directory}
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
case "$cmd" in
start)
  port=${3:?port}
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then exit 0; fi
  command -v moto_server >/dev/null || { echo "moto_server missing: run scripts/install-deps.sh --test" >&2; exit 1; }
  moto_server -H 127.0.0.1 -p "$port" </dev/null >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 200); do
    if curl -sf "http://127.0.0.1:$port/" >/dev/null 2>&1; then echo "$port" >"$dir/port"; exit 0; fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.05
  done
  echo "moto_server did not start; see $dir/log" >&2; cat "$dir/log" >&2; exit 1
  ;;
stop) [ -f "$dir/pid" ] && { kill "$(cat "$dir/pid")" 2>/dev/null || true; rm -f "$dir/pid"; } ;;
*) exit 2 ;;
esac
