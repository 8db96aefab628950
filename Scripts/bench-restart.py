#!/usr/bin/env python3
"""Restarts of `rill serve --workers W` under N reconnecting streams (`rill load`, which reconnects
like EventSource with Last-Event-ID and counts lost and repeated events per stream), while events
are published at R/s. Three ways to restart, each on a fresh server and a fresh `rill load`:

  a  kill -9 every worker at once: no drain; the supervisor restarts them (with the history) and
     every stream reconnects after the default 3 s retry (plus its jitter): the storm.
  b  SIGTERM every worker at once with --drain-window D: each drains (streams end spread over D,
     each told a random retry:) and the supervisor starts it again once it has exited.
  c  SIGHUP the supervisor: a rolling restart (successors first, then the old workers drain one
     at a time).

Per scenario: the time from the restart until every stream has resumed (no reconnect pending:
the server holds N streams again and rill load's reconnects have stopped), events lost and
duplicated (rill load's per-stream checks), reconnects, failed attempts, the peak connection
rate the server saw (growth of the kernel's Tcp PassiveOpens per second, sampled every 0.25 s),
and the kernel's ListenOverflows and
ListenDrops over the run (machine-wide: /proc/net/netstat).

Usage: bench-restart.py [--streams 100000] [--workers 6] [--publish-rate 10] [--drain 10]
                        [--port 21500] [--scenarios a,b,c] [--rill .build/release/rill]
                        [--out Benchmarks/results/restart]
Streams over ~20,000 need rill load's worker processes (it starts them: --workers auto) and
several source addresses (127.0.1.1 upwards, one per 10,000 streams)."""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request


def netstat():
    with open("/proc/net/netstat") as f:
        rows = [line.split() for line in f if line.startswith("TcpExt:")]
    values = dict(zip(rows[0][1:], (int(v) for v in rows[1][1:])))
    return values["ListenOverflows"], values["ListenDrops"]


def passive_opens():
    """Connections this machine's listeners accepted (handshakes completed): Tcp PassiveOpens in
    /proc/net/snmp. Machine-wide, but during a run the server is the only busy listener, and unlike
    the workers' summed counters it never goes back when a worker is replaced."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(dict(zip(rows[0][1:], rows[1][1:]))["PassiveOpens"])


def metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except Exception:
        return None
    values = {}
    for line in text.splitlines():
        match = re.match(r"^(rill_[a-z_]+) (\d+)$", line)
        if match:
            values[match.group(1)] = int(match.group(2))
    return values


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def start_server(args, log):
    command = [args.rill, "serve", "--workers", str(args.workers), "--port", str(args.port),
               "--drain-window", str(args.drain), "--tick", "0", "--heartbeat", "15",
               "--history", "100000", "--history-bytes", "64M"]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        if metrics(args.port) is not None and len(children(server.pid)) == args.workers:
            return server, command
        time.sleep(0.2)
    raise SystemExit("rill serve did not start")


def run(args, scenario, directory):
    log = open(os.path.join(directory, f"{scenario}-serve.log"), "w")
    server, serve_command = start_server(args, log)
    overflows0, drops0 = netstat()
    report_json = os.path.join(directory, f"{scenario}-load.json")
    sources = max(1, (args.streams + 9_999) // 10_000)
    hold = {"a": 30, "b": 25 + 2 * args.drain, "c": 20 + args.workers * (args.drain + 3)}[scenario]
    load_command = [args.rill, "load", f"http://127.0.0.1:{args.port}/sse?topic=r", "-c", str(args.streams),
                    "--rate", str(args.ramp), "-d", f"{hold}s", "--publish-rate", str(args.publish_rate),
                    "--publish-path", "/publish?topic=r", "--json", report_json,
                    "--source", f"127.0.1.1-127.0.1.{sources}"]
    load_log = open(os.path.join(directory, f"{scenario}-load.txt"), "w")
    load = subprocess.Popen(load_command, stdout=load_log, stderr=subprocess.STDOUT)
    # Wait for every stream, then a few quiet seconds of events.
    deadline = time.time() + args.streams / args.ramp + 120
    while time.time() < deadline:
        values = metrics(args.port) or {}
        if values.get("rill_subscribers", 0) >= args.streams:
            break
        time.sleep(0.5)
    else:
        raise SystemExit(f"{scenario}: only {values.get('rill_subscribers')} streams opened")
    quiet_start, quiet_opens = time.time(), passive_opens()
    time.sleep(3)
    # The machine's accept rate with nothing restarting: what others on a shared machine add.
    quiet_rate = (passive_opens() - quiet_opens) / (time.time() - quiet_start)
    samples = []
    before = metrics(args.port)
    trigger = time.time()
    workers = children(server.pid)
    if scenario == "a":
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
    elif scenario == "b":
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
    else:
        os.kill(server.pid, signal.SIGHUP)
    resumed_at = None
    dipped = False
    most_fds = {}  # per worker process: the most descriptors it held (connections, about)
    last_fd_look = 0
    while load.poll() is None:
        if time.time() - last_fd_look >= 1:
            last_fd_look = time.time()
            for pid in children(server.pid):
                try:
                    most_fds[pid] = max(most_fds.get(pid, 0), len(os.listdir(f"/proc/{pid}/fd")))
                except OSError:
                    pass
        values = metrics(args.port)
        now = time.time() - trigger
        samples.append((now, passive_opens(), (values or {}).get("rill_subscribers", -1)))
        if values:
            if values.get("rill_subscribers", 0) < args.streams:
                dipped = True
                resumed_at = None
            elif dipped and resumed_at is None:
                resumed_at = now
        time.sleep(0.25)
    overflows1, drops1 = netstat()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=args.drain + 30)
    except subprocess.TimeoutExpired:
        server.kill()
    with open(report_json) as f:
        report = json.load(f)
    # Peak connection rate: the kernel's count of accepted handshakes over any one second of samples.
    peak = 0
    for i, (t, total, _) in enumerate(samples):
        for later_t, later_total, _ in samples[i + 1:]:
            if later_t - t >= 1.0:
                peak = max(peak, (later_total - total) / (later_t - t))
                break
    # The client's view: rill load's per-second series of open streams, from its start.
    started = report.get("startedAt")
    client_resumed = None
    if started:
        from datetime import datetime
        start_wall = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
        offset = trigger - start_wall
        short = [p["second"] for p in report.get("series", []) if p["second"] > offset and p["open"] < args.streams]
        if short:
            client_resumed = max(short) + 1 - offset
    result = {
        "scenario": {"a": "kill -9 every worker (no drain)", "b": f"SIGTERM every worker, {args.drain} s drain",
                     "c": "SIGHUP rolling restart"}[scenario],
        "streams": args.streams, "workers": args.workers, "publishRate": args.publish_rate,
        "drainWindowSeconds": args.drain,
        "secondsUntilAllResumed": round(client_resumed, 1) if client_resumed is not None else None,
        "secondsUntilServerHeldAllAgain": round(resumed_at, 2) if resumed_at is not None else None,
        "streamsNeverDipped": not dipped,
        "published": report.get("published"), "eventsReceived": report.get("events"),
        "streamsThatLostAnEvent": report.get("streamsThatLostAnEvent"),
        "streamsWithGaps": report.get("streamsWithGaps"),
        "duplicateEvents": report.get("duplicateEvents"),
        "streamsThatRepeatedAnEvent": report.get("streamsThatRepeatedAnEvent"),
        "resets": report.get("resets"), "reconnects": report.get("reconnects"),
        "reconnectFailures": report.get("reconnectFailures"),
        "reconnectLatencyMicroseconds": report.get("latencyMicroseconds", {}).get("reconnect"),
        "heldAtEnd": report.get("heldAtEnd"), "errors": report.get("errors"),
        "peakConnectionsPerSecond": round(peak),
        "connectionsPerSecondBefore": round(quiet_rate),
        "mostDescriptorsPerWorker": {str(pid): n for pid, n in sorted(most_fds.items())},
        "workersBefore": sorted(workers),
        "listenOverflows": overflows1 - overflows0, "listenDrops": drops1 - drops0,
        "serverBefore": {k: before.get(k) for k in ("rill_subscribers", "rill_connections_total")} if before else None,
        "serveCommand": " ".join(serve_command), "loadCommand": " ".join(load_command),
        "samples": [[round(t, 2), c, s] for t, c, s in samples],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1), flush=True)
    return result


def markdown(results, args):
    lines = [
        f"# Restarts under {args.streams} streams: rill serve --workers {args.workers}, events at {args.publish_rate}/s",
        "",
        f"`Scripts/bench-restart.py --streams {args.streams} --workers {args.workers} --publish-rate {args.publish_rate} "
        f"--drain {args.drain}` (binary `{args.rill}`), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, one run each "
        "on the shared 2-core machine (figures are noisy; compare the scenarios with each other).",
        "",
        "| scenario | until all resumed | published | lost (streams) | duplicates | resets | reconnects | failed attempts | peak conn/s (before) | ListenOverflows | ListenDrops | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        resumed = f"{r['secondsUntilAllResumed']} s" if r["secondsUntilAllResumed"] is not None else "-"
        lines.append(
            f"| {r['scenario']} | {resumed} | {r['published']} | {r['streamsThatLostAnEvent']} | {r['duplicateEvents']} | "
            f"{r['resets']} | {r['reconnects']} | {r['reconnectFailures']} | "
            f"{r['peakConnectionsPerSecond']} ({r['connectionsPerSecondBefore']}) | "
            f"{r['listenOverflows']} | {r['listenDrops']} | {', '.join(f'{k}: {v}' for k, v in (r['errors'] or {}).items()) or 'none'} |")
    lines += ["",
              "Until all resumed: from the signal until rill load holds every stream again (its per-second "
              "series, so to about a second). Lost: streams that missed an event (a gap rill load saw, or ended "
              "behind the publications). Peak conn/s: the largest growth of the kernel's Tcp PassiveOpens "
              "(/proc/net/snmp: handshakes the listeners completed, machine-wide) over a second of 0.25 s samples; in brackets, its rate over the 3 s before the restart (the machine's other traffic). ListenOverflows/ListenDrops: the kernel's TcpExt counters over "
              "the run, machine-wide (other processes on this shared machine count too).",
              "", "Commands:", ""]
    for r in results:
        lines += [f"- {r['scenario']}: `{r['serveCommand']}`; `{r['loadCommand']}`"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--publish-rate", type=float, default=10)
    parser.add_argument("--drain", type=float, default=10)
    parser.add_argument("--ramp", type=int, default=10_000, help="streams opened per second")
    parser.add_argument("--port", type=int, default=21500)
    parser.add_argument("--scenarios", default="a,b,c")
    parser.add_argument("--rill", default=".build/release/rill")
    parser.add_argument("--out", default="Benchmarks/results/restart")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    results = [run(args, scenario, args.out) for scenario in args.scenarios.split(",")]
    with open(os.path.join(args.out, "restart.json"), "w") as f:
        json.dump({"arguments": vars(args), "results": results}, f, indent=1)
    with open(os.path.join(args.out, "restart.md"), "w") as f:
        f.write(markdown(results, args))
    print(markdown(results, args))


if __name__ == "__main__":
    sys.exit(main())
