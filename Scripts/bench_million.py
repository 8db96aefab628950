#!/usr/bin/env python3
"""The million-stream benchmark: `rill serve --workers auto` and `rill load` on this one machine.

For each N (default 100000 250000 500000 1000000), one run:
  1. the machine's Slab, /proc/net/sockstat (TCP sockets and `mem` pages) and free memory before;
  2. `rill serve --workers auto --max-connections N` (it sizes its workers; heartbeat 15 s, no tick);
     its baseline RSS and fds, summed over the supervisor and its workers;
  3. `rill load -c N -d HOLD --heartbeat-interval 15` opens N streams over source addresses of
     their own block (127.0.B.x; it chooses its workers), holds them HOLD seconds and, from the
     hold's middle, publishes 3 events 5 s apart: every stream must get all 3, once, in order, and
     none may go 30 s without a heartbeat (rill load checks both per stream and fails otherwise);
  4. 5 s into the hold: server RSS (user B/stream), Slab and sockstat growth (kernel B/pair);
     then the CPU time of the server and of the load generator over whole heartbeat rounds;
  5. the load generator's own memory per stream (its report: RSS over its workers' baselines);
  6. after the clients leave: the server's fds and RSS (read until within 1% of the peak's growth
     or 30 s: the hub gives its tables back once per heartbeat interval), and the machine's Slab against the start
     (both read after vm.drop_caches=2, which frees unused dentries and inodes, e.g. those a
     listing of /proc/PID/fd leaves; TIME_WAIT leftovers need up to a minute, so it is read until
     within 5% or 90 s).
A row with any failed connect, lost or repeated event, silent stream or other error is refused,
with the reason. With --relay K it first measures the supervisor's relay: K events published to
51 workers (and to 2, for the ratio), the supervisor's CPU per event.
Writes RESULTS/million.md, .json, .svg (keeping earlier runs' rows for other N unless --fresh) and
appends every figure to RESULTS/log.md as it goes.
Called by Scripts/bench-million.sh, which builds the binary.
"""
import argparse
import http.client
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_connections import cpu_seconds, fd_count, process_tree, rss_bytes, slab_bytes, tree_sum  # noqa: E402

HEARTBEAT = 15
EVENTS = 3


def sockstat():
    """TCP sockets in use, allocated, TIME_WAIT, and pages charged to TCP (the `mem` field)."""
    with open("/proc/net/sockstat") as f:
        line = next(l for l in f if l.startswith("TCP:"))
    fields = line.split()[1:]
    values = dict(zip(fields[::2], (int(v) for v in fields[1::2])))
    return values


def meminfo(key):
    with open("/proc/meminfo") as f:
        return int(re.search(rf"{key}:\s+(\d+)", f.read()).group(1)) * 1024


def slabinfo():
    """Active objects and object size of every slab cache (root only; {} otherwise)."""
    try:
        with open("/proc/slabinfo") as f:
            lines = f.readlines()[2:]
    except OSError:
        return {}
    return {fields[0]: (int(fields[1]), int(fields[3])) for fields in (line.split() for line in lines)}


def slab_breakdown(before, after, n):
    """The caches that grew by more than 8 B per pair: {name: bytes per pair}, largest first."""
    growth = {name: (after[name][0] - before.get(name, (0, 0))[0]) * after[name][1] / n for name in after}
    return dict(sorted(((k, round(v)) for k, v in growth.items() if v > 8), key=lambda kv: -kv[1]))


def drop_reclaimable_slab():
    """Frees unused dentries and inodes (vm.drop_caches=2; root only, page cache untouched), so that
    Slab readings compare live objects rather than caches that linger until memory is short."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2\n")
        return True
    except OSError:
        return False


def log(results, text):
    print(text, file=sys.stderr, flush=True)
    with open(os.path.join(results, "log.md"), "a") as f:
        f.write(f"- {time.strftime('%H:%M:%S', time.gmtime())} UTC {text}\n")


def start_server(rill, port, n, extra):
    command = [rill, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "auto",
               "--max-connections", str(n), "--heartbeat", str(HEARTBEAT), "--tick", "0"] + extra
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if "listening" not in line:
        process.kill()
        raise RuntimeError(f"rill serve did not start: {line!r}")
    workers = int(re.search(r"(\d+) workers", line).group(1))
    return process, line.strip(), workers


def stop(process, timeout=60):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def top_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def relay_cost(rill, port, workers, events):
    """Supervisor CPU (and all workers') per event published through one worker to `workers`."""
    server = subprocess.Popen([rill, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers",
                               str(workers), "--heartbeat", "0", "--tick", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if "listening" not in server.stdout.readline():
            raise RuntimeError("rill serve did not start")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = "x" * 32
        for _ in range(50):  # warm up
            connection.request("POST", "/publish", body)
            connection.getresponse().read()
        supervisor, total = top_cpu(server.pid), cpu_seconds(server.pid)
        start = time.time()
        for _ in range(events):
            connection.request("POST", "/publish", body)
            response = connection.getresponse()
            response.read()
            if response.status != 204:
                raise RuntimeError(f"publish answered {response.status}")
        elapsed = time.time() - start
        supervisor, total = top_cpu(server.pid) - supervisor, cpu_seconds(server.pid) - total
        connection.close()
    finally:
        stop(server)
    return {"workers": workers, "events": events, "supervisorMicrosecondsPerEvent": supervisor * 1e6 / events,
            "allMicrosecondsPerEvent": total * 1e6 / events, "publishesPerSecond": events / elapsed}


def own_anon_bytes(pid):
    """Anonymous resident memory (RssAnon) of `pid` alone: the heap and mappings, without the
    binary's code pages (file-backed, shared by every worker)."""
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"RssAnon:\s+(\d+)", f.read()).group(1)) * 1024


def anon_bytes(pid):
    """`own_anon_bytes` over the process tree (the supervisor and its workers)."""
    return tree_sum(pid, own_anon_bytes)


def wait_until(predicate, timeout, step=0.5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def measure(n, index, args):
    port = args.port + index
    block = 2 + index % 8  # 127.0.2.x … 127.0.9.x: a fresh block per run, away from TIME_WAIT leftovers
    # 10,000 per address, as rill load chooses: past ~14k per source/destination pair (half the
    # ephemeral ports) Linux's connect() scans the other parity's ports one by one.
    addresses = max(8, math.ceil(n / 10_000))
    sources = f"127.0.{block}.0-127.0.{block}.{addresses - 1}"
    hold = args.hold
    drop_reclaimable_slab()
    before = {"slab": slab_bytes(), "unreclaimable": meminfo("SUnreclaim"), "sockstat": sockstat(), "available": meminfo("MemAvailable"), "at": time.time()}
    server, banner, workers = start_server(args.rill, port, n, args.serve_args.split())
    log(args.results, f"N={n}: {banner}")
    row = {"n": n, "serverWorkers": workers, "sources": sources, "holdSeconds": hold, "port": port,
           "serveArgs": args.serve_args, "loadArgs": args.load_args}
    output = ""
    try:
        # Warm up first: a few streams to each worker touch the code pages and the runtime's one-time
        # metadata, which belong to the program, not to any connection (at 1M: ~64 KiB of text and
        # ~24 KiB of heap per worker, 4.5 MB over 52 workers, counted in "after" without this).
        subprocess.run([args.rill, "load", f"http://127.0.0.1:{port}/sse", "-c", str(40 * workers), "-d", "2s",
                        "--no-reconnect", "--source", f"127.0.{block}.200"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        time.sleep(2)
        base_rss, base_fds = rss_bytes(server.pid), fd_count(server.pid)
        base_anon, base_supervisor_anon = anon_bytes(server.pid), own_anon_bytes(server.pid)
        base_slab, base_sock = slab_bytes(), sockstat()
        base_unreclaimable, base_caches = meminfo("SUnreclaim"), slabinfo()
        report = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        load_command = [args.rill, "load", f"http://127.0.0.1:{port}/sse", "-c", str(n), "-d", f"{hold}s",
                        "--heartbeat-interval", str(HEARTBEAT), "--source", sources,
                        "--publish-rate", "0.2", "--publish-count", str(EVENTS), "--publish-after", f"{hold // 2}s",
                        "--json", report] + args.load_args.split()
        row["loadCommand"] = " ".join(load_command[1:])
        load_log = open(os.path.join(args.results, f"load-{n}.log"), "w", buffering=1)
        load = subprocess.Popen(load_command, stdout=subprocess.PIPE, stderr=load_log, text=True)
        opening = time.time()
        log_path = os.path.join(args.results, f"load-{n}.log")

        def holding():
            """rill load says so (its progress line, every 5 s), or the machine holds 2N more TCP
            sockets (read at once, but other programs' sockets come and go)."""
            with open(log_path) as f:
                lines = f.read().splitlines()
            return bool(lines) and lines[-1].startswith("holding")

        opened = wait_until(lambda: sockstat()["inuse"] >= base_sock["inuse"] + 2 * n or holding()
                            or load.poll() is not None, timeout=n / 2_000 + 120)
        row["allOpenSeconds"] = time.time() - opening
        if not opened or load.poll() is not None:
            raise RuntimeError(f"not all open after {row['allOpenSeconds']:.0f} s (TCP in use {sockstat()['inuse']})")
        log(args.results, f"N={n}: all {n} open in {row['allOpenSeconds']:.1f} s")
        time.sleep(5)
        held_rss, held_slab, held_sock = rss_bytes(server.pid), slab_bytes(), sockstat()
        held_anon = anon_bytes(server.pid)
        held_unreclaimable, held_caches = meminfo("SUnreclaim"), slabinfo()
        load_rss = rss_bytes(load.pid)
        row.update({
            "serverBytesPerStream": (held_rss - base_rss) / n,
            "slabBytesPerPair": (held_slab - base_slab) / n,
            "unreclaimableSlabBytesPerPair": (held_unreclaimable - base_unreclaimable) / n,
            "slabCachesBytesPerPair": slab_breakdown(base_caches, held_caches, n),
            "sockstatMemBytesPerPair": (held_sock["mem"] - base_sock["mem"]) * 4096 / n,
            "tcpMemPagesHeld": held_sock["mem"], "serverRssMiB": held_rss / 2**20, "serverBaseRssMiB": base_rss / 2**20,
            "loadTreeRssMiB": load_rss / 2**20, "memAvailableGiBHeld": meminfo("MemAvailable") / 2**30,
        })
        log(args.results, f"N={n}: server {row['serverBytesPerStream']:.0f} B/stream user, Slab "
            f"{row['slabBytesPerPair']:.0f} B/pair (unreclaimable {row['unreclaimableSlabBytesPerPair']:.0f}; "
            f"{row['slabCachesBytesPerPair']}), sockstat mem {row['sockstatMemBytesPerPair']:.0f} B/pair, "
            f"load tree RSS {row['loadTreeRssMiB']:.0f} MiB")
        # CPU over whole heartbeat rounds, before the publications (from hold/2).
        rounds = max(1, min(4, int((hold // 2 - 15) // HEARTBEAT)))
        server_cpu, load_cpu = cpu_seconds(server.pid), cpu_seconds(load.pid)
        time.sleep(rounds * HEARTBEAT)
        row["serverCpuMsPerRound"] = (cpu_seconds(server.pid) - server_cpu) * 1000 / rounds
        row["loadCpuMsPerRound"] = (cpu_seconds(load.pid) - load_cpu) * 1000 / rounds
        row["cpuRounds"] = rounds
        log(args.results, f"N={n}: CPU per heartbeat round ({rounds} rounds): server {row['serverCpuMsPerRound']:.0f} ms, "
            f"load generator {row['loadCpuMsPerRound']:.0f} ms")
        output, _ = load.communicate(timeout=hold + 600)
        load_log.close()
        with open(report) as f:
            result = json.load(f)
        os.unlink(report)
        # Sockets first (cheap): listing a million fds in /proc is slow and fills the inode cache.
        wait_until(lambda: sockstat()["inuse"] <= base_sock["inuse"] + 1_000, timeout=60, step=1)
        closed = wait_until(lambda: fd_count(server.pid) <= base_fds, timeout=60, step=2)
        # The hub gives its tables back at most one heartbeat interval after the departures.
        wait_until(lambda: rss_bytes(server.pid) - base_rss <= 0.01 * (held_rss - base_rss), timeout=2 * HEARTBEAT, step=1)
        after_rss, after_fds, after_anon = rss_bytes(server.pid), fd_count(server.pid), anon_bytes(server.pid)
        row.update({"fdsAfter": after_fds - base_fds, "rssAfterKiB": (after_rss - base_rss) // 1024,
                    "rssAfterShareOfPeak": (after_rss - base_rss) / max(1, held_rss - base_rss), "fdsBack": closed,
                    "anonAfterKiB": (after_anon - base_anon) // 1024,
                    "supervisorAnonAfterKiB": (own_anon_bytes(server.pid) - base_supervisor_anon) // 1024,
                    "anonAfterShareOfPeak": (after_anon - base_anon) / max(1, held_anon - base_anon)})
    finally:
        stop(server)
    # TIME_WAIT leftovers (on the generator's side, which closes first) hold Slab for up to 60 s.
    back = wait_until(lambda: drop_reclaimable_slab() and slab_bytes() <= before["slab"] * 1.05, timeout=90, step=5)
    row["slabAfterShareOfStart"] = slab_bytes() / before["slab"]
    row["unreclaimableSlabAfterShareOfStart"] = meminfo("SUnreclaim") / before["unreclaimable"]
    row["slabBack"] = back
    latency = result.get("latencyMicroseconds", {})
    row.update({
        "opened": result["opened"], "failed": result["failed"], "heldAtEnd": result["heldAtEnd"],
        "rampSeconds": result["rampSeconds"], "rampRate": result["opened"] / max(result["rampSeconds"], 1e-9),
        "loadWorkers": result["workers"], "sourceAddresses": result["sourceAddresses"],
        "heartbeats": result["heartbeats"], "events": result["events"], "published": result["published"],
        "gaps": result["streamsWithGaps"], "lost": result.get("streamsThatLostAnEvent", 0),
        "duplicates": result.get("duplicateEvents", 0), "reconnects": result.get("reconnects", 0),
        "errors": result["errors"], "failure": result.get("failure"),
        "loadBytesPerStream": (result["residentBytes"] - result["baselineBytes"]) / max(1, result["opened"]),
        "eventP50Ms": latency.get("event", {}).get("p50", 0) / 1000,
        "lastMaxMs": latency.get("to last", {}).get("max", 0) / 1000,
        "heldSeconds": result["holdSeconds"],
    })
    problems = []
    if row["failed"] or row["opened"] < n:
        problems.append(f"{n - row['opened'] + row['failed']} streams failed to open")
    if row["heldAtEnd"] < n:
        problems.append(f"{n - row['heldAtEnd']} streams not held to the end")
    if row["published"] != EVENTS or row["events"] != EVENTS * n:
        problems.append(f"{row['events']} events received, {EVENTS} × {n} owed ({row['published']} published)")
    if row["gaps"] or row["lost"] or row["duplicates"] or row["reconnects"]:
        problems.append(f"gaps {row['gaps']}, lost {row['lost']}, duplicates {row['duplicates']}, "
                        f"reconnects {row['reconnects']}")
    if row["errors"]:
        problems.append("errors: " + ", ".join(f"{k}: {v}" for k, v in row["errors"].items()))
    if row["failure"] and not (row["errors"] and row["failure"].startswith("errors:")):
        problems.append(row["failure"])
    if not row["fdsBack"]:
        problems.append(f"server fds +{row['fdsAfter']} after the clients left")
    row["refused"] = "; ".join(problems) or None
    if row["refused"]:
        row["loadOutput"] = output[-3000:]
    log(args.results, f"N={n}: " + (f"REFUSED: {row['refused']}" if row["refused"] else
        f"ramp {row['rampSeconds']:.1f} s ({row['rampRate']:,.0f}/s), load {row['loadBytesPerStream']:.0f} B/stream, "
        f"{row['heartbeats']:,} heartbeats, events {row['events']:,}, Slab after {row['slabAfterShareOfStart']:.3f}× start"))
    return row


def markdown(rows, relays, machine):
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine}; server and load "
             "generator on the same machine, heartbeat 15 s, 3 events published during the hold.", "",
             "| N | server workers / load workers | all open in (rate) | held | server user B/stream "
             "| load generator B/stream | kernel B/pair (Slab) | sockstat mem B/pair | CPU per heartbeat round: server / load "
             "| heartbeats received | events: received / owed | after: server fds, RSS (anonymous), Slab |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if row.get("refused"):
            lines.append(f"| {row['n']:,} | refused: {row['refused']} |||||||||||")
            continue
        lines.append(
            f"| {row['n']:,} | {row['serverWorkers']} / {row['loadWorkers']} | {row['rampSeconds']:.1f} s "
            f"({row['rampRate']:,.0f}/s) | {row['heldSeconds']:.0f} s | {row['serverBytesPerStream']:.0f} "
            f"| {row['loadBytesPerStream']:.0f} | {row['slabBytesPerPair']:,.0f} | {row['sockstatMemBytesPerPair']:,.0f} "
            f"| {row['serverCpuMsPerRound']:,.0f} / {row['loadCpuMsPerRound']:,.0f} ms | {row['heartbeats']:,} "
            f"| {row['events']:,} / {EVENTS * row['n']:,} | +{row['fdsAfter']} fds, +{row['rssAfterKiB']:,} KiB "
            f"({row['rssAfterShareOfPeak'] * 100:.1f}% of the peak's growth; anonymous "
            + (f"{row['anonAfterShareOfPeak'] * 100:.1f}%" if "anonAfterShareOfPeak" in row else "not read") + "), "
            f"{(row['slabAfterShareOfStart'] - 1) * 100:+.1f}% |")
    if relays:
        lines += ["", "The supervisor's relay (no clients; one keep-alive publisher, each POST answered once "
                  "its worker has the event back):", "",
                  "| workers | events | supervisor CPU per event | all processes' CPU per event | publishes/s |",
                  "|---:|---:|---:|---:|---:|"]
        for r in relays:
            lines.append(f"| {r['workers']} | {r['events']:,} | {r['supervisorMicrosecondsPerEvent']:.0f} µs "
                         f"| {r['allMicrosecondsPerEvent']:.0f} µs | {r['publishesPerSecond']:,.0f} |")
    return "\n".join(lines) + "\n"


def svg(rows):
    """Two panels against N: bytes per stream (server user, load generator, kernel per pair; log
    scale) and the ramp's time."""
    rows = sorted((r for r in rows if not r.get("refused")), key=lambda r: r["n"])
    width, height, pad = 960, 450, 70
    panel = (width - 3 * pad) // 2
    top, bottom = 40, height - 110
    ns = [r["n"] for r in rows] or [1]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             'font-family="sans-serif" font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>']

    def x_of(n, left):
        return left + n / (max(ns) * 1.05) * panel

    def axes(left, title, ticks, y_of):
        parts.append(f'<text x="{left}" y="24" font-size="14" font-weight="bold">{title}</text>')
        parts.append(f'<line x1="{left}" y1="{bottom}" x2="{left + panel}" y2="{bottom}" stroke="#333"/>')
        parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>')
        for t in ticks:
            y = y_of(t)
            parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + panel}" y2="{y:.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t:,.0f}</text>')
        for n in ns:
            parts.append(f'<text x="{x_of(n, left):.1f}" y="{bottom + 16}" text-anchor="middle">{n // 1000}k</text>')
        parts.append(f'<text x="{left + panel / 2}" y="{bottom + 34}" text-anchor="middle">SSE streams held (N)</text>')

    def line(left, points, y_of, color, label, legend_y):
        if not points:
            return
        path = " ".join(f"{x_of(n, left):.1f},{y_of(v):.1f}" for n, v in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for n, v in points:
            parts.append(f'<circle cx="{x_of(n, left):.1f}" cy="{y_of(v):.1f}" r="3" fill="{color}"/>')
        parts.append(f'<rect x="{left + 10}" y="{legend_y}" width="14" height="4" fill="{color}"/>')
        parts.append(f'<text x="{left + 30}" y="{legend_y + 6}">{label}</text>')

    # Memory, log scale 10 B … 100 KB.
    low, high = 10, 100_000

    def y_mem(v):
        return bottom - (math.log10(max(v, low)) - math.log10(low)) / (math.log10(high) - math.log10(low)) * (bottom - top)
    axes(pad, "Memory per stream (bytes, log scale)", [10, 100, 1_000, 10_000, 100_000], y_mem)
    series = [("slabBytesPerPair", "#6e7781", "kernel, both ends (Slab growth)"),
              ("loadBytesPerStream", "#e36209", "rill load, user (RSS growth)"),
              ("serverBytesPerStream", "#1f6feb", "rill serve, user (RSS growth)")]
    for i, (key, color, label) in enumerate(series):
        line(pad, [(r["n"], r[key]) for r in rows], y_mem, color, label, bottom + 48 + 16 * i)

    # Ramp time, linear.
    left = 2 * pad + panel
    peak = max([r["rampSeconds"] for r in rows] or [1]) * 1.15
    step = 10 ** max(0, len(str(int(peak / 5))) - 1)
    while peak / step > 6:
        step *= 2

    def y_time(v):
        return bottom - v / peak * (bottom - top)
    axes(left, "Time to open all N streams (s)", [i * step for i in range(int(peak / step) + 1)], y_time)
    line(left, [(r["n"], r["rampSeconds"]) for r in rows], y_time, "#1f6feb", "rill load ramp (connect + response head)",
         bottom + 48)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("counts", nargs="*", type=int, default=[100_000, 250_000, 500_000, 1_000_000])
    parser.add_argument("--rill", required=True)
    parser.add_argument("--hold", type=int, default=300, help="seconds the streams are held (at least 60)")
    parser.add_argument("--port", type=int, default=22000, help="the server's port (+1 for each further N)")
    parser.add_argument("--relay", type=int, default=0, help="events for the relay measurement (0: skip it)")
    parser.add_argument("--serve-args", default="", help="more arguments for rill serve")
    parser.add_argument("--load-args", default="", help="more arguments for rill load")
    parser.add_argument("--results", default="Benchmarks/results/million")
    parser.add_argument("--fresh", action="store_true", help="drop the rows of earlier runs in RESULTS/million.json")
    parser.add_argument("--machine", default=f"{os.cpu_count()} CPUs, Linux {os.uname().release}")
    args = parser.parse_args()
    args.hold = max(60, args.hold)
    os.makedirs(args.results, exist_ok=True)
    relays = []
    if args.relay:
        for workers in (2, 51):
            relay = relay_cost(args.rill, args.port + 90, workers, args.relay)
            log(args.results, f"relay to {workers} workers: {relay}")
            relays.append(relay)
    rows = []
    for index, n in enumerate(args.counts):
        try:
            row = measure(n, index, args)
        except Exception as error:  # a run that could not even be measured is a refused row
            row = {"n": n, "refused": f"{type(error).__name__}: {error}"}
            log(args.results, f"N={n}: REFUSED: {row['refused']}")
        rows.append(row)
    # Rows of earlier runs for other N stay (a run per N fits in a time window); the same N is replaced.
    path = os.path.join(args.results, "million.json")
    if os.path.exists(path) and not args.fresh:
        with open(path) as f:
            earlier = json.load(f)
        measured = {row["n"] for row in rows}
        rows = sorted([r for r in earlier.get("rows", []) if r["n"] not in measured] + rows, key=lambda r: r["n"])
        relays = relays or earlier.get("relay", [])
    text = markdown(rows, relays, args.machine)
    with open(os.path.join(args.results, "million.md"), "w") as f:
        f.write(text)
    with open(os.path.join(args.results, "million.json"), "w") as f:
        json.dump({"machine": args.machine, "rows": rows, "relay": relays}, f, indent=1)
    with open(os.path.join(args.results, "million.svg"), "w") as f:
        f.write(svg(rows))
    print(text)
    return 1 if any(r.get("refused") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
