#!/usr/bin/env bash
# `rill load --agent` across hosts that are really separate: network namespaces joined by a bridge
# (addresses in 198.18.1.0/24, the benchmarking range): one host runs `rill serve`, two run `rill
# load agent`, one coordinates. Checks: a run of 600 streams is shared three ways (the server sees
# 200 streams from each of the three hosts, plus the publisher's connection) and merged into one clean report; a wrong token,
# an agent port nobody listens on and a host that does not answer are refused by name before any
# stream opens; an agent killed during the hold is an error in the report (exit 1), not a hang.
# Every namespace is removed at exit. Needs root and iproute2; about 12 s.
# Usage: Scripts/agents-check.sh [RILL_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=Scripts/netns-lab.sh
source Scripts/netns-lab.sh
rill=${1:-.build/debug/rill}
PATH="$PATH:/usr/sbin:/sbin"
[[ $(id -u) == 0 ]] || { echo "agents-check: needs root (network namespaces)" >&2; exit 2; }
command -v ip >/dev/null || { echo "agents-check: ip (iproute2) is not installed" >&2; exit 2; }
[[ -x "$rill" ]] || { echo "agents-check: no rill binary at $rill (swift build first)" >&2; exit 2; }
rill=$(realpath "$rill")

tag="ag$$"
switch="$tag-sw"
hosts=(server agent1 agent2 coord)
declare -A address=([server]=198.18.1.2 [agent1]=198.18.1.11 [agent2]=198.18.1.12 [coord]=198.18.1.100)
absent=198.18.1.99  # on the subnet, but no host answers ARP for it
work=$(mktemp -d /tmp/rill-agents.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  lab_down
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "agents-check: FAILED: $*" >&2; exit 1; }

lab_up
# In the foreground only: in the background, $! would be a subshell's pid, not the program's.
on() { local host=$1; shift; ip netns exec "$tag-$host" "$@"; }

started() {  # FILE: waits (at most 10 s) for a "listening" line
  for _ in $(seq 100); do grep -q listening "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
ip netns exec "$tag-server" "$rill" serve --host "${address[server]}" --port 8080 --heartbeat 1 >"$work/server.out" 2>&1 &
pids+=($!)
disown  # killed at exit: no job-control notice
for agent in agent1 agent2; do
  ip netns exec "$tag-$agent" "$rill" load agent --listen "${address[$agent]}:7000" --token s3cret >"$work/$agent.out" 2>&1 &
  pids+=($!)
  echo $! >"$work/$agent.pid"
  disown
done
for host in server agent1 agent2; do started "$work/$host.out" || { cat "$work/$host.out" >&2; fail "$host did not start"; }; done
url="http://${address[server]}:8080/sse"
agents=(--agent "${address[agent1]}:7000" --agent "${address[agent2]}:7000")
echo "agents-check: server ${address[server]}, agents ${address[agent1]} ${address[agent2]}, coordinator ${address[coord]} (namespaces $tag-*)"

# 1. Shared three ways, merged into one report.
ip netns exec "$tag-coord" "$rill" load "$url" -c 600 --rate 3000 -d 2s --publish-rate 10 "${agents[@]}" --agent-token s3cret \
  --json "$work/run.json" >"$work/run.out" 2>/dev/null &
load=$!
peers=""
for _ in $(seq 100); do
  peers=$(on server ss -Htn state established "( sport = :8080 )" | awk '{ split($4, a, ":"); n[a[1]]++ } END { for (h in n) print h, n[h] }' | sort)
  [[ $(echo "$peers" | awk '$2 >= 200 && $2 <= 201' | wc -l) == 3 ]] && break
  sleep 0.1
done
echo "agents-check: streams at the server by peer host:"; echo "$peers" | sed 's/^/    /'
[[ $(echo "$peers" | awk '$2 >= 200 && $2 <= 201' | wc -l) == 3 ]] || { wait "$load"; cat "$work/run.out" "$work/agent1.out" >&2; fail "the server did not see 200 streams from each of 3 hosts"; }
wait "$load" || { cat "$work/run.out" >&2; fail "the shared run failed"; }
grep -q '600 opened.*600 held.*3 worker processes' "$work/run.out" || { cat "$work/run.out" >&2; fail "report"; }
grep -q '"workers" : 3' "$work/run.json" || fail "json workers"
published=$(awk '/^  Events/ { print $2 }' "$work/run.out")
received=$(awk '/^  Events/ { print $4 }' "$work/run.out")
[[ "$received" == $((published * 600)) && "$published" -gt 0 ]] || fail "events: $published published, $received received"
grep -q 'accepted a run from 198.18.1.100' "$work/agent1.out" || fail "agent1 did not log the run"
echo "agents-check: shared run ok: $(grep '^  Streams' "$work/run.out" | tr -s ' ')"

# 2. Refusals, by name, before any stream opens.
refusal() {  # EXPECTED-TEXT AGENT-FLAGS...
  local expected=$1; shift
  local status=0
  on coord timeout 30 "$rill" load "$url" -c 30 -d 1s "$@" >"$work/refusal.out" 2>&1 || status=$?
  [[ $status == 64 ]] && grep -q "$expected" "$work/refusal.out" || { cat "$work/refusal.out" >&2; fail "expected '$expected' (exit 64), got exit $status"; }
  echo "agents-check: refused: $(head -1 "$work/refusal.out")"
}
refusal "refused the token" "${agents[@]}" --agent-token wrong
refusal "agent ${address[server]}:7000 is unreachable" --agent "${address[server]}:7000" --agent-token s3cret
refusal "agent $absent:7000 is unreachable" --agent "$absent:7000" --agent-token s3cret

# 3. An agent killed during the hold: an error in the report and exit 1, in bounded time.
status=0
ip netns exec "$tag-coord" timeout 60 "$rill" load "$url" -c 300 --rate 3000 -d 2s "${agents[@]}" --agent-token s3cret \
  >"$work/killed.out" 2>/dev/null &
load=$!
for _ in $(seq 100); do grep -q 'accepted a run' <(tail -1 "$work/agent2.out") && break; sleep 0.1; done
sleep 1
kill -9 "$(cat "$work/agent2.pid")"
wait "$load" || status=$?
[[ $status == 1 ]] && grep -q 'closed its connection before its result' "$work/killed.out" \
  || { cat "$work/killed.out" >&2; fail "a killed agent: exit $status"; }
echo "agents-check: killed agent reported: $(grep '^  Errors' "$work/killed.out" | tr -s ' ')"
echo "agents-check: ok"
