import Reactor

/// How log lines are written: `text` for people, `json` (one object per line) for log shippers.
public enum LogFormat: String, CaseIterable, Sendable {
    case text, json
}

/// One log event: a line on stderr with an ISO-8601 UTC timestamp and a level, e.g.
/// `2026-12-01T21:18:00.123Z warning rill serve: worker 2 … class="…"`, or the same as a JSON object
/// `{"time":"…","level":"warning","message":"…",…fields}`. Logs are every line but the startup and
/// stop lines, which stay on stdout for scripts.
public struct LogLine: Sendable {
    public enum Level: String, Sendable { case info, warning, error }

    /// A field's value: JSON numbers stay numbers.
    public enum Value: Sendable, CustomStringConvertible {
        case text(String)
        case number(Int)

        public var description: String {
            switch self {
            case .text(let text): return text
            case .number(let number): return String(number)
            }
        }
    }

    public var level: Level
    public var message: String
    public var fields: [(String, Value)]
    /// CLOCK_REALTIME nanoseconds.
    public var time: UInt64

    public init(
        _ level: Level, _ message: String, fields: [(String, Value)] = [], time: UInt64 = WallClock.nanoseconds()
    ) {
        self.level = level
        self.message = message
        self.fields = fields
        self.time = time
    }

    /// The line as `format` writes it (without the newline). Text puts the fields after the message
    /// only when the message does not already say them.
    public func rendered(_ format: LogFormat, fieldsInText: Bool = false) -> String {
        let stamp = iso8601(nanoseconds: time)
        switch format {
        case .text:
            var line = "\(stamp) \(level.rawValue) \(message)"
            if fieldsInText { for (key, value) in fields { line += " \(key)=\(LogLine.quotedIfNeeded(value))" } }
            return line
        case .json:
            var line =
                "{\"time\":\"\(stamp)\",\"level\":\"\(level.rawValue)\",\"message\":\(LogLine.jsonString(message))"
            for (key, value) in fields {
                line += ",\(LogLine.jsonString(key)):"
                switch value {
                case .text(let text): line += LogLine.jsonString(text)
                case .number(let number): line += String(number)
                }
            }
            return line + "}"
        }
    }

    /// Writes the line to stderr.
    public func write(_ format: LogFormat) { writeStandardError(rendered(format)) }

    static func quotedIfNeeded(_ value: Value) -> String {
        guard case .text(let text) = value, text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) else {
            return value.description
        }
        return jsonString(text)
    }

    /// `text` as a JSON string literal (RFC 8259 escapes).
    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
