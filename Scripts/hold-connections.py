#!/usr/bin/env python3
"""Opens N idle TCP connections to HOST:PORT and holds them until killed.

Spreads the connections over several loopback source addresses (127.0.0.2, ...) so that repeated
runs are not starved of ephemeral ports by TIME_WAIT. Prints "held N" once all are connected.
Usage: hold-connections.py HOST PORT N [FIRST_SOURCE_OCTET]
"""
import resource, socket, sys, time

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
first_octet = int(sys.argv[4]) if len(sys.argv) > 4 else 2
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
IP_BIND_ADDRESS_NO_PORT = 24
per_source = 10_000
sockets = []
for index in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind(("127.0.0.%d" % (first_octet + index // per_source), 0))
    s.connect((host, port))
    sockets.append(s)
print("held %d" % len(sockets), flush=True)
while True:
    time.sleep(3600)
