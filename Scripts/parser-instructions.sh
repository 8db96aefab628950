#!/usr/bin/env bash
# Instructions per parsed request (valgrind, exact: they do not depend on the machine's load, unlike
# times): HTTP1 built as its own module (-O -wmo, as a release build does), the parser benchmark's loop
# (Scripts/parser-harness) over each corpus file repeated into ~1 MiB; (Ir at 11 passes - Ir at 1
# pass) / (10 x requests). Also prints the harness's own median time per request (noisy).
#
# Usage: Scripts/parser-instructions.sh [CORPUS_DIR] (default ../shared/corpus/http, else Tests/Fixtures/http)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${1:-}"
[[ -z "$corpus" ]] && { [[ -d ../shared/corpus/http ]] && corpus=../shared/corpus/http || corpus=Tests/Fixtures/http; }
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install -y valgrind)" >&2; exit 2; }
out=$(mktemp -d /tmp/rill-parser-harness.XXXXXX)
trap 'rm -rf "$out"' EXIT
swiftc -O -wmo -parse-as-library -module-name HTTP1 -emit-module -emit-module-path "$out/HTTP1.swiftmodule" \
  -c -o "$out/HTTP1.o" Sources/HTTP1/*.swift 2>&1 | grep -i error || true
swiftc -O -I "$out" -c -o "$out/main.o" -module-name ParserHarness Scripts/parser-harness/main.swift
swiftc -O -o "$out/parse" "$out/main.o" "$out/HTTP1.o"
instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$out/parse" "$1" "$2" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for file in browser sse wrk post-cl post-chunked; do
  path="$corpus/$file.txt"
  requests=$(( (1 << 20) / $(stat -c %s "$path") ))
  one=$(instructions "$path" 1)
  eleven=$(instructions "$path" 11)
  echo "$file.txt: $(( (eleven - one) / (10 * requests) )) instructions per request; $("$out/parse" "$path" 50 | cut -d' ' -f2-)"
done
