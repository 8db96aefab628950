import HTTP1
import Reactor
import SSE
#if canImport(Glibc)
import Glibc
#endif

/// SSE mode: opens event streams at the ramp rate, reads each with a client SSE parser, and counts
/// events, heartbeats and their gaps. One loop, one handler; per-stream state in an array indexed
/// by the connection's userData. `grow(to:rate:)` sets the goal and `pump()` (called every
/// millisecond) opens what the rate allows, at most 256 at a time so open streams keep being read.
final class StreamLoad: ConnectionHandler {
    /// One stream's state: kept small (a million streams live in these), so counts are 32-bit,
    /// times are milliseconds from the load's start where microseconds do not matter, and the
    /// client parser is kept only while a read left it in the middle of a line or an event
    /// (between events all it holds is the last event ID, kept here).
    struct Stream {
        /// When its connection was started (monotonic ns), until it opens; then when it last
        /// ended, for the reconnect latency.
        var mark: UInt64 = 0
        var head: [UInt8] = []
        /// The last event ID (the parser's, moved in and out around each read; sent back as
        /// `Last-Event-ID`).
        var lastID: [UInt8] = []
        /// The parser, only while something is pending in it (a line or an event split across reads).
        var parser: ParserBox? = nil
        var events: UInt32 = 0
        /// Events published before this stream opened (it need not see those).
        var baseline: UInt32 = 0
        /// When it last read anything, in ms since the load's start.
        var lastHeard: UInt32 = 0
        var reconnects: Int32 = 0
        /// The server's `retry:` delay in milliseconds (`EventSource`'s default until it sends one).
        var retryMilliseconds: Int32 = 3_000
        /// An error was already recorded for this stream (it is not counted again when it closes).
        var errorCounted = false
        var open = false
        /// Bytes of the event stream (after the head) have arrived: a BOM may no longer come.
        var bodyStarted = false
        /// The response was not an event stream: `EventSource` fails for good, no reconnection.
        var fatal = false
        /// The server ended the stream (EOF): closed here, to be reconnected.
        var endedByServer = false
        /// Counted in `gaps` (from its first response head until it ends for good or is reset).
        var tracked = false
        /// Its response head arrived once: from then on it reconnects when it ends.
        var everOpened = false
        /// The connection is a reconnection (not counted as opened again).
        var reconnecting = false
        /// `retired` and `churning` as bits (two more Bools would cost a stride step a stream).
        var marks: UInt8 = 0
        var resume = StreamResume()
        /// Its connection now (`Connection.id`), so a ramp down or churn can close it (`.max`: none,
        /// an fd of -1 that names no connection; 0 would be fd 0, a worker's channel).
        var connection: UInt64 = .max

        init(started: UInt64) { mark = started }

        /// Closed by a ramp down: it ends, and is not reconnected.
        var retired: Bool {
            get { marks & 1 != 0 }
            set { marks = newValue ? marks | 1 : marks & ~1 }
        }
        /// Closed by `--churn`, to be reopened at once.
        var churning: Bool {
            get { marks & 2 != 0 }
            set { marks = newValue ? marks | 2 : marks & ~2 }
        }
    }

    /// A parser with something pending, out of line so that idle streams do not carry one.
    final class ParserBox {
        var parser: EventStreamParser
        init(_ parser: EventStreamParser) { self.parser = parser }
    }

    let loop: EventLoop
    let target: TargetURL
    let request: SharedBytes
    let sources: [SocketAddress]
    let sourceOffset: Int
    var recorder = LoadRecorder()
    var streams: [Stream] = []
    /// Streams whose response head arrived and that are still open.
    private(set) var streaming = 0
    private(set) var attempted = 0
    /// Streams that closed or never opened.
    private(set) var ended = 0
    private var goal = 0
    private var rate = 0.0
    private var rampStart: UInt64 = 0
    private var rampBase = 0
    /// Events published so far, as last announced (streams opening now are not owed the earlier ones).
    var published = 0 {
        didSet { gaps.publish(published) }
    }
    /// Gaps counted as events arrive, not by a scan of every stream.
    private var gaps = GapCounter()
    /// Monotonic ns at the start: `Stream.lastHeard` counts milliseconds from here.
    private let epoch = MonotonicClock.nanoseconds()

    /// Milliseconds since `epoch` (49 days fit).
    private func milliseconds(_ now: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: (now - epoch) / 1_000_000) }

    /// Stages: the level to hold over time (nil: `grow(to:rate:)` alone), the streams closed by a
    /// ramp down, and the streams in the order they opened (the newest close first).
    var levels: LevelSchedule?
    var retired = 0
    var openOrder: [Int32] = []
    /// `--churn`: streams closed and reopened per second, since when, and how many so far.
    var churn = ChurnPace()
    /// Streams closed by the churn whose reopening has not got its response head (or failed) yet.
    var churnsPending = 0

    /// Streams reconnect like `EventSource` (`LoadPlan.reconnect`) until `stopReconnecting()`.
    let reconnects: Bool
    private var stopping = false
    private var random = SystemRandomNumberGenerator()

    init(loop: EventLoop, target: TargetURL, sources: [SocketAddress], sourceOffset: Int = 0, reconnects: Bool = true) {
        self.loop = loop
        self.reconnects = reconnects
        self.target = target
        self.sources = sources
        self.sourceOffset = sourceOffset
        request = SharedBytes(
            Array(
                "GET \(target.target) HTTP/1.1\r\nHost: \(target.hostHeader)\r\nAccept: text/event-stream\r\n\r\n".utf8)
        )
    }

    /// SO_RCVBUF of each stream, set as it connects (a loopback handshake may be done by then: it
    /// bounds the buffer, not the window scale); nil: the kernel's autotuning.
    var receiveBufferBytes: Int? = nil

    /// Applies the per-stream socket options to a connection just started.
    private func configure(_ connection: Connection) {
        if let size = receiveBufferBytes {
            try? connection.setOption(level: SOL_SOCKET, name: SO_RCVBUF, value: Int32(clamping: size))
        }
    }

    /// Streams opening at once (connect sent, response head not yet in), over all workers.
    static let maximumPendingInAll = 512
    /// This worker's share of them.
    var maximumPending = StreamLoad.maximumPendingInAll

    /// One worker's share of the pending streams: the cap holds for the whole run, so 50 workers
    /// do not put 50 × 512 SYNs into one accept queue (most would be dropped and time out).
    static func pendingShare(workers: Int) -> Int { max(8, maximumPendingInAll / max(1, workers)) }

    /// Opens streams until `count` have been started, `rate` per second (0: as fast as possible).
    func grow(to count: Int, rate: Double) {
        goal = max(goal, count)
        self.rate = rate
        rampStart = MonotonicClock.nanoseconds()
        rampBase = attempted
        streams.reserveCapacity(goal)
    }

    /// Opens no more streams.
    func stopRamp() { goal = attempted }

    /// Streams asked for are still to be started.
    var isRamping: Bool { attempted < goal }

    /// The recorder's counts with where the streams stand now (gaps only once something was
    /// published), as a worker's status reports them.
    func liveCounts(published: Int) -> LoadCounts {
        var counts = recorder.counts
        counts.attempted = attempted
        counts.open = streaming
        counts.gaps = published > 0 ? streamsWithGaps : 0
        counts.settled = settled
        counts.reopening = churnsPending
        return counts
    }

    /// Only holding what is open: no ramp, stages or churn under way (the housekeeping timer may slow).
    var onlyHolding: Bool { !isRamping && levels == nil && churn.perSecond == 0 && churnsPending == 0 }

    /// Every stream asked for has been started and has either its response head or its end.
    var settled: Bool { attempted >= goal && streaming + ended >= attempted }

    /// Opens the streams the rate allows by now.
    func pump() {
        pumpChurn()
        if let levels { return pumpLevel(levels) }
        guard attempted < goal else { return }
        let allowed = RampSchedule(start: rampStart, base: rampBase, goal: goal, rate: rate).allowed(
            now: MonotonicClock.nanoseconds())
        // Streams still waiting for their response head are capped: beyond what the server's accept
        // queue holds, SYNs are dropped and retried only after a second, which slows the ramp down.
        var batch = 0
        while attempted < allowed && batch < 256 && attempted - streaming - ended < maximumPending {
            openOne()
            batch += 1
        }
    }

    /// Opens one more stream (round-robin over the source addresses).
    func openOne() {
        let index = streams.count
        streams.append(Stream(started: MonotonicClock.nanoseconds()))
        attempted += 1
        if let connection = recorder.connect(
            loop, to: target, sources: sources, index: sourceOffset + index,
            handler: self, userData: UInt64(index))
        {
            streams[index].connection = connection.id
            configure(connection)
            connection.write(request)
        } else {
            ended += 1
        }
    }

    func connectionDidOpen(_ connection: Connection) {
        let index = Int(connection.userData)
        if !streams[index].reconnecting { recorder.opened(startedAt: streams[index].mark) }
        // Retired by a ramp down while connecting (a connecting socket has no `Connection` to close).
        if streams[index].retired { connection.close() }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let index = Int(connection.userData)
        recorder.counts.bytesRead += bytes.count
        let now = MonotonicClock.nanoseconds()
        if streams[index].open {
            feed(index, bytes, now: now)
            return
        }
        streams[index].head += bytes
        var parser = ResponseParser()
        var mediaType = ""
        let step = streams[index].head.withUnsafeBytes { bytes in
            let step = parser.parse(bytes)
            if step.event == .head { mediaType = StreamLoad.mediaType(parser.head, in: bytes) }
            return step
        }
        switch step.event {
        case .needMore:
            if streams[index].head.count > 16 * 1024 { fail(connection, .malformedResponse) }
        case .head:
            let status = parser.head.status
            guard status == 200 else {
                fail(connection, .status(status))
                return
            }
            guard mediaType == "text/event-stream" else {
                fail(connection, .notEventStream(mediaType))
                return
            }
            streams[index].open = true
            streams[index].bodyStarted = false
            streams[index].lastHeard = milliseconds(now)
            streaming += 1
            if streams[index].churning {
                streams[index].churning = false
                churnsPending -= 1
                recorder.counts.churned += 1
                recorder.churnLatency.record((now - streams[index].mark) / 1_000)
            } else if streams[index].reconnecting {
                // Resumed: its level carries on (the replay owes it what it missed).
                recorder.counts.reconnects += 1
                recorder.reconnectLatency.record((now - streams[index].mark) / 1_000)
            } else {
                recorder.firstByte.record((now - streams[index].mark) / 1_000)
                streams[index].baseline = UInt32(truncatingIfNeeded: published)
                streams[index].tracked = true
                streams[index].everOpened = true
                gaps.opened(at: published)
            }
            let head = streams[index].head
            streams[index].head = []
            guard step.consumed < head.count else { return }
            head.withUnsafeBytes { feed(index, UnsafeRawBufferPointer(rebasing: $0[step.consumed...]), now: now) }
        default:
            fail(connection, .malformedResponse)
        }
    }

    /// The head's Content-Type without parameters, lowercased ("" when there is none).
    static func mediaType(_ head: MessageHead, in bytes: UnsafeRawBufferPointer) -> String {
        guard let field = head.headers.first(where: { bytes.string($0.name).lowercased() == "content-type" }) else {
            return ""
        }
        let value = bytes.string(field.value)
        return String(value.prefix { $0 != ";" }).trimmingSpaces.lowercased()
    }

    /// Parses the stream's next bytes. Without a pending parser, one is made on the stack around
    /// the stream's last event ID (moved, not copied), and only if the read leaves it mid-line or
    /// mid-event is it kept (boxed): a read of whole events and heartbeats allocates nothing.
    private func feed(_ index: Int, _ bytes: UnsafeRawBufferPointer, now: UInt64) {
        streams[index].lastHeard = milliseconds(now)
        var parser: EventStreamParser
        if let box = streams[index].parser {
            parser = box.parser
            streams[index].parser = nil
        } else if streams[index].bodyStarted {
            var id: [UInt8] = []
            swap(&id, &streams[index].lastID)
            parser = EventStreamParser(lastEventID: id)
        } else {
            parser = EventStreamParser()  // the stream's start: a BOM may come
        }
        streams[index].bodyStarted = true
        parser.scan(bytes) { item in
            switch item {
            case .event(let event):
                if event.type.elementsEqual("reset".utf8) {
                    restart(index, id: event.lastEventID)
                    return
                }
                let repeatedBefore = streams[index].resume.repeated
                guard streams[index].resume.received(id: event.lastEventID) else {
                    recorder.counts.duplicateEvents += 1
                    if !repeatedBefore { recorder.counts.streamsRepeated += 1 }
                    return
                }
                advance(index)
                recorder.counts.events += 1
                if let stamp = timestamp(in: event.data) {
                    let wall = WallClock.nanoseconds()
                    recorder.delivered(stamp: stamp, latency: wall > stamp ? (wall - stamp) / 1_000 : 0)
                }
            case .comment:
                recorder.counts.heartbeats += 1
            case .retry(let milliseconds):
                streams[index].retryMilliseconds = Int32(clamping: milliseconds)
            }
        }
        if parser.isBetweenEvents {
            // A new connection's parser starts without an ID: the stream's stays until one comes.
            let id = parser.takeLastEventID()
            if !id.isEmpty { streams[index].lastID = id }
        } else {
            streams[index].parser = ParserBox(parser)
        }
    }

    /// An error that ends the stream for good (a response that is not an event stream).
    private func fail(_ connection: Connection, _ kind: LoadErrorClass) {
        recorder.error(kind)
        streams[Int(connection.userData)].errorCounted = true
        streams[Int(connection.userData)].fatal = true
        connection.close()
    }

    /// The server ended the stream (a clean FIN): reconnecting, a reason to; otherwise an error for
    /// a stream meant to be held.
    func connectionDidReadEOF(_ connection: Connection) {
        guard reconnects && !stopping else { return fail(connection, .closedByServer) }
        streams[Int(connection.userData)].endedByServer = true
        connection.close()
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        let index = Int(connection.userData)
        let wasOpen = streams[index].open
        if wasOpen {
            streams[index].open = false
            streaming -= 1
        }
        if streams[index].churning {
            // Closed here to be reopened by `churnOne` (which is on the stack): nothing ends.
            if reason == .local && wasOpen { return }
            streams[index].churning = false  // the reopening failed: a reconnection as any other
            churnsPending -= 1
        }
        let lostByPeer = reason != .local || streams[index].endedByServer
        if reconnects && !stopping && streams[index].everOpened && !streams[index].fatal && lostByPeer {
            if !wasOpen {
                // A reconnection that did not get through (refused during a restart, say): an error,
                // and it is tried again.
                recorder.counts.reconnectFailures += 1
                recorder.error(LoadErrorClass(reason))
            }
            if wasOpen || !streams[index].reconnecting { streams[index].mark = MonotonicClock.nanoseconds() }
            scheduleReconnect(index)
            return
        }
        ended += 1
        if streams[index].tracked {
            streams[index].tracked = false
            gaps.closed(at: streams[index].level)
        }
        if case .connectFailed = reason, !streams[index].reconnecting { recorder.counts.failed += 1 }
        if reason != .local && !streams[index].errorCounted { recorder.error(LoadErrorClass(reason)) }
    }

    /// Reconnects stream `index` after its retry delay plus up to a quarter more at random (as
    /// browsers spread theirs), sending its last event id. One timer per waiting stream; nothing
    /// is scanned.
    private func scheduleReconnect(_ index: Int) {
        let base = Int64(streams[index].retryMilliseconds)
        let delay = base + Int64.random(in: 0...max(0, base / 4), using: &random)
        _ = loop.schedule(after: .milliseconds(delay)) { [unowned self] in self.reconnect(index) }
    }

    func reconnect(_ index: Int) {
        guard !stopping && !streams[index].retired else {
            if streams[index].churning {
                streams[index].churning = false
                churnsPending -= 1
            }
            ended += 1
            if streams[index].tracked {
                streams[index].tracked = false
                gaps.closed(at: streams[index].level)
            }
            return
        }
        streams[index].reconnecting = true
        streams[index].endedByServer = false
        streams[index].errorCounted = false
        streams[index].head = []
        if let box = streams[index].parser {
            // The last event ID is the parser's while one is kept (if it has one).
            let id = box.parser.takeLastEventID()
            if !id.isEmpty { streams[index].lastID = id }
            streams[index].parser = nil
        }
        streams[index].reconnects += 1
        recorder.counts.mostReconnectsOfAStream = max(
            recorder.counts.mostReconnectsOfAStream, Int(streams[index].reconnects))
        let source = sources.isEmpty ? nil : sources[(sourceOffset + index) % sources.count]
        do {
            let connection = try loop.connect(
                to: target.address, from: source, handler: self, userData: UInt64(index))
            streams[index].connection = connection.id
            configure(connection)
            connection.write(resumeRequest(lastID: streams[index].lastID))
        } catch {
            // Not even started (out of descriptors, say): try again after the delay.
            recorder.counts.reconnectFailures += 1
            recorder.error(LoadErrorClass(.connectFailed(error)))
            scheduleReconnect(index)
        }
    }

    /// The request of a reconnection: the stream's request with `Last-Event-ID` (one per
    /// reconnection, not per event).
    private func resumeRequest(lastID: [UInt8]) -> SharedBytes {
        guard !lastID.isEmpty else { return request }
        var bytes = Array(
            "GET \(target.target) HTTP/1.1\r\nHost: \(target.hostHeader)\r\nAccept: text/event-stream\r\nLast-Event-ID: ".utf8)
        bytes += lastID
        bytes += Array("\r\n\r\n".utf8)
        return SharedBytes(bytes)
    }

    /// Streams stop reconnecting (the run is finishing): those waiting end when their timer fires.
    func stopReconnecting() { stopping = true }

    /// `event: reset` on stream `index`: the server could not resume from its id and said so; a new
    /// sequence starts here. The stream leaves the gap count: what it missed was announced, not lost
    /// silently (and which publications it is owed from here is a race with the publisher's count).
    private func restart(_ index: Int, id: UnsafeRawBufferPointer) {
        recorder.counts.resets += 1
        streams[index].resume.reset(id: id)
        guard streams[index].tracked else { return }
        streams[index].tracked = false
        gaps.closed(at: streams[index].level)
    }

    /// At the end: streams still counted that are behind the publications lost events; with the
    /// repeated ones, into the counts (one scan, once).
    func tallyLosses() {
        var lost = 0
        for stream in streams where stream.tracked && stream.level < published { lost += 1 }
        recorder.counts.streamsLost = lost
    }

    /// Streams silent for longer than `limit` nanoseconds (heartbeats stopped); each counted once.
    func checkHeartbeats(limit: UInt64) {
        let now = milliseconds(MonotonicClock.nanoseconds())
        let limit = UInt32(clamping: limit / 1_000_000)
        for index in streams.indices
        where streams[index].open && !streams[index].errorCounted && now &- streams[index].lastHeard > limit {
            streams[index].errorCounted = true
            recorder.error(.heartbeatsStopped)
        }
    }

    /// Open streams that got fewer events than were published since they opened.
    var streamsWithGaps: Int { gaps.behind }

    /// Stream `index` got an event: one level up.
    private func advance(_ index: Int) {
        if streams[index].tracked { gaps.advanced(from: streams[index].level) }
        streams[index].events += 1
    }
}

extension StreamLoad.Stream {
    /// Events it has had, counting those published before it opened.
    var level: Int { Int(baseline) + Int(events) }
}

/// The nanosecond stamp of a `t=<ns>` payload (anything may follow the digits).
func timestamp(in data: UnsafeRawBufferPointer) -> UInt64? {
    guard data.count > 2, data[0] == UInt8(ascii: "t"), data[1] == UInt8(ascii: "=") else { return nil }
    var value: UInt64 = 0
    var digits = 0
    for byte in UnsafeRawBufferPointer(rebasing: data[2...]) {
        guard byte >= 48 && byte <= 57 else { break }
        value = value &* 10 &+ UInt64(byte - 48)
        digits += 1
    }
    return digits > 0 ? value : nil
}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
