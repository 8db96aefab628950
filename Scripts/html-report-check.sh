#!/usr/bin/env bash
# `rill load --html` rendered by a real browser: a short SSE run against `rill serve` (3 s, 200
# streams, 20 events/s) writes the report, headless Chromium lays it out, and the page's own check
# (inline script: each chart's lines measured with getBBox after layout) must say every chart drew
# a line; --dump-dom shows its verdict. Also checks the file fetches nothing (no src/href/url()).
# A screenshot goes to SCREENSHOT (default: beside the report, kept only when asked for).
# Needs chromium. Bounded: every step has a timeout; about 10 s in all.
# Usage: Scripts/html-report-check.sh [RILL_BINARY] [SCREENSHOT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
rill=${1:-.build/debug/rill}
screenshot=${2:-}
command -v chromium >/dev/null || { echo "html-report-check: chromium is not installed" >&2; exit 2; }
[[ -x "$rill" ]] || { echo "html-report-check: no rill binary at $rill (swift build first)" >&2; exit 2; }
work=$(mktemp -d /tmp/rill-html-check.XXXXXX)
serve_pid=
cleanup() {
  [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$rill" serve --port 0 --heartbeat 1 >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" | head -1)
[[ -n "$url" ]] || { echo "html-report-check: rill serve did not start" >&2; cat "$work/serve.err" >&2; exit 1; }

timeout 60 "$rill" load "$url/sse" -c 200 --rate 100 -d 3s --publish-rate 20 --html "$work/report.html" \
  >"$work/load.out" 2>/dev/null || { echo "html-report-check: rill load failed" >&2; cat "$work/load.out" >&2; exit 1; }
size=$(wc -c <"$work/report.html")
if grep -Eq 'src=|href=|url\(|@import' "$work/report.html"; then
  echo "html-report-check: the report refers to something outside itself" >&2; exit 1
fi

# Chromium as root needs --no-sandbox; a fresh profile keeps runs apart.
browser=(timeout 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile")
"${browser[@]}" --virtual-time-budget=5000 --dump-dom "file://$work/report.html" >"$work/dom.html" 2>"$work/chromium.err" || {
  echo "html-report-check: chromium failed" >&2; tail -5 "$work/chromium.err" >&2; exit 1; }
verdict=$(grep -o 'id="render-check"[^>]*>[^<]*' "$work/dom.html" | sed 's/.*>//')
drawn=$(grep -o 'data-drawn="[0-9]*"' "$work/dom.html" | grep -o '[0-9]*' || true)
charts=$(grep -o 'data-charts="[0-9]*"' "$work/dom.html" | grep -o '[0-9]*' || true)
echo "html-report-check: $size bytes; chromium: ${verdict:-no verdict}"
if [[ -z "$drawn" || -z "$charts" || "$charts" -lt 5 || "$drawn" != "$charts" ]]; then
  echo "html-report-check: FAILED: the charts did not all draw (or the page's check did not run)" >&2
  exit 1
fi
if [[ -n "$screenshot" ]]; then
  "${browser[@]}" --window-size=1100,2400 --screenshot="$screenshot" "file://$work/report.html" >/dev/null 2>&1
  echo "html-report-check: screenshot in $screenshot"
fi
echo "html-report-check: ok"
