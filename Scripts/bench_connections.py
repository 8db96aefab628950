#!/usr/bin/env python3
"""The connection benchmark: rill serve, the SwiftNIO peer and the floor, side by side in one run.

For each N, and for each server in turn (interleaved per N, so noise hits all of them):
  1. start the server (pinned to CPU 0 when taskset exists; heartbeat every 1 s), read its baseline
     RSS and fds (summed over its worker processes, if any);
  2. `rill load` (pinned to CPU 1) opens N SSE streams -> connect rate;
  3. 3 s after the last one is accepted: RSS -> bytes per idle connection (and the machine's Slab
     growth -> kernel bytes per connection);
  4. the next 10 s, idle but for heartbeats: the server's CPU time -> CPU per heartbeat round;
  5. rill load publishes 20 `t=` stamped events 250 ms apart -> fan-out latency p50/p99/max over every
     delivery, and the time until the last client had each event (p50/max over the 20);
  6. losses: streams that missed an event, or went silent for 2 heartbeat intervals;
  7. the clients leave -> fds and RSS again.
A row where any client failed to connect, any event or heartbeat was lost, or any error was seen is
refused, with the reason. Writes RESULTS/connections.md (table + ratios), .json and .svg (chart).
Called by Scripts/bench-connections.sh, which builds the binaries.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")
LABELS = {"rill": "rill serve", "rill-base": "rill serve (baseline build)", "rill-threads": "rill serve --threads",
          "nio": "SwiftNIO (NIOHTTP1, 1 loop)", "floor": "floor (C, write() per socket)"}
COLORS = {"rill": "#1f6feb", "nio": "#e36209", "floor": "#6e7781"}


def process_tree(pid):
    """pid and its descendants (a server with worker processes counts as one)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def tree_sum(pid, measure):
    """`measure(p)` summed over the process tree; a process that ended meanwhile counts 0."""
    total = 0
    for p in process_tree(pid):
        try:
            total += measure(p)
        except (OSError, AttributeError, IndexError, ValueError):
            pass
    return total


def rss_bytes(pid):
    def rss(p):
        with open(f"/proc/{p}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) * 1024
    return tree_sum(pid, rss)


def fd_count(pid):
    return tree_sum(pid, lambda p: len(os.listdir(f"/proc/{p}/fd")))


def cpu_seconds(pid):
    def cpu(p):
        with open(f"/proc/{p}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    return tree_sum(pid, cpu)


def slab_bytes():
    with open("/proc/meminfo") as f:
        return int(re.search(r"Slab:\s+(\d+)", f.read()).group(1)) * 1024


def pinned(cpu, command):
    if shutil.which("taskset") and os.cpu_count() >= 2:
        return ["taskset", "-c", str(cpu)] + command
    return command


def label(kind, args):
    """The server's name in the tables, with its --workers or --threads."""
    if kind in ("rill", "rill-base") and args.server_workers > 1:
        return f"{LABELS[kind]} --workers {args.server_workers}"
    if kind == "rill-threads":
        return f"{LABELS[kind]} {args.server_threads}"
    return LABELS[kind]


def start_server(kind, binaries, heartbeat, workers, threads=1, cpus="0"):
    if kind in ("rill", "rill-base", "rill-threads"):
        command = [binaries["rill" if kind == "rill-threads" else kind], "serve", "--port", "0", "--tick", "0",
                   "--heartbeat", str(heartbeat)]
        if kind == "rill-threads":
            command += ["--threads", str(threads)]
        elif workers > 1:
            command += ["--workers", str(workers)]
    elif kind == "nio":
        command = [binaries["nio"], "--port", "0", "--heartbeat", str(heartbeat)]
    else:
        command = [binaries["floor"], "--port", "0", "--heartbeat", str(heartbeat)]
    process = subprocess.Popen(pinned(cpus, command), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not match:
        process.kill()
        raise RuntimeError(f"{kind} did not start: {line!r}")
    return process, int(match.group(1))


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def measure(kind, n, binaries, args):
    heartbeat = args.heartbeat
    server, port = start_server(kind, binaries, heartbeat, args.server_workers if kind.startswith("rill") else 1,
                                args.server_threads, args.server_cpus)
    try:
        time.sleep(1)
        base_rss, base_fds, base_slab = rss_bytes(server.pid), fd_count(server.pid), slab_bytes()
        report = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        hold = args.hold
        load = subprocess.Popen(pinned(1, [
            binaries["rill"], "load", f"http://127.0.0.1:{port}/sse", "-c", str(n), "-d", f"{hold}s",
            "--publish-rate", "4", "--publish-count", str(args.events), "--publish-after", f"{hold - 8}s",
            "--heartbeat-interval", str(heartbeat), "--json", report]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # All accepted: the server holds N more descriptors.
        deadline = time.time() + 300
        opening = time.time()
        while fd_count(server.pid) < base_fds + n and time.time() < deadline and load.poll() is None:
            time.sleep(0.05)
        accepted_seconds = time.time() - opening
        time.sleep(3)
        held_rss, held_fds, held_slab = rss_bytes(server.pid), fd_count(server.pid), slab_bytes()
        cpu_start = cpu_seconds(server.pid)
        time.sleep(10)
        cpu = cpu_seconds(server.pid) - cpu_start
        output, _ = load.communicate(timeout=hold + 120)
        time.sleep(2)
        after_rss, after_fds = rss_bytes(server.pid), fd_count(server.pid)
        with open(report) as f:
            result = json.load(f)
        os.unlink(report)
    finally:
        stop(server)

    latency = result.get("latencyMicroseconds", {})
    row = {
        "server": kind, "label": label(kind, args), "n": n,
        "opened": result["opened"], "failed": result["failed"],
        "connectRate": result["opened"] / result["rampSeconds"] if result["rampSeconds"] > 0 else 0,
        "bytesPerConnection": (held_rss - base_rss) / n,
        "kernelBytesPerConnection": (held_slab - base_slab) / n,
        "heldFds": held_fds - base_fds,
        "cpuPerRoundMs": cpu * 1000 / (10 / heartbeat),
        "acceptedSeconds": accepted_seconds, "rampSeconds": result["rampSeconds"],
        "heartbeats": result["heartbeats"], "heartbeatInterval": heartbeat,
        "eventP50Ms": latency.get("event", {}).get("p50", 0) / 1000,
        "eventP99Ms": latency.get("event", {}).get("p99", 0) / 1000,
        "eventMaxMs": latency.get("event", {}).get("max", 0) / 1000,
        "lastP50Ms": latency.get("to last", {}).get("p50", 0) / 1000,
        "lastMaxMs": latency.get("to last", {}).get("max", 0) / 1000,
        "published": result["published"], "gaps": result["streamsWithGaps"], "errors": result["errors"],
        "fdsAfter": after_fds - base_fds, "rssAfterKiB": (after_rss - base_rss) // 1024,
        "baseRssKiB": base_rss // 1024,
    }
    problems = []
    if row["failed"] or row["opened"] < n:
        problems.append(f"{n - row['opened'] + row['failed']} clients failed to connect")
    if row["gaps"]:
        problems.append(f"{row['gaps']} streams missed events")
    if row["published"] != args.events:
        problems.append(f"{row['published']} of {args.events} events published")
    if row["errors"]:
        problems.append("errors: " + ", ".join(f"{k}: {v}" for k, v in row["errors"].items()))
    row["refused"] = "; ".join(problems) or None
    if row["refused"]:
        row["loadOutput"] = output[-2000:]
    return row


def ratio(a, b):
    return f"{a / b:.2f}×" if b else "–"


def markdown(rows, machine):
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {machine}.", "",
             "| server | N | connect rate | user B/conn | kernel B/conn | CPU per heartbeat round | fan-out p50 / p99 / max "
             "| until last client p50 / max | losses | fds, RSS after |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if row["refused"]:
            lines.append(f"| {row.get('label', LABELS[row['server']])} | {row['n']:,} | refused: {row['refused']} |||||||||")
            continue
        lines.append(
            f"| {row.get('label', LABELS[row['server']])} | {row['n']:,} | {row['connectRate']:,.0f}/s | {row['bytesPerConnection']:,.0f} "
            f"| {row['kernelBytesPerConnection']:,.0f} | {row['cpuPerRoundMs']:.1f} ms "
            f"| {row['eventP50Ms']:.1f} / {row['eventP99Ms']:.1f} / {row['eventMaxMs']:.1f} ms "
            f"| {row['lastP50Ms']:.1f} / {row['lastMaxMs']:.1f} ms | 0 | +{row['fdsAfter']} fds, +{row['rssAfterKiB']:,} KiB |")
    by = {(r["server"], r["n"]): r for r in rows if not r["refused"]}
    if any(k[0] in ("nio", "floor") for k in by):
        lines += ["", "Ratios (same N, same run):", "",
                  "| N | B/conn rill ÷ nio | CPU/round rill ÷ floor | CPU/round rill ÷ nio | until last rill ÷ floor "
                  "| until last rill ÷ nio | connect rate rill ÷ nio |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sorted({r["n"] for r in rows}):
        rill, nio, floor = by.get(("rill", n)), by.get(("nio", n)), by.get(("floor", n))
        if not rill or not (nio or floor):
            continue
        cells = [
            ratio(rill["bytesPerConnection"], nio["bytesPerConnection"]) if nio else "–",
            ratio(rill["cpuPerRoundMs"], floor["cpuPerRoundMs"]) if floor else "–",
            ratio(rill["cpuPerRoundMs"], nio["cpuPerRoundMs"]) if nio else "–",
            ratio(rill["lastP50Ms"], floor["lastP50Ms"]) if floor else "–",
            ratio(rill["lastP50Ms"], nio["lastP50Ms"]) if nio else "–",
            ratio(rill["connectRate"], nio["connectRate"]) if nio else "–",
        ]
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    if any(r["server"] == "rill-threads" for r in rows):
        # An N given more than once is measured more than once (interleaved): the ratios of the medians.
        def median_row(server, n):
            mine = [r for r in rows if r["server"] == server and r["n"] == n and not r["refused"]]
            if not mine:
                return None
            return {k: statistics.median(r[k] for r in mine) for k in mine[0] if isinstance(mine[0][k], (int, float))}
        repeats = max(sum(1 for r in rows if r["server"] == "rill-threads" and r["n"] == n) for n in {r["n"] for r in rows})
        lines += ["", "Threads in one process against worker processes (same N, same run; below 1× favours the threads, "
                  "except the connect rate, where above 1× does"
                  + (f"; medians of {repeats} interleaved runs" if repeats > 1 else "") + "):", "",
                  "| N | fan-out p50 | fan-out p99 | until last p50 | until last max | connect rate | B/conn |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]
        for n in sorted({r["n"] for r in rows}):
            threads, workers = median_row("rill-threads", n), median_row("rill", n)
            if threads and workers:
                keys = ["eventP50Ms", "eventP99Ms", "lastP50Ms", "lastMaxMs", "connectRate", "bytesPerConnection"]
                lines.append(f"| {n:,} | " + " | ".join(ratio(threads[k], workers[k]) for k in keys) + " |")
    if any(r["server"] == "rill-base" for r in rows):
        lines += ["", "This build against the baseline build (same N, same run; below 1× is better except for the connect rate):", "",
                  "| N | B/conn | CPU/round | until last p50 | connect rate |", "|---:|---:|---:|---:|---:|"]
        for n in sorted({r["n"] for r in rows}):
            new, base = by.get(("rill", n)), by.get(("rill-base", n))
            if new and base:
                keys = ["bytesPerConnection", "cpuPerRoundMs", "lastP50Ms", "connectRate"]
                lines.append(f"| {n:,} | " + " | ".join(ratio(new[k], base[k]) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def svg(rows):
    """Two panels: user bytes per idle connection (log scale) and time until the last client, vs N."""
    rows = [r for r in rows if not r["refused"]]
    width, height, pad = 960, 410, 60
    panel = (width - 3 * pad) // 2
    ns = sorted({r["n"] for r in rows}) or [1]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>']

    def x_of(n, left):
        return left + (n - 0) / (max(ns) * 1.05) * panel

    def draw(left, title, key, log):
        top, bottom = 40, height - 75
        values = [r[key] for r in rows if r[key] > 0] or [1]
        if log:
            import math
            low, high = 10 ** math.floor(math.log10(min(values))), 10 ** math.ceil(math.log10(max(values)))
            def y_of(v):
                return bottom - (math.log10(max(v, low)) - math.log10(low)) / (math.log10(high) - math.log10(low)) * (bottom - top)
            ticks = [10 ** e for e in range(int(math.log10(low)), int(math.log10(high)) + 1)]
        else:
            high = max(values) * 1.1
            def y_of(v):
                return bottom - v / high * (bottom - top)
            step = 10 ** len(str(int(high / 5))) / 10 if high >= 5 else 1
            while high / step > 6:
                step *= 2
            ticks = [i * step for i in range(int(high / step) + 1)]
        parts.append(f'<text x="{left}" y="24" font-size="14" font-weight="bold">{title}</text>')
        parts.append(f'<line x1="{left}" y1="{bottom}" x2="{left + panel}" y2="{bottom}" stroke="#333"/>')
        parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>')
        for t in ticks:
            y = y_of(t)
            parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + panel}" y2="{y:.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t:,.0f}</text>')
        for n in ns:
            parts.append(f'<text x="{x_of(n, left):.1f}" y="{bottom + 16}" text-anchor="middle">{n // 1000}k</text>')
        parts.append(f'<text x="{left + panel / 2}" y="{bottom + 34}" text-anchor="middle">idle SSE connections</text>')
        for server in ("rill", "nio", "floor"):
            points = sorted((r["n"], r[key]) for r in rows if r["server"] == server)
            if not points:
                continue
            path = " ".join(f"{x_of(n, left):.1f},{y_of(v):.1f}" for n, v in points)
            dash = ' stroke-dasharray="5,4"' if server == "floor" else ""
            parts.append(f'<polyline points="{path}" fill="none" stroke="{COLORS[server]}" stroke-width="2"{dash}/>')
            for n, v in points:
                parts.append(f'<circle cx="{x_of(n, left):.1f}" cy="{y_of(v):.1f}" r="3" fill="{COLORS[server]}"/>')

    draw(pad, "User memory per idle connection (bytes, log scale)", "bytesPerConnection", True)
    draw(2 * pad + panel, "Time until the last client has an event (ms, p50)", "lastP50Ms", False)
    legend_x = pad
    for server in ("rill", "nio", "floor"):
        parts.append(f'<rect x="{legend_x}" y="{height - 14}" width="14" height="4" fill="{COLORS[server]}"/>')
        parts.append(f'<text x="{legend_x + 20}" y="{height - 8}">{LABELS[server]}</text>')
        legend_x += 260
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("counts", nargs="*", type=int, default=[1000, 5000, 10000, 19000])
    parser.add_argument("--servers", default="rill,nio,floor")
    parser.add_argument("--rill", required=True)
    parser.add_argument("--rill-base", help="another build of rill, served as server 'rill-base' (before/after in one run)")
    parser.add_argument("--nio")
    parser.add_argument("--floor")
    parser.add_argument("--server-workers", type=int, default=1, help="rill serve --workers")
    parser.add_argument("--server-threads", type=int, default=2, help="rill serve --threads, for server 'rill-threads'")
    parser.add_argument("--server-cpus", default="0", help="the servers' CPUs (taskset -c); rill load gets CPU 1")
    parser.add_argument("--heartbeat", type=float, default=1, help="the servers' heartbeat interval (s)")
    parser.add_argument("--hold", type=int, default=23,
                        help="seconds rill load holds the streams; events are published in its last 8 s (at least 22)")
    parser.add_argument("--events", type=int, default=20, help="events published, 250 ms apart")
    parser.add_argument("--results", default="Benchmarks/results")
    parser.add_argument("--machine", default=f"{os.cpu_count()} CPUs, Linux {os.uname().release}")
    args = parser.parse_args()
    binaries = {"rill": args.rill, "rill-base": args.rill_base, "nio": args.nio, "floor": args.floor}
    servers = args.servers.split(",")
    rows = []
    for n in args.counts:  # an N given more than once is measured again: the servers interleave
        for kind in servers:
            print(f"{kind} N={n} ...", file=sys.stderr, flush=True)
            row = measure(kind, n, binaries, args)
            if row["refused"]:
                print(f"  refused: {row['refused']}\n{row.get('loadOutput', '')}", file=sys.stderr)
            else:
                print(f"  {row['connectRate']:,.0f} conn/s, {row['bytesPerConnection']:,.0f} B/conn, "
                      f"{row['cpuPerRoundMs']:.1f} ms/round, until last p50 {row['lastP50Ms']:.1f} ms", file=sys.stderr)
            rows.append(row)
    os.makedirs(args.results, exist_ok=True)
    text = markdown(rows, args.machine)
    with open(os.path.join(args.results, "connections.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.results, "connections.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(args.results, "connections.svg"), "w") as f:
        f.write(svg(rows))
    print(text)
    return 1 if any(r["refused"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
