// One event to N subscribers of `rill serve`, end to end: N event streams held by this process (a
// reactor of its own), events published with `POST /publish` carrying `t=<CLOCK_REALTIME ns>`, and
// for each event the time until the first, the median and the last subscriber had it.
//
//   swift run -c release FanOut [--subscribers 10000] [--events 20] [--rill PATH]
//                               [--redis redis://127.0.0.1:6379 --nodes 3]
//
// With --redis, --nodes servers run the Redis engine on that Redis (a key prefix of their own), the
// subscribers are spread over them round-robin and events are published on the first: the time to
// the last subscriber is then through Redis and every node.
//
// The server runs in its own process (a process holds at most ~19,990 sockets here; both ends of
// 10,000 connections would not fit in one). Client-side reading is inside the figure: it is what a
// subscriber on the same machine sees.
import Foundation
import Reactor
import SSEHub

struct Options {
    var subscribers = 10_000
    var events = 20
    var rill = ""
    var redis: String? = nil
    var nodes = 1
}

var options = Options()
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--subscribers": options.subscribers = Int(arguments.next() ?? "") ?? options.subscribers
    case "--events": options.events = Int(arguments.next() ?? "") ?? options.events
    case "--rill": options.rill = arguments.next() ?? ""
    case "--redis": options.redis = arguments.next()
    case "--nodes": options.nodes = Int(arguments.next() ?? "") ?? options.nodes
    default: fatalError("unknown argument \(argument)")
    }
}
if options.rill.isEmpty {
    options.rill = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/release/rill").path
}

let limits = ResourceLimits.raiseOpenFilesToHardLimit()
guard options.subscribers + 32 < Int(limits.soft) else {
    fatalError("\(options.subscribers) subscribers need more than this process's \(limits.soft) open files")
}

// The servers.
let prefix = "fanout\(getpid())"
var servers: [Process] = []
var addresses: [SocketAddress] = []
for _ in 0..<max(1, options.nodes) {
    let server = Process()
    server.executableURL = URL(fileURLWithPath: options.rill)
    server.arguments = ["serve", "--port", "0", "--tick", "0", "--heartbeat", "0"]
        + (options.redis.map { ["--redis", $0, "--redis-prefix", prefix] } ?? [])
    let output = Pipe()
    server.standardOutput = output
    try server.run()
    var banner = Data()
    while !banner.contains(10) { banner.append(output.fileHandleForReading.availableData) }
    let line = String(decoding: banner, as: UTF8.self)
    guard let portText = line.split(separator: ":").dropFirst(2).first?.prefix(while: \.isNumber), let port = UInt16(portText) else {
        fatalError("no port in \(line)")
    }
    servers.append(server)
    addresses.append(SocketAddress(ip: 0x7F00_0001, port: port))
}
let address = addresses[0]

/// Subscribers: an SSE parser each (after the response head), and when each got the current event.
final class Subscribers: ConnectionHandler {
    var parsers: [Int32: EventStreamParser] = [:]
    var headSeen: Set<Int32> = []
    var pendingHead: [Int32: [UInt8]] = [:]
    var arrivals: [UInt64] = []
    var currentStamp: UInt64 = 0
    var failures = 0

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let fd = connection.fd
        if headSeen.contains(fd) {
            feed(fd, bytes)
            return
        }
        var buffered = pendingHead[fd, default: []] + bytes
        guard let end = buffered.indices.first(where: { buffered[$0...].starts(with: [13, 10, 13, 10]) }) else {
            pendingHead[fd] = buffered
            return
        }
        pendingHead[fd] = nil
        headSeen.insert(fd)
        parsers[fd] = EventStreamParser()
        buffered.removeFirst(end + 4)
        buffered.withUnsafeBytes { feed(fd, $0) }
    }

    private func feed(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        let now = WallClock.nanoseconds()
        parsers[fd]!.feed(bytes) { item in
            if case .event(let event) = item, event.dataString == "t=\(currentStamp)" { arrivals.append(now) }
        }
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) { failures += 1 }
}

/// The publisher: one keep-alive connection; counts responses.
final class Publisher: ConnectionHandler {
    var responses = 0
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        responses += bytes.count(where: { $0 == 10 }) > 0 ? 1 : 0
    }
}

let loop = try EventLoop()
let subscribers = Subscribers()
let request = Array("GET /sse?topic=fanout HTTP/1.1\r\nHost: bench\r\n\r\n".utf8)
let connectStart = MonotonicClock.nanoseconds()
for index in 0..<options.subscribers {
    let source = SocketAddress(ip: 0x7F00_0002 + UInt32(index / 20_000), port: 0)
    let connection = try loop.connect(to: addresses[index % addresses.count], from: source, handler: subscribers)
    connection.write(request)
    if index % 500 == 499 { loop.runOnce(maximumWait: .zero) }
}
while subscribers.headSeen.count + subscribers.failures < options.subscribers { loop.runOnce(maximumWait: .milliseconds(10)) }
let connectSeconds = Double(MonotonicClock.nanoseconds() - connectStart) / 1e9
let engine = options.redis == nil ? "memory engine" : "redis engine, \(addresses.count) nodes"
print("rill serve (\(engine)): \(subscribers.headSeen.count) streams open in \(String(format: "%.2f", connectSeconds)) s (\(subscribers.failures) failed)")

let publisher = Publisher()
let publish = try loop.connect(to: address, handler: publisher)

func percentile(_ sorted: [Double], _ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
var lasts: [Double] = []
var medians: [Double] = []
var firsts: [Double] = []
var losses = 0
print("event  first ms  p50 ms  p99 ms  last ms  received")
for index in 1...options.events {
    subscribers.arrivals.removeAll(keepingCapacity: true)
    let stamp = WallClock.nanoseconds()
    subscribers.currentStamp = stamp
    let body = "t=\(stamp)"
    publish.write(Array("POST /publish?topic=fanout HTTP/1.1\r\nHost: bench\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
    let deadline = MonotonicClock.nanoseconds() + 5_000_000_000
    while subscribers.arrivals.count < subscribers.headSeen.count && MonotonicClock.nanoseconds() < deadline {
        loop.runOnce(maximumWait: .milliseconds(10))
    }
    losses += subscribers.headSeen.count - subscribers.arrivals.count
    let latencies = subscribers.arrivals.map { Double($0 &- stamp) / 1e6 }.sorted()
    guard !latencies.isEmpty else { continue }
    firsts.append(latencies[0])
    medians.append(percentile(latencies, 0.5))
    lasts.append(latencies.last!)
    print(String(format: "%5d  %8.2f  %6.2f  %6.2f  %7.2f  %d", index, latencies[0], percentile(latencies, 0.5),
                 percentile(latencies, 0.99), latencies.last!, latencies.count))
    // Let the server settle between events, as a publisher 250 ms apart would.
    let pause = MonotonicClock.nanoseconds() + 250_000_000
    while MonotonicClock.nanoseconds() < pause { loop.runOnce(maximumWait: .milliseconds(10)) }
}
lasts.sort()
medians.sort()
print(String(format: "summary over %d events to %d subscribers: time to the last subscriber p50 %.2f ms, max %.2f ms; median delivery p50 %.2f ms; losses %d",
             lasts.count, subscribers.headSeen.count, percentile(lasts, 0.5), lasts.last ?? 0, percentile(medians, 0.5), losses))
loop.closeAll()
for server in servers {
    server.terminate()
    server.waitUntilExit()
}
