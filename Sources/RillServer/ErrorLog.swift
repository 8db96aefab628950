import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Error logging without a line per connection: every `logInterval` the server writes one line per
/// error class whose count grew since the last report, with the growth and the total.
struct ErrorLog {
    private var reported: [String: Int] = [:]

    /// The lines to log for `counts` (class description, total so far), and remembers them.
    mutating func lines(for counts: [(String, Int)], interval: String) -> [LogLine] {
        var lines: [LogLine] = []
        for (label, total) in counts {
            let previous = reported[label, default: 0]
            guard total > previous else { continue }
            lines.append(
                LogLine(
                    .warning, "rill serve: \(label): \(total - previous) in the last \(interval) (\(total) in all)",
                    fields: [
                        ("class", .text(label)), ("count", .number(total - previous)),
                        ("total", .number(total)), ("interval", .text(interval))
                    ]))
            reported[label] = total
        }
        return lines
    }
}

extension SSEServer {
    /// Each error class with its count so far.
    var errorCounts: [(String, Int)] {
        var counts: [(String, Int)] = []
        for status in [400, 413, 414, 431, 501, 505] {
            counts.append(("malformed requests answered \(status)", statistics.parseErrors[status, default: 0]))
        }
        counts += [
            ("header timeouts (request not complete in time)", statistics.headerTimeouts),
            ("body timeouts (408: a body slower than the minimum rate)", statistics.bodyTimeouts),
            (
                "requests refused with 503: unfinished requests at their memory budget",
                statistics.partialRequestsRefused
            ),
            ("clients turned away with 503 at the connection limit", statistics.connectionsRejected),
            ("slow subscribers dropped", hub.statistics.slowSubscribersDropped),
            ("unknown or expired Last-Event-IDs", hub.statistics.replayMisses),
            ("publishes without a valid token (401)", statistics.unauthorized),
            ("bad queries or event fields (400)", statistics.badRequests),
            ("subscriptions refused at the topic limit (503)", statistics.topicsExhausted),
            ("connections reset by peer", statistics.resets),
            ("accept errors", http.acceptErrors),
            ("accept pauses: out of file descriptors", http.exhaustionPauses),
            ("listener closed at the connection limit (others on the port take new connections)", statistics.listenerSheds)
        ]
        return counts
    }

    /// Logs one line per error class that grew since the last call (`interval` names the period
    /// in the text).
    public func logErrors(interval: String) {
        for line in errorLog.lines(for: errorCounts, interval: interval) { line.write(configuration.logFormat) }
    }
}

/// One line to fd 2, unbuffered.
public func writeStandardError(_ line: String) {
    FileDescriptor.writeStandardError(line + "\n")
}
