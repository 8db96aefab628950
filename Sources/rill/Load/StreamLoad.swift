import HTTP1
import Reactor
import SSE

/// SSE mode: opens event streams at the ramp rate, reads each with a client SSE parser, and counts
/// events, heartbeats and their gaps. One loop, one handler; per-stream state in an array indexed
/// by the connection's userData.
final class StreamLoad: ConnectionHandler {
    struct Stream {
        var started: UInt64 = 0
        var head: [UInt8] = []
        var parser: EventStreamParser? = nil
        var events = 0
        var heartbeats = 0
        var lastHeard: UInt64 = 0
        /// An error was already recorded for this stream (it is not counted again when it closes).
        var errorCounted = false
        var open = false
    }

    let loop: EventLoop
    let target: TargetURL
    let request: SharedBytes
    let sources: [SocketAddress]
    var recorder = LoadRecorder()
    var streams: [Stream] = []
    /// Streams whose response head arrived and that are still open.
    private(set) var streaming = 0
    private(set) var attempted = 0

    init(loop: EventLoop, target: TargetURL, sources: [SocketAddress]) {
        self.loop = loop
        self.target = target
        self.sources = sources
        request = SharedBytes(Array("GET \(target.target) HTTP/1.1\r\nHost: \(target.hostHeader)\r\nAccept: text/event-stream\r\n\r\n".utf8))
    }

    /// Opens one more stream (round-robin over the source addresses).
    func openOne() {
        let index = streams.count
        streams.append(Stream(started: MonotonicClock.nanoseconds()))
        attempted += 1
        recorder.connect(loop, to: target, sources: sources, index: index, handler: self)?.write(request)
    }

    func connectionDidOpen(_ connection: Connection) {
        let index = Int(connection.userData)
        recorder.opened(startedAt: streams[index].started)
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let index = Int(connection.userData)
        recorder.bytesRead += bytes.count
        let now = MonotonicClock.nanoseconds()
        if streams[index].parser != nil {
            feed(index, bytes, now: now)
            return
        }
        streams[index].head += bytes
        var parser = ResponseParser()
        let step = streams[index].head.withUnsafeBytes { parser.parse($0) }
        switch step.event {
        case .needMore:
            if streams[index].head.count > 16 * 1024 { fail(connection, "malformed response") }
        case .head:
            let status = parser.head.status
            guard status == 200 else {
                fail(connection, "status \(status)")
                return
            }
            recorder.firstByte.record((now - streams[index].started) / 1_000)
            streams[index].open = true
            streams[index].lastHeard = now
            streaming += 1
            let rest = Array(streams[index].head[step.consumed...])
            streams[index].head = []
            streams[index].parser = EventStreamParser()
            rest.withUnsafeBytes { feed(index, $0, now: now) }
        default:
            fail(connection, "malformed response")
        }
    }

    private func feed(_ index: Int, _ bytes: UnsafeRawBufferPointer, now: UInt64) {
        streams[index].lastHeard = now
        // Out of the array while it parses: the callback updates this stream's counters.
        var parser = streams[index].parser!
        streams[index].parser = nil
        defer { streams[index].parser = parser }
        parser.feed(bytes) { item in
            switch item {
            case .event(let event):
                streams[index].events += 1
                recorder.events += 1
                if let stamp = timestamp(in: event.data) {
                    let wall = WallClock.nanoseconds()
                    recorder.eventLatency.record(wall > stamp ? (wall - stamp) / 1_000 : 0)
                }
            case .comment:
                streams[index].heartbeats += 1
                recorder.heartbeats += 1
            case .retry:
                break
            }
        }
    }

    private func fail(_ connection: Connection, _ kind: String) {
        recorder.error(kind)
        streams[Int(connection.userData)].errorCounted = true
        connection.close()
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        let index = Int(connection.userData)
        if streams[index].open {
            streams[index].open = false
            streaming -= 1
        }
        if case .connectFailed = reason { recorder.connectionsFailed += 1 }
        if reason != .local && !streams[index].errorCounted { recorder.error(errorClass(reason)) }
    }

    /// Streams silent for longer than `limit` nanoseconds (heartbeats stopped); each counted once.
    func checkHeartbeats(limit: UInt64) {
        let now = MonotonicClock.nanoseconds()
        for index in streams.indices where streams[index].open && !streams[index].errorCounted && now - streams[index].lastHeard > limit {
            streams[index].errorCounted = true
            recorder.error("heartbeats stopped (silent > 2 intervals)")
        }
    }

    /// Open streams that got fewer than `published` events.
    func streamsWithGaps(published: Int) -> Int {
        streams.reduce(0) { $0 + ($1.open && $1.events < published ? 1 : 0) }
    }
}

/// The nanosecond stamp of a `t=<ns>` payload (anything may follow the digits).
func timestamp(in data: [UInt8]) -> UInt64? {
    guard data.count > 2, data[0] == UInt8(ascii: "t"), data[1] == UInt8(ascii: "=") else { return nil }
    var value: UInt64 = 0
    var digits = 0
    for byte in data.dropFirst(2) {
        guard byte >= 48 && byte <= 57 else { break }
        value = value &* 10 &+ UInt64(byte - 48)
        digits += 1
    }
    return digits > 0 ? value : nil
}
