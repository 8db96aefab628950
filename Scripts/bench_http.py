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
(connection setup included, 50 connections per run). Writes RESULTS/http.md and http.json.
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
                continue
            else:
                raise SystemExit(f"unknown server {name}")
            self.processes[name] = subprocess.Popen(pinned(0, command), stdout=subprocess.DEVNULL, env=env)
            self.paths[name]["port"] = port
        for name, process in self.processes.items():
            wait_listening(self.paths[name]["port"], process, name)

    def url(self, name, workload):
        return f"http://127.0.0.1:{self.paths[name]['port']}{self.paths[name][workload]}"

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
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]  # in ms


def run_wrk(url, args):
    out = subprocess.run(pinned(1, ["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds}s", "--latency", url]),
                         capture_output=True, text=True, timeout=args.seconds + 60)
    text = out.stdout
    if out.returncode != 0 or "Requests/sec" not in text:
        raise RuntimeError(f"wrk failed on {url}: {text} {out.stderr}")
    if "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError(f"errors from {url}:\n{text}")
    return {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
        "p50_ms": parse_duration(re.search(r"50%\s+(\S+)", text).group(1)),
        "p99_ms": parse_duration(re.search(r"99%\s+(\S+)", text).group(1)),
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
                    result = run_wrk(servers.url(name, workload), args)
                    after = servers.allocations(name)
                    if before is not None:
                        result["allocations_per_request"] = (after - before) / max(1, result["requests"])
                    result.update(server=name, workload=workload, round=round_index + 1)
                    runs.append(result)
                    print(f"round {round_index + 1} {workload:5} {name:12} {result['requests_per_second']:>10.0f} req/s "
                          f"p99 {result['p99_ms']:.2f} ms"
                          + (f"  {result['allocations_per_request']:.3f} allocs/req" if before is not None else ""),
                          file=sys.stderr, flush=True)
    finally:
        servers.stop()
        shutil.rmtree(directory, ignore_errors=True)

    summary = {}
    for workload in workloads:
        for name in servers_list:
            mine = [r for r in runs if r["server"] == name and r["workload"] == workload]
            entry = {
                "requests_per_second": statistics.median(r["requests_per_second"] for r in mine),
                "p99_ms": statistics.median(r["p99_ms"] for r in mine),
                "p50_ms": statistics.median(r["p50_ms"] for r in mine),
                "rounds": [r["requests_per_second"] for r in mine],
            }
            if "allocations_per_request" in mine[0]:
                entry["allocations_per_request"] = statistics.median(r["allocations_per_request"] for r in mine)
            summary.setdefault(workload, {})[name] = entry

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
        lines += [f"## {title}", "", "| server | path | req/s (median) | rounds | p50 ms | p99 ms | allocs/req |",
                  "| --- | --- | ---: | --- | ---: | ---: | ---: |"]
        for name in servers_list:
            e = summary[workload][name]
            allocs = f"{e['allocations_per_request']:.3f}" if "allocations_per_request" in e else ""
            lines.append(f"| {LABELS.get(name, name)} | `{servers.paths[name][workload]}` | {e['requests_per_second']:,.0f} | "
                         + " / ".join(f"{v:,.0f}" for v in e["rounds"])
                         + f" | {e['p50_ms']:.2f} | {e['p99_ms']:.2f} | {allocs} |")
        if "rill" in summary[workload]:
            rill = summary[workload]["rill"]
            ratios = []
            for peer in [n for n in servers_list if n != "rill"]:
                p = summary[workload][peer]
                ratios.append(f"rill/{peer} {rill['requests_per_second'] / p['requests_per_second']:.2f}× req/s, "
                              f"p99 {rill['p99_ms']:.2f} vs {p['p99_ms']:.2f} ms")
            lines += ["", "Ratios: " + "; ".join(ratios) + "."]
        lines.append("")
    with open(f"{args.results}/http.md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
