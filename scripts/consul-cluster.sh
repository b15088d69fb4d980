#!/usr/bin/env bash
# A 3-server Consul cluster on loopback, for tests and for people trying the engine.
#
#   scripts/consul-cluster.sh start|stop|status [DIR]      (DIR defaults to .cache/cluster)
#
# Servers listen on 127.0.0.11, .12 and .13 (Linux routes all of 127.0.0.0/8 to lo, so no setup
# is needed), each with its own data dir, config, log and pid file under DIR/sN.  Ports, the same on
# the three addresses, can be moved with the environment: CONSUL_PORT_SERVER (18300),
# CONSUL_PORT_SERF_LAN (18301), CONSUL_PORT_SERF_WAN (18302), CONSUL_PORT_HTTP (18500); DNS and gRPC
# are disabled.  CONSUL_ADDRS overrides the three addresses (space separated).
#
# raft_multiplier 1 (the production setting, not the lenient default 5) so that a killed leader
# is replaced in about a second.  `start` returns once /v1/status/leader names a leader; `stop`
# sends SIGTERM to the recorded PIDs, waits for them to exit, then SIGKILLs what is left.
# Point clients at it with: export CONSUL_HTTP_ADDR=127.0.0.11:18500
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-status}
dir=${2:-$root/.cache/cluster}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

read -r -a addrs <<< "${CONSUL_ADDRS:-127.0.0.11 127.0.0.12 127.0.0.13}"
p_server=${CONSUL_PORT_SERVER:-18300}
p_lan=${CONSUL_PORT_SERF_LAN:-18301}
p_wan=${CONSUL_PORT_SERF_WAN:-18302}
p_http=${CONSUL_PORT_HTTP:-18500}

http_get() {  # url -> body on stdout; fails quietly when nothing answers
  python3 - "$1" <<'EOF'
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())
except Exception:
    sys.exit(1)
EOF
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

leader() {  # prints the leader's address as seen by any server, or nothing
  local a l
  for a in "${addrs[@]}"; do
    l=$(http_get "http://$a:$p_http/v1/status/leader" 2>/dev/null | tr -d '"') || continue
    if [ -n "$l" ]; then echo "$l"; return 0; fi
  done
  return 1
}

write_config() {  # index address -> config file path
  local i=$1 a=$2 joins="" b
  for b in "${addrs[@]}"; do
    [ "$b" = "$a" ] || joins="$joins${joins:+, }\"$b:$p_lan\""
  done
  mkdir -p "$dir/s$i/data"
  cat > "$dir/s$i/consul.json" <<EOF
{
  "datacenter": "dc1",
  "node_name": "wf-s$i",
  "server": true,
  "bootstrap_expect": ${#addrs[@]},
  "bind_addr": "$a",
  "advertise_addr": "$a",
  "client_addr": "$a",
  "data_dir": "$dir/s$i/data",
  "retry_join": [$joins],
  "retry_interval": "1s",
  "ports": {"server": $p_server, "serf_lan": $p_lan, "serf_wan": $p_wan, "http": $p_http,
            "dns": -1, "grpc": -1, "https": -1},
  "performance": {"raft_multiplier": 1},
  "disable_update_check": true,
  "disable_host_node_id": true,
  "leave_on_terminate": false,
  "skip_leave_on_interrupt": true,
  "log_level": "INFO"
}
EOF
  echo "$dir/s$i/consul.json"
}

start() {
  local consul i a cfg
  consul=$("$root/scripts/install-consul.sh" | tail -n 1)
  i=0
  for a in "${addrs[@]}"; do
    i=$((i + 1))
    if alive "$dir/s$i/consul.pid"; then echo "s$i ($a) already running, pid $(cat "$dir/s$i/consul.pid")"; continue; fi
    cfg=$(write_config "$i" "$a")
    nohup "$consul" agent -config-file "$cfg" >> "$dir/s$i/consul.log" 2>&1 < /dev/null &
    echo $! > "$dir/s$i/consul.pid"
    echo "s$i ($a) started, pid $!, log $dir/s$i/consul.log"
  done
  # Setup, not a hot path: polling with a growing delay is fine here.
  local delay=0.1 deadline=$((SECONDS + 60)) l
  while ! l=$(leader); do
    if [ $SECONDS -ge $deadline ]; then
      echo "no leader after 60 s; see $dir/s*/consul.log" >&2; exit 1
    fi
    i=0
    for a in "${addrs[@]}"; do
      i=$((i + 1))
      alive "$dir/s$i/consul.pid" || { echo "s$i ($a) exited; see $dir/s$i/consul.log" >&2; tail -n 5 "$dir/s$i/consul.log" >&2; exit 1; }
    done
    sleep "$delay"; delay=$(python3 -c "print(min($delay * 2, 1.0))")
  done
  echo "leader: $l"
  echo "export CONSUL_HTTP_ADDR=${addrs[0]}:$p_http"
}

stop() {
  local i=0 a pid n
  for a in "${addrs[@]}"; do
    i=$((i + 1))
    if alive "$dir/s$i/consul.pid"; then
      pid=$(cat "$dir/s$i/consul.pid")
      kill -TERM "$pid" 2>/dev/null || true
      n=0
      while kill -0 "$pid" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
      echo "s$i ($a) stopped (pid $pid)"
    fi
    rm -f "$dir/s$i/consul.pid"
  done
}

status() {
  local i=0 a rc=0 l
  for a in "${addrs[@]}"; do
    i=$((i + 1))
    if alive "$dir/s$i/consul.pid"; then echo "s$i ($a:$p_http) running, pid $(cat "$dir/s$i/consul.pid")"
    else echo "s$i ($a:$p_http) stopped"; rc=1; fi
  done
  if l=$(leader); then echo "leader: $l"; else echo "leader: none"; rc=1; fi
  return $rc
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status [DIR]" >&2; exit 2 ;;
esac
