#!/usr/bin/env bash
# The keep-alive HTTP benchmark (see Scripts/bench_http.py for what it measures): `rill serve` vs
# nginx vs Hummingbird 2 vs a SwiftNIO NIOHTTP1 server, the demo page and a 13-byte body, wrk -t1
# -c50 -d10s, 3 interleaved rounds. Builds rill and the Benchmarks/ peers in release mode and the
# LD_PRELOAD allocation counter, then runs them. Needs wrk, nginx and taskset (.ci/run installs
# wrk and nginx). Results: Benchmarks/results/http/http.{md,json} (or --results DIR).
#
# Usage: Scripts/bench-http.sh [--servers rill,nginx,hummingbird,nio] [--workloads page,small]
#                              [--rounds 3] [--seconds 10] [--connections 50] [--results DIR]
#                              [--rill-before PATH --servers rill,rill-before,...] [--note TEXT]
#                              [--fixed-rate N]   (also each server at N requests/s, open loop, for p99)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 2; }
swift build -c release --product rill >/dev/null
rill="$(swift build -c release --show-bin-path)/rill"
(cd Benchmarks && swift build -c release --product HTTPPeerHummingbird >/dev/null \
  && swift build -c release --product HTTPPeerNIO >/dev/null)
bench_bin="$(cd Benchmarks && swift build -c release --show-bin-path)"
shim="$bench_bin/libmalloc_count.so"
cc -O2 -shared -fPIC -o "$shim" Benchmarks/MallocCount/malloc_count.c
exec python3 Scripts/bench_http.py --rill "$rill" --hummingbird "$bench_bin/HTTPPeerHummingbird" \
  --nio "$bench_bin/HTTPPeerNIO" --shim "$shim" \
  --machine "$(nproc) CPUs, Linux $(uname -r), Swift $(swift --version 2>/dev/null | grep -o 'version [0-9.]*' | head -1 | cut -d' ' -f2), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $(/usr/sbin/nginx -v 2>&1 | cut -d' ' -f3)" \
  "$@"
