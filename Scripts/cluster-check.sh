#!/usr/bin/env bash
# A small cluster on separate network stacks (network namespaces joined by a bridge, addresses in
# the benchmarking range 198.18.0.0/15): one host runs redis-server, three run `rill serve --redis`,
# one client host runs the checks (Scripts/cluster_check.py) and a short `rill load`. Checks: events
# published on node A reach subscribers on A, B and C exactly once, in order; node B killed, its
# subscribers resume on C with nothing lost or duplicated; Redis stopped (SIGSTOP) for 5 s then
# continued; Redis restarted empty (a new epoch, event: reset). Every namespace is removed at exit.
# Needs root, iproute2, redis-server and python3. Usage: Scripts/cluster-check.sh [RILL_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=Scripts/netns-lab.sh
source Scripts/netns-lab.sh
rill=${1:-.build/debug/rill}
PATH="$PATH:/usr/sbin:/sbin"
[[ $(id -u) == 0 ]] || { echo "cluster-check: needs root (network namespaces)" >&2; exit 2; }
for tool in ip redis-server python3; do
  command -v "$tool" >/dev/null || { echo "cluster-check: $tool is not installed" >&2; exit 2; }
done
[[ -x "$rill" ]] || { echo "cluster-check: no rill binary at $rill (swift build first)" >&2; exit 2; }
rill=$(realpath "$rill")

# Names unique to this run, so concurrent runs (or other users of namespaces) never collide.
tag="rc$$"
switch="$tag-sw"
hosts=(redis n1 n2 n3 client)
declare -A address=([redis]=198.18.0.2 [n1]=198.18.0.11 [n2]=198.18.0.12 [n3]=198.18.0.13 [client]=198.18.0.100)
work=$(mktemp -d /tmp/rill-cluster.XXXXXX)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [[ -f "$work/redis.pid" ]] && kill -9 "$(cat "$work/redis.pid")" 2>/dev/null || true
  lab_down
  rm -rf "$work"
}
trap cleanup EXIT

# The hosts and their switch (Scripts/netns-lab.sh).
lab_up

# Redis (in memory only), then the three nodes.
start_redis() {
  ip netns exec "$tag-redis" redis-server --port 6379 --bind "${address[redis]}" --save '' --appendonly no \
    --protected-mode no --loglevel warning >"$work/redis.log" 2>&1 &
  echo $! > "$work/redis.pid"
  disown  # killed on purpose later: no job-control notice
  for _ in $(seq 100); do
    ip netns exec "$tag-client" python3 -c "
import socket,sys
s=socket.create_connection(('${address[redis]}',6379),timeout=1); s.sendall(b'PING\r\n')
sys.exit(0 if s.recv(64).startswith(b'+PONG') else 1)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "cluster-check: redis-server did not answer" >&2
  exit 1
}
start_redis

for host in n1 n2 n3; do
  ip netns exec "$tag-$host" "$rill" serve --host "${address[$host]}" --port 8080 --heartbeat 1 \
    --redis "redis://${address[redis]}:6379" --redis-prefix cluster >"$work/$host.out" 2>"$work/$host.err" &
  pids+=($!)
  echo $! > "$work/$host.pid"
  disown
done
for host in n1 n2 n3; do
  for _ in $(seq 100); do grep -q listening "$work/$host.out" 2>/dev/null && break; sleep 0.1; done
  grep -q listening "$work/$host.out" || { echo "cluster-check: node $host did not start" >&2; cat "$work/$host.err" >&2; exit 1; }
done
echo "cluster-check: redis on ${address[redis]}, nodes on ${address[n1]} ${address[n2]} ${address[n3]} (namespaces $tag-*)"

# The checks, from the client host. It signals processes by pid (pids are not namespaced) and
# restarts Redis through this script's own function, exported as a command line.
ip netns exec "$tag-client" python3 Scripts/cluster_check.py \
  --nodes "${address[n1]}:8080,${address[n2]}:8080,${address[n3]}:8080" \
  --node-pids "$(cat "$work/n1.pid"),$(cat "$work/n2.pid"),$(cat "$work/n3.pid")" \
  --redis-pidfile "$work/redis.pid" \
  --redis-start "ip netns exec $tag-redis redis-server --port 6379 --bind ${address[redis]} --save '' --appendonly no --protected-mode no --loglevel warning" \
  --redis-address "${address[redis]}:6379"

# Load from the client host against node C, publishing there: no event lost, no stream dropped.
ip netns exec "$tag-client" "$rill" load "http://${address[n3]}:8080/sse?topic=load" -c 200 -d 4s \
  --publish-rate 50 --publish-path '/publish?topic=load' --heartbeat-interval 1 --source none > "$work/load.txt" 2>"$work/load.err" \
  || { echo "cluster-check: rill load failed" >&2; cat "$work/load.txt" "$work/load.err" >&2; exit 1; }
grep -E "Events|Streams" "$work/load.txt" | sed 's/^ */cluster-check: load: /'
echo "cluster-check: all checks passed"
