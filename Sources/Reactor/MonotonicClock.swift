#if canImport(Glibc)
import Glibc
#endif

/// CLOCK_MONOTONIC in nanoseconds (a vDSO call, no syscall).
public enum MonotonicClock {
    public static func nanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }
}

/// CLOCK_REALTIME in nanoseconds: for `t=<ns>` latency stamps shared between processes.
public enum WallClock {
    public static func nanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so a timer never fires early; negative durations are 0, and
    /// durations past what a UInt64 of milliseconds holds (~584 million years) saturate to its max.
    /// (The loop's clock ticks in milliseconds: this is how durations become ticks.)
    public var millisecondsRoundedUp: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        let perMillisecond: Int64 = 1_000_000_000_000_000
        let extra = (attoseconds + perMillisecond - 1) / perMillisecond
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1000)
        let (total, carry) = whole.addingReportingOverflow(UInt64(extra))
        return overflow || carry ? .max : total
    }
}
