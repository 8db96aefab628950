#!/usr/bin/env python3
"""The client side of Scripts/cluster-check.sh: event streams and publications against three
`rill serve --redis` nodes, and the faults (a node killed, Redis stopped, Redis restarted empty).
Exits 1 with the reason at the first failed check. Standard library only."""
import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time


class Stream:
    """One event stream, read on a thread: events as (id, type, data), the response head's headers."""

    def __init__(self, address, topic="c", last_event_id=None):
        host, port = address.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        header = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id else ""
        self.sock.sendall(f"GET /sse?topic={topic} HTTP/1.1\r\nHost: c\r\n{header}\r\n".encode())
        self.events, self.comments, self.headers, self.closed = [], 0, {}, False
        self.lock = threading.Lock()
        self.opened = threading.Event()
        threading.Thread(target=self.run, daemon=True).start()
        if not self.opened.wait(10):
            fail(f"no stream head from {address}")

    def run(self):
        buffer = b""
        try:
            while b"\r\n\r\n" not in buffer:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError
                buffer += chunk
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            for line in head.decode().split("\r\n")[1:]:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self.opened.set()
            last_id, kind, data = "", "message", []
            while True:
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    line = line.decode()
                    if line == "":
                        if data:
                            with self.lock:
                                self.events.append((last_id, kind, "\n".join(data)))
                        kind, data = "message", []
                    elif line.startswith(":"):
                        self.comments += 1
                    else:
                        field, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if field == "id":
                            last_id = value
                        elif field == "event":
                            kind = value
                        elif field == "data":
                            data.append(value)
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
        except (OSError, ConnectionError):
            pass
        self.closed = True
        self.opened.set()

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def publish(address, data, topic="c", timeout=10):
    """POST /publish; returns (status, X-Event-Id or None)."""
    host, port = address.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            body = data.encode()
            sock.sendall(
                f"POST /publish?topic={topic} HTTP/1.1\r\nHost: c\r\nConnection: close\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            response = b""
            while b"\r\n\r\n" not in response:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                response += chunk
    except OSError:
        return (0, None)
    lines = response.split(b"\r\n\r\n")[0].decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    event_id = next((l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("x-event-id:")), None)
    return (status, event_id)


def fail(reason):
    print(f"cluster-check: FAILED: {reason}", flush=True)
    sys.exit(1)


def wait_until(condition, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def expect_stream(stream, expected, what):
    """The stream's events (id, data) are exactly `expected`, in order."""
    if not wait_until(lambda: len(stream.snapshot()) >= len(expected)):
        fail(f"{what}: {len(stream.snapshot())} events of {len(expected)}")
    time.sleep(0.2)  # nothing more may follow
    got = [(event_id, data) for event_id, _, data in stream.snapshot()]
    if got != expected:
        fail(f"{what}: got {got[:3]}...{got[-3:]} ({len(got)}), expected {expected[:3]}...{expected[-3:]} ({len(expected)})")


def publish_all(node, texts, published, allow_refusal=False):
    for text in texts:
        status, event_id = publish(node, text)
        if status == 204:
            published.append((event_id, text))
        elif not allow_refusal:
            fail(f"publication {text} on {node}: status {status}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", required=True)
    parser.add_argument("--node-pids", required=True)
    parser.add_argument("--redis-pidfile", required=True)
    parser.add_argument("--redis-start", required=True)
    parser.add_argument("--redis-address", required=True)
    args = parser.parse_args()
    a, b, c = args.nodes.split(",")
    pid_b = int(args.node_pids.split(",")[1])

    # 1. Published on A: every subscriber on A, B and C gets each event once, in order, same ids.
    streams = {node: [Stream(node) for _ in range(5)] for node in (a, b, c)}
    published = []
    publish_all(a, [f"one-{i}" for i in range(50)], published)
    for node, group in streams.items():
        for index, stream in enumerate(group):
            expect_stream(stream, published, f"stream {index} on {node}")
    print(f"cluster-check: 50 events published on A reached 15 streams on A, B, C once each, in order", flush=True)

    # 2. Node B killed: its subscribers resume on C from their last id, nothing lost or twice.
    os.kill(pid_b, signal.SIGKILL)
    if not wait_until(lambda: all(s.closed for s in streams[b])):
        fail("node B's streams did not end when it was killed")
    publish_all(a, [f"two-{i}" for i in range(20)], published)  # while B's clients are away
    resumed = []
    for stream in streams[b]:
        last = stream.snapshot()[-1][0]
        resumed.append((Stream(c, last_event_id=last), len(stream.snapshot())))
    publish_all(a, [f"three-{i}" for i in range(20)], published)
    for index, (stream, seen) in enumerate(resumed):
        if stream.headers.get("rill-reset"):
            fail(f"resumed stream {index} on C was reset: {stream.headers}")
        expect_stream(stream, published[seen:], f"B's stream {index} resumed on C")
    print("cluster-check: node B killed; its 5 subscribers resumed on C with nothing lost or duplicated", flush=True)

    # 3. Redis stopped for 5 s, then continued: publications meanwhile refused (503), never a 204
    #    for an event that was not stored; streams stay open; afterwards it all goes on.
    with open(args.redis_pidfile) as file:
        redis_pid = int(file.read())
    live = streams[a] + streams[c] + [s for s, _ in resumed]
    os.kill(redis_pid, signal.SIGSTOP)
    stopped_at = time.time()
    refused = []
    while time.time() - stopped_at < 5:
        status, event_id = publish(a, f"stopped-{len(refused)}")
        if status == 204:
            fail("a publication got 204 while Redis was stopped")
        refused.append(status)
    os.kill(redis_pid, signal.SIGCONT)
    if 503 not in refused:
        fail(f"no 503 while Redis was stopped: {refused}")
    if any(s.closed for s in live):
        fail("a stream closed while Redis was stopped")
    before = len(published)
    deadline = time.time() + 15
    while len(published) == before and time.time() < deadline:
        publish_all(a, ["after-stop"], published, allow_refusal=True)
        time.sleep(0.1)
    publish_all(a, [f"four-{i}" for i in range(10)], published)
    # A refused publication may still have been stored (Redis ran it once continued): every node
    # shows the same sequence, which holds every accepted one in order.
    accepted = set(published)
    starts = [0] * 10 + [seen for _, seen in resumed]
    reference = None
    for index, (stream, start) in enumerate(zip(live, starts)):
        expected = published[start:]
        if not wait_until(lambda: set(expected) <= set((i, d) for i, _, d in stream.snapshot())):
            fail(f"stream {index}: accepted events missing after Redis continued")
        got = [(i, d) for i, _, d in stream.snapshot()]
        if [e for e in got if e in accepted] != expected:
            fail(f"stream {index}: accepted events out of order, or twice")
        extra = [e for e in got if e not in accepted and not e[1].startswith("stopped-")]
        if extra:
            fail(f"stream {index}: unexpected events {extra[:3]}")
        tail = got[got.index(published[before - 1]) + 1:]
        reference = reference if reference is not None else tail
        if tail != reference:
            fail(f"stream {index}: a different sequence than stream 0 after the stop")
    print(f"cluster-check: Redis stopped 5 s: {refused.count(503)} publications refused with 503, "
          "no stream closed, nothing accepted was lost", flush=True)

    # 4. Redis restarted empty: a new epoch; an id from before gets event: reset.
    os.kill(redis_pid, signal.SIGKILL)
    time.sleep(0.2)
    redis = subprocess.Popen(shlex.split(args.redis_start), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(args.redis_pidfile, "w") as file:
        file.write(str(redis.pid))
    status, new_id = 0, None
    deadline = time.time() + 15
    while status != 204 and time.time() < deadline:
        status, new_id = publish(a, "new-epoch")
        time.sleep(0.1)
    if status != 204:
        fail("publications did not resume after Redis restarted")
    old_id = published[-1][0]
    if new_id.split("-")[0] == old_id.split("-")[0]:
        fail(f"the same epoch after Redis restarted empty: {old_id} then {new_id}")
    stale = Stream(c, last_event_id=old_id)
    if stale.headers.get("rill-reset") != "epoch":
        fail(f"a Last-Event-ID of the lost epoch got no Rill-Reset: epoch header: {stale.headers}")
    if not wait_until(lambda: len(stale.snapshot()) >= 1) or stale.snapshot()[0][1] != "reset":
        fail(f"no event: reset first: {stale.snapshot()[:1]}")
    for index, stream in enumerate(streams[a] + streams[c]):
        if not wait_until(lambda: any(d == "new-epoch" for _, _, d in stream.snapshot())):
            fail(f"open stream {index} did not get the first event of the new epoch")
    print(f"cluster-check: Redis restarted empty: new epoch ({old_id.split('-')[0]} -> {new_id.split('-')[0]}), "
          "a stale Last-Event-ID got event: reset, open streams go on", flush=True)


if __name__ == "__main__":
    main()
