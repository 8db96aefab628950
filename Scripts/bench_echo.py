#!/usr/bin/env python3
"""The echo benchmark: callback echo (Reactor EchoHandler), async echo (AsyncConnection, a Task per
connection on the loop's executor) and SwiftNIO's NIOAsyncChannel echo, side by side in one run.

For each connection count, ROUNDS rounds; in each round every server in turn (the order rotates per
round, so drift hits all of them): the server starts pinned to CPU 0 with Benchmarks/MallocCount
preloaded (its allocations counted in a shared file), the client (Benchmarks/EchoClient, C) runs
pinned to CPU 1: N connections, one SIZE-byte message in flight each, WARMUP s, then SECONDS s
measured -> round trips/s, the server's CPU per round trip, its allocations per round trip.
Each figure is the median over the rounds. Writes RESULTS/echo.md and echo.json.
Called by Scripts/bench-echo.sh, which builds the binaries.
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

LABELS = {
    "callback": "Reactor callbacks (EchoHandler)",
    "async": "Reactor AsyncConnection (Task per connection on the loop)",
    "nio": "SwiftNIO NIOAsyncChannel (1 loop, tasks on the global pool)",
}
BEFORE = " (--before-server build)"


def label(kind):
    if kind.endswith("-before"):
        return LABELS[kind[:-len("-before")]] + BEFORE
    return LABELS.get(kind, kind)


def pinned(cpu, command):
    if shutil.which("taskset") and os.cpu_count() >= 2:
        return ["taskset", "-c", str(cpu)] + command
    return command


def run_once(kind, connections, args):
    counters = tempfile.NamedTemporaryFile(suffix=".counts", delete=False).name
    env = dict(os.environ, LD_PRELOAD=args.shim, MALLOC_COUNT_FILE=counters)
    binary = args.server
    if kind.endswith("-before"):
        binary, kind = args.before_server, kind[:-len("-before")]
    server = subprocess.Popen(pinned(0, [binary, kind]), stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline()
        match = re.search(r"listening on (\d+)", line)
        if not match:
            raise RuntimeError(f"{kind} did not start: {line!r}")
        client = subprocess.run(pinned(1, [
            args.client, "--port", match.group(1), "--connections", str(connections), "--size", str(args.size),
            "--warmup", str(args.warmup), "--seconds", str(args.seconds), "--server-pid", str(server.pid),
            "--counters", counters]), capture_output=True, text=True, timeout=args.warmup + args.seconds + 60)
        if client.returncode != 0:
            raise RuntimeError(f"client failed against {kind}: {client.stderr.strip()}")
        return json.loads(client.stdout)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
        os.unlink(counters)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True)
    parser.add_argument("--client", required=True)
    parser.add_argument("--shim", required=True)
    parser.add_argument("--servers", default="callback,async,nio",
                        help="callback, async, nio; KIND-before runs KIND from --before-server")
    parser.add_argument("--before-server", help="another EchoServer build (before a change), for KIND-before")
    parser.add_argument("--connections", default="1,32", help="comma-separated connection counts")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--results", default="Benchmarks/results/echo")
    parser.add_argument("--machine", default="")
    parser.add_argument("--note", default="", help="a line for the markdown, e.g. which build")
    parser.add_argument("--require-no-mallocs", default="",
                        help="comma-separated servers that must allocate nothing per round trip (exit 1 otherwise; CI)")
    args = parser.parse_args()
    servers = args.servers.split(",")
    counts = [int(c) for c in args.connections.split(",")]

    runs = []
    for connections in counts:
        for round_index in range(args.rounds):
            order = servers[round_index % len(servers):] + servers[:round_index % len(servers)]
            for kind in order:
                result = run_once(kind, connections, args)
                result.update(server=kind, round=round_index)
                runs.append(result)
                print(f"{kind:8} c={connections:3} round {round_index}: {result['roundTripsPerSecond']:10.0f} rt/s, "
                      f"{result['serverCpuMicrosecondsPerRoundTrip']:.2f} us CPU/rt, "
                      f"{result['mallocsPerRoundTrip']:.3f} mallocs/rt", file=sys.stderr)

    rows = []
    for connections in counts:
        for kind in servers:
            mine = [r for r in runs if r["server"] == kind and r["connections"] == connections]
            rows.append({
                "server": kind, "connections": connections, "rounds": len(mine),
                "roundTripsPerSecond": statistics.median(r["roundTripsPerSecond"] for r in mine),
                "serverCpuMicrosecondsPerRoundTrip": statistics.median(r["serverCpuMicrosecondsPerRoundTrip"] for r in mine),
                "mallocsPerRoundTrip": statistics.median(r["mallocsPerRoundTrip"] for r in mine),
                "freesPerRoundTrip": statistics.median(r["frees"] / max(1, r["roundTrips"]) for r in mine),
            })

    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, "echo.json"), "w") as f:
        json.dump({"machine": args.machine, "size": args.size, "rounds": args.rounds, "warmup": args.warmup,
                   "seconds": args.seconds, "note": args.note, "rows": rows, "runs": runs}, f, indent=1)
    lines = [f"# Echo: callbacks vs AsyncConnection vs NIOAsyncChannel", "",
             f"One run, {args.rounds} rounds (server order rotating), median of the rounds; each measurement "
             f"{args.warmup:g} s warm-up + {args.seconds:g} s. {args.size}-byte messages, one in flight per "
             "connection. Server pinned to CPU 0, client (C, epoll) to CPU 1. Allocations: an LD_PRELOAD "
             "counter (Benchmarks/MallocCount) over the measured window, malloc/calloc/realloc/aligned, "
             "all of the server's threads. Shared 2-core machine: compare ratios within this run, not "
             "absolute figures.", ""]
    if args.machine:
        lines += [f"Machine: {args.machine}", ""]
    if args.note:
        lines += [args.note, ""]
    lines += ["| server | connections | round trips/s | server CPU µs per round trip | mallocs per round trip "
              "| frees per round trip |", "|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {label(row['server'])} | {row['connections']} "
                     f"| {row['roundTripsPerSecond']:,.0f} | {row['serverCpuMicrosecondsPerRoundTrip']:.2f} "
                     f"| {row['mallocsPerRoundTrip']:.3f} | {row['freesPerRoundTrip']:.3f} |")
    if "callback" in servers:
        lines += ["", "Ratios to callbacks (same run):", "",
                  "| server | connections | round trips/s ÷ callbacks | CPU per round trip ÷ callbacks |",
                  "|---|---:|---:|---:|"]
        for connections in counts:
            base = next(r for r in rows if r["server"] == "callback" and r["connections"] == connections)
            for row in rows:
                if row["connections"] != connections or row["server"] == "callback":
                    continue
                lines.append(f"| {label(row['server'])} | {connections} "
                             f"| {row['roundTripsPerSecond'] / base['roundTripsPerSecond']:.2f} "
                             f"| {row['serverCpuMicrosecondsPerRoundTrip'] / base['serverCpuMicrosecondsPerRoundTrip']:.2f} |")
    with open(os.path.join(args.results, "echo.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    # A steady-state allocation is a regression of a hot path: the run fails (CI's smoke run uses this).
    failed = [r for r in runs if r["server"] in args.require_no_mallocs.split(",") and r["mallocsPerRoundTrip"] >= 0.01]
    for r in failed:
        print(f"{r['server']} allocated {r['mallocsPerRoundTrip']:.3f} times per round trip "
              f"({r['connections']} connections)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
