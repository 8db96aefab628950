#!/usr/bin/env bash
# Fuzzes the HTTP1 parsers with libFuzzer + AddressSanitizer for SECONDS (default 60).
# Finds crashes, out-of-bounds reads, and split-dependent results (see Scripts/fuzz/ParserFuzz.swift).
# Exits non-zero if anything was found; the crashing input is left in .build-fuzz/.
#
# Usage: Scripts/fuzz-parser.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
out=.build-fuzz
mkdir -p "$out/corpus"
cp Scripts/fuzz/seeds/* "$out/corpus/"

swiftc -sanitize=fuzzer,address -parse-as-library -O -g -module-name HTTP1Fuzz \
  Sources/HTTP1/*.swift Scripts/fuzz/ParserFuzz.swift -o "$out/parser-fuzz"

cd "$out"
./parser-fuzz -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 corpus 2>&1 \
  | sed '/Recommended dictionary/,/End of recommended dictionary/d' | grep -v 'Cannot export local symbol' | tail -25
