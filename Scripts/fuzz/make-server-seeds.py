#!/usr/bin/env python3
"""Writes the server fuzz target's seed corpus: little programs in the format that
Scripts/fuzz/server/Sources/ServerFuzz/Program.swift decodes (see its doc comment), built from
the request fixtures in Tests/Fixtures/http and from requests for every route of `rill serve`.

Usage: make-server-seeds.py FIXTURES_DIR OUT_DIR
"""
import os
import sys

OPEN, WRITE, PIECES, HALF, CLOSE, RESET, DRAIN, READING, ADVANCE, TURN, PUBLISH, SHUTDOWN = (
    0, 2, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15)
TOKEN = b"Authorization: Bearer t0k\r\n"


def open_(slot): return bytes([OPEN, slot])
def half(slot): return bytes([HALF, slot])
def close(slot): return bytes([CLOSE, slot])
def reset(slot): return bytes([RESET, slot])
def drain(slot): return bytes([DRAIN, slot])
def reading(slot): return bytes([READING, slot])
def turns(n=1): return bytes([TURN]) * n
def shutdown(): return bytes([SHUTDOWN, 0])


def write(slot, data):
    return bytes([WRITE, slot, len(data) & 0xFF, len(data) >> 8]) + data


def pieces(slot, piece, data):
    return bytes([PIECES, slot, piece - 1, len(data) & 0xFF, len(data) >> 8]) + data


def advance(ms):
    """The smallest step code for ms (several steps for long waits)."""
    out = b""
    while ms > 0:
        if ms < 100:
            out += bytes([ADVANCE, ms]); ms = 0
        elif ms < 10_000:
            step = min(ms // 100, 100); out += bytes([ADVANCE, 99 + step]); ms -= step * 100
        else:
            step = min(ms // 1000, 56); out += bytes([ADVANCE, 199 + step]); ms -= step * 1000
    return out


def publish(topic, data, id_=None, named=False):
    flags = (1 if id_ is not None else 0) | (2 if named else 0)
    out = bytes([PUBLISH, topic, flags, len(data)]) + data
    if id_ is not None:
        out += bytes([len(id_)]) + id_
    return out


def get(target, *headers):
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def post(target, body, *headers, chunked=False):
    head = b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n" + TOKEN + b"".join(h + b"\r\n" for h in headers)
    if chunked:
        return head + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def seeds(fixtures):
    fixture = {name: open(os.path.join(fixtures, name), "rb").read() for name in os.listdir(fixtures)
               if name.endswith(".txt")}
    s = {}
    for name, data in fixture.items():
        s["fixture-" + name] = open_(0) + write(0, data) + turns(3) + advance(150) + turns(2)
        s["fixture-pieces-" + name] = pieces(0, 7, data) + turns(2)
        s["fixture-pipelined-" + name] = write(0, data * 4) + turns(6)
    sse = get(b"/sse?topic=a&topic=b")
    s["sse-publish"] = (write(0, sse) + turns(2) + publish(2, b"hello", b"1", True) + turns(2)
                        + advance(120) + turns(2) + advance(1100) + turns(2) + close(0) + turns(2))
    s["sse-resume"] = (publish(0, b"one", b"1") + publish(0, b"two", b"2") + publish(0, b"three", b"3")
                       + write(0, get(b"/sse", b"Last-Event-ID: 1")) + turns(4)
                       + write(1, get(b"/sse?lastEventId=2")) + turns(4)
                       + write(2, get(b"/sse", b"Last-Event-ID: 99")) + turns(4))
    s["sse-slow"] = (write(0, sse) + reading(0) + turns(2)
                     + b"".join(publish(2, bytes([65 + i]) * 200) + turns(1) for i in range(24))
                     + drain(0) + turns(2))
    s["sse-ticks"] = write(0, get(b"/sse?topic=time")) + turns(2) + advance(3000) + turns(2)
    s["publish-cl"] = (write(0, sse) + turns(2) + write(1, post(b"/publish?topic=a&event=e&id=7", b"data one"))
                       + turns(4) + write(1, post(b"/publish?topic=b", b"x" * 300)) + turns(4))
    s["publish-chunked"] = (write(0, get(b"/sse")) + turns(2)
                            + write(1, post(b"/publish", b"chunked body", chunked=True)) + turns(4))
    body = b"continue body"
    head = post(b"/publish", body, b"Expect: 100-continue")[:-len(body)]
    s["publish-100-continue"] = write(0, head) + turns(2) + drain(0) + write(0, body) + turns(3)
    s["publish-unauthorized"] = write(0, b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi") + turns(3)
    s["publish-too-large"] = write(0, post(b"/publish", b"y" * 1500)) + turns(4)
    s["routes"] = (write(0, get(b"/") + get(b"/metrics") + get(b"/static/hello.txt") + get(b"/static/missing")
                         + get(b"/nowhere") + b"OPTIONS /publish HTTP/1.1\r\nHost: x\r\n\r\n"
                         + b"DELETE /sse HTTP/1.1\r\nHost: x\r\n\r\n") + turns(8))
    s["http10"] = write(0, b"GET /metrics HTTP/1.0\r\n\r\n") + turns(3) + half(0) + turns(2)
    s["connection-limit"] = b"".join(write(i, get(b"/sse")) + turns(1) for i in range(10)) + turns(3)
    s["header-timeout"] = write(0, b"GET /sse HTTP/1.1\r\nHost:") + turns(1) + advance(400) + turns(2)
    s["body-timeout"] = (write(0, post(b"/publish", b"z" * 100)[:-90]) + turns(1) + advance(100) + turns(1)
                         + advance(300) + turns(2))
    s["idle-timeout"] = write(0, get(b"/metrics")) + turns(2) + advance(1200) + turns(2)
    s["linger"] = write(0, b"BROKEN\r\n\r\n") + turns(2) + write(0, b"more") + turns(1) + advance(250) + turns(2)
    s["partial-budget"] = b"".join(write(i, post(b"/publish", b"q" * 900)[:-800]) for i in range(4)) + turns(4)
    s["reset-mid-request"] = write(0, post(b"/publish", b"abc" * 10)[:-10]) + turns(1) + reset(0) + turns(2)
    s["half-close-stream"] = write(0, sse) + turns(2) + half(0) + turns(2) + publish(2, b"after") + turns(2)
    s["shutdown"] = (write(0, sse) + write(1, get(b"/metrics")) + write(2, b"GET / HT") + turns(2) + shutdown()
                     + turns(2) + open_(3) + turns(2))
    s["pipelined-many"] = write(0, get(b"/metrics") * 12) + turns(10) + reading(0) + turns(3)
    return s


def main():
    fixtures, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for name, program in seeds(fixtures).items():
        with open(os.path.join(out, name.replace(".txt", "") + ".bin"), "wb") as file:
            file.write(program)


if __name__ == "__main__":
    main()
