#!/usr/bin/env bash
# Runs the programs of Examples/ briefly, as CI does: SSEService on a free loopback port, curl seeing
# its token refusals (401 without a token, 403 with a wrong one), SSEClient printing the welcome and
# two ticks and exiting by itself, then EchoServer echoing one line. Each program is also given a
# lifetime of its own, and each step a `timeout`, so nothing outlives the script.
set -euo pipefail
cd "$(dirname "$0")/.."
for product in SSEService SSEClient EchoServer; do swift build --product "$product" >/dev/null; done
bin="$(swift build --show-bin-path)"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing listens on port $1" >&2
  return 1
}
fail() { echo "examples: $*" >&2; exit 1; }
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT

port=$(free_port)
timeout 30 "$bin/SSEService" "$port" 20 >/dev/null &
pids+=($!)
wait_for_port "$port"
url="http://127.0.0.1:$port/events"
[ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$url")" = 401 ] || fail "no 401 without a token"
[ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$url")" = 403 ] ||
  fail "no 403 for a wrong token"
events=$(timeout 10 "$bin/SSEClient" "$url?token=s3cret&topic=ticks" 3) || fail "SSEClient: $events"
echo "$events"
[ "$(grep -c '^message \[[0-9]*\] tick [0-9]*$' <<<"$events")" = 2 ] || fail "SSEClient did not print two ticks"

port=$(free_port)
timeout 30 "$bin/EchoServer" "$port" 20 >/dev/null &
pids+=($!)
wait_for_port "$port"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'echo me\n' >&3
read -r -t 5 reply <&3 || true
exec 3>&-
[ "$reply" = "echo me" ] || fail "EchoServer answered '$reply'"
echo "examples: SSEService refused and served SSEClient; EchoServer echoed"
