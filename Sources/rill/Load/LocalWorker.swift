import Reactor

/// What the coordinator drives: this process's own connections (`LocalWorker`) or a child
/// process's (`RemoteWorker`). Commands return at once; `status` and `result` show their effect as
/// the loop runs.
protocol LoadWorker: AnyObject {
    var status: WorkerStatus { get }
    /// Set once the worker has finished (or died: then with an error recorded).
    var result: WorkerResult? { get }
    func send(_ command: WorkerCommand)
}

/// Load from this process: the SSE streams or HTTP clients, on the caller's loop. A 1 ms timer paces
/// the ramp, checks heartbeats each second and notices when a finish has drained.
final class LocalWorker: LoadWorker {
    let loop: EventLoop
    let command: Load
    let target: TargetURL
    let mode: Load.Mode
    let sources: [SocketAddress]
    private var streams: StreamLoad?
    private var requests: RequestLoad?
    private var published = 0
    private var finishDeadline: UInt64?
    private var lastHeartbeatCheck: UInt64 = 0
    private var housekeeping: TimerID?
    private var baselineBytes = 0
    private var residentBytes = 0
    private(set) var result: WorkerResult?

    init(loop: EventLoop, command: Load, target: TargetURL, mode: Load.Mode, sources: [SocketAddress]) {
        self.loop = loop
        self.command = command
        self.target = target
        self.mode = mode
        self.sources = sources
    }

    func send(_ command: WorkerCommand) {
        switch command {
        case .grow(let connections, let rate, let sourceOffset):
            if baselineBytes == 0 { baselineBytes = ProcessMemory.residentBytes() }
            startHousekeeping()
            switch mode {
            case .sse:
                if streams == nil { streams = StreamLoad(loop: loop, target: target, sources: sources, sourceOffset: sourceOffset) }
                streams!.grow(to: connections, rate: rate)
            case .http:
                guard requests == nil else { return }
                requests = RequestLoad(loop: loop, target: target, sources: sources, sourceOffset: sourceOffset,
                                       connections: connections, pace: rate > 0 ? .openLoop(rate) : .closedLoop,
                                       request: self.command.httpRequest(target))
                requests!.start()
            }
        case .published(let count):
            published = count
            streams?.published = count
        case .finish(let count):
            residentBytes = ProcessMemory.residentBytes()
            published = count
            streams?.published = count
            streams?.stopRamp()
            requests?.stop()
            finishDeadline = MonotonicClock.nanoseconds() + 2_000_000_000
            startHousekeeping()
        }
    }

    var status: WorkerStatus {
        var status = WorkerStatus(published: published)
        if let streams {
            let recorder = streams.recorder
            status.attempted = streams.attempted
            status.open = streams.streaming
            status.failed = recorder.connectionsFailed
            status.errors = recorder.errors
            status.events = recorder.events
            status.heartbeats = recorder.heartbeats
            status.gaps = published > 0 ? streams.streamsWithGaps : 0  // a scan of every stream
            status.settled = streams.settled
        } else if let requests {
            let recorder = requests.recorder
            status.attempted = requests.clients.count
            status.open = requests.openConnections
            status.failed = recorder.connectionsFailed
            status.errors = recorder.errors
            status.requests = recorder.requests
        }
        return status
    }

    private func startHousekeeping() {
        guard housekeeping == nil else { return }
        housekeeping = loop.scheduleRepeating(every: .milliseconds(1)) { [unowned self] in self.tick() }
    }

    private func tick() {
        let now = MonotonicClock.nanoseconds()
        if let streams {
            streams.pump()
            if command.heartbeatInterval > 0 && now - lastHeartbeatCheck > 1_000_000_000 {
                lastHeartbeatCheck = now
                streams.checkHeartbeats(limit: UInt64(2 * command.heartbeatInterval * 1e9))
            }
        }
        guard let deadline = finishDeadline else { return }
        let drained = (published == 0 || (streams?.streamsWithGaps ?? 0) == 0) && (requests?.inFlight ?? 0) == 0
        guard drained || now >= deadline else { return }
        finishDeadline = nil
        if let housekeeping { loop.cancel(housekeeping) }
        housekeeping = nil
        var result = WorkerResult(recorder: LoadRecorder(), held: 0, gaps: 0, baselineBytes: baselineBytes,
                                  residentBytes: residentBytes)
        if let streams {
            result.recorder = streams.recorder
            result.recorder.published = published
            result.held = streams.streaming
            result.gaps = streams.streamsWithGaps
        } else if let requests {
            result.recorder = requests.recorder
            result.held = requests.openConnections
            result.activeSeconds = requests.activeSeconds
        }
        self.result = result
    }
}
