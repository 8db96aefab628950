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
            $0.attempted = 10
            $0.opened = 9
            $0.failed = 1
            $0.open = 9
            $0.events = 90
            $0.gaps = 1
            $0.published = 10
            $0.settled = false
            $0.errors = [.connectRefused: 1]
            $0.residentBytes = 100
            $0.activeSeconds = 2
            $0.requestsPerSecond = 50
        }
        let b = CountsTests.counts {
            $0.attempted = 5
            $0.opened = 5
            $0.open = 5
            $0.events = 50
            $0.heartbeats = 3
            $0.published = 12
            $0.errors = [.connectRefused: 2, .status(503): 1]
            $0.residentBytes = 50
            $0.activeSeconds = 3
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
        let decoded = try frame.dropFirst(5).withUnsafeBytes {
            try WorkerMessage.decode(frame[4], $0, as: WorkerReply.self)
        }
        guard case .result(let back) = decoded else {
            Issue.record("not a result")
            return
        }
        #expect(back.counts == recorder.counts)
        #expect(back.requestLatency.totalCount == 1)
    }

    /// Error classes read as the report has always printed them, and the limits behind them are typed.
    @Test func errorClassesAndLimits() {
        #expect(
            LoadErrorClass(.connectFailed(SystemError(operation: "connect", errno: EMFILE))) == .outOfFileDescriptors)
        #expect(
            LoadErrorClass(.connectFailed(SystemError(operation: "connect", errno: ECONNREFUSED))).description
                == "connect refused")
        #expect(LoadErrorClass(.eof).description == "closed by server")
        #expect(LoadErrorClass.publish(.status(503)).description == "publish: status 503")
        #expect(LoadErrorClass.heartbeatsStopped.description == "heartbeats stopped (silent > 2 intervals)")
        #expect(LoadLimit(.publish(.outOfFileDescriptors)) == .openFiles)
        #expect(LoadLimit(.status(404)) == nil)
        #expect(
            LoadLimit.advice(for: [.resetByServer: 1, .closedByServer: 2, .status(503): 1]) == [
                LoadLimit.serverConnections.description, LoadLimit.serverClosed.description
            ])
        #expect(
            LoadCounts.summary([.status(503): 15, .connectRefused: 15, .closedByServer: 20])
                == "closed by server: 20, connect refused: 15, status 503: 15")
    }

    /// The per-second series records each second's growth of the summed counts.
    @Test func seriesRecordsGrowthPerSecond() {
        var series = LoadSeries()
        var status = LoadCounts()
        status.open = 5
        status.events = 10
        status.requests = 1
        series.record(second: 0, status, published: 0)
        #expect(series.seconds.isEmpty, "second 0 is not over")
        series.record(second: 1, status, published: 2)
        status.events = 25
        status.errors = [.requestLost: 2]
        series.record(second: 1, status, published: 2)
        series.record(second: 2, status, published: 4)
        #expect(
            series.seconds == [
                LoadSecond(second: 1, open: 5, events: 10, requests: 3, errors: 0),
                LoadSecond(second: 2, open: 5, events: 15, requests: 2, errors: 2)
            ])
    }

    /// Worker counts: --workers N too few for the fd limit, and too few ports per source, are typed errors.
    @Test func processCountsAndTheirErrors() throws {
        #expect(
            try LoadSession.processes(
                connections: 240, workers: nil, perProcess: 88, sources: 8, ephemeralPorts: 28_000) == 3)
        #expect(
            try LoadSession.processes(connections: 50, workers: nil, perProcess: 88, sources: 8, ephemeralPorts: 28_000)
                == 1)
        #expect(
            throws: LoadError.tooManyPerProcess(
                connections: 240, processes: 2, each: 120, softLimit: 120, hardLimit: 4096, needed: 3)
        ) {
            try LoadSession.processes(
                connections: 240, workers: 2, perProcess: 88, softLimit: 120, hardLimit: 4096,
                sources: 8, ephemeralPorts: 28_000)
        }
        let error = LoadError.tooManyPerProcess(
            connections: 240, processes: 2, each: 120, softLimit: 120, hardLimit: 4096, needed: 3)
        #expect(error.description.hasSuffix("use --workers auto, or at least --workers 3"))
        #expect(throws: LoadError.ephemeralPortsShort(connections: 100, sources: 1, perSource: 100, ports: 50)) {
            try LoadSession.processes(connections: 100, workers: nil, perProcess: 1_000, sources: 0, ephemeralPorts: 50)
        }
    }

    /// The automatic source range counts on past 127.0.0.255 (10M streams used to crash there), and
    /// stops at what one range holds.
    @Test func automaticSourceRangeCrossesOctets() throws {
        #expect(SourceRange.automatic(connections: 100)?.addresses.count == 8)
        let large = try #require(SourceRange.automatic(connections: 10_000_000))
        #expect(large.addresses.count == 1_000, "one per 10,000 streams")
        #expect(large.addresses.first == SocketAddress("127.0.0.2", port: 0))
        #expect(large.addresses.last == SocketAddress("127.0.3.233", port: 0))
        #expect(SourceRange.automatic(connections: 2_000_000_000) == nil)
    }

    /// The 512 streams that may wait for their response head are shared by the workers (51
    /// workers each with 512 overran the server's accept queue into connect timeouts).
    @Test func pendingStreamsAreSharedByTheWorkers() {
        #expect(StreamLoad.pendingShare(workers: 1) == 512)
        #expect(StreamLoad.pendingShare(workers: 3) == 170)
        #expect(StreamLoad.pendingShare(workers: 51) == 10)
        #expect(StreamLoad.pendingShare(workers: 200) == 8)
    }

    /// A run beyond the machine's memory or open-file limit is refused with the arithmetic and the fix.
    @Test func machineCapacityRefusesWithTheArithmetic() throws {
        let machine = MachineCapacity(availableBytes: 24_000_000_000, fileLimit: 2_466_126, filesInUse: 1_000)
        try machine.check(connections: 100_000, loopback: true)
        #expect(
            throws: LoadError.notEnoughMemory(
                connections: 10_000_000, loopback: true, perConnection: 10_300,
                available: 24_000_000_000, fits: 2_330_097)
        ) {
            try machine.check(connections: 10_000_000, loopback: true)
        }
        let memory = LoadError.notEnoughMemory(
            connections: 10_000_000, loopback: true, perConnection: 10_300,
            available: 24_000_000_000, fits: 2_330_097)
        #expect(
            memory.description == "10000000 connections need about 103.0 GB of memory here (10 KB of kernel memory "
                + "per connection, both ends of a loopback connection being on this machine, + 300 B in the load "
                + "generator, × 10000000), but MemAvailable is 24.0 GB: at most 2330097 fit; lower -c, or run rill "
                + "load on another machine than the server")
        #expect(throws: LoadError.self) { try machine.check(connections: Int.max / 2, loopback: false) }
        #expect(
            throws: LoadError.systemFileLimit(
                connections: 1_500_000, loopback: true, limit: 2_466_126,
                inUse: 1_000, fits: 1_232_563)
        ) {
            try machine.check(connections: 1_500_000, loopback: true)
        }
        try MachineCapacity.current().check(connections: 10, loopback: true)
    }
}

/// Every bad URL says what is wrong with it.
@Suite struct TargetURLTests {
    @Test(arguments: [
        ("https://127.0.0.1:8080/sse", TargetURLError.https),
        ("http://[::1]:8080/sse", .ipv6Literal),
        ("http://127.0.0.1:70000/", .portOutOfRange("70000")),
        ("http://127.0.0.1:0/", .portOutOfRange("0")),
        ("http://127.0.0.1:http/", .portNotANumber("http")),
        ("ftp://127.0.0.1/", .unknownScheme("ftp")),
        ("http://127.0.0.1:8080/a b", .spaceInPath),
        ("http:///sse", .missingHost),
        ("http://:8080/sse", .missingHost),
        ("127.0.0.1:8080/sse", .noScheme),
        ("http://example.com/", .hostNotNumeric("example.com"))
    ])
    func badURLsSayWhy(_ text: String, _ error: TargetURLError) {
        #expect(throws: error) { try TargetURL(parsing: text) }
    }

    /// Good URLs keep their parts; a query straight after the authority gets its "/".
    @Test func goodURLs() throws {
        let url = try TargetURL(parsing: "http://localhost:8080/sse?topic=a")
        #expect(url.address == SocketAddress("127.0.0.1", port: 8080) && url.hostHeader == "localhost:8080")
        #expect(url.target == "/sse?topic=a")
        #expect(try TargetURL(parsing: "http://127.0.0.1").target == "/")
        #expect(try TargetURL(parsing: "http://127.0.0.1:9?x=1").target == "/?x=1")
        #expect(TargetURLError.https.description == "https is not supported yet: use http://")
    }
}
