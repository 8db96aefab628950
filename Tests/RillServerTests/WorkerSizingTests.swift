import RillServer
import Testing

@Suite struct WorkerSizingTests {
    /// Without --max-connections: one worker per CPU. With it: enough workers that each is filled
    /// to at most 97% of its limit (the rest absorbs SO_REUSEPORT's uneven hash), never fewer than
    /// the CPUs.
    @Test func workersForConnections() {
        #expect(WorkerSizing(connections: nil, perWorker: 19_968, processors: 2).workers == 2)
        #expect(WorkerSizing(connections: 1_000, perWorker: 19_968, processors: 2).workers == 2)
        #expect(WorkerSizing(connections: 100_000, perWorker: 19_968, processors: 2).workers == 6)
        let million = WorkerSizing(connections: 1_000_000, perWorker: 19_968, processors: 2)
        #expect(million.workers == 52)
        #expect(million.capacity >= 1_000_000 && 1_000_000 / million.workers <= 19_968 * 97 / 100)
        #expect(million.summary.contains("sized for 1000000 connections"))
        #expect(WorkerSizing(connections: 10, perWorker: 0, processors: 0).workers == 10)
    }
}
