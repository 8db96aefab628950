import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// One run of `rill load`, as the coordinator sees it: it tells the workers (this process, or child
/// processes) how many connections to open, publishes, watches their statuses for the progress line
/// and the per-second series, tells them to finish, and merges their results into the report.
final class LoadRun {
    let loop: EventLoop
    let command: Load
    let target: TargetURL
    let mode: Load.Mode
    let sources: [SocketAddress]
    let workers: [LoadWorker]
    private let progress = ProgressLine()
    private var publisher: RequestLoad?
    private var announced = 0
    private var series: [LoadRecorder.Second] = []
    private var lastSecond = 0
    private var lastTotals = WorkerStatus()
    private var runStart: UInt64 = 0
    private var goal = 0

    init(loop: EventLoop, command: Load, target: TargetURL, mode: Load.Mode, sources: [SocketAddress], workers: [LoadWorker]) {
        self.loop = loop
        self.command = command
        self.target = target
        self.mode = mode
        self.sources = sources
        self.workers = workers
    }

    func execute() -> LoadReport {
        runStart = MonotonicClock.nanoseconds()
        var outcome: LoadOutcome
        switch mode {
        case .sse: outcome = command.findMax ? findMaximum() : holdStreams()
        case .http: outcome = runRequests()
        }
        outcome.series = series
        outcome.sources = sources.count
        outcome.workers = workers.count
        progress.finish()
        return LoadReport(command: command, target: target, mode: mode, outcome: outcome)
    }

    // MARK: - SSE: open, hold, drain

    private func holdStreams() -> LoadOutcome {
        let wanted = command.connectionCount
        let rampStart = MonotonicClock.nanoseconds()
        grow(to: wanted)
        run("opening", timeout: rampBudget(wanted)) { $0.settled && $0.attempted >= wanted }
        let rampSeconds = seconds(since: rampStart)
        let openedAtHold = total.open

        let holdStart = MonotonicClock.nanoseconds()
        if command.publishRate > 0 {
            if command.publishAfter.seconds > 0 { run("holding", timeout: command.publishAfter.seconds) { _ in false } }
            startPublisher(pace: .openLoop(command.publishRate), limit: command.publishCount.value > 0 ? command.publishCount.value : nil)
        }
        run("holding", timeout: command.duration.seconds - seconds(since: holdStart)) { _ in false }
        let holdSeconds = seconds(since: holdStart)

        var outcome = finish()
        outcome.rampSeconds = rampSeconds
        outcome.holdSeconds = holdSeconds
        // Streams that never opened or did not last say more than the errors behind them.
        if !interrupted {
            if openedAtHold < wanted { outcome.failure = "only \(openedAtHold) of \(wanted) streams opened" }
            else if outcome.held < openedAtHold { outcome.failure = "\(openedAtHold - outcome.held) streams ended during the hold" }
        }
        return outcome
    }

    // MARK: - SSE: find the most streams held cleanly

    /// Steps up by `--step` streams to the `--connections` ceiling. After each step every stream must
    /// be open without an error, and a probe event published to the server must reach every one
    /// (skipped, with a note, if publishing is refused). The first step that fails ends the search.
    private func findMaximum() -> LoadOutcome {
        let ceiling = command.connectionCount
        let step = max(1, command.step.value)
        startPublisher(pace: .manual)
        var probing = true
        var notes: [String] = []
        var clean = 0
        var stopped: String? = nil
        let rampStart = MonotonicClock.nanoseconds()
        while clean < ceiling && stopped == nil && !interrupted {
            let level = min(ceiling, clean + step)
            grow(to: level)
            let settled = run("stepping to \(level)", timeout: rampBudget(level - clean)) { $0.settled && $0.attempted >= level }
            let status = total
            if !settled { stopped = "at \(level): streams still opening after \(Int(rampBudget(level - clean))) s"; break }
            if status.errorCount > 0 || status.open < level {
                stopped = "at \(level): \(status.open) open, " + (status.errors.isEmpty ? "no error reported" : LoadReport.errorSummary(status.errors))
                break
            }
            if probing, let publisher {
                let before = publisher.recorder.requests
                let errorsBefore = publisher.recorder.errorCount
                publisher.enqueue()
                run("probing \(level)", timeout: 5) { _ in publisher.recorder.requests > before || publisher.recorder.errorCount > errorsBefore }
                if publisher.recorder.errorCount > errorsBefore || publisher.recorder.requests == before {
                    probing = false
                    notes.append("probe events off: POST \(command.publishPath) failed ("
                                 + LoadReport.errorSummary(publisher.recorder.errors) + "); only connections and heartbeats were checked")
                } else {
                    announce(publisher.recorder.requests)
                    let published = publisher.recorder.requests
                    let delivered = run("probing \(level)", timeout: 5) { _ in
                        self.workers.allSatisfy { $0.status.published == published && $0.status.gaps == 0 }
                    }
                    if !delivered {
                        stopped = "at \(level): the server stopped delivering events (\(total.gaps) streams missed a probe)"
                        break
                    }
                }
            }
            clean = level
        }
        let rampSeconds = seconds(since: rampStart)
        if stopped == nil {
            stopped = interrupted ? "interrupted" : "reached the --connections ceiling (\(ceiling)) cleanly; raise it to go further"
        }
        var outcome = finish()
        outcome.rampSeconds = rampSeconds
        outcome.maximum = clean
        outcome.stoppedBecause = ([stopped!] + notes).joined(separator: "; ")
        // A search that found its maximum met its target; errors past that point are its answer.
        outcome.failure = clean > 0 ? nil : "not even \(min(step, ceiling)) streams held cleanly: \(stopped!)"
        return outcome
    }

    // MARK: - HTTP

    private func runRequests() -> LoadOutcome {
        grow(to: command.connectionCount, rate: command.requestRate)
        run("running", timeout: command.duration.seconds) { _ in false }
        var outcome = finish()
        if !interrupted && outcome.recorder.connectionsOpened < command.connectionCount {
            outcome.failure = "only \(outcome.recorder.connectionsOpened) of \(command.connectionCount) connections opened"
        }
        return outcome
    }

    // MARK: - Steps shared by every run

    private var interrupted: Bool { loop.remote.isStopRequested }
    private func seconds(since start: UInt64) -> Double { Double(MonotonicClock.nanoseconds() - start) / 1e9 }

    /// The workers' statuses, summed.
    private var total: WorkerStatus { workers.reduce(into: WorkerStatus()) { $0.add($1.status) } }

    /// Asks the workers for `count` connections in all, an even share each; `rate` (ramp or
    /// requests per second) is shared the same way.
    private func grow(to count: Int, rate: Double? = nil) {
        goal = count
        let rate = rate ?? Double(command.rate.value)
        for (index, worker) in workers.enumerated() {
            let share = count / workers.count + (index < count % workers.count ? 1 : 0)
            worker.send(.grow(connections: share, rate: rate / Double(workers.count), sourceOffset: index))
        }
    }

    /// How long opening `count` streams may take: the ramp itself plus the connect timeout and some.
    private func rampBudget(_ count: Int) -> Double {
        (command.rate.value > 0 ? Double(count) / Double(command.rate.value) : Double(count) / 5_000) + 30
    }

    /// Runs the loop until `done` (given the workers' summed status), `timeout` seconds or an
    /// interrupt; whether `done` came true. The status is summed once per turn of the loop: a local
    /// worker's counts its streams.
    @discardableResult
    private func run(_ phase: String, timeout: Double, until done: (WorkerStatus) -> Bool) -> Bool {
        let start = MonotonicClock.nanoseconds()
        var status = total
        while !done(status) {
            if interrupted || seconds(since: start) >= timeout { return false }
            loop.runOnce(maximumWait: .milliseconds(20))
            status = total
            tick(phase, status)
        }
        return true
    }

    /// Publishes `t=<CLOCK_REALTIME ns>` events (padded to --payload-bytes) over one connection.
    private func startPublisher(pace: RequestLoad.Pace, limit: Int? = nil) {
        let publishTarget = TargetURL(target.with(target: command.publishPath))!
        let payload = max(command.payloadBytes.value, 22)
        let head = "POST \(command.publishPath) HTTP/1.1\r\nHost: \(target.hostHeader)\r\nContent-Length: \(payload)\r\n\r\n"
        let publisher = RequestLoad(loop: loop, target: publishTarget, sources: [], connections: 1, pace: pace, limit: limit) {
            var data = Array("t=\(WallClock.nanoseconds()) ".utf8)
            if data.count < payload { data += [UInt8](repeating: UInt8(ascii: "x"), count: payload - data.count) }
            return Array(head.utf8) + data
        }
        publisher.start()
        self.publisher = publisher
    }

    /// Tells the workers how many events have been published, so they can count gaps.
    private func announce(_ published: Int) {
        guard published != announced else { return }
        announced = published
        for worker in workers { worker.send(.published(published)) }
    }

    /// Stops publishing, lets the workers drain, and merges their results.
    private func finish() -> LoadOutcome {
        if let publisher {
            publisher.stop()
            run("draining", timeout: 2) { _ in publisher.inFlight == 0 }
        }
        let published = publisher?.recorder.requests ?? 0
        for worker in workers { worker.send(.finish(published: published)) }
        run("draining", timeout: 15) { _ in self.workers.allSatisfy { $0.result != nil } }

        var outcome = LoadOutcome()
        for (index, worker) in workers.enumerated() {
            guard let result = worker.result else {
                outcome.recorder.error("worker \(index) sent no result")
                continue
            }
            outcome.recorder.merge(result.recorder)
            outcome.held += result.held
            outcome.gaps += result.gaps
            outcome.holdSeconds = max(outcome.holdSeconds, result.activeSeconds)
            outcome.baselineBytes += result.baselineBytes
            outcome.residentBytes += result.residentBytes
            if result.activeSeconds > 0 { outcome.requestsPerSecond += Double(result.recorder.requests) / result.activeSeconds }
        }
        outcome.recorder.published = published
        if let publisher {
            outcome.recorder.requestLatency = publisher.recorder.requestLatency
            for (kind, count) in publisher.recorder.errors where !command.findMax {
                outcome.recorder.errors["publish: " + kind, default: 0] += count
            }
        }
        if interrupted { outcome.failure = "interrupted" }
        else if outcome.gaps > 0 { outcome.failure = "\(outcome.gaps) streams missed events (\(published) published)" }
        else if outcome.recorder.errorCount > 0 && !command.findMax {
            outcome.failure = "errors: " + LoadReport.errorSummary(outcome.recorder.errors)
        }
        return outcome
    }

    // MARK: - Progress and the per-second series

    private func tick(_ phase: String, _ status: WorkerStatus) {
        let published = publisher?.recorder.requests ?? 0
        if published != announced && mode == .sse && !command.findMax { announce(published) }
        let second = Int(seconds(since: runStart))
        if second > lastSecond {
            series.append(LoadRecorder.Second(second: second, open: status.open, events: status.events - lastTotals.events,
                                              requests: status.requests + published - lastTotals.requests,
                                              errors: status.errorCount - lastTotals.errorCount))
            lastTotals = status
            lastTotals.requests += published
            lastSecond = second
        }
        let rate = series.last.map { mode == .sse ? "\($0.events) events/s" : "\($0.requests) req/s" } ?? "-"
        progress.show("\(phase): \(status.open)/\(goal) open, \(rate), \(status.errorCount) errors")
    }
}

/// What a run produced, before it is formatted.
struct LoadOutcome {
    var recorder = LoadRecorder()
    var series: [LoadRecorder.Second] = []
    var rampSeconds = 0.0
    var holdSeconds = 0.0
    /// Connections (sse: streams) still open at the end.
    var held = 0
    var gaps = 0
    /// http: the workers' rates, summed (each over its own active time).
    var requestsPerSecond = 0.0
    /// The workers' RSS, summed: before the first connection, and with all open.
    var baselineBytes = 0
    var residentBytes = 0
    var sources = 0
    var workers = 1
    /// --find-max: the most streams held cleanly, and why the search stopped.
    var maximum: Int? = nil
    var stoppedBecause: String? = nil
    /// Why the run failed its targets, or nil.
    var failure: String? = nil
}

/// A progress display: one line redrawn a few times a second on a terminal, a plain line every
/// 5 s otherwise (logs and CI).
final class ProgressLine {
    private let isTerminal = isatty(1) == 1
    private var last: UInt64 = 0
    private var drawn = false

    func show(_ text: String) {
        let now = MonotonicClock.nanoseconds()
        let interval: UInt64 = isTerminal ? 250_000_000 : 5_000_000_000
        guard now - last >= interval else { return }
        if last == 0 && !isTerminal {
            last = now  // the first plain line after 5 s, not at once
            return
        }
        last = now
        if isTerminal {
            print("\r\u{1B}[K" + text, terminator: "")
            drawn = true
        } else {
            print(text)
        }
        flushStandardOutput()
    }

    func finish() {
        if drawn { print("\r\u{1B}[K", terminator: "") }
    }
}
