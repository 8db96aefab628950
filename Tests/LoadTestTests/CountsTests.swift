@testable import LoadTest
import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct CountsTests {
    static func counts(_ build: (inout LoadCounts) -> Void) -> LoadCounts {
        var counts = LoadCounts()
        build(&counts)
        return counts
    }

    /// Merging sums the counts, takes the most published and the longest active time, and is settled
    /// only if both are; an empty LoadCounts is the identity.
    @Test func mergeSumsAndCombines() {
        let a = CountsTests.counts {
            $0.attempted = 10; $0.opened = 9; $0.failed = 1; $0.open = 9; $0.events = 90; $0.gaps = 1
            $0.published = 10; $0.settled = false; $0.errors = [.connectRefused: 1]; $0.residentBytes = 100
            $0.activeSeconds = 2; $0.requestsPerSecond = 50
        }
        let b = CountsTests.counts {
            $0.attempted = 5; $0.opened = 5; $0.open = 5; $0.events = 50; $0.heartbeats = 3; $0.published = 12
            $0.errors = [.connectRefused: 2, .status(503): 1]; $0.residentBytes = 50; $0.activeSeconds = 3
            $0.requestsPerSecond = 25
        }
        let sum = a.merged(b)
        #expect(sum.attempted == 15 && sum.opened == 14 && sum.failed == 1 && sum.open == 14)
        #expect(sum.events == 140 && sum.heartbeats == 3 && sum.gaps == 1)
        #expect(sum.published == 12 && !sum.settled)
        #expect(sum.errors == [.connectRefused: 3, .status(503): 1] && sum.errorCount == 4)
        #expect(sum.residentBytes == 150 && sum.activeSeconds == 3 && sum.requestsPerSecond == 75)
        #expect(LoadCounts().merged(a) == a && a.merged(LoadCounts()) == a)
        #expect(a.merged(b) == b.merged(a), "order does not matter")
    }

    /// Recorders merge their counts once, their histograms, and time-to-last by the latest delivery.
    @Test func recorderMerge() {
        var a = LoadRecorder()
        a.counts.events = 2
        a.delivered(stamp: 1, latency: 100)
        a.delivered(stamp: 2, latency: 300)
        a.connect.record(10)
        var b = LoadRecorder()
        b.counts.events = 1
        b.delivered(stamp: 1, latency: 500)
        b.connect.record(20)
        a.merge(b)
        #expect(a.counts.events == 3)
        #expect(a.eventLatency.totalCount == 3)
        #expect(a.connect.totalCount == 2)
        #expect(a.lastDeliveries == [1: 500, 2: 300])
        #expect(a.timeToLast.totalCount == 2 && a.timeToLast.max >= 500)
    }

    /// A recorder survives the JSON trip a worker's result takes, error classes included.
    @Test func recorderRoundTripsThroughWorkerMessages() throws {
        var recorder = LoadRecorder()
        recorder.counts.requests = 7
        recorder.error(.publish(.status(500)))
        recorder.error(.worker(2, "exited"))
        recorder.requestLatency.record(1234)
        let frame = WorkerMessage.encode(WorkerReply.result(recorder))
        let decoded = try frame.dropFirst(5).withUnsafeBytes { try WorkerMessage.decode(frame[4], $0, as: WorkerReply.self) }
        guard case .result(let back) = decoded else { Issue.record("not a result"); return }
        #expect(back.counts == recorder.counts)
        #expect(back.requestLatency.totalCount == 1)
    }

    /// Error classes read as the report has always printed them, and the limits behind them are typed.
    @Test func errorClassesAndLimits() {
        #expect(LoadErrorClass(.connectFailed(SystemError(operation: "connect", errno: EMFILE))) == .outOfFileDescriptors)
        #expect(LoadErrorClass(.connectFailed(SystemError(operation: "connect", errno: ECONNREFUSED))).description == "connect refused")
        #expect(LoadErrorClass(.eof).description == "closed by server")
        #expect(LoadErrorClass.publish(.status(503)).description == "publish: status 503")
        #expect(LoadErrorClass.heartbeatsStopped.description == "heartbeats stopped (silent > 2 intervals)")
        #expect(LoadLimit(.publish(.outOfFileDescriptors)) == .openFiles)
        #expect(LoadLimit(.status(404)) == nil)
        #expect(LoadLimit.advice(for: [.resetByServer: 1, .closedByServer: 2, .status(503): 1]) == [
            LoadLimit.serverConnections.description, LoadLimit.serverClosed.description,
        ])
        #expect(LoadCounts.summary([.status(503): 15, .connectRefused: 15, .closedByServer: 20])
                == "closed by server: 20, connect refused: 15, status 503: 15")
    }

    /// The per-second series records each second's growth of the summed counts.
    @Test func seriesRecordsGrowthPerSecond() {
        var series = LoadSeries()
        var status = LoadCounts()
        status.open = 5; status.events = 10; status.requests = 1
        series.record(second: 0, status, published: 0)
        #expect(series.seconds.isEmpty, "second 0 is not over")
        series.record(second: 1, status, published: 2)
        status.events = 25; status.errors = [.requestLost: 2]
        series.record(second: 1, status, published: 2)
        series.record(second: 2, status, published: 4)
        #expect(series.seconds == [
            LoadSecond(second: 1, open: 5, events: 10, requests: 3, errors: 0),
            LoadSecond(second: 2, open: 5, events: 15, requests: 2, errors: 2),
        ])
    }

    /// Worker counts: --workers N too few for the fd limit, and too few ports per source, are typed errors.
    @Test func processCountsAndTheirErrors() throws {
        #expect(try LoadSession.processes(connections: 240, workers: nil, perProcess: 88, sources: 8, ephemeralPorts: 28_000) == 3)
        #expect(try LoadSession.processes(connections: 50, workers: nil, perProcess: 88, sources: 8, ephemeralPorts: 28_000) == 1)
        #expect(throws: LoadError.tooManyPerProcess(connections: 240, processes: 2, each: 120, softLimit: 120, hardLimit: 4096, needed: 3)) {
            try LoadSession.processes(connections: 240, workers: 2, perProcess: 88, softLimit: 120, hardLimit: 4096,
                                      sources: 8, ephemeralPorts: 28_000)
        }
        let error = LoadError.tooManyPerProcess(connections: 240, processes: 2, each: 120, softLimit: 120, hardLimit: 4096, needed: 3)
        #expect(error.description.hasSuffix("use --workers auto, or at least --workers 3"))
        #expect(throws: LoadError.ephemeralPortsShort(connections: 100, sources: 1, perSource: 100, ports: 50)) {
            try LoadSession.processes(connections: 100, workers: nil, perProcess: 1_000, sources: 0, ephemeralPorts: 50)
        }
    }
}
