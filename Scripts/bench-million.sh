#!/usr/bin/env bash
# The million-stream benchmark (see Scripts/bench_million.py for what each row measures): builds
# `rill` in release mode, then for each N runs `rill serve --workers auto --max-connections N` and
# `rill load -c N` on this machine, holds the streams, publishes 3 events and measures memory per
# stream (user: server and load generator; kernel: Slab and sockstat per pair), CPU per heartbeat
# round, and what is left after the clients go. Results: Benchmarks/results/million/ (million.md,
# .json, .svg and log.md, every figure as it was read).
#
# Usage: Scripts/bench-million.sh [--hold S] [--relay K] [--fresh] [--serve-args "..."] [--load-args "..."] [N ...]
#        (default N: 100000 250000 500000 1000000; default hold 300 s)
# Needs: the hard open-file limit (20,000 here: 51 server and 51 load workers for 1M), fs.file-max
# above 2N plus what is open, ~10.5 KB of free memory per stream, and 127.0.2.0–127.0.9.255 free as
# source addresses. Run as root only to raise fs.file-max; nothing else is changed on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
nice -n 10 swift build -c release --product rill >/dev/null
bin="$(swift build -c release --show-bin-path)"
exec python3 Scripts/bench_million.py --rill "$bin/rill" \
  --machine "$(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r), Swift $(swift --version 2>/dev/null | grep -o 'version [0-9.]*' | head -1 | cut -d' ' -f2), open-file limit $(ulimit -Hn) per process" \
  "$@"
