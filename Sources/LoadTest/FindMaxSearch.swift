/// `--find-max`'s decisions: steps of `step` streams up to `ceiling`; after each, every stream must be
/// open without an error (and a probe event must reach every one); the first step that fails ends
/// the search, and the last clean level is the answer.
public struct FindMaxSearch: Sendable {
    public let ceiling: Int
    public let step: Int
    /// The most streams held cleanly so far.
    public private(set) var clean = 0
    /// Why the search stopped, once it has.
    public private(set) var stopped: String?

    public init(ceiling: Int, step: Int) {
        self.ceiling = ceiling
        self.step = max(1, step)
    }

    /// The next level to step to, nil once the search is over.
    public var nextLevel: Int? { clean < ceiling && stopped == nil ? min(ceiling, clean + step) : nil }

    /// Judges a step to `level` once it has settled (or not, within `budget` seconds) with the
    /// workers' summed `status`; false if the search stops here.
    public mutating func judge(level: Int, settled: Bool, status: LoadCounts, budget: Double) -> Bool {
        if !settled {
            stopped = "at \(level): streams still opening after \(Int(budget)) s"
        } else if status.errorCount > 0 || status.open < level {
            stopped =
                "at \(level): \(status.open) open, "
                + (status.errors.isEmpty ? "no error reported" : LoadCounts.summary(status.errors))
        }
        return stopped == nil
    }

    /// Judges the probe event at `level`: delivered to every stream, or missed by `gaps` of them.
    public mutating func probed(level: Int, delivered: Bool, gaps: Int) -> Bool {
        if !delivered { stopped = "at \(level): the server stopped delivering events (\(gaps) streams missed a probe)" }
        return delivered
    }

    /// `level` was held cleanly.
    public mutating func passed(_ level: Int) { clean = level }

    /// The answer: the maximum, why the search stopped (with `notes`), and a failure if not even the
    /// first step held.
    public func conclusion(interrupted: Bool, notes: [String] = []) -> (
        maximum: Int, stoppedBecause: String, failure: String?
    ) {
        let reason =
            stopped
            ?? (interrupted
                ? "interrupted" : "reached the --connections ceiling (\(ceiling)) cleanly; raise it to go further")
        return (
            clean, ([reason] + notes).joined(separator: "; "),
            clean > 0 ? nil : "not even \(min(step, ceiling)) streams held cleanly: \(reason)"
        )
    }
}
