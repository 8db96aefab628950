#!/usr/bin/env bash
# The connection benchmark (see Scripts/bench_connections.py for what each row measures): builds
# `rill` and the Benchmarks/ peers in release mode, then runs every server at every N, interleaved.
# Results: Benchmarks/results/connections.{md,json,svg} (the README's Performance section shows them).
#
# Usage: Scripts/bench-connections.sh [--servers rill,nio,floor,rill-threads] [--server-workers K]
#                                    [--server-threads K] [--server-cpus 0] [--heartbeat S]
#                                    [--hold S] [--events K] [--results DIR] [N ...]
#        (default N: 1000 5000 10000 19000; one process here holds at most ~19,990 sockets, so past
#        that use --servers rill --server-workers K: rill load adds its own workers automatically)
#        Threads against processes, one run: --servers rill,rill-threads --server-workers 2
#        --server-threads 2 --results Benchmarks/results/threads-vs-workers 19000
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product rill >/dev/null
(cd Benchmarks && swift build -c release --product NIOSSE >/dev/null && swift build -c release --product FloorSSE >/dev/null)
bin="$(swift build -c release --show-bin-path)"
bench_bin="$(cd Benchmarks && swift build -c release --show-bin-path)"
exec python3 Scripts/bench_connections.py --rill "$bin/rill" --nio "$bench_bin/NIOSSE" --floor "$bench_bin/FloorSSE" \
  --machine "$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r), Swift $(swift --version 2>/dev/null | grep -o 'version [0-9.]*' | head -1 | cut -d' ' -f2), SwiftNIO 2.101" \
  "$@"
