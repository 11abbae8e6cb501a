#!/usr/bin/env bash
# A local Redis Cluster for the cluster-mode tests: three masters on 127.0.0.1:7001-7003
# (GAVEL_CLUSTER_PORTS to change them), no replicas, data in /tmp/gavel-redis-cluster/<port>.
# Safe to run again: a cluster already up and covering all 16384 slots is left alone; nodes
# that are not running are started; a cluster that is not formed yet is created.
#
#   scripts/redis-cluster.sh          start (or check) the cluster
#   scripts/redis-cluster.sh stop     stop its nodes and remove their data
#
# Sourced by scripts/test.sh for `ensure_redis_cluster`. The tests reach it with
# REDIS_URL=redis://127.0.0.1:7001 (any node: Gavel detects the cluster).
set -euo pipefail

GAVEL_CLUSTER_PORTS=${GAVEL_CLUSTER_PORTS:-"7001 7002 7003"}
GAVEL_CLUSTER_DIR=${GAVEL_CLUSTER_DIR:-/tmp/gavel-redis-cluster}

cluster_ok() {
  local first
  first=${GAVEL_CLUSTER_PORTS%% *}
  redis-cli -h 127.0.0.1 -p "$first" cluster info 2>/dev/null | grep -q '^cluster_state:ok' &&
    redis-cli -h 127.0.0.1 -p "$first" cluster info 2>/dev/null | grep -q '^cluster_slots_assigned:16384'
}

start_cluster_node() {
  local port=$1 dir="$GAVEL_CLUSTER_DIR/$1"
  if redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then return; fi
  mkdir -p "$dir"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
    --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 2000 \
    --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && return
    sleep 0.1
  done
  echo "redis-cluster: node $port did not start (see $dir/redis.log)" >&2
  exit 1
}

ensure_redis_cluster() {
  command -v redis-server >/dev/null 2>&1 || { echo "redis-cluster: redis-server is missing" >&2; exit 1; }
  if cluster_ok; then return; fi
  local port nodes=()
  for port in $GAVEL_CLUSTER_PORTS; do
    start_cluster_node "$port"
    nodes+=("127.0.0.1:$port")
  done
  if cluster_ok; then return; fi
  local first=${GAVEL_CLUSTER_PORTS%% *}
  local assigned
  assigned=$(redis-cli -h 127.0.0.1 -p "$first" cluster info | tr -d '\r' | sed -n 's/^cluster_slots_assigned://p')
  if [ "${assigned:-0}" = 0 ]; then
    echo "redis-cluster: creating a ${#nodes[@]}-master cluster on ${nodes[*]}"
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  else
    # Formed before but not healthy (a slot left half-migrated by an interrupted test).
    redis-cli --cluster fix "127.0.0.1:$first" --cluster-yes >/dev/null 2>&1 || true
  fi
  for _ in $(seq 1 100); do
    cluster_ok && return
    sleep 0.1
  done
  echo "redis-cluster: the cluster did not become ready" >&2
  redis-cli -h 127.0.0.1 -p "$first" cluster info >&2 || true
  exit 1
}

stop_redis_cluster() {
  local port
  for port in $GAVEL_CLUSTER_PORTS; do
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$GAVEL_CLUSTER_DIR"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-start}" in
    start) ensure_redis_cluster ;;
    stop) stop_redis_cluster ;;
    *) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
  esac
fi
