#!/usr/bin/env python3
"""Runs the hostile-client attacks 1-6 of issue 19 at full size against `rill serve`, one at a time,
each against a fresh server, and checks what an honest client sees meanwhile:

  - a probe opens a new connection every 50 ms and times a whole `GET /metrics` answer, and another
    opens a new subscription (`GET /sse`) and times its response head: each must be answered within
    --bound-ms (100 ms by default);
  - 50 healthy subscribers read topic `healthy` while a publisher posts to it 20 times a second (and,
    in attack 6, the 2,000 events of 4 KB go there): none may be dropped, and each must receive every
    id the publishers were given, in increasing order.

The attacks (sizes as the issue found them; each runs in its own process, at nice 19, so that the
probes are not slowed by the attacker's own Python on this shared machine):
  1 pipeline   1,000 connections each write 64 KB of pipelined `GET /` and never read
  2 replay     16 topics filled with 1,000 events each, then 600 subscribers name all 16 with
               Last-Event-ID of the first of them (16,000 entries each to replay) and read as fast as they can
  3 bodies     500 connections each send all but one byte of a 1 MiB publish body
  4 topics     with --publish-token: 9,999 anonymous subscriptions to new topics, closed at once; then
               the token holder's publication to a new topic must get 204
  5 history    one 1,000,000-byte event into each of 600 topics with --history-total 256M: the
               server's RSS must stay under its budget plus 160 MiB
  6 slow       800 subscribers that never read, beside the 50 healthy ones, while 2,000 x 4 KB
               events are published to their topic

Prints a table (worst and p99 probe latency, RSS and kernel TCP memory peaks, healthy subscribers'
losses) and exits non-zero if a bound is broken.

Usage: Scripts/hostile-check.py [--rill PATH] [--only 1,2,...] [--bound-ms 100] [--seconds 8]
"""
import argparse, multiprocessing as mp, os, re, resource, select, socket, subprocess, sys, time

IP_BIND_ADDRESS_NO_PORT = 24
TOKEN = "hostile-check-token"


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connect(port, source_octet=None, timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source_octet is not None:
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind(("127.0.0.%d" % source_octet, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def publish_request(topic, body, token=None, extra=""):
    auth = "Authorization: Bearer %s\r\n" % token if token else ""
    return ("POST /publish?topic=%s HTTP/1.1\r\nHost: x\r\n%s%sContent-Length: %d\r\n\r\n"
            % (topic, auth, extra, len(body))).encode() + body


def read_responses(s, count, buffer=b""):
    """Reads `count` whole responses (heads with Content-Length bodies) from a keep-alive socket."""
    heads = []
    while len(heads) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed after %d of %d responses" % (len(heads), count))
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        match = re.search(rb"(?i)content-length: *(\d+)", head)
        length = int(match.group(1)) if match else 0
        while len(buffer) < length:
            buffer += s.recv(65536)
        buffer = buffer[length:]
        heads.append(head)
    return heads, buffer


def event_id(head):
    match = re.search(rb"(?i)x-event-id: *(\S+)", head)
    return int(match.group(1)) if match else None


# MARK: - The server


class Server:
    def __init__(self, rill, extra):
        self.process = subprocess.Popen(
            ["nice", "-n", os.environ.get("SERVER_NICE", "0"), rill, "serve", "--port", "0", "--tick", "0"] + extra,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            raise SystemExit("rill serve did not start: %r" % line)
        self.port = int(match.group(1))

    def rss(self):
        with open("/proc/%d/status" % self.process.pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def kernel_tcp_bytes():
    with open("/proc/net/sockstat") as sockstat:
        for line in sockstat:
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE")
    return 0


# MARK: - Honest clients


def healthy_readers(port, count, ready, stop, results):
    """Subscribes `count` readers to topic `healthy` and reads until `stop`; reports each one's ids."""
    raise_fd_limit()
    sockets, ids, buffers, closed = [], [], [], []
    for index in range(count):
        s = connect(port)
        s.sendall(b"GET /sse?topic=healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        head, rest = read_head(s)
        assert head.startswith(b"HTTP/1.1 200"), head
        s.setblocking(False)
        sockets.append(s)
        ids.append([])
        buffers.append(rest)
        closed.append(False)
    ready.set()
    poller = select.epoll()
    for index, s in enumerate(sockets):
        poller.register(s.fileno(), select.EPOLLIN)
    by_fd = {s.fileno(): index for index, s in enumerate(sockets)}
    deadline = None
    while True:
        if stop.is_set() and deadline is None:
            deadline = time.monotonic() + 3.0  # what was published before `stop` is still on its way
        if deadline is not None and time.monotonic() > deadline:
            break
        for fd, _ in poller.poll(0.1):
            index = by_fd[fd]
            try:
                chunk = sockets[index].recv(1 << 20)
            except BlockingIOError:
                continue
            except ConnectionError:
                chunk = b""
            if not chunk:
                closed[index] = True
                poller.unregister(fd)
                continue
            data = buffers[index] + chunk
            lines = data.split(b"\n")
            buffers[index] = lines.pop()
            for line in lines:
                if line.startswith(b"id: "):
                    ids[index].append(int(line[4:]))
    results.put([(ids[index], closed[index]) for index in range(count)])


def healthy_publisher(port, token, stop, results, events=None, size=16, interval=0.05):
    """Publishes to topic `healthy` (every `interval`; at most `events`); reports ids."""
    s = connect(port, timeout=30)
    ids, buffer, sent = [], b"", 0
    body = b"h" * size
    while not stop.is_set() and (events is None or sent < events):
        s.sendall(publish_request("healthy", body, token))
        heads, buffer = read_responses(s, 1, buffer)
        sent += 1
        if heads[0].startswith(b"HTTP/1.1 204"):
            ids.append(event_id(heads[0]))
        time.sleep(interval)
    results.put(ids)


# MARK: - Attacks (each runs in its own process until `stop`)


def attack_pipeline(port, stop, ready, note):
    raise_fd_limit()
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    payload = request * (65536 // len(request))
    sockets = []
    for index in range(1000):
        s = connect(port, source_octet=2 + index // 500)
        s.setblocking(False)
        sockets.append([s, 0])
    ready.set()
    stalled_since = time.monotonic()
    while not stop.is_set():
        progress = False
        for entry in sockets:
            s, offset = entry
            if offset >= len(payload):
                continue
            try:
                sent = s.send(payload[offset:])
                entry[1] += sent
                progress = progress or sent > 0
            except BlockingIOError:
                pass
            except ConnectionError:
                entry[1] = len(payload)
        if progress:
            stalled_since = time.monotonic()
        elif time.monotonic() - stalled_since > 0.2:
            time.sleep(0.05)
    note.put("sent %d of %d bytes" % (sum(o for _, o in sockets), len(payload) * len(sockets)))


def fill_topics(port, topics, events, body=b"x" * 24):
    """Publishes `events` rounds to `topics` topics; returns the first event's id."""
    s = connect(port, timeout=60)
    buffer = b""
    first = None
    for round in range(events):
        batch = b"".join(publish_request("t%d" % topic, body) for topic in range(topics))
        s.sendall(batch)
        heads, buffer = read_responses(s, topics, buffer)
        if first is None:
            first = event_id(heads[0])
    s.close()
    return first


# The id attack 2 resumes after: the first one fill_topics published (ids continue from a base of
# each server start, so a made-up "1" would be another epoch's and get `event: reset`, not a replay).
REPLAY_FROM = 1


def attack_replay(port, stop, ready, note):
    raise_fd_limit()
    topics = "&".join("topic=t%d" % t for t in range(16))
    request = ("GET /sse?%s HTTP/1.1\r\nHost: x\r\nLast-Event-ID: %d\r\n\r\n" % (topics, REPLAY_FROM)).encode()
    sockets = []
    ready.set()
    for index in range(600):
        s = connect(port, source_octet=2 + index // 300)
        s.sendall(request)
        s.setblocking(False)
        sockets.append(s)
    poller = select.epoll()
    for s in sockets:
        poller.register(s.fileno(), select.EPOLLIN)
    received = 0
    while not stop.is_set():
        for fd, _ in poller.poll(0.1):
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                continue
            except ConnectionError:
                chunk = b""
            if not chunk:
                poller.unregister(fd)
            received += len(chunk)
    note.put("replayed %.0f MiB to 600 subscribers" % (received / 2**20))


def attack_bodies(port, stop, ready, note):
    raise_fd_limit()
    head = ("POST /publish?topic=b HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (1 << 20)).encode()
    body = b"b" * ((1 << 20) - 1)
    sockets = []
    for index in range(500):
        s = connect(port, source_octet=2 + index // 250)
        s.setblocking(False)
        sockets.append([s, head + body, 0, False])
    ready.set()
    refused = 0
    while not stop.is_set():
        progress = False
        for entry in sockets:
            s, data, offset, done = entry
            if done:
                continue
            try:
                sent = s.send(data[offset:offset + 65536])
                entry[2] += sent
                progress = True
                if entry[2] >= len(data):
                    entry[3] = True
            except BlockingIOError:
                pass
            except ConnectionError:
                entry[3] = True
                refused += 1
        if not progress:
            time.sleep(0.02)
    for entry in sockets:
        try:
            if entry[0].recv(64).startswith(b"HTTP/1.1 503"):
                refused += 1
        except (BlockingIOError, ConnectionError):
            pass
    note.put("%d of 500 refused (503 or reset)" % refused)


def attack_topics(port, stop, ready, note):
    raise_fd_limit()
    ready.set()
    answered = 0
    for start in range(0, 9999, 200):
        batch = []
        for index in range(start, min(start + 200, 9999)):
            s = connect(port, source_octet=2 + (index // 200) % 8)
            s.sendall(("GET /sse?topic=made-up-%d HTTP/1.1\r\nHost: x\r\n\r\n" % index).encode())
            batch.append(s)
        for s in batch:
            try:
                head, _ = read_head(s)
                answered += head.startswith(b"HTTP/1.1 200")
            except (ConnectionError, socket.timeout):
                pass
            s.close()
        if stop.is_set():
            break
    note.put("%d of 9,999 made-up subscriptions answered 200" % answered)


def attack_history(port, stop, ready, note):
    ready.set()
    s = connect(port, timeout=60)
    body = b"m" * 1_000_000
    buffer, accepted = b"", 0
    for topic in range(600):
        s.sendall(publish_request("big%d" % topic, body))
        heads, buffer = read_responses(s, 1, buffer)
        accepted += heads[0].startswith(b"HTTP/1.1 204")
        if stop.is_set():
            break
    note.put("%d of 600 one-megabyte events accepted" % accepted)


def attack_slow(port, stop, ready, note):
    raise_fd_limit()
    sockets = []
    for index in range(int(os.environ.get("SLOW_READERS", "800"))):
        s = connect(port, source_octet=2 + index // 400)
        s.sendall(b"GET /sse?topic=healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        sockets.append(s)
    ready.set()
    stop.wait()
    dropped = 0
    for s in sockets:
        s.setblocking(False)
        try:
            while s.recv(1 << 20):  # what was delivered before a drop is read first
                pass
            dropped += 1  # closed
        except BlockingIOError:
            pass  # still open
        except ConnectionError:
            dropped += 1  # reset: dropped as too slow
    note.put("%d of %d non-readers dropped as too slow" % (dropped, len(sockets)))


def niced(attack, *arguments):
    """Runs an attack at the lowest CPU priority: on this one machine the attacker's own Python
    would otherwise take the CPU the probes need, which an attacker elsewhere would not."""
    os.nice(19)
    attack(*arguments)


ATTACKS = {
    1: ("pipeline flood", attack_pipeline, []),
    2: ("replay storm", attack_replay, []),
    3: ("unfinished bodies", attack_bodies, []),
    4: ("topic exhaustion", attack_topics, ["--publish-token", TOKEN]),
    5: ("history memory", attack_history, ["--history-total", "256M"]),
    6: ("slow readers", attack_slow, []),
}

# MARK: - Probes


def probe_metrics(port):
    start = time.monotonic()
    s = connect(port, timeout=5)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, rest = read_head(s)
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("metrics cut short")
            rest += chunk
        assert head.startswith(b"HTTP/1.1 200"), head
    finally:
        s.close()
    return time.monotonic() - start


def probe_subscribe(port):
    start = time.monotonic()
    s = connect(port, timeout=5)
    try:
        s.sendall(b"GET /sse?topic=probe HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = read_head(s)
        assert head.startswith(b"HTTP/1.1 200"), head
    finally:
        s.close()
    return time.monotonic() - start


def longest_turn(port):
    """The server's own account of its longest loop turn, in ms (rill_loop_longest_turn_microseconds)."""
    s = connect(port, timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    match = re.search(rb"\nrill_loop_longest_turn_microseconds (\d+)", data)
    return int(match.group(1)) / 1000 if match else float("nan")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def run_attack(number, options):
    name, attack, flags = ATTACKS[number]
    server = Server(options.rill, flags)
    port = server.port
    token = TOKEN if "--publish-token" in flags else None
    if number == 2:
        global REPLAY_FROM
        REPLAY_FROM = fill_topics(port, topics=16, events=1000)
    context = mp.get_context("fork")
    stop, attack_ready = context.Event(), context.Event()
    reader_results, publisher_results, notes = context.Queue(), context.Queue(), context.Queue()
    # Ten readers a process: one Python process could not keep up with 50 streams of 4 KB events.
    readies = [context.Event() for _ in range(5)]
    readers = [context.Process(target=healthy_readers, args=(port, 10, ready, stop, reader_results))
               for ready in readies]
    for process, ready in zip(readers, readies):
        process.start()
        ready.wait(30)
    publishers = [context.Process(target=healthy_publisher, args=(port, token, stop, publisher_results))]
    attacker = context.Process(target=niced, args=(attack, port, stop, attack_ready, notes))
    baseline_rss = server.rss()
    attacker.start()
    attack_ready.wait(60)
    for publisher in publishers:
        publisher.start()
    if number == 6:
        bulk = context.Process(
            target=healthy_publisher, args=(port, token, stop, publisher_results, 2000, 4096, 0.002))
        bulk.start()
        publishers.append(bulk)
    metrics, subscriptions, failures = [], [], []
    peak_rss, peak_kernel = 0, 0
    # Attack 6 lasts until its 2,000 events are out (about 500 a second).
    end = time.monotonic() + (max(options.seconds, 12) if number == 6 else options.seconds)
    while time.monotonic() < end:
        for probe, into in ((probe_metrics, metrics), (probe_subscribe, subscriptions)):
            try:
                into.append(probe(port))
            except Exception as error:  # a probe that fails is a broken promise, not a crash here
                failures.append("%s: %s" % (probe.__name__, error))
        peak_rss = max(peak_rss, server.rss())
        peak_kernel = max(peak_kernel, kernel_tcp_bytes())
        time.sleep(0.05)
    longest = longest_turn(port)
    extra = ""
    if number == 4:
        s = connect(port)
        s.sendall(publish_request("brand-new-topic", b"still here", TOKEN))
        heads, _ = read_responses(s, 1)
        s.close()
        extra = "; token holder's new topic: " + heads[0].split(b"\r\n")[0].decode()
        if not heads[0].startswith(b"HTTP/1.1 204"):
            failures.append("the token holder's publication was refused")
    stop.set()
    published = []
    for _ in publishers:
        published += publisher_results.get(timeout=60)
    readers_seen = [seen for _ in readers for seen in reader_results.get(timeout=60)]
    note = notes.get(timeout=60)
    for process in publishers + readers + [attacker]:
        process.join(30)
    server.stop()
    dropped = sum(1 for _, closed in readers_seen if closed)
    lost = 0
    for ids, _ in readers_seen:
        if ids != sorted(ids):
            failures.append("a healthy subscriber saw ids out of order")
        lost += len(set(published) - set(ids))
    bound = options.bound_ms / 1000
    worst = max(metrics + subscriptions) if metrics + subscriptions else float("inf")
    if worst > bound:
        failures.append("a probe took %.0f ms" % (worst * 1000))
    if dropped or lost:
        failures.append("healthy subscribers: %d dropped, %d events lost" % (dropped, lost))
    if number == 5 and peak_rss - baseline_rss > (256 + 160) * 2**20:
        failures.append("RSS grew %.0f MiB" % ((peak_rss - baseline_rss) / 2**20))
    return {
        "attack": "%d %s" % (number, name), "note": note + extra,
        "metrics": (percentile(metrics, 0.99), max(metrics or [float("nan")]), len(metrics)),
        "subscribe": (percentile(subscriptions, 0.99), max(subscriptions or [float("nan")]), len(subscriptions)),
        "longest": longest, "rss": (peak_rss - baseline_rss) / 2**20, "kernel": peak_kernel / 2**20,
        "healthy": "%d events x 50, %d dropped, %d lost" % (len(published), dropped, lost),
        "failures": failures,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--rill", default=os.path.join(root, ".build/release/rill"))
    parser.add_argument("--only", default="1,2,3,4,5,6")
    parser.add_argument("--bound-ms", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=8)
    options = parser.parse_args()
    raise_fd_limit()
    rows = [run_attack(int(n), options) for n in options.only.split(",")]
    print("| attack | GET /metrics p99 / max (n) | new subscription p99 / max (n) | longest loop turn | RSS growth "
          "| kernel TCP peak | healthy subscribers | attack |")
    print("|---|---|---|---:|---:|---:|---|---|")
    for row in rows:
        m, s = row["metrics"], row["subscribe"]
        print("| %s | %.1f / %.1f ms (%d) | %.1f / %.1f ms (%d) | %.1f ms | %.0f MiB | %.0f MiB | %s | %s |" % (
            row["attack"], m[0] * 1000, m[1] * 1000, m[2], s[0] * 1000, s[1] * 1000, s[2], row["longest"], row["rss"],
            row["kernel"], row["healthy"], row["note"]))
    failed = [(row["attack"], failure) for row in rows for failure in row["failures"]]
    for attack, failure in failed:
        print("FAILED %s: %s" % (attack, failure))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
