#!/usr/bin/env python3
"""The keep-alive HTTP benchmark: `rill serve` (one worker, --tick 0) against nginx (1 worker),
Hummingbird 2 (Benchmarks/HTTPPeerHummingbird, one event loop) and a SwiftNIO NIOHTTP1 pipeline
(Benchmarks/HTTPPeerNIO, one event loop), all serving the same bytes:

  page   the 2.7 KB demo page (`GET /` of rill serve; written to DIR/index.html for the peers)
  small  a 13-byte body ("Hello, World!"): DIR/static/hello.txt, `rill serve --static DIR/static`

Every server runs for the whole benchmark, pinned to CPU 0; wrk runs pinned to CPU 1:
`wrk -t1 -cCONNECTIONS -dSECONDS --latency URL`. ROUNDS rounds; in each, every workload against every
server in turn (the order rotates per round, so drift hits all of them). Figures are the median over
the rounds: requests/s and p99 latency (wrk's). Servers named rill* run with Benchmarks/MallocCount
preloaded when --shim is given: their allocations per request are counted over each wrk run
(connection setup included, 50 connections per run). Each run also records how long the server and
wrk waited for their CPUs (run-queue delay from /proc/PID/schedstat: runnable, but another task had
the CPU), which is what a p99 of tens of ms on a shared machine is made of. Writes RESULTS/http.md
and http.json.
Called by Scripts/bench-http.sh, which builds the binaries.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

LABELS = {
    "rill": "rill serve (1 worker)",
    "rill-before": "rill serve, --rill-before build",
    "nginx": "nginx (1 worker, default config, access log off)",
    "hummingbird": "Hummingbird 2.28.1 (1 event loop)",
    "nio": "SwiftNIO 2.101.2 NIOHTTP1 pipeline (1 event loop)",
}
SMALL_BODY = b"Hello, World!"  # 13 bytes


def pinned(cpu, command):
    if shutil.which("taskset") and os.cpu_count() >= 2:
        return ["taskset", "-c", str(cpu)] + command
    return command


def wait_listening(port, process, name):
    for _ in range(400):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {port}")


class Servers:
    """Starts every server once; `paths[name][workload]` is the URL path each serves it at."""

    def __init__(self, args, directory):
        self.processes = {}
        self.counters = {}
        self.paths = {}
        self.nginx_pid = None
        self.pids = {}
        port = args.base_port
        for name in args.servers.split(","):
            port += 1
            self.paths[name] = {"page": "/", "small": "/static/hello.txt"}
            env = dict(os.environ)
            if name.startswith("rill"):
                binary = args.rill if name == "rill" else args.rill_before
                if args.shim:
                    self.counters[name] = tempfile.NamedTemporaryFile(suffix=".counts", delete=False).name
                    env.update(LD_PRELOAD=args.shim, MALLOC_COUNT_FILE=self.counters[name])
                command = [binary, "serve", "--port", str(port), "--tick", "0", "--static", f"{directory}/static"]
            elif name == "hummingbird":
                command = [args.hummingbird, "--port", str(port), "--page", f"{directory}/index.html",
                           "--small", f"{directory}/static/hello.txt"]
            elif name == "nio":
                command = [args.nio, "--port", str(port), "--page", f"{directory}/index.html",
                           "--small", f"{directory}/static/hello.txt"]
            elif name == "nginx":
                self.paths[name]["page"] = "/index.html"  # "/" would add nginx's index lookup
                out = subprocess.run(pinned(0, ["Scripts/nginx-loopback.sh", str(port), "1"]),
                                     env=dict(os.environ, NGINX_ROOT=directory), capture_output=True, text=True)
                if out.returncode != 0:
                    raise RuntimeError(f"nginx: {out.stderr}")
                _, pid, self.nginx_dir = out.stdout.split()
                self.nginx_pid = int(pid)
                self.paths[name]["port"] = port
                # The worker serves (the master only watches it): its waits for the CPU are the ones that count.
                children = subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True).stdout.split()
                self.pids[name] = int(children[0]) if children else int(pid)
                continue
            else:
                raise SystemExit(f"unknown server {name}")
            self.processes[name] = subprocess.Popen(pinned(0, command), stdout=subprocess.DEVNULL, env=env)
            self.paths[name]["port"] = port
        for name, process in self.processes.items():
            wait_listening(self.paths[name]["port"], process, name)
            self.pids[name] = process.pid

    def url(self, name, workload):
        return f"http://127.0.0.1:{self.paths[name]['port']}{self.paths[name][workload]}"

    def waited_ms(self, name):
        """How long the server's process has waited for its CPU so far (see run_delay_ms), or None."""
        return run_delay_ms(self.pids[name]) if name in self.pids else None

    def allocations(self, name):
        """The server's allocation count so far (malloc-count shim), or None."""
        path = self.counters.get(name)
        if not path:
            return None
        with open(path, "rb") as f:
            allocations, reallocations, _ = struct.unpack("<QQQ", f.read(24))
        return allocations + reallocations

    def stop(self):
        for process in self.processes.values():
            process.send_signal(signal.SIGKILL)
            process.wait()
        if self.nginx_pid:
            os.kill(self.nginx_pid, signal.SIGTERM)
            shutil.rmtree(self.nginx_dir, ignore_errors=True)
        for path in self.counters.values():
            os.unlink(path)


def parse_duration(text):
    match = re.match(r"([\d.]+)(us|ms|s|m|h)$", text)
    if match is None:
        raise RuntimeError(f"not a duration: {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]  # in ms (wrk prints 1.02m past 60 s)


def run_delay_ms(pid):
    """How long the process's threads have waited on a run queue so far (runnable, but another task
    had their CPU), from /proc/PID/task/*/schedstat, in ms; None if unknown. (Hummingbird and NIO
    serve from a thread other than the main one.)"""
    try:
        total = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[1])
        return total / 1e6
    except (OSError, IndexError, ValueError):
        return None


def run_client(command, seconds):
    """Runs a load client pinned to CPU 1 for about `seconds`; returns the process, its output and
    errors, and how long it waited for its CPU (ms, None if never read): read while it runs, since its
    /proc entry goes when it exits."""
    process = subprocess.Popen(pinned(1, command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first, last, deadline = None, None, time.time() + seconds + 60
    while process.poll() is None and time.time() < deadline:
        delay = run_delay_ms(process.pid)
        if delay is not None:
            first = delay if first is None else first
            last = delay
        time.sleep(0.1)
    text, errors = process.communicate(timeout=60)
    return process, text, errors, (round(last - first, 1) if first is not None else None)


def run_wrk(url, args):
    command = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", url]
    process, text, errors, waited = run_client(command, args.seconds)
    if process.returncode != 0 or "Requests/sec" not in text:
        raise RuntimeError(f"wrk failed on {url}: {text} {errors}")
    if "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError(f"errors from {url}:\n{text}")
    return {
        "wrk_waited_ms": waited,
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
        "p50_ms": parse_duration(re.search(r"50%\s+(\S+)", text).group(1)),
        "p99_ms": parse_duration(re.search(r"99%\s+(\S+)", text).group(1)),
    }


def run_fixed_rate(url, args):
    """Open loop: `rill load --mode http` at --fixed-rate requests/s over the same connections, latency
    measured from each request's intended send time (no coordinated omission). Every server gets the
    same offered load, so its p99 no longer depends on how hard it drives the client: with wrk's closed
    loop a faster server keeps wrk busier, and a busy wrk waits longer for its CPU on a shared machine."""
    command = [args.rill, "load", "--mode", "http", "-c", str(args.connections), "--request-rate",
               str(args.fixed_rate), "-d", f"{args.seconds}s", url]
    process, text, errors, waited = run_client(command, args.seconds)
    # The "request" row of the latency table (the others: connect, first byte).
    row = next((line.split() for line in text.splitlines() if line.split()[:1] == ["request"]), None)
    if process.returncode != 0 or row is None:
        raise RuntimeError(f"rill load failed on {url}: {text} {errors}")
    values = [parse_duration(v) for v in row[1:6]]
    rate = re.search(r"([\d.]+) requests/s", text)
    return {
        "client_waited_ms": waited,
        "requests_per_second": float(rate.group(1)) if rate else None,
        "p50_ms": values[0], "p90_ms": values[1], "p99_ms": values[2], "p999_ms": values[3], "max_ms": values[4],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rill", required=True)
    parser.add_argument("--rill-before", help="another rill build (before a change): server rill-before")
    parser.add_argument("--hummingbird")
    parser.add_argument("--nio")
    parser.add_argument("--shim", help="Benchmarks/MallocCount built as a shared object")
    parser.add_argument("--servers", default="rill,nginx,hummingbird,nio")
    parser.add_argument("--workloads", default="page,small")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--base-port", type=int, default=18200)
    parser.add_argument("--results", default="Benchmarks/results/http")
    parser.add_argument("--machine", default="")
    parser.add_argument("--note", default="")
    parser.add_argument("--fixed-rate", type=int, default=0,
                        help="also run each server at this many requests/s (rill load, open loop) for its p99")
    args = parser.parse_args()
    servers_list = args.servers.split(",")
    workloads = args.workloads.split(",")

    directory = tempfile.mkdtemp(prefix="rill-http-bench.")
    os.chmod(directory, 0o755)
    os.makedirs(f"{directory}/static")
    # The demo page's bytes, from `rill serve` itself.
    probe = subprocess.Popen([args.rill, "serve", "--port", str(args.base_port), "--tick", "0"], stdout=subprocess.DEVNULL)
    try:
        wait_listening(args.base_port, probe, "rill")
        page = urllib.request.urlopen(f"http://127.0.0.1:{args.base_port}/").read()
    finally:
        probe.kill()
        probe.wait()
    with open(f"{directory}/index.html", "wb") as f:
        f.write(page)
    with open(f"{directory}/static/hello.txt", "wb") as f:
        f.write(SMALL_BODY)
    bodies = {"page": page, "small": SMALL_BODY}

    servers = Servers(args, directory)
    runs = []
    try:
        for name in servers_list:  # every server answers every workload with the same bytes
            for workload in workloads:
                got = urllib.request.urlopen(servers.url(name, workload)).read()
                if got != bodies[workload]:
                    raise RuntimeError(f"{name} {workload}: {len(got)} bytes, not the {len(bodies[workload])} expected")
        for round_index in range(args.rounds):
            shift = round_index % len(servers_list)
            order = servers_list[shift:] + servers_list[:shift]
            for workload in workloads:
                for name in order:
                    before = servers.allocations(name)
                    waited = servers.waited_ms(name)
                    result = run_wrk(servers.url(name, workload), args)
                    after = servers.allocations(name)
                    if before is not None:
                        result["allocations_per_request"] = (after - before) / max(1, result["requests"])
                    if waited is not None:
                        result["server_waited_ms"] = round(servers.waited_ms(name) - waited, 1)
                    result["load_average"] = os.getloadavg()[0]
                    result.update(server=name, workload=workload, round=round_index + 1, kind="wrk")
                    runs.append(result)
                    print(f"round {round_index + 1} {workload:5} {name:12} {result['requests_per_second']:>10.0f} req/s "
                          f"p99 {result['p99_ms']:.2f} ms  waited for a CPU: server {result.get('server_waited_ms')} ms, wrk {result['wrk_waited_ms']} ms"
                          f"  load {result['load_average']:.1f}"
                          + (f"  {result['allocations_per_request']:.3f} allocs/req" if before is not None else ""),
                          file=sys.stderr, flush=True)
                    if args.fixed_rate:
                        waited = servers.waited_ms(name)
                        fixed = run_fixed_rate(servers.url(name, workload), args)
                        if waited is not None:
                            fixed["server_waited_ms"] = round(servers.waited_ms(name) - waited, 1)
                        fixed.update(server=name, workload=workload, round=round_index + 1, kind="fixed")
                        runs.append(fixed)
                        print(f"round {round_index + 1} {workload:5} {name:12} at {args.fixed_rate} req/s: p50 "
                              f"{fixed['p50_ms']:.2f} p99 {fixed['p99_ms']:.2f} p99.9 {fixed['p999_ms']:.2f} ms  waited for a "
                              f"CPU: server {fixed.get('server_waited_ms')} ms, client {fixed['client_waited_ms']} ms",
                              file=sys.stderr, flush=True)
    finally:
        servers.stop()
        shutil.rmtree(directory, ignore_errors=True)

    summary = {}
    for workload in workloads:
        for name in servers_list:
            mine = [r for r in runs if r["server"] == name and r["workload"] == workload and r["kind"] == "wrk"]
            entry = {
                "requests_per_second": statistics.median(r["requests_per_second"] for r in mine),
                "p99_ms": statistics.median(r["p99_ms"] for r in mine),
                "p50_ms": statistics.median(r["p50_ms"] for r in mine),
                "rounds": [r["requests_per_second"] for r in mine],
                "p99_rounds": [r["p99_ms"] for r in mine],
            }
            for key in ("server_waited_ms", "wrk_waited_ms"):
                values = [r[key] for r in mine if r.get(key) is not None]
                if values:
                    entry[key] = statistics.median(values)
            if "allocations_per_request" in mine[0]:
                entry["allocations_per_request"] = statistics.median(r["allocations_per_request"] for r in mine)
            summary.setdefault(workload, {})[name] = entry
            fixed = [r for r in runs if r["server"] == name and r["workload"] == workload and r["kind"] == "fixed"]
            if fixed:
                entry["fixed_rate"] = {key: statistics.median(r[key] for r in fixed)
                                       for key in ("p50_ms", "p99_ms", "p999_ms", "requests_per_second")}
                entry["fixed_rate"]["p99_rounds"] = [r["p99_ms"] for r in fixed]
                for key in ("server_waited_ms", "client_waited_ms"):
                    values = [r[key] for r in fixed if r.get(key) is not None]
                    if values:
                        entry["fixed_rate"][key] = statistics.median(values)

    os.makedirs(args.results, exist_ok=True)
    document = {
        "benchmark": "keep-alive HTTP, wrk -t1 -c%d -d%ds --latency" % (args.connections, args.seconds),
        "machine": args.machine, "note": args.note, "rounds": args.rounds,
        "bytes": {"page": len(page), "small": len(SMALL_BODY)},
        "servers": {name: LABELS.get(name, name) for name in servers_list},
        "paths": {name: {k: v for k, v in servers.paths[name].items() if k != "port"} for name in servers_list},
        "summary": summary, "runs": runs,
    }
    with open(f"{args.results}/http.json", "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
    lines = [
        "# Keep-alive HTTP: requests/s and p99 latency",
        "",
        f"`wrk -t1 -c{args.connections} -d{args.seconds}s --latency`, pinned to CPU 1; each server pinned to CPU 0, "
        f"all running for the whole benchmark. {args.rounds} interleaved rounds (order rotated per round); "
        "figures are medians over the rounds. Reproduce: `Scripts/bench-http.sh`.",
        "",
        f"Machine: {args.machine}. Shared with other builds: compare ratios within this run, not absolute figures.",
        "",
    ]
    if args.note:
        lines += [args.note, ""]
    for workload in workloads:
        title = {"page": f"(a) the demo page, {len(page)} bytes", "small": "(b) a 13-byte body"}.get(workload, workload)
        lines += [f"## {title}", "",
                  "| server | path | req/s (median) | rounds | p50 ms | p99 ms | p99 rounds | waited for a CPU, server / wrk (ms per run) | allocs/req |",
                  "| --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: |"]
        for name in servers_list:
            e = summary[workload][name]
            allocs = f"{e['allocations_per_request']:.3f}" if "allocations_per_request" in e else ""
            lines.append(f"| {LABELS.get(name, name)} | `{servers.paths[name][workload]}` | {e['requests_per_second']:,.0f} | "
                         + " / ".join(f"{v:,.0f}" for v in e["rounds"])
                         + f" | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | "
                         + " / ".join(f"{v:.1f}" for v in e["p99_rounds"])
                         + f" | {e.get('server_waited_ms', '')} / {e.get('wrk_waited_ms', '')} | {allocs} |")
        if "rill" in summary[workload]:
            rill = summary[workload]["rill"]
            ratios = []
            for peer in [n for n in servers_list if n != "rill"]:
                p = summary[workload][peer]
                ratios.append(f"rill/{peer} {rill['requests_per_second'] / p['requests_per_second']:.2f}× req/s, "
                              f"p99 {rill['p99_ms']:.2f} vs {p['p99_ms']:.2f} ms")
            lines += ["", "Ratios: " + "; ".join(ratios) + "."]
        lines.append("")
        if args.fixed_rate:
            lines += [f"At a fixed {args.fixed_rate:,} requests/s (`rill load --mode http -c{args.connections} "
                      f"--request-rate {args.fixed_rate}`, open loop, latency from each request's intended time), "
                      "the same rounds:", "",
                      "| server | req/s done | p50 ms | p99 ms | p99.9 ms | p99 rounds | waited for a CPU, server / client (ms per run) |",
                      "| --- | ---: | ---: | ---: | ---: | --- | ---: |"]
            for name in servers_list:
                f = summary[workload][name]["fixed_rate"]
                lines.append(f"| {LABELS.get(name, name)} | {f['requests_per_second']:,.0f} | {f['p50_ms']:.2f} | "
                             f"{f['p99_ms']:.2f} | {f['p999_ms']:.2f} | " + " / ".join(f"{v:.2f}" for v in f["p99_rounds"])
                             + f" | {f.get('server_waited_ms', '')} / {f.get('client_waited_ms', '')} |")
            lines.append("")
    with open(f"{args.results}/http.md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
