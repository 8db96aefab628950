/// What the server knows of one connection, packed into the reactor's per-connection `userData`
/// word so that a connection costs the server no table entry of its own:
/// bits 0–7 the phase, bit 8 "listed for the deadline sweep", bits 32–63 the deadline (loop ms, wrapping).
///
/// Deadlines are enforced lazily: a connection is listed once for the server's sweep; moving the
/// deadline only rewrites this word, and the sweep closes the connection once the deadline has
/// passed. A subscriber has no deadline: the sweep drops it from the list (and clears the bit).
struct ConnectionState {
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
    }

    var raw: UInt64

    init(_ raw: UInt64) { self.raw = raw }

    init(phase: Phase) {
        raw = UInt64(phase.rawValue)
    }

    var phase: Phase {
        get { Phase(rawValue: UInt8(truncatingIfNeeded: raw)) ?? .request }
        set { raw = raw & ~0xFF | UInt64(newValue.rawValue) }
    }

    /// In the server's list of connections with a deadline.
    var isSwept: Bool {
        get { raw & (1 << 8) != 0 }
        set { raw = newValue ? raw | (1 << 8) : raw & ~(1 << 8) }
    }

    var deadline: UInt32 {
        get { UInt32(truncatingIfNeeded: raw >> 32) }
        set { raw = raw & 0xFFFF_FFFF | UInt64(newValue) << 32 }
    }

    /// Whether this phase is bounded in time.
    var hasDeadline: Bool { phase != .stream }

    /// Counted against the connection limit.
    var isHeld: Bool { phase != .rejected }
}

extension UInt32 {
    /// Milliseconds from `now` until this wrapping deadline (negative once it has passed).
    func millisecondsAfter(_ now: UInt32) -> Int32 { Int32(bitPattern: self &- now) }
}
