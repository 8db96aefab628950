import ArgumentParser
import LoadTest

/// One parser per kind of value on the command line, shared by every subcommand, each refusing
/// with its reason. Used as `transform:` with `.unconditional` parsing (so `-1` is read as the
/// value, not as a flag), ArgumentParser prints
/// "The value '-1' is invalid for '--heartbeat <heartbeat>': must be 0 (off) or …".
enum Parse {
    /// Why a value was refused; ArgumentParser prints the description after the value.
    struct Invalid: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// The longest duration any flag takes: a week is past any useful timeout or run, and far
    /// inside what the reactor's timers (49 days of milliseconds) and Duration arithmetic hold.
    static let maximumSeconds: Double = 7 * 86_400

    /// A duration: seconds (`1.5`), or with a unit (`500ms`, `30s`, `2m`, `1h`). `zero` says what 0
    /// means for this flag ("off"), or nil when 0 is refused.
    static func seconds(_ text: String, zero: String?) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Double(text)
        if number == nil, let (suffix, scale) = units.first(where: { text.lowercased().hasSuffix($0.0) }) {
            number = Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        let range = zero.map { "0 (\($0)) or a positive number of seconds" } ?? "a positive number of seconds"
        let limit = "at most \(Int(maximumSeconds)) (a week); units ms, s, m, h are accepted"
        guard let number, number.isFinite, number >= 0, zero != nil || number > 0 else {
            throw Invalid("must be \(range), \(limit)")
        }
        guard number <= maximumSeconds else { throw Invalid("must be \(range), \(limit)") }
        return number
    }

    /// A rate per second, 0 meaning `zero`.
    static func rate(_ text: String, zero: String) throws -> Double {
        guard let number = Double(text), number.isFinite, number >= 0, number <= 1e9 else {
            throw Invalid("must be 0 (\(zero)) or a positive number per second")
        }
        return number
    }

    /// A byte size: plain bytes (`65536`), or `64k`, `1M`, `1G` and `64KiB`, `1MiB`, `1GiB` (powers
    /// of 1024), or `64kB`, `1MB`, `1GB` (powers of 1000). The one size syntax of every command.
    static func bytes(_ text: String) throws -> Int {
        let units: [(String, Double)] = [
            ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("kB", 1e3), ("KB", 1e3), ("MB", 1e6),
            ("GB", 1e9),
            ("k", 1024), ("K", 1024), ("M", 1_048_576), ("G", 1_073_741_824), ("B", 1)
        ]
        var number = Double(text)
        if number == nil, let (suffix, scale) = units.first(where: { text.hasSuffix($0.0) }) {
            number = Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        guard let number, number.isFinite, number >= 0, number < 1e15 else {
            throw Invalid(
                "not a size: write bytes (65536) or a number with a unit: 64k, 1M, 1G or 64KiB, 1MiB "
                    + "(powers of 1024), 64kB, 1MB (powers of 1000)")
        }
        return Int(number.rounded())
    }

    /// A count with an optional k or M suffix (`500`, `10k`, `1.5M`), at least `minimum`.
    static func count(_ text: String, minimum: Int, meaning: String = "") throws -> Int {
        // The same k/M syntax as `rill load -c`.
        guard let value = CountArgument(argument: text)?.value, value >= minimum, value < 1_000_000_000_000_000 else {
            throw Invalid(
                "must be a whole number of at least \(minimum)\(meaning) (k and M suffixes are accepted: 10k)")
        }
        return value
    }

    /// A TCP port to listen on.
    static func port(_ text: String) throws -> UInt16 {
        guard let port = UInt16(text) else { throw Invalid("must be a port from 1 to 65535, or 0 for any free one") }
        return port
    }

    /// `auto` or a number of worker processes, at least 1.
    static func workers(_ text: String) throws -> WorkersArgument {
        guard let workers = WorkersArgument(argument: text) else {
            throw Invalid(
                "must be 'auto' (one per CPU) or a number of processes, at least 1 (1: this process does the work)")
        }
        return workers
    }
}
