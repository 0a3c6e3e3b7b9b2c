#!/usr/bin/env bash
# Starts or stops a private S3-compatible server (s3s-fs) on 127.0.0.1 for tests and demos.
#   scripts/s3.sh start DIR PORT   # objects under DIR/data/<bucket>/; keys in DIR/access-key, DIR/secret-key
#   scripts/s3.sh stop DIR
# A bucket is a directory: `mkdir DIR/data/NAME` creates bucket NAME.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cmd=${1:?usage: s3.sh start DIR PORT | stop DIR}
dir=$(mkdir -p "${2:?directory}" && cd "$2" && pwd)
bin=$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")

case "$cmd" in
start)
  port=${3:?port}
  svc_alive "$dir" && exit 0
  [ -x "$bin" ] || { echo "s3s-fs is not installed: run scripts/install-deps.sh --test" >&2; exit 1; }
  mkdir -p "$dir/data"
  (umask 077
   [ -f "$dir/access-key" ] || echo "sqlguard-test" >"$dir/access-key"
   [ -f "$dir/secret-key" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$dir/secret-key")
  # The secret reaches s3s-fs on its command line: acceptable for a throwaway test server only.
  "$bin" --host 127.0.0.1 --port "$port" --access-key "$(cat "$dir/access-key")" \
    --secret-key "$(cat "$dir/secret-key")" "$dir/data" </dev/null >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  svc_wait "$dir" "$port" s3s-fs tcp_open "$port"
  ;;
stop) svc_stop "$dir" ;;
*) echo "usage: s3.sh start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
