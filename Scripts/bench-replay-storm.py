#!/usr/bin/env python3
"""A replay storm: N clients reconnect at once to `rill serve` with a Last-Event-ID BACK events
before the newest, and the time until every one has its whole replay is printed. With --redis
HOST:PORT, the Redis commands the server issued meanwhile are counted too (INFO commandstats).

Usage: bench-replay-storm.py HOST:PORT N BACK [--redis HOST:PORT] [--topic T]
It publishes BACK + 1 events first (so the history holds them). N above ~1,000 needs several local
source addresses: connections are spread over 127.0.0.2, 127.0.0.3, ... (20,000 each)."""
import selectors
import socket
import sys
import time


def request(address, data):
    host, port = address.split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(data)
        reply = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return reply
            reply += chunk


def publish(address, topic, text):
    body = text.encode()
    reply = request(address, f"POST /publish?topic={topic} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    head = reply.split(b"\r\n\r\n")[0].decode()
    return next(l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("x-event-id"))


def redis_stats(address):
    reply = request(address, b"INFO commandstats\r\nQUIT\r\n").decode(errors="replace")
    stats = {}
    for line in reply.split("\r\n"):
        if line.startswith("cmdstat_"):
            name, _, fields = line.partition(":")
            stats[name[len("cmdstat_"):]] = int(fields.split(",")[0].split("=")[1])
    return stats


def main():
    arguments = sys.argv[1:]
    redis = None
    topic = "storm"
    if "--redis" in arguments:
        at = arguments.index("--redis")
        redis = arguments[at + 1]
        del arguments[at:at + 2]
    if "--topic" in arguments:
        at = arguments.index("--topic")
        topic = arguments[at + 1]
        del arguments[at:at + 2]
    address, count, back = arguments[0], int(arguments[1]), int(arguments[2])
    host, port = address.split(":")
    ids = [publish(address, topic, f"event-{i}-" + "x" * 64) for i in range(back + 1)]
    last = ids[0]
    request_bytes = f"GET /sse?topic={topic} HTTP/1.1\r\nHost: b\r\nLast-Event-ID: {last}\r\n\r\n".encode()

    # One client alone first: how many bytes a whole replay is.
    probe = socket.create_connection((host, int(port)), timeout=10)
    probe.sendall(request_bytes)
    data = b""
    while data.count(b"\n\n") < back:  # each event ends with a blank line (the head with CRLF CRLF)
        chunk = probe.recv(65536)
        if not chunk:
            sys.exit("the probe's stream ended early: %r" % data[:300])
        data += chunk
    probe.close()
    expected = len(data)

    before = redis_stats(redis) if redis else None
    selector = selectors.DefaultSelector()
    received = {}
    start = time.time()
    sockets = []
    for index in range(count):
        sock = socket.socket()
        # IP_BIND_ADDRESS_NO_PORT: the port is picked at connect time, per destination, so a run
        # right after another (its ports in TIME-WAIT) does not run out.
        sock.setsockopt(socket.IPPROTO_IP, 24, 1)
        sock.bind((f"127.0.0.{2 + index // 20000}", 0))
        sock.setblocking(False)
        sock.connect_ex((host, int(port)))
        sockets.append(sock)
        selector.register(sock, selectors.EVENT_WRITE, index)
    done = 0
    deadline = start + 120
    while done < count and time.time() < deadline:
        for key, mask in selector.select(timeout=1):
            sock, index = key.fileobj, key.data
            if mask & selectors.EVENT_WRITE:
                sock.send(request_bytes)
                selector.modify(sock, selectors.EVENT_READ, index)
                received[index] = 0
                continue
            try:
                chunk = sock.recv(262144)
            except BlockingIOError:
                continue
            if not chunk:
                selector.unregister(sock)
                continue
            received[index] += len(chunk)
            if received[index] >= expected:
                selector.unregister(sock)
                done += 1
    elapsed = time.time() - start
    after = redis_stats(redis) if redis else None
    for sock in sockets:
        sock.close()
    print(f"replay storm: {done}/{count} clients had their {back} events back in {elapsed:.2f} s "
          f"({expected} bytes each, head included)")
    if redis:
        issued = {name: after.get(name, 0) - before.get(name, 0) for name in after}
        issued = {name: n for name, n in issued.items() if n and name != "info"}
        print(f"redis commands meanwhile: {sum(issued.values())} {issued}")


if __name__ == "__main__":
    main()
