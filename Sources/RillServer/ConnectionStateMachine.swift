/// The lifecycle of one HTTP connection, as a value: each event goes in through a `mutating func`
/// that makes the transition and returns what the server must do; the server (`SSEServer`) performs
/// it. No clock, no socket: the time of an event is passed in as `now` (loop milliseconds, wrapping).
///
/// It packs into the reactor's per-connection `userData` word, so a connection costs the server no
/// table entry of its own: bits 0–7 the phase, bit 8 "listed for the deadline sweep", bit 9 "reading
/// paused", bit 10 "awaiting a relayed publication", bits 32–63 the deadline. A fresh word (0) is a
/// connection that has just been accepted.
///
/// Deadlines are enforced lazily: a connection is listed once for the server's sweep (`enlist`);
/// moving the deadline only rewrites the word, and the sweep (`sweep(now:)`) closes the connection
/// once its deadline has passed. A stream has no deadline: the sweep drops it from the list.
struct ConnectionStateMachine: Equatable {
    enum Phase: UInt8 {
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
    }

    /// The server's timeouts, in milliseconds.
    struct Timeouts: Equatable {
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
        /// Nothing.
        case none
    }

    // MARK: - The word

    private(set) var raw: UInt64

    private static let listedBit: UInt64 = 1 << 8
    private static let pausedBit: UInt64 = 1 << 9
    private static let awaitingBit: UInt64 = 1 << 10

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

    /// A publication went to the supervisor and its request waits for the event to come back.
    private(set) var isAwaitingPublication: Bool {
        get { raw & Self.awaitingBit != 0 }
        set { raw = newValue ? raw | Self.awaitingBit : raw & ~Self.awaitingBit }
    }

    /// Whether this phase is bounded in time.
    var hasDeadline: Bool { phase != .stream }

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
            return .parse
        }
    }

    /// A parser step was carried out (a head routed, body bytes taken, a request answered);
    /// `overBudget`: the connection has had its share of this loop turn.
    mutating func stepParsed(isWritable: Bool, overBudget: Bool = false) -> StepAction {
        guard isServingRequests else { return .stop }
        if !isWritable || isAwaitingPublication {
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
        case .request, .body:
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

    /// The request became an event stream (its head is written, the hub writes the rest).
    mutating func subscribed() {
        phase = .stream
    }

    /// The request's publication went to the supervisor: reading pauses (at the next step) until
    /// `publicationReturned`.
    mutating func publicationForwarded() {
        isAwaitingPublication = true
    }

    /// The relayed event came back (and its request is being answered).
    mutating func publicationReturned() {
        isAwaitingPublication = false
    }

    /// The socket drained, the publication returned or a new loop turn began: whether reading resumes (and the kept
    /// partial request, if any, goes on). Only a paused connection that still serves requests and
    /// waits for no publication resumes.
    mutating func resume() -> Bool {
        guard isReadingPaused, isServingRequests, !isAwaitingPublication else { return false }
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
        if deadline.millisecondsAfter(now) > 0 { return .keep }
        isListed = false
        switch phase {
        case .request: return .timeOut(.header)
        case .body: return .timeOut(.body)
        case .idle: return .timeOut(.idle)
        case .closing, .rejected: return .timeOut(.linger)
        case .stream: return .forget  // has no deadline: handled above
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
        case .request, .body, .closing, .rejected:
            return .none
        }
    }

    /// The connection closed: whether it was held (counted against the limit), and what to release.
    func closed() -> (wasHeld: Bool, release: Release) {
        switch phase {
        case .stream: (true, .subscription)
        case .request, .idle, .body: (true, .partialRequest)
        case .closing: (true, .none)
        case .rejected: (false, .none)
        }
    }
}

extension UInt32 {
    /// Milliseconds from `now` until this wrapping deadline (negative once it has passed).
    func millisecondsAfter(_ now: UInt32) -> Int32 { Int32(bitPattern: self &- now) }
}
