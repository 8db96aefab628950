#!/usr/bin/env bash
# Load generators side by side, each pinned to CPU 1 with the server on CPU 0, in one run:
#  1. HTTP keep-alive against nginx (1 worker, a 612-byte file): `rill load` vs wrk (-t1) vs h2load
#     (--h1 -t1), the same connections and seconds, rounds alternating between the tools; requests/s
#     (median of the rounds).
#  2. Idle SSE streams held against `rill serve --heartbeat 0`: `rill load` vs Tsung (its HTTP client
#     sends `GET /sse` and holds the connection in a think time), at SMALL and LARGE connections:
#     connect rate seen by the server (connections from the first to the last, over the time it
#     took, sampled every ~10 ms from /metrics), and the generator's memory per held connection
#     ((RSS at LARGE - RSS at SMALL) / (LARGE - SMALL), VmRSS of the generator's process).
#     Heartbeats are off because Tsung's client stops a user that receives data while it thinks.
# Results (text table and raw outputs) go to DIR. Figures on a shared machine are noisy: compare the
# ratios of one run. Needs nginx, wrk, h2load (nghttp2-client) and tsung; runs as root or a user
# whose open-file limit allows LARGE.
# Usage: Scripts/bench-loadgen.sh [--results DIR] [--connections N] [--seconds S] [--rounds R]
#                                 [--small N] [--large N] [--rill PATH] [--sse-only]
set -euo pipefail
cd "$(dirname "$0")/.."
results=Benchmarks/results/loadgen
connections=50 seconds=5 rounds=5 small=1000 large=10000 rill= http=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --results) results=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --small) small=$2; shift 2 ;;
    --large) large=$2; shift 2 ;;
    --rill) rill=$2; shift 2 ;;
    --sse-only) http=0; shift ;;
    *) echo "bench-loadgen: unknown argument $1" >&2; exit 2 ;;
  esac
done
PATH="$PATH:/usr/sbin:/sbin"
for tool in nginx wrk h2load tsung taskset curl; do
  command -v "$tool" >/dev/null || { echo "bench-loadgen: $tool is not installed" >&2; exit 2; }
done
if [[ -z "$rill" ]]; then
  nice -n 10 swift build -c release --product rill >/dev/null
  rill="$(swift build -c release --show-bin-path)/rill"
fi
rill=$(realpath "$rill")
mkdir -p "$results"
results=$(realpath "$results")
work=$(mktemp -d /tmp/rill-loadgen.XXXXXX)
server_pid= nginx_pid= nginx_dir= generator_pid= beam_pid=
cleanup() {
  [[ -n "$generator_pid" ]] && kill -9 "$generator_pid" 2>/dev/null || true
  [[ -n "$beam_pid" ]] && kill -9 "$beam_pid" 2>/dev/null || true
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  [[ -n "$nginx_pid" ]] && kill "$nginx_pid" 2>/dev/null || true
  [[ -n "$nginx_dir" ]] && rm -rf "$nginx_dir"
  rm -rf "$work"
}
trap cleanup EXIT
server_cpu=(taskset -c 0) client_cpu=(taskset -c 1)
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
report="$results/README.md"
{
  echo "# Load generators side by side ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $(cut -d' ' -f1 /proc/loadavg))"
  echo
  echo "Made by \`Scripts/bench-loadgen.sh --connections $connections --seconds $seconds --rounds $rounds --small $small --large $large\`;"
  echo "servers on CPU 0, each generator on CPU 1 (taskset). rill $("$rill" --version), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2),"
  echo "$(h2load --version | head -1), $(tsung -v), nginx $(nginx -v 2>&1 | cut -d/ -f2). A shared machine: compare the ratios."
  echo
} >"$report"

# --- 1. HTTP keep-alive against nginx ------------------------------------------------------------
if [[ $http == 1 ]]; then
read -r port nginx_pid nginx_dir < <("${server_cpu[@]}" Scripts/nginx-loopback.sh 24080 1)
url="http://127.0.0.1:$port/"
declare -A rates=([wrk]="" [h2load]="" [rill]="") efficiency=([wrk]="" [h2load]="" [rill]="")
timed() {  # OUT COMMAND...: runs COMMAND on the client CPU, stdout to OUT, its CPU seconds to OUT.cpu
  local out=$1; shift
  "${client_cpu[@]}" /usr/bin/time -f "%U %S" -o "$out.cpu" "$@" >"$out" 2>/dev/null
}
per_cpu_second() {  # RATE OUT: requests per second of the generator's CPU (rate × seconds / CPU seconds)
  awk -v r="$1" -v s="$seconds" '{ c = $1 + $2 } END { printf "%.0f", (c > 0 ? r * s / c : 0) }' "$2.cpu"
}
for round in $(seq "$rounds"); do
  out="$work/wrk.$round"
  timed "$out" wrk -t1 -c"$connections" -d"${seconds}s" "$url"
  rate=$(awk '/^Requests\/sec/ { print $2 }' "$out")
  rates[wrk]+="$rate " efficiency[wrk]+="$(per_cpu_second "$rate" "$out") "
  out="$work/h2load.$round"
  timed "$out" h2load --h1 -t1 -c"$connections" -D "$seconds" "$url"
  rate=$(awk '/^finished in/ { print $4 }' "$out")
  rates[h2load]+="$rate " efficiency[h2load]+="$(per_cpu_second "$rate" "$out") "
  out="$work/rill.$round"
  timed "$out" "$rill" load "$url" -c "$connections" -d "${seconds}s" --source none
  rate=$(awk '/^  Requests/ { print $6 }' "$out")
  rates[rill]+="$rate " efficiency[rill]+="$(per_cpu_second "$rate" "$out") "
  cat "$work/wrk.$round" "$work/h2load.$round" "$work/rill.$round" >"$results/http-round-$round.txt"
done
kill "$nginx_pid"; nginx_pid=
{
  echo "## HTTP keep-alive: requests/s against nginx (1 worker), $connections connections, ${seconds} s, $rounds rounds"
  echo
  echo "| generator | requests/s per round | median | / best other | requests per generator CPU-second (median) |"
  echo "|---|---|---:|---:|---:|"
} >>"$report"
declare -A medians
for tool in wrk h2load rill; do medians[$tool]=$(echo "${rates[$tool]}" | tr ' ' '\n' | grep . | median); done
best_other=$(printf '%s\n' "${medians[wrk]}" "${medians[h2load]}" | sort -n | tail -1)
for tool in rill wrk h2load; do
  name=$tool; [[ $tool == rill ]] && name="rill load"; [[ $tool == wrk ]] && name="wrk -t1"; [[ $tool == h2load ]] && name="h2load --h1 -t1"
  printf '| %s | %s | %.0f | %.2f | %s |\n' "$name" "$(echo "${rates[$tool]}" | xargs printf '%.0f ')" "${medians[$tool]}" \
    "$(awk -v a="${medians[$tool]}" -v b="$best_other" 'BEGIN { print a / b }')" \
    "$(echo "${efficiency[$tool]}" | tr ' ' '\n' | grep . | median)" >>"$report"
done
echo >>"$report"
fi

# --- 2. Idle SSE streams against rill serve -----------------------------------------------------
ulimit -n 20000
: >"$results/sse-raw.txt"
"${server_cpu[@]}" "$rill" serve --port 24090 --heartbeat 0 --max-connections 19000 >"$work/serve.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
metrics="http://127.0.0.1:24090/metrics"
open_streams() { "${server_cpu[@]}" curl -s "$metrics" | awk '/^rill_connections / { print $2 - 1 }'; }  # less the metrics request

# Samples the server every ~10 ms (a curl and 5 ms) until it holds N streams, or until the count
# has not grown for 3 s (a generator that lost some connections): prints "SECONDS HELD", the time
# from the first stream to the last one seen arriving, and the streams held then.
time_to_hold() {
  local wanted=$1 first= last= now count best=0
  while true; do
    count=$(open_streams)
    now=$(date +%s.%N)
    [[ -z "$first" && "$count" -gt 0 ]] && first=$now
    if [[ "$count" -gt "$best" ]]; then best=$count; last=$now; fi
    if [[ "$count" -ge "$wanted" ]] || { [[ -n "$last" ]] && awk -v a="$last" -v b="$now" 'BEGIN { exit !(b - a > 3) }'; }; then
      awk -v a="$first" -v b="$last" -v n="$best" 'BEGIN { printf "%.3f %d", b - a, n }'
      return 0
    fi
    [[ -z "$first" ]] && awk -v now="$now" -v start="$2" 'BEGIN { exit !(now - start > 30) }' && { echo "0 0"; return 1; }
    sleep 0.005
  done
}
wait_empty() { for _ in $(seq 600); do [[ $(open_streams) -le 0 ]] && return 0; sleep 0.05; done; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # user + system, all threads, in clock ticks
ticks_per_second=$(getconf CLK_TCK)

# N: Tsung arriving as fast as it can (arrival rate 20,000/s), each user holding GET /sse, from the
# same 8 source addresses as rill load uses for a loopback target (127.0.0.2-9): from 127.0.0.1 alone,
# the previous round's connections in TIME_WAIT use up the ephemeral ports and Tsung stalls.
tsung_config() {
  cat <<XML
<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="error" dumptraffic="false" version="1.0">
  <clients><client host="$(hostname)" use_controller_vm="true" maxusers="19000">
$(for i in $(seq 2 9); do echo "    <ip value=\"127.0.0.$i\"/>"; done)
  </client></clients>
  <servers><server host="127.0.0.1" port="24090" type="tcp"/></servers>
  <load><arrivalphase phase="1" duration="10" unit="second">
    <users arrivalrate="20000" unit="second" maxnumber="$1"/></arrivalphase></load>
  <sessions><session name="sse" probability="100" type="ts_http">
    <request><http url="/sse" method="GET" version="1.1"/></request>
    <thinktime value="300" random="false"/>
  </session></sessions>
</tsung>
XML
}

declare -A held_rss connect_rate held_cpu held_count
# One generator holding N streams: fills held_rss, held_cpu and connect_rate at KEY.
hold() {  # TOOL N KEY
  local tool=$1 n=$2 key=$3 pid took held rss
  wait_empty
  if [[ $tool == rill ]]; then
    "${client_cpu[@]}" "$rill" load "http://127.0.0.1:24090/sse" -c "$n" -d 300s --no-reconnect >"$work/rill-sse.out" 2>&1 &
    generator_pid=$!
    pid=$generator_pid
  else
    rm -rf "$work/tsung-log"
    # The last run's Erlang node must be gone from epmd, or this one cannot take its name.
    for _ in $(seq 100); do epmd -names 2>/dev/null | grep -q tsung_controller || break; sleep 0.1; done
    tsung_config "$n" >"$work/tsung.xml"
    "${client_cpu[@]}" tsung -f "$work/tsung.xml" -l "$work/tsung-log" start >"$work/tsung.out" 2>&1 &
    generator_pid=$!
    pid=
    for _ in $(seq 200); do pid=$(pgrep -f "beam.*$work/tsung-log" | head -1 || true); [[ -n "$pid" ]] && break; sleep 0.05; done
    beam_pid=$pid
  fi
  read -r took held < <(time_to_hold "$n" "$(date +%s.%N)") || true
  [[ "$held" -gt 0 ]] || { echo "bench-loadgen: $tool opened no stream" >&2; cat "$work/$tool"*.out >&2 || true; exit 1; }
  held_count[$key]=$held
  held_cpu[$key]=$(cpu_ticks "$pid")
  sleep 2  # let the generator settle (buffers, lazily grown tables) before reading its memory
  rss=$(rss_kb "$pid")
  held_rss[$key]=$rss
  connect_rate[$key]=$(awk -v n="$held" -v t="$took" 'BEGIN { printf "%.0f", (t > 0 ? (n - 1) / t : 0) }')
  echo "$key: held $held, ${took} s first to last (${connect_rate[$key]}/s), generator RSS ${rss} kB, CPU ${held_cpu[$key]} ticks by then" | tee -a "$results/sse-raw.txt"
  [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true
  kill -9 "$generator_pid" 2>/dev/null || true
  wait "$generator_pid" 2>/dev/null || true
  generator_pid= beam_pid=
}
# Rounds alternate the tools, so that the machine's noise hits both.
for round in $(seq "$rounds"); do
  for tool in rill tsung; do
    for n in "$small" "$large"; do hold "$tool" "$n" "$tool.$n.$round"; done
  done
done
# Per round: bytes and µs of CPU per connection, from the difference between LARGE and SMALL.
per_round() {  # TOOL ROUND
  awk -v a="${held_rss[$1.$small.$2]}" -v b="${held_rss[$1.$large.$2]}" -v c="${held_cpu[$1.$small.$2]}" \
    -v d="${held_cpu[$1.$large.$2]}" -v s="${held_count[$1.$small.$2]}" -v l="${held_count[$1.$large.$2]}" -v hz="$ticks_per_second" \
    'BEGIN { printf "%.0f %.1f\n", (b - a) * 1024 / (l - s), (d - c) / hz * 1e6 / (l - s) }'
}
declare -A bytes cpu rate
for tool in rill tsung; do
  bytes[$tool]=$(for round in $(seq "$rounds"); do per_round "$tool" "$round" | cut -d' ' -f1; done | median)
  cpu[$tool]=$(for round in $(seq "$rounds"); do per_round "$tool" "$round" | cut -d' ' -f2; done | median)
  rate[$tool]=$(for round in $(seq "$rounds"); do echo "${connect_rate[$tool.$large.$round]}"; done | median)
done
{
  echo "## Idle SSE streams held against rill serve --heartbeat 0 ($rounds rounds, medians; every round in sse-raw.txt)"
  echo
  echo "| generator | held (fewest of the rounds) | connect rate at $large (per s, seen by the server) | generator CPU per connection opened | opens per generator CPU-second | RSS at $large | memory per held connection |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for tool in rill tsung; do
    name=$tool; [[ $tool == rill ]] && name="rill load"; [[ $tool == tsung ]] && name="Tsung 1.7 (GET /sse, then a think time)"
    fewest=$(for round in $(seq "$rounds"); do echo "${held_count[$tool.$large.$round]}"; done | sort -n | head -1)
    printf '| %s | %d | %.0f | %s µs | %.0f | %.1f MB | %s B |\n' "$name" "$fewest" "${rate[$tool]}" "${cpu[$tool]}" \
      "$(awk -v c="${cpu[$tool]}" 'BEGIN { print (c > 0 ? 1e6 / c : 0) }')" \
      "$(awk -v k="${held_rss[$tool.$large.1]}" 'BEGIN { print k / 1024 }')" "${bytes[$tool]}"
  done
  echo
  echo "rill load against Tsung: memory per held connection $(awk -v a="${bytes[rill]}" -v b="${bytes[tsung]}" 'BEGIN { printf "%.3f", a / b }')×;"
  echo "connections opened per generator CPU-second $(awk -v a="${cpu[rill]}" -v b="${cpu[tsung]}" 'BEGIN { printf "%.1f", (a > 0 ? b / a : 0) }')×;"
  echo "connect rate seen by the server $(awk -v a="${rate[rill]}" -v b="${rate[tsung]}" 'BEGIN { printf "%.2f", a / b }')× (both against the same"
  echo "\`rill serve\` on one CPU, which sets the pace whenever it is the slower side)."
  echo "Memory per connection is (RSS with $large held − RSS with $small held) / (the difference in streams held), so start-up"
  echo "memory (Tsung's Erlang VM) does not count; CPU per connection is measured the same way."
} >>"$report"
cat "$report"
