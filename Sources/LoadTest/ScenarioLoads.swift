import Reactor

/// A worker's share of a scenario: one stream or request load per group, each following the stages
/// the coordinator announces. `LocalWorker` forwards the scenario commands here and merges the
/// result into its own.
final class ScenarioLoads {
    enum Load {
        case streams(StreamLoad)
        case requests(RequestLoad)
    }

    let loop: EventLoop
    let sources: [SocketAddress]
    let reconnects: Bool
    private(set) var loads: [Int: Load] = [:]

    init(loop: EventLoop, sources: [SocketAddress], reconnects: Bool) {
        self.loop = loop
        self.sources = sources
        self.reconnects = reconnects
    }

    /// Events published so far (gaps are counted against it).
    var published = 0 {
        didSet {
            for case .streams(let streams) in loads.values { streams.published = published }
        }
    }

    func start(group: Int, definition: LoadGroup, connections: Int, sourceOffset: Int, pending: Int) {
        guard loads[group] == nil, let target = TargetURL(definition.url) else { return }
        switch definition.kind {
        case .sse:
            let streams = StreamLoad(
                loop: loop, target: target, sources: sources, sourceOffset: sourceOffset, reconnects: reconnects)
            streams.maximumPending = pending
            streams.levels = LevelSchedule()
            loads[group] = .streams(streams)
        case .http, .publish:
            let requests = RequestLoad(
                loop: loop, target: target, sources: sources, sourceOffset: sourceOffset,
                connections: max(1, connections), pace: .staged, request: definition.httpRequest)
            requests.start()
            loads[group] = .requests(requests)
        }
    }

    func stage(group: Int, target: Double, seconds: Double) {
        switch loads[group] {
        case .streams(let streams): streams.move(to: target, over: seconds)
        case .requests(let requests): requests.move(to: target, over: seconds)
        case nil: break
        }
    }

    func churn(group: Int, perSecond: Double) {
        if case .streams(let streams) = loads[group] { streams.startChurn(perSecond: perSecond) }
    }

    func pump() {
        for case .streams(let streams) in loads.values { streams.pump() }
    }

    /// Streams silent for longer than `limit` nanoseconds (see `StreamLoad.checkHeartbeats`).
    func checkHeartbeats(limit: UInt64) {
        for case .streams(let streams) in loads.values { streams.checkHeartbeats(limit: limit) }
    }

    func finish() {
        for load in loads.values {
            switch load {
            case .streams(let streams):
                streams.stopRamp()
                streams.levels = nil
                streams.churn = ChurnPace()
                streams.stopReconnecting()
            case .requests(let requests): requests.stop()
            }
        }
    }

    /// Requests in flight and streams behind the publications, over every group.
    var inFlight: Int {
        loads.values.reduce(0) { sum, load in
            if case .requests(let requests) = load { return sum + requests.inFlight }
            return sum
        }
    }
    var churnsPending: Int {
        loads.values.reduce(0) { sum, load in
            if case .streams(let streams) = load { return sum + streams.churnsPending }
            return sum
        }
    }
    var streamsWithGaps: Int {
        loads.values.reduce(0) { sum, load in
            if case .streams(let streams) = load { return sum + streams.streamsWithGaps }
            return sum
        }
    }

    /// Every group's counts summed; `open` counts streams only (the held share is of streams).
    var status: LoadCounts {
        var status = LoadCounts()
        for load in loads.values {
            var counts: LoadCounts
            switch load {
            case .streams(let streams):
                counts = streams.liveCounts(published: published)
            case .requests(let requests):
                counts = requests.recorder.counts
                counts.attempted = requests.clients.count
                counts.open = 0
            }
            status.merge(counts)
        }
        return status
    }

    /// Every group's recorder merged, at the end.
    func result() -> LoadRecorder {
        var result = LoadRecorder()
        for load in loads.values {
            switch load {
            case .streams(let streams):
                streams.tallyLosses()
                var recorder = streams.recorder
                recorder.counts.attempted = streams.attempted
                recorder.counts.open = streams.streaming
                recorder.counts.gaps = streams.streamsWithGaps
                result.merge(recorder)
            case .requests(let requests):
                var recorder = requests.recorder
                recorder.counts.attempted = requests.clients.count
                recorder.counts.activeSeconds = requests.activeSeconds
                if requests.activeSeconds > 0 {
                    recorder.counts.requestsPerSecond = Double(recorder.counts.requests) / requests.activeSeconds
                }
                result.merge(recorder)
            }
        }
        return result
    }
}
