/// The lifecycle of one HTTP connection, as a value: each event goes in through a `mutating func`
/// that makes the transition and returns what the server must do; the server (`HTTPServer`) performs
/// it. No clock, no socket: the time of an event is passed in as `now` (loop milliseconds, wrapping).
///
/// It packs into the reactor's per-connection `userData` word, so a connection costs the server no
/// table entry of its own: bits 0–7 the phase, bit 8 "listed for the deadline sweep", bit 9 "reading
/// paused", bit 10 "awaiting a deferred response", bits 16–23 the hub of an event stream (an index
/// into the server's hubs), bits 32–63 the deadline. A fresh word (0) is a
/// connection that has just been accepted.
///
/// Deadlines are enforced lazily: a connection is listed once for the server's sweep (`enlist`);
/// moving the deadline only rewrites the word, and the sweep (`sweep(now:)`) closes the connection
/// once its deadline has passed. A stream has no deadline: the sweep drops it from the list.
struct ConnectionStateMachine: Equatable, Sendable {
    enum Phase: UInt8, Sendable {
        /// A request has begun (or the connection is new): the header timeout runs.
        case request
        /// Keep-alive, between requests: the idle timeout runs.
        case idle
        /// An event stream: no deadline, the hub writes to it.
        case stream
        /// A final response was written and our side shut down: reads are discarded until the
        /// client closes or the linger timeout passes.
        case closing
        /// Like `closing`, for a client turned away with 503: not counted as a held connection.
        case rejected
        /// A request's head has arrived and its body is arriving: the body deadline runs (see
        /// `bodyStarted` and `bodyArrived`), not the header timeout.
        case body
        /// A streamed response (chunked or close-delimited) is being written by its handler: no
        /// deadline; reading pauses and pipelined requests wait until it finishes.
        case streaming
    }

    /// The server's timeouts, in milliseconds.
    struct Timeouts: Equatable, Sendable {
        /// From the first byte of a request until it has arrived whole.
        var header: UInt32
        /// Keep-alive, between requests.
        var idle: UInt32
        /// After our side shut down, until the client closes.
        var linger: UInt32
        /// The longest a request body may stall: its deadline is this long after the head, and
        /// never further ahead of the latest body bytes than this.
        var body: UInt32 = 5_000
        /// Bytes per second a body must keep up: each body byte pushes the body deadline back by
        /// 1/rate seconds (up to `body` ahead). 0: no credit, the whole body within `body`.
        var bodyRate: UInt32 = 16 << 10

        init(header: UInt32, idle: UInt32, linger: UInt32, body: UInt32 = 5_000, bodyRate: UInt32 = 16 << 10) {
            self.header = header
            self.idle = idle
            self.linger = linger
            self.body = body
            self.bodyRate = bodyRate
        }
    }

    /// Which timeout a connection ran out of (the sweep's verdict).
    enum Timeout: Equatable {
        /// A request did not arrive whole in time: answer 408 if it sent anything, then close.
        case header
        /// A request body fell behind the minimum rate (or stalled): answer 408, then close.
        case body
        /// A keep-alive connection stayed unused: close.
        case idle
        /// A closing client did not close: close.
        case linger
    }

    // MARK: - Actions

    /// After `open`.
    enum OpenAction: Equatable {
        /// Count the connection as held; the header timeout runs.
        case accept
        /// Write the 503, shut our side down; the linger timeout runs. Not held.
        case reject
    }

    /// After `bytesArrived`.
    enum ReadAction: Equatable {
        /// Parse the bytes as requests.
        case parse
        /// Drop them: a stream has nothing more to say, a closing client's bytes are not read.
        case discard
        /// Keep them unparsed (a response is in progress: pipelined requests wait for it).
        case keep
    }

    /// After `stepParsed`: what becomes of the rest of the bytes.
    enum StepAction: Equatable {
        /// Parse on.
        case proceed
        /// The connection became a stream or is closing: drop the rest and reset the parser.
        case stop
        /// Pause reading and keep the rest until `resume` (responses piled up, or a publication
        /// waits for its relayed event).
        case pause
        /// The connection used up its work for this loop turn (requests answered, response bytes):
        /// pause reading, keep the rest, and `resume` on the next turn, so that one client's
        /// pipeline cannot hold the loop (and every other client) for the length of its backlog.
        case yield
    }

    /// After `responded` (and `parseFailed`).
    enum ResponseAction: Equatable {
        /// Keep-alive: wait for the next request; the idle timeout runs.
        case awaitNextRequest
        /// The last response is queued: shut our side down and let the client close (so it reads
        /// the response instead of a reset); the linger timeout runs.
        case shutdownAndLinger
    }

    /// After `sweep`.
    enum SweepAction: Equatable {
        /// The deadline is still ahead: keep the connection listed.
        case keep
        /// No deadline any more (it became a stream): drop it from the list.
        case forget
        /// The deadline passed.
        case timeOut(Timeout)
    }

    /// After `drain` (the server shuts down).
    enum DrainAction: Equatable {
        /// Unsubscribe the stream and shut our side down (FIN after what is queued); linger.
        case endStream
        /// An idle keep-alive connection: close it now.
        case close
        /// A request in progress may finish; a closing connection is closing already.
        case none
    }

    /// After `closed`: what the server releases.
    enum Release: Equatable {
        /// The hub's subscription.
        case subscription
        /// A partial request (its parser and bytes), if the connection has one.
        case partialRequest
        /// A streamed response's callbacks (and a partial request, if any: pipelined bytes).
        case streamedResponse
        /// Nothing.
        case none
    }

    // MARK: - The word

    private(set) var raw: UInt64

    private static let listedBit: UInt64 = 1 << 8
    private static let pausedBit: UInt64 = 1 << 9
    private static let awaitingBit: UInt64 = 1 << 10
    private static let hubShift: UInt64 = 16

    /// Decodes a connection's `userData` word.
    init(_ raw: UInt64) { self.raw = raw }

    /// A connection just accepted, before `open`.
    init() { raw = 0 }

    private(set) var phase: Phase {
        get { Phase(rawValue: UInt8(truncatingIfNeeded: raw)) ?? .request }
        set { raw = raw & ~0xFF | UInt64(newValue.rawValue) }
    }

    /// The deadline (loop milliseconds, wrapping); meaningful while `hasDeadline`.
    private(set) var deadline: UInt32 {
        get { UInt32(truncatingIfNeeded: raw >> 32) }
        set { raw = raw & 0xFFFF_FFFF | UInt64(newValue) << 32 }
    }

    /// In the server's list of connections with a deadline.
    private(set) var isListed: Bool {
        get { raw & Self.listedBit != 0 }
        set { raw = newValue ? raw | Self.listedBit : raw & ~Self.listedBit }
    }

    /// Reading was paused by `stepParsed` and waits for `resume`.
    private(set) var isReadingPaused: Bool {
        get { raw & Self.pausedBit != 0 }
        set { raw = newValue ? raw | Self.pausedBit : raw & ~Self.pausedBit }
    }

    /// A handler deferred its response (a publication went to a sequencer, say) and the request
    /// waits for it.
    private(set) var isAwaitingResponse: Bool {
        get { raw & Self.awaitingBit != 0 }
        set { raw = newValue ? raw | Self.awaitingBit : raw & ~Self.awaitingBit }
    }

    /// The index of the hub an event stream is subscribed to (see `subscribed(hub:)`).
    var hub: Int { Int(truncatingIfNeeded: raw >> Self.hubShift & 0xFF) }

    /// Whether this phase is bounded in time.
    var hasDeadline: Bool { phase != .stream && phase != .streaming }

    /// Counted against the connection limit.
    var isHeld: Bool { phase != .rejected }

    /// Requests are read and answered (between or inside requests).
    var isServingRequests: Bool { phase == .request || phase == .idle || phase == .body }

    private mutating func enter(_ next: Phase, deadlineAfter milliseconds: UInt32, now: UInt32) {
        phase = next
        deadline = now &+ milliseconds
    }

    // MARK: - Events

    /// The connection was accepted. At the connection limit, or while draining, it is turned away.
    mutating func open(now: UInt32, timeouts: Timeouts, atLimit: Bool, draining: Bool) -> OpenAction {
        if atLimit || draining {
            enter(.rejected, deadlineAfter: timeouts.linger, now: now)
            return .reject
        }
        enter(.request, deadlineAfter: timeouts.header, now: now)
        return .accept
    }

    /// Bytes arrived. On an idle keep-alive connection a request begins: the header timeout starts.
    mutating func bytesArrived(now: UInt32, timeouts: Timeouts) -> ReadAction {
        switch phase {
        case .stream, .closing, .rejected:
            return .discard
        case .idle:
            enter(.request, deadlineAfter: timeouts.header, now: now)
            return .parse
        case .request, .body:
            return isAwaitingResponse ? .keep : .parse
        case .streaming:
            return .keep
        }
    }

    /// A parser step was carried out (a head routed, body bytes taken, a request answered);
    /// `overBudget`: the connection has had its share of this loop turn.
    mutating func stepParsed(isWritable: Bool, overBudget: Bool = false) -> StepAction {
        if phase == .streaming {
            isReadingPaused = true
            return .pause
        }
        guard isServingRequests else { return .stop }
        if !isWritable || isAwaitingResponse {
            isReadingPaused = true
            return .pause
        }
        if overBudget {
            isReadingPaused = true
            return .yield
        }
        return .proceed
    }

    /// A request's head has arrived and a body follows: the header timeout is done with, and the
    /// body has `timeouts.body` to begin (and to keep up, see `bodyArrived`).
    mutating func bodyStarted(now: UInt32, timeouts: Timeouts) {
        guard isServingRequests else { return }
        enter(.body, deadlineAfter: timeouts.body, now: now)
    }

    /// `count` body bytes arrived: the body deadline moves back by `count / bodyRate` seconds, but
    /// never more than `timeouts.body` past `now`. A body sent at the minimum rate or faster never
    /// runs out; a slower one runs out, one that stalls within `timeouts.body`; credit cannot be
    /// banked by sending fast and then stalling.
    mutating func bodyArrived(_ count: Int, now: UInt32, timeouts: Timeouts) {
        guard phase == .body, timeouts.bodyRate > 0 else { return }
        let credit = UInt32(clamping: count &* 1000 / Int(timeouts.bodyRate))
        let extended = deadline &+ credit
        let cap = now &+ timeouts.body
        deadline = extended.millisecondsAfter(cap) > 0 ? cap : extended
    }

    /// A read ended inside a request, or with bytes left over (reading paused): whether the
    /// connection keeps a partial request. If it does and was idle, a request has begun.
    mutating func requestUnfinished(now: UInt32, timeouts: Timeouts) -> Bool {
        switch phase {
        case .request, .body, .streaming:
            return true
        case .idle:
            enter(.request, deadlineAfter: timeouts.header, now: now)
            return true
        case .stream, .closing, .rejected:
            return false
        }
    }

    /// A final response was queued.
    mutating func responded(keepAlive: Bool, now: UInt32, timeouts: Timeouts) -> ResponseAction {
        if keepAlive {
            enter(.idle, deadlineAfter: timeouts.idle, now: now)
            return .awaitNextRequest
        }
        enter(.closing, deadlineAfter: timeouts.linger, now: now)
        return .shutdownAndLinger
    }

    /// The parser refused the request; its error response was queued.
    mutating func parseFailed(now: UInt32, timeouts: Timeouts) -> ResponseAction {
        responded(keepAlive: false, now: now, timeouts: timeouts)
    }

    /// The request became an event stream (its head is written, the hub with index `hub` writes
    /// the rest).
    mutating func subscribed(hub: Int = 0) {
        phase = .stream
        raw = raw & ~(0xFF << Self.hubShift) | UInt64(UInt8(truncatingIfNeeded: hub)) << Self.hubShift
    }

    /// The request's handler began a streamed response: no deadline until it finishes
    /// (`responded`).
    mutating func streamingStarted() {
        phase = .streaming
    }

    /// The request's handler deferred its response: reading pauses (at the next step) until
    /// `deferredAnswered`, and no timeout closes the connection meanwhile.
    mutating func responseDeferred() {
        isAwaitingResponse = true
    }

    /// The deferred response came (and is being written).
    mutating func deferredAnswered() {
        isAwaitingResponse = false
    }

    /// A deferred request became an event stream: reading, paused while it waited, goes on so that
    /// the client's close is seen (what else it sends is discarded, as on any stream).
    mutating func deferredStreamOpened() {
        isReadingPaused = false
    }

    /// The socket drained, the publication returned or a new loop turn began: whether reading resumes (and the kept
    /// partial request, if any, goes on). Only a paused connection that still serves requests and
    /// waits for no publication resumes.
    mutating func resume() -> Bool {
        guard isReadingPaused, isServingRequests, !isAwaitingResponse else { return false }
        isReadingPaused = false
        return true
    }

    /// Marks the connection as listed for the deadline sweep; true if the caller must add it to its
    /// list (it has a deadline and was not listed yet). Call after every event.
    mutating func enlist() -> Bool {
        guard hasDeadline, !isListed else { return false }
        isListed = true
        return true
    }

    /// The sweep looks at a listed connection at `now`.
    mutating func sweep(now: UInt32) -> SweepAction {
        guard hasDeadline else {
            isListed = false
            return .forget
        }
        // A deferred response is the handler's to bound (its sequencer may take its time).
        if deadline.millisecondsAfter(now) > 0 || isAwaitingResponse { return .keep }
        isListed = false
        switch phase {
        case .request: return .timeOut(.header)
        case .body: return .timeOut(.body)
        case .idle: return .timeOut(.idle)
        case .closing, .rejected: return .timeOut(.linger)
        case .stream, .streaming: return .forget  // has no deadline: handled above
        }
    }

    /// The server begins to shut down.
    mutating func drain(now: UInt32, timeouts: Timeouts) -> DrainAction {
        switch phase {
        case .stream:
            enter(.closing, deadlineAfter: timeouts.linger, now: now)
            return .endStream
        case .idle:
            return .close
        case .request, .body, .closing, .rejected, .streaming:
            return .none
        }
    }

    /// A graceful drain reaches an idle keep-alive connection: rather than a close that may cross a
    /// request already on the wire (the client would see its request lost), it may stay idle
    /// `grace` milliseconds more (at most its idle timeout): a request in that time is answered,
    /// with keep-alive off, and then it closes; none, and the idle timeout closes it.
    mutating func drainIdle(now: UInt32, grace: UInt32) {
        guard phase == .idle, deadline.millisecondsAfter(now) > Int32(clamping: grace) else { return }
        enter(.idle, deadlineAfter: grace, now: now)
    }

    /// The connection closed: whether it was held (counted against the limit), and what to release.
    func closed() -> (wasHeld: Bool, release: Release) {
        switch phase {
        case .stream: (true, .subscription)
        case .request, .idle, .body: (true, .partialRequest)
        case .streaming: (true, .streamedResponse)
        case .closing: (true, .none)
        case .rejected: (false, .none)
        }
    }
}

extension UInt32 {
    /// Milliseconds from `now` until this wrapping deadline (negative once it has passed).
    func millisecondsAfter(_ now: UInt32) -> Int32 { Int32(bitPattern: self &- now) }
}
