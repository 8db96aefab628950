#!/usr/bin/env bash
# HTTP load generators side by side: `rill load` (HTTP mode, closed loop) and wrk (Debian's, one
# thread), the same connection count, against nginx with one worker serving a 612-byte static file.
# Rounds alternate between the tools so that noise on a shared machine hits both; the table shows
# each round's requests/s and the median ratio. With taskset, nginx runs on CPU 0 and the load
# generator on CPU 1 ("one core" each).
#
# Usage: Scripts/bench-load-vs-wrk.sh [CONNECTIONS] [SECONDS] [ROUNDS]   (default 50 5 5)
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-50}
seconds=${2:-5}
rounds=${3:-5}
PATH="$PATH:/usr/sbin:/sbin"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }

swift build -c release --product rill >/dev/null
rill="$(swift build -c release --show-bin-path)/rill"
pin_server=() pin_client=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then pin_server=(taskset -c 0) pin_client=(taskset -c 1); fi

read -r port pid dir < <("${pin_server[@]}" Scripts/nginx-loopback.sh 18095 1)
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
url="http://127.0.0.1:$port/"

echo "nginx $(nginx -v 2>&1 | cut -d/ -f2), 1 worker; $connections connections, ${seconds} s per run; $(nproc) CPUs"
printf '%-6s %14s %14s %8s\n' round "wrk req/s" "rill req/s" "rill/wrk"
ratios=()
for round in $(seq "$rounds"); do
  wrk_rate=$("${pin_client[@]}" wrk -t1 -c"$connections" -d"${seconds}s" "$url" | awk '/^Requests\/sec/ { print $2 }')
  rill_rate=$("${pin_client[@]}" "$rill" load "$url" -c "$connections" -d "${seconds}s" --source none \
    | awk '/^  Requests/ { print $6 }')
  ratio=$(awk -v a="$rill_rate" -v b="$wrk_rate" 'BEGIN { printf "%.2f", a / b }')
  ratios+=("$ratio")
  printf '%-6s %14.0f %14.0f %8s\n' "$round" "$wrk_rate" "$rill_rate" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "median rill/wrk: $median"
