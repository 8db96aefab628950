/// How many worker processes `rill serve --workers auto` starts: one per CPU, or, when
/// `--max-connections N` asks for more than that many processes hold, as many as N needs at the
/// per-process limit (the hard open-file limit, which no setting raises) — with room to spare,
/// because SO_REUSEPORT spreads connections by a hash of their addresses, not evenly: with ~20k
/// per worker the busiest of 50 gets about 2.3 standard deviations (~330) more than the mean.
public struct WorkerSizing: Equatable, Sendable {
    /// Worker processes to start.
    public var workers: Int
    /// Connections each may hold (its open-file limit less the reserve).
    public var perWorker: Int
    /// The connections asked for (nil: none, so one worker per CPU).
    public var asked: Int?

    /// The share of a worker's capacity planned for: the rest absorbs the hash's unevenness
    /// (3% of 19,968 is ~600, about four standard deviations of a worker's share).
    public static let plannedFill = 0.97

    /// Sizing for `connections` (nil: not given) at `perWorker` connections per process on a
    /// machine with `processors` CPUs.
    public init(connections: Int?, perWorker: Int, processors: Int) {
        self.perWorker = max(1, perWorker)
        self.asked = connections
        let byCPU = max(1, processors)
        guard let connections, connections > 0 else {
            workers = byCPU
            return
        }
        let planned = max(1, Int(Double(self.perWorker) * WorkerSizing.plannedFill))
        workers = max(byCPU, (connections + planned - 1) / planned)
    }

    /// Connections all the workers together may hold.
    public var capacity: Int { workers * perWorker }

    /// What the startup line says about the choice.
    public var summary: String {
        guard let asked else { return "auto: one per CPU" }
        return "auto: sized for \(asked) connections at up to \(perWorker) per worker, "
            + "\(Int((1 - WorkerSizing.plannedFill) * 100 + 0.5))% spare for the kernel's uneven SO_REUSEPORT spread"
    }
}
