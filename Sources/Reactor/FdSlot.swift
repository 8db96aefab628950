/// One entry of the loop's fd table, a flat array indexed by fd. It holds everything the reactor
/// knows about an open descriptor: 48 bytes (listeners, being few, live in a side table), and no allocation while a connection is idle.
struct FdSlot {
    enum Kind: UInt8 {
        case free, connecting, connection, listener, wakeup, signal
    }

    /// State bits of a connection slot.
    struct Flags: OptionSet {
        var rawValue: UInt16
        static let readClosed = Flags(rawValue: 1 << 0)  // peer's FIN seen, or closing after flush
        static let readPaused = Flags(rawValue: 1 << 1)  // user asked to stop reading
        static let writeShutdown = Flags(rawValue: 1 << 2)  // shutdown(SHUT_WR) done
        static let shutdownPending = Flags(rawValue: 1 << 3)  // shut down writing once flushed
        static let closePending = Flags(rawValue: 1 << 4)  // close once flushed
        static let notWritable = Flags(rawValue: 1 << 5)  // above the high watermark
        static let failed = Flags(rawValue: 1 << 6)  // a deferred close is queued
        static let registeredIn = Flags(rawValue: 1 << 7)  // EPOLLIN in the epoll interest set
        static let registeredOut = Flags(rawValue: 1 << 8)  // EPOLLOUT in the epoll interest set
    }

    var handler: (any ConnectionHandler)? = nil
    var queue: WriteQueue? = nil
    var userData: UInt64 = 0
    /// The connect timeout while `.connecting`; `TimerID.none` otherwise. (Not an Optional: that
    /// would add a byte and, with padding, 8 to every slot.)
    var connectTimer = TimerID.none
    /// Bumped every time the fd is closed, so events and handles from an earlier owner are recognised.
    var generation: UInt32 = 0
    var flags: Flags = []
    var kind: Kind = .free

    /// Packs fd and generation into epoll's 64-bit user data: an event whose generation no longer
    /// matches the slot's was queued for a descriptor that has since been closed (and maybe reused).
    static func token(fd: Int32, generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }
}
