#!/usr/bin/env python3
"""Opens N idle TCP connections to HOST:PORT and holds them until killed.

With --request PATH each connection sends `GET PATH HTTP/1.1` and waits for the response head, so
the connections are held as event streams (SSE subscribers) rather than as bare sockets; whatever
the server sends afterwards (heartbeats) is left unread in the kernel's buffers.
Spreads the connections over several loopback source addresses (127.0.0.2, ...) so that repeated
runs are not starved of ephemeral ports by TIME_WAIT. Prints "held N" once all are connected.
Usage: hold-connections.py HOST PORT N [FIRST_SOURCE_OCTET] [--request PATH]
"""
import resource, socket, sys, time

arguments = [a for a in sys.argv[1:]]
path = None
if "--request" in arguments:
    at = arguments.index("--request")
    path = arguments[at + 1]
    del arguments[at:at + 2]
host, port, count = arguments[0], int(arguments[1]), int(arguments[2])
first_octet = int(arguments[3]) if len(arguments) > 3 else 2
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
IP_BIND_ADDRESS_NO_PORT = 24
per_source = 10_000
request = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode() if path else None
sockets = []
for index in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind(("127.0.0.%d" % (first_octet + index // per_source), 0))
    s.connect((host, port))
    if request:
        s.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                sys.exit("connection %d closed before a response head" % index)
            head += chunk
        if not head.startswith(b"HTTP/1.1 200"):
            sys.exit("connection %d got %r" % (index, head.split(b"\r\n")[0]))
    sockets.append(s)
print("held %d" % len(sockets), flush=True)
while True:
    time.sleep(3600)
