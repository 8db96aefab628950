#!/usr/bin/env bash
# Fuzzes the whole server (SSEServer on a manual-clock EventLoop, driven through loopback sockets)
# with libFuzzer + AddressSanitizer for SECONDS (default 60). An input is a little program of
# client steps (see Scripts/fuzz/server/Sources/ServerFuzz/Program.swift); after each one the server
# must hold no connection, partial request or subscriber and the process no extra descriptor.
# Exits non-zero if anything was found; the crashing input is left in .build-fuzz/server/.
#
# Usage: Scripts/fuzz-server.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
out=.build-fuzz/server
mkdir -p "$out/corpus"
python3 Scripts/fuzz/make-server-seeds.py Tests/Fixtures/http "$out/corpus"

# -sanitize=fuzzer on every Swift module (not only the target's own) so that coverage of the
# server, the hub, the parser and the reactor guides the mutations.
(cd Scripts/fuzz/server && swift build -c release --sanitize=address -Xswiftc -sanitize=fuzzer 2>&1 \
  | grep -v "Cannot export local symbol")
binary="$(cd Scripts/fuzz/server && swift build -c release --sanitize=address -Xswiftc -sanitize=fuzzer --show-bin-path)/ServerFuzz"

cd "$out"
# The Swift runtime's backtracer is off: on a trap it can hang the fuzzer instead of letting libFuzzer
# write the crashing input. libFuzzer's leak check (on by default) makes memory a finding too, e.g. a server that outlives its input.
SWIFT_BACKTRACE=enable=no "$binary" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -dict=../../Scripts/fuzz/server.dict -print_final_stats=1 corpus 2>&1 \
  | sed '/Recommended dictionary/,/End of recommended dictionary/d' | grep -v 'Cannot export local symbol' | tail -25
