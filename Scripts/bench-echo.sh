#!/usr/bin/env bash
# The echo benchmark (see Scripts/bench_echo.py for what it measures): callback echo, async echo
# (AsyncConnection) and SwiftNIO's NIOAsyncChannel echo, side by side in one run. Builds the
# Benchmarks/ package in release mode and the LD_PRELOAD allocation counter, then runs them.
# Results: Benchmarks/results/echo/echo.{md,json} (or --results DIR).
#
# Usage: Scripts/bench-echo.sh [--connections 1,32] [--rounds 3] [--seconds 5] [--warmup 2]
#                              [--size 64] [--servers callback,async,nio] [--results DIR] [--note TEXT]
#                              [--before-server PATH --servers callback,async,async-before,nio]
#                              [--require-no-mallocs callback,async]
#        (--before-server: an EchoServer built from another commit, its servers named KIND-before,
#        for a before/after comparison in the same run)
set -euo pipefail
cd "$(dirname "$0")/.."
(cd Benchmarks && swift build -c release --product EchoServer >/dev/null && swift build -c release --product EchoClient >/dev/null)
bench_bin="$(cd Benchmarks && swift build -c release --show-bin-path)"
shim="$bench_bin/libmalloc_count.so"
cc -O2 -shared -fPIC -o "$shim" Benchmarks/MallocCount/malloc_count.c
exec python3 Scripts/bench_echo.py --server "$bench_bin/EchoServer" --client "$bench_bin/EchoClient" --shim "$shim" \
  --machine "$(nproc) CPUs, Linux $(uname -r), Swift $(swift --version 2>/dev/null | grep -o 'version [0-9.]*' | head -1 | cut -d' ' -f2), SwiftNIO 2.101.2" \
  "$@"
