import Synchronization

/// Time that only moves when told to: the clock of a loop under test, so that every timer-driven
/// behaviour (heartbeats, timeouts, pauses) is tested deterministically and no test sleeps for a
/// timer. Thread-safe; `EventLoop.advanceTime(by:)` is the usual way to move it.
public final class ManualClock: Sendable {
    private let current: Atomic<UInt64>

    /// A clock reading `nanoseconds`.
    public init(nanoseconds: UInt64 = 0) {
        current = Atomic(nanoseconds)
    }

    /// The current reading in nanoseconds.
    public var nanoseconds: UInt64 { current.load(ordering: .acquiring) }

    /// Moves time forward. A loop on this clock sees the new time at its next wake-up; it fires
    /// the timers that became due only then (use `EventLoop.advanceTime(by:)` to fire them now).
    public func advance(by delta: Duration) {
        current.add(delta.nanosecondsRoundedUp, ordering: .acquiringAndReleasing)
    }

    /// Moves time forward to `target` (never back).
    func advance(to target: UInt64) {
        current.max(target, ordering: .acquiringAndReleasing)
    }
}

extension EventLoop {
    /// Where a loop's time comes from.
    public enum Clock: Sendable {
        /// CLOCK_MONOTONIC: real time, for running loops.
        case monotonic
        /// A clock that moves only when a test advances it. `runOnce` never waits for a timer then.
        case manual(ManualClock)
    }
}

extension Duration {
    /// Whole nanoseconds, rounded up; negative durations are 0.
    var nanosecondsRoundedUp: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        let perNanosecond: Int64 = 1_000_000_000
        return UInt64(seconds) * 1_000_000_000 + UInt64((attoseconds + perNanosecond - 1) / perNanosecond)
    }
}
