#!/usr/bin/env bash
# Starts or stops moto's S3 server on 127.0.0.1. The tests use it only where s3s-fs falls short:
# s3s-fs cannot list in-progress multipart uploads, which prune's orphan cleaning needs.
#   scripts/moto.sh start DIR PORT
#   scripts/moto.sh stop DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cmd=${1:?usage: moto.sh start DIR PORT | stop DIR}
dir=$(mkdir -p "${2:?directory}" && cd "$2" && pwd)
case "$cmd" in
start)
  port=${3:?port}
  svc_alive "$dir" && exit 0
  command -v moto_server >/dev/null || { echo "moto_server missing: run scripts/install-deps.sh --test" >&2; exit 1; }
  moto_server -H 127.0.0.1 -p "$port" </dev/null >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  svc_wait "$dir" "$port" moto curl -sf "http://127.0.0.1:$port/"
  ;;
stop) svc_stop "$dir" ;;
*) echo "usage: moto.sh start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
