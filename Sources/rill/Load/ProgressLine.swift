import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// A progress display on stderr (stdout carries only the report): one line redrawn a few times a
/// second when stderr is a terminal, a plain line every 5 s otherwise (logs and CI).
final class ProgressLine {
    private let isTerminal = isatty(2) == 1
    private var last: UInt64 = 0
    private var drawn = false

    func show(_ text: String) {
        let now = MonotonicClock.nanoseconds()
        let interval: UInt64 = isTerminal ? 250_000_000 : 5_000_000_000
        guard now - last >= interval else { return }
        if last == 0 && !isTerminal {
            last = now  // the first plain line after 5 s, not at once
            return
        }
        last = now
        if isTerminal {
            write("\r\u{1B}[K" + text)
            drawn = true
        } else {
            write(text + "\n")
        }
    }

    func finish() {
        if drawn { write("\r\u{1B}[K") }
    }

    private func write(_ text: String) { FileDescriptor.writeStandardError(text) }
}
