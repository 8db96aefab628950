#!/usr/bin/env bash
# User memory per idle connection (release build): for each N, a client process
# (Scripts/hold-connections.py) opens N idle connections, and the server's RSS growth over its own
# baseline, divided by N, is the figure. Then the clients leave and RSS/fds are read again.
#   --server serve (default): `rill serve`, each connection an SSE subscriber (GET /sse, heartbeat
#                             every 15 s), so the figure includes the hub's per-subscriber state;
#   --server echo:            `rill echo`, bare reactor connections.
#
# Usage: Scripts/bench-idle-memory.sh [--server serve|echo] [N ...]   (default N: 1000 5000 10000 19000)
# RILL_SERVE_ARGS adds arguments to `rill serve` (e.g. RILL_SERVE_ARGS='--redis redis://127.0.0.1:6379').
# The server's process is limited to 20,000 open files on these machines: N must stay below ~19,990.
set -euo pipefail
cd "$(dirname "$0")/.."
server_kind=serve
if [ "${1:-}" = "--server" ]; then server_kind=$2; shift 2; fi
case "$server_kind" in
  serve) server_args=(serve --port 0 --tick 0 ${RILL_SERVE_ARGS:-}); holder_args=(--request /sse) ;;
  echo) server_args=(echo --port 0); holder_args=() ;;
  *) echo "--server must be serve or echo" >&2; exit 2 ;;
esac
counts=("${@:-1000 5000 10000 19000}")
read -r -a counts <<< "${counts[*]}"

swift build -c release --product rill >/dev/null
rill="$(swift build -c release --show-bin-path)/rill"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
fd_count() { ls "/proc/$1/fd" | wc -l; }

echo "server: rill $server_kind"
printf '%-8s %12s %12s %12s %14s %12s %10s\n' "N" "base KiB" "held KiB" "B/conn" "after KiB" "fds held" "fds after"
octet=2
for n in "${counts[@]}"; do
  out=$(mktemp)
  "$rill" "${server_args[@]}" >"$out" &
  server=$!
  for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.05; done
  port=$(grep -o '127.0.0.1:[0-9]*' "$out" | head -1 | cut -d: -f2)
  [ -n "$port" ] || { echo "server did not start: $(cat "$out")" >&2; kill $server; exit 1; }
  sleep 0.5
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
  printf '%-8s %12s %12s %12s %14s %12s %10s\n' "$n" "$base" "$held" "$per" "$after" "$fds_held" "$fds_after"
  rm -f "$out" "$holder_out"
  octet=$((octet + 2))
done
