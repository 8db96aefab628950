#if canImport(Glibc)
import Glibc
#endif

/// `2026-11-21T09:30:05.123Z` for a CLOCK_REALTIME time in nanoseconds (no Foundation here).
func iso8601(nanoseconds: UInt64) -> String {
    var seconds = time_t(nanoseconds / 1_000_000_000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    let milliseconds = Int(nanoseconds / 1_000_000 % 1000)
    func padded(_ value: Int32, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    return "\(padded(parts.tm_year + 1900, 4))-\(padded(parts.tm_mon + 1, 2))-\(padded(parts.tm_mday, 2))T"
        + "\(padded(parts.tm_hour, 2)):\(padded(parts.tm_min, 2)):\(padded(parts.tm_sec, 2))."
        + "\(padded(Int32(milliseconds), 3))Z"
}
