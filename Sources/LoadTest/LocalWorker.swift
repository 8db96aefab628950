import Reactor

/// What the coordinator drives: this process's own connections (`LocalWorker`) or a child
/// process's (`RemoteWorker`). Commands return at once; `status` and `result` show their effect as
/// the loop runs.
protocol LoadWorker: AnyObject {
    var status: LoadCounts { get }
    /// Set once the worker has finished (or died: then with an error recorded).
    var result: LoadRecorder? { get }
    func send(_ command: WorkerCommand)
}

/// Load from this process: the SSE streams or HTTP clients, on the caller's loop. A 1 ms timer paces
/// the ramp, checks heartbeats each second and notices when a finish has drained; once every stream
/// is started it ticks every 100 ms (fifty workers waking a thousand times a second each would cost
/// a busy machine more than the streams they hold).
final class LocalWorker: LoadWorker {
    let loop: EventLoop
    let plan: LoadPlan
    let sources: [SocketAddress]
    private var streams: StreamLoad?
    private var requests: RequestLoad?
    /// Stages and scenario groups (`WorkerCommand.startGroup`).
    private var scenario: ScenarioLoads?
    private var published = 0
    private var finishDeadline: UInt64?
    private var lastHeartbeatCheck: UInt64 = 0
    private var housekeeping: TimerID?
    private var housekeepingPeriod = Duration.zero
    private var baselineBytes = 0
    private var residentBytes = 0
    private var timelineClock = TimelineClock()
    private(set) var result: LoadRecorder?

    init(loop: EventLoop, plan: LoadPlan, sources: [SocketAddress]) {
        self.loop = loop
        self.plan = plan
        self.sources = sources
    }

    func send(_ command: WorkerCommand) {
        switch command {
        case .grow(let connections, let rate, let sourceOffset, let pending):
            startHousekeeping()
            switch plan.mode {
            case .sse:
                if streams == nil {
                    streams = StreamLoad(
                        loop: loop, target: plan.target, sources: sources, sourceOffset: sourceOffset,
                        reconnects: plan.reconnect)
                    streams!.receiveBufferBytes = plan.receiveBufferBytes
                    // The baseline is a worker ready to open streams: its recorder's histograms
                    // (~1.4 MB, whatever the count) are in it, so the growth is what streams cost.
                    baselineBytes = ProcessMemory.residentBytes()
                }
                streams!.maximumPending = pending
                streams!.grow(to: connections, rate: rate)
            case .http:
                guard requests == nil else { return }
                baselineBytes = ProcessMemory.residentBytes()
                requests = RequestLoad(
                    loop: loop, target: plan.target, sources: sources, sourceOffset: sourceOffset,
                    connections: connections, pace: rate > 0 ? .openLoop(rate) : .closedLoop,
                    request: plan.httpRequest)
                requests!.start()
            }
        case .startGroup(let group, let definition, let connections, let sourceOffset, let pending):
            if baselineBytes == 0 { baselineBytes = ProcessMemory.residentBytes() }
            startHousekeeping()
            if scenario == nil { scenario = ScenarioLoads(loop: loop, sources: sources, reconnects: plan.reconnect) }
            scenario!.start(
                group: group, definition: definition, connections: connections, sourceOffset: sourceOffset,
                pending: pending)
        case .stage(let group, let target, let seconds):
            scenario?.stage(group: group, target: target, seconds: seconds)
        case .churn(let group, let perSecond):
            if let group { scenario?.churn(group: group, perSecond: perSecond) } else { streams?.startChurn(perSecond: perSecond) }
        case .published(let count):
            published = count
            streams?.published = count
            scenario?.published = count
        case .finish(let count):
            residentBytes = ProcessMemory.residentBytes()
            published = count
            streams?.published = count
            streams?.stopRamp()
            streams?.churn = ChurnPace()
            streams?.stopReconnecting()
            scenario?.published = count
            scenario?.finish()
            requests?.stop()
            finishDeadline = MonotonicClock.nanoseconds() + 2_000_000_000
            startHousekeeping()
        }
    }

    var status: LoadCounts {
        var status = LoadCounts()
        if let streams {
            status = streams.liveCounts(published: published)
        } else if let requests {
            status = requests.recorder.counts
            status.attempted = requests.clients.count
            status.open = requests.openConnections
        }
        if let scenario { status.merge(scenario.status) }
        status.published = published
        return status
    }

    /// Closes the second that ended (or, with `force`, the one under way) into the recorder's timeline.
    private func recordTimeline(force: Bool = false) {
        let wall = WallClock.nanoseconds() / 1_000_000_000
        guard force || timelineClock.isDue(wall) else { return }
        let status = self.status
        if streams != nil {
            timelineClock.tick(&streams!.recorder, status: status, wallSeconds: wall, force: force)
        } else if requests != nil {
            timelineClock.tick(&requests!.recorder, status: status, wallSeconds: wall, force: force)
        }
    }

    /// The timer's period while streams are being opened, churned or staged, requests sent, or a
    /// finish drains.
    static let busyPeriod = Duration.milliseconds(1)
    /// Its period while streams are only held: heartbeat checks need no finer grain.
    static let holdingPeriod = Duration.milliseconds(100)

    private func startHousekeeping(every period: Duration = LocalWorker.busyPeriod) {
        guard housekeeping == nil || housekeepingPeriod != period else { return }
        if let housekeeping { loop.cancel(housekeeping) }
        housekeepingPeriod = period
        housekeeping = loop.scheduleRepeating(every: period) { [unowned self] in self.tick() }
    }

    private func tick() {
        let now = MonotonicClock.nanoseconds()
        recordTimeline()
        streams?.pump()
        scenario?.pump()
        if finishDeadline == nil, let streams, scenario == nil, requests == nil {
            startHousekeeping(every: streams.onlyHolding ? LocalWorker.holdingPeriod : LocalWorker.busyPeriod)
        }
        if plan.heartbeatInterval > 0 && now - lastHeartbeatCheck > 1_000_000_000 {
            lastHeartbeatCheck = now
            let limit = UInt64(2 * plan.heartbeatInterval * 1e9)
            streams?.checkHeartbeats(limit: limit)
            scenario?.checkHeartbeats(limit: limit)
        }
        guard let deadline = finishDeadline else { return }
        let drained =
            (published == 0 || (streams?.streamsWithGaps ?? 0) + (scenario?.streamsWithGaps ?? 0) == 0)
            && (requests?.inFlight ?? 0) + (scenario?.inFlight ?? 0) == 0
            // A stream the churn closed last is held again once it reopened.
            && (streams?.churnsPending ?? 0) + (scenario?.churnsPending ?? 0) == 0
        guard drained || now >= deadline else { return }
        finishDeadline = nil
        if let housekeeping { loop.cancel(housekeeping) }
        housekeeping = nil
        recordTimeline(force: true)
        var result = LoadRecorder()
        if let streams {
            streams.tallyLosses()
            result = streams.recorder
            result.counts.attempted = streams.attempted
            result.counts.open = streams.streaming
            result.counts.gaps = streams.streamsWithGaps
        } else if let requests {
            result = requests.recorder
            result.counts.attempted = requests.clients.count
            result.counts.open = requests.openConnections
            result.counts.activeSeconds = requests.activeSeconds
            if requests.activeSeconds > 0 {
                result.counts.requestsPerSecond = Double(result.counts.requests) / requests.activeSeconds
            }
        }
        if let scenario { result.merge(scenario.result()) }
        result.counts.published = published
        result.counts.baselineBytes = baselineBytes
        result.counts.residentBytes = residentBytes
        self.result = result
    }
}
