#!/usr/bin/env bash
# A throw-away Redis Cluster on loopback ports: three primaries, each with one replica.
# One implementation, used by .ci/run, by the tests (spec/helpers/redisCluster.ts) and by the
# bench (bench/http.ts).
#
#   scripts/redis-cluster.sh start DIR BASEPORT   six nodes on BASEPORT … BASEPORT+5 (cluster bus:
#                                                 +10000), their files under DIR (created, must not
#                                                 exist or be empty); waits until every node says
#                                                 cluster_state:ok and every replica is in sync;
#                                                 prints REDIS_CLUSTER_NODES=127.0.0.1:p,… on stdout
#   scripts/redis-cluster.sh stop DIR             stops the nodes started in DIR by the PIDs in
#                                                 their pidfiles (SIGTERM, then SIGKILL), removes DIR
#   scripts/redis-cluster.sh nodes DIR            prints the node list again
#
# Settings of every node: --bind 127.0.0.1, no persistence (--save "" --appendonly no),
# --cluster-node-timeout $REDIS_CLUSTER_NODE_TIMEOUT (default 1000 ms, so that a replica is
# promoted within a few seconds of its primary's death), daemonized with a pidfile and a log
# file in DIR/<port>/. A start that fails stops whatever it started and removes DIR.
# Environment: REDIS_SERVER / REDIS_CLI (binaries, default from the PATH),
# REDIS_CLUSTER_NODE_TIMEOUT (ms), REDIS_CLUSTER_READY_TIMEOUT (s, default 30).
set -Eeuo pipefail

REDIS_SERVER="${REDIS_SERVER:-redis-server}"
REDIS_CLI="${REDIS_CLI:-redis-cli}"
NODE_TIMEOUT="${REDIS_CLUSTER_NODE_TIMEOUT:-1000}"
READY_TIMEOUT="${REDIS_CLUSTER_READY_TIMEOUT:-30}"
MARKER=".effect-sessions-redis-cluster"
COUNT=6

usage() {
  echo "usage: $0 start DIR BASEPORT | stop DIR | nodes DIR" >&2
  exit 2
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cli() {
  local port="$1"
  shift
  "$REDIS_CLI" -h 127.0.0.1 -p "$port" --no-auth-warning "$@"
}

ports_of() {
  cat "$1/ports"
}

nodes_of() {
  local list=""
  for p in $(ports_of "$1"); do list="${list:+$list,}127.0.0.1:$p"; done
  echo "$list"
}

# Stops the nodes whose pidfiles are in DIR, by PID, only when the PID is a redis-server.
stop_nodes() {
  local dir="$1"
  local pids=()
  for pidfile in "$dir"/*/redis.pid; do
    [ -f "$pidfile" ] || continue
    local pid
    pid="$(cat "$pidfile")"
    [ -n "$pid" ] || continue
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "redis-server"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local deadline=$((SECONDS + 10))
  for pid in "${pids[@]+"${pids[@]}"}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

remove_dir() {
  local dir="$1"
  # Only a directory this script made (it holds the marker file).
  if [ -f "$dir/$MARKER" ]; then rm -rf "$dir"; fi
}

wait_until() {
  local what="$1"
  shift
  local deadline=$((SECONDS + READY_TIMEOUT))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "redis-cluster: timed out after ${READY_TIMEOUT}s waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

all_ok() {
  local dir="$1"
  for p in $(ports_of "$dir"); do
    cli "$p" cluster info 2>/dev/null | grep -q "^cluster_state:ok" || return 1
    # every node knows all six, three of them primaries with slots
    [ "$(cli "$p" cluster nodes 2>/dev/null | grep -c "connected")" -eq "$COUNT" ] || return 1
  done
}

replicas_in_sync() {
  local dir="$1"
  local synced=0
  for p in $(ports_of "$dir"); do
    local info
    info="$(cli "$p" info replication 2>/dev/null)" || return 1
    if grep -q "^role:slave" <<<"$info"; then
      grep -q "^master_link_status:up" <<<"$info" || return 1
      grep -q "^master_sync_in_progress:0" <<<"$info" || return 1
      synced=$((synced + 1))
    fi
  done
  [ "$synced" -eq $((COUNT / 2)) ]
}

start() {
  local dir="$1" base="$2"
  [[ "$base" =~ ^[0-9]+$ ]] && [ "$base" -ge 1024 ] && [ "$((base + COUNT - 1 + 10000))" -le 65535 ] || {
    echo "redis-cluster: BASEPORT must be a number from 1024 to $((65535 - 10000 - COUNT + 1))" >&2
    exit 2
  }
  command -v "$REDIS_SERVER" >/dev/null || { echo "redis-cluster: $REDIS_SERVER not found" >&2; exit 3; }
  command -v "$REDIS_CLI" >/dev/null || { echo "redis-cluster: $REDIS_CLI not found" >&2; exit 3; }
  local ports=()
  for i in $(seq 0 $((COUNT - 1))); do
    local p=$((base + i))
    if port_in_use "$p" || port_in_use $((p + 10000)); then
      echo "redis-cluster: port $p (or its bus port $((p + 10000))) is in use" >&2
      exit 4
    fi
    ports+=("$p")
  done
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    echo "redis-cluster: $dir exists and is not empty" >&2
    exit 2
  fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  touch "$dir/$MARKER"
  echo "${ports[*]}" >"$dir/ports"
  trap 'stop_nodes "$dir"; remove_dir "$dir"' ERR INT TERM
  for p in "${ports[@]}"; do
    mkdir -p "$dir/$p"
    "$REDIS_SERVER" \
      --port "$p" --bind 127.0.0.1 --protected-mode no \
      --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" --cluster-node-timeout "$NODE_TIMEOUT" \
      --save "" --appendonly no \
      --dir "$dir/$p" --daemonize yes --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" >/dev/null
  done
  for p in "${ports[@]}"; do
    wait_until "127.0.0.1:$p to answer PING" bash -c "[ \"\$('$REDIS_CLI' -h 127.0.0.1 -p $p ping 2>/dev/null)\" = PONG ]"
  done
  local addresses=()
  for p in "${ports[@]}"; do addresses+=("127.0.0.1:$p"); done
  "$REDIS_CLI" --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 || {
    cat "$dir/create.log" >&2
    false
  }
  wait_until "cluster_state:ok on every node" all_ok "$dir"
  wait_until "every replica in sync with its primary" replicas_in_sync "$dir"
  trap - ERR INT TERM
  echo "REDIS_CLUSTER_NODES=$(nodes_of "$dir")"
}

[ $# -ge 2 ] || usage
case "$1" in
  start)
    [ $# -eq 3 ] || usage
    start "$2" "$3"
    ;;
  stop)
    [ $# -eq 2 ] || usage
    [ -d "$2" ] || exit 0
    stop_nodes "$2"
    remove_dir "$2"
    ;;
  nodes)
    [ $# -eq 2 ] || usage
    nodes_of "$2"
    ;;
  *) usage ;;
esac
