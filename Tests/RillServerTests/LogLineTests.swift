@testable import RillServer
import Testing

@Suite struct LogLineTests {
    /// 2026-12-01T21:18:00.123Z, as CLOCK_REALTIME nanoseconds.
    static let time: UInt64 = 1_796_159_880_123_000_000

    /// Text: timestamp, level, message; JSON: one object with time, level, message and the fields
    /// (numbers as numbers, strings escaped).
    @Test func textAndJSON() {
        let line = LogLine(
            .warning, "rill serve: worker 2 \"x\" exited", fields: [("worker", .number(2)), ("exit", .text("a\nb"))],
            time: LogLineTests.time)
        #expect(line.rendered(.text) == "2026-12-01T21:18:00.123Z warning rill serve: worker 2 \"x\" exited")
        #expect(
            line.rendered(.json)
                == #"{"time":"2026-12-01T21:18:00.123Z","level":"warning","message":"rill serve: worker 2 \"x\" exited","worker":2,"exit":"a\nb"}"#
        )
        #expect(LogLine.jsonString("\u{1}") == #""\u0001""#)
    }

    /// The error log: one line per class that grew, with the growth and the total as fields.
    @Test func errorLogLinesCarryTheirCounts() {
        var log = ErrorLog()
        let first = log.lines(for: [("header timeouts", 3), ("resets", 0)], interval: "10 s")
        #expect(first.count == 1)
        #expect(
            first[0].level == .warning
                && first[0].message == "rill serve: header timeouts: 3 in the last 10 s (3 in all)")
        #expect(
            first[0].rendered(.json).hasSuffix(#""class":"header timeouts","count":3,"total":3,"interval":"10 s"}"#))
        #expect(log.lines(for: [("header timeouts", 3)], interval: "10 s").isEmpty)
        #expect(
            log.lines(for: [("header timeouts", 5)], interval: "10 s")[0].message.hasSuffix(
                "2 in the last 10 s (5 in all)"))
    }
}
