import Reactor

/// `--churn R/s`: streams closed and reopened at a rate while the total is held, as real audiences
/// come and go. A closed stream reopens at once with its `Last-Event-ID`; the time from its close
/// to the new response head is the churn latency in the report.
public struct ChurnRate: Codable, Equatable, Sendable, CustomStringConvertible {
    public var perSecond: Double

    public init(perSecond: Double) { self.perSecond = perSecond }

    /// `100/s`, `200k/min` (`/m`, `/h` too), or a plain number per second; k and M suffixes.
    public init(parsing text: String) throws(ChurnError) {
        let parts = text.lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let count = LoadStage.number(String(parts[0]).trimmingSpaces) else {
            throw .malformed(text)
        }
        let per: [String: Double] = ["s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600]
        guard let seconds = parts.count == 1 ? 1 : per[String(parts[1]).trimmingSpaces] else { throw .malformed(text) }
        perSecond = count / seconds
    }

    public var description: String { "\(perSecond)/s" }
}

/// Why a `--churn` is refused.
public enum ChurnError: Error, Equatable, CustomStringConvertible {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let text):
            return "churn '\(text)' must be a rate: 100/s, 200k/min (also /m, /h), or a number per second"
        }
    }
}

/// The churn's clock: how many streams should have been churned by now.
struct ChurnPace {
    var perSecond = 0.0
    var start: UInt64 = 0
    var done = 0

    /// Churns owed by `now`.
    func owed(now: UInt64) -> Int {
        guard perSecond > 0 else { return 0 }
        return Int(Double(now - start) / 1e9 * perSecond) - done
    }
}

extension StreamLoad {
    /// Churns `perSecond` streams from now on (0: stops).
    func startChurn(perSecond: Double) {
        churn = ChurnPace(perSecond: perSecond, start: MonotonicClock.nanoseconds(), done: 0)
    }

    /// Closes and reopens the streams owed by now, at most 256 a turn (the rest in the next).
    func pumpChurn() {
        let owed = min(256, churn.owed(now: MonotonicClock.nanoseconds()))
        guard owed > 0, streaming > 0 else {
            // Nothing open to churn: the owed ones are forgiven, not saved up for a burst.
            if owed > 0 { churn.done += owed }
            return
        }
        for _ in 0..<owed {
            churn.done += 1
            // A random open stream; a few tries, then the turn's churn is skipped.
            for _ in 0..<8 {
                let index = Int.random(in: 0..<streams.count)
                if streams[index].open && !streams[index].retired && !streams[index].churning {
                    churnOne(index)
                    break
                }
            }
        }
    }

    private func churnOne(_ index: Int) {
        guard let connection = loop.connection(id: streams[index].connection) else { return }
        streams[index].churning = true
        churnsPending += 1
        streams[index].mark = MonotonicClock.nanoseconds()
        connection.close()
        reconnect(index)
    }
}
