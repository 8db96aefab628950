#!/usr/bin/env bash
# User memory per idle connection (release build): for each N, a client process
# (Scripts/hold-connections.py) opens N idle connections, and the server's RSS growth over its own
# baseline, divided by N, is the figure. Then the clients leave and RSS/fds are read again.
#   --server serve (default): `rill serve`, each connection an SSE subscriber (GET /sse, heartbeat
#                             every 15 s), so the figure includes the hub's per-subscriber state;
#   --server echo:            `rill echo`, bare reactor connections;
#   --server example:         Examples/SSEService, the embedded HTTPServer + Hub service, each
#                             connection a subscriber with its token (GET /events?token=…; a welcome
#                             event each, a tick every second to all).
#   --server hummingbird:     Hummingbird 2 (Benchmarks/HTTPPeerHummingbird, one event loop), each
#                             connection a GET /sse streaming text/event-stream with a `: heartbeat`
#                             every 15 s from its own task, as Hummingbird's examples stream.
# Several, comma-separated (`--server serve,example`), are measured in turn for each N, in one run.
#
# Usage: Scripts/bench-idle-memory.sh [--server serve|echo|example|hummingbird[,…]] [N ...]   (default N: 1000 5000 10000 19000)
# RILL_SERVE_ARGS adds arguments to `rill serve` (e.g. RILL_SERVE_ARGS='--redis redis://127.0.0.1:6379').
# The server's process is limited to 20,000 open files on these machines: N must stay below ~19,990.
set -euo pipefail
cd "$(dirname "$0")/.."
servers=serve
if [ "${1:-}" = "--server" ]; then servers=$2; shift 2; fi
IFS=, read -r -a kinds <<< "$servers"
for kind in "${kinds[@]}"; do
  case "$kind" in
    serve|echo|example|hummingbird) ;;
    *) echo "--server takes serve, echo, example or hummingbird (comma-separated)" >&2; exit 2 ;;
  esac
done
counts=("${@:-1000 5000 10000 19000}")
read -r -a counts <<< "${counts[*]}"

swift build -c release --product rill >/dev/null
[[ ",$servers," == *,example,* ]] && swift build -c release --product SSEService >/dev/null
bin="$(swift build -c release --show-bin-path)"
if [[ ",$servers," == *,hummingbird,* ]]; then
  (cd Benchmarks && swift build -c release --product HTTPPeerHummingbird >/dev/null)
  bench_bin="$(cd Benchmarks && swift build -c release --show-bin-path)"
fi

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" | wc -l; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts server `kind`; sets `server` (its pid) and `port`.
start_server() {
  out=$(mktemp)
  case "$1" in
    serve) "$bin/rill" serve --port 0 --tick 0 >"$out" & ;;
    echo) "$bin/rill" echo --port 0 >"$out" & ;;
    example)
      # The example prints its address to a pipe only at exit (stdio buffering): it is given a port.
      port=$(free_port)
      "$bin/SSEService" "$port" >"$out" & ;;
    hummingbird)
      port=$(free_port)
      "$bench_bin/HTTPPeerHummingbird" --port "$port" --heartbeat 15 >"$out" & ;;
  esac
  server=$!
  if [ "$1" = example ] || [ "$1" = hummingbird ]; then
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  else
    for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.05; done
    port=$(grep -o '127.0.0.1:[0-9]*' "$out" | head -1 | cut -d: -f2)
  fi
  [ -n "$port" ] || { echo "server did not start: $(cat "$out")" >&2; kill $server; exit 1; }
  rm -f "$out"
}

printf '%-8s %-8s %12s %12s %12s %14s %12s %10s\n' "server" "N" "base KiB" "held KiB" "B/conn" "after KiB" "fds held" "fds after"
octet=2
for n in "${counts[@]}"; do
  for kind in "${kinds[@]}"; do
    case "$kind" in
      serve|hummingbird) holder_args=(--request /sse) ;;
      echo) holder_args=() ;;
      example) holder_args=(--request "/events?token=s3cret") ;;
    esac
    start_server "$kind"
    # The baseline is the idle server's: the example's first ticks (its publishing task's thread and
    # malloc arena) come within its first seconds, before the clients.
    if [ "$kind" = example ]; then sleep 2.5; else sleep 0.5; fi
    base=$(rss_kib $server)

    holder_out=$(mktemp)
    python3 Scripts/hold-connections.py 127.0.0.1 "$port" "$n" "$octet" "${holder_args[@]}" >"$holder_out" &
    holder=$!
    for _ in $(seq 600); do grep -q held "$holder_out" && break; sleep 0.1; done
    grep -q held "$holder_out" || { echo "clients did not connect" >&2; kill $holder $server; exit 1; }
    sleep 2  # let the server accept the whole backlog
    held=$(rss_kib $server)
    fds_held=$(fd_count $server)

    kill $holder; wait $holder 2>/dev/null || true
    sleep 2
    after=$(rss_kib $server)
    fds_after=$(fd_count $server)
    kill -TERM $server; wait $server || true

    per=$(( (held - base) * 1024 / n ))
    printf '%-8s %-8s %12s %12s %12s %14s %12s %10s\n' "$kind" "$n" "$base" "$held" "$per" "$after" "$fds_held" "$fds_after"
    rm -f "$holder_out"
    octet=$((octet + 2))
  done
done
