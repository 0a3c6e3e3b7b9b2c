# Shared by the scripts that start private test servers (s3.sh, moto.sh, pushgateway.sh).
# Each server lives in a directory: DIR/pid, DIR/port, DIR/log.

# svc_alive DIR: the server recorded in DIR is running.
svc_alive() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

# svc_wait DIR PORT NAME CHECK...: waits until CHECK succeeds (then records PORT), the server
# dies, or 10 s pass (then prints its log and fails).
svc_wait() {
  local dir=$1 port=$2 name=$3
  shift 3
  for _ in $(seq 1 200); do
    if "$@" >/dev/null 2>&1; then echo "$port" >"$dir/port"; echo "$name ready on 127.0.0.1:$port"; return 0; fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.05
  done
  echo "$name did not start; see $dir/log:" >&2
  cat "$dir/log" >&2
  return 1
}

# svc_stop DIR: stops the server recorded in DIR, if any.
svc_stop() {
  if [ -f "$1/pid" ]; then kill "$(cat "$1/pid")" 2>/dev/null || true; rm -f "$1/pid"; fi
}

# tcp_open PORT: something listens on 127.0.0.1:PORT.
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
