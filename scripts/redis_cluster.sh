#!/usr/bin/env bash
# A local Redis Cluster of masters without replicas, each node with an append-only file,
# for the tests (docs/scaling.md). Idempotent: a node that answers is left alone, a node
# that does not is started again from its own directory (its nodes.conf and AOF, so a
# restarted shard rejoins with what its AOF kept), and the slots are assigned only once.
#
#   scripts/redis_cluster.sh DIR PORT [PORT...]      (three ports make three masters)
set -euo pipefail
dir=$1
shift
ports=("$@")

answers() { redis-cli -h 127.0.0.1 -p "$1" ping >/dev/null 2>&1; }
info() { redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r'; }

for port in "${ports[@]}"; do
  answers "$port" && continue
  mkdir -p "$dir/$port"
  redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --appendonly yes --save "" --dir "$dir/$port" --daemonize yes \
    --logfile "$dir/$port/redis.log" --pidfile "$dir/$port/redis.pid"
  for _ in $(seq 1 100); do answers "$port" && break; sleep 0.05; done
  answers "$port" || { echo "redis-server on $port did not start; see $dir/$port/redis.log" >&2; exit 1; }
done

if info "${ports[0]}" | grep -q '^cluster_slots_assigned:0$'; then
  nodes=()
  for port in "${ports[@]}"; do nodes+=("127.0.0.1:$port"); done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
fi

for port in "${ports[@]}"; do
  for _ in $(seq 1 200); do
    info "$port" | grep -q '^cluster_state:ok$' && break
    sleep 0.05
  done
  info "$port" | grep -q '^cluster_state:ok$' || { echo "the cluster on $port is not ok" >&2; exit 1; }
done
