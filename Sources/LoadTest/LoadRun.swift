import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// One run of `rill load`, as the coordinator sees it: it tells the workers (this process, or child
/// processes) how many connections to open, publishes, watches their statuses for the progress line
/// and the per-second series, tells them to finish, and merges their results into the report.
final class LoadRun {
    let loop: EventLoop
    let plan: LoadPlan
    let target: TargetURL
    let mode: LoadPlan.Mode
    let sources: [SocketAddress]
    let workers: [LoadWorker]
    private let progress: (String) -> Void
    private var publisher: RequestLoad?
    private var announced = 0
    private var series = LoadSeries()
    private var runStart: UInt64 = 0
    var goal = 0
    /// Stages and scenarios (StagedRun.swift): the scenario's publishers (this process publishes),
    /// the lowest held share sampled, and why `--abort-on-fail` stopped the run.
    var scenarioPublishers: [RequestLoad] = []
    var heldSample: (count: Int, wanted: Int)?
    var abortReason: String?
    /// `--metrics-port`: live counters for Prometheus.
    var metricsEndpoint: LoadMetricsEndpoint?
    /// Each worker's part of the connections and the rate (empty: equal parts); see `LoadShares`.
    var weights: [Double] = []

    init(
        loop: EventLoop, plan: LoadPlan, sources: [SocketAddress], workers: [LoadWorker],
        progress: @escaping (String) -> Void
    ) {
        self.loop = loop
        self.plan = plan
        self.target = plan.target
        self.mode = plan.mode
        self.sources = sources
        self.workers = workers
        self.progress = progress
    }

    func execute() -> LoadReport {
        runStart = MonotonicClock.nanoseconds()
        let startedAt = WallClock.nanoseconds()
        // The kernel's counters are this machine's: they say something about the server only
        // when it runs here (a loopback target).
        let listenQueueStart = target.address.description.hasPrefix("127.") ? ListenQueueCounters.read() : nil
        var outcome: LoadOutcome
        if let scenario = plan.scenario {
            outcome = runScenario(scenario)
        } else {
            switch mode {
            case .sse: outcome = plan.findMax ? findMaximum() : holdStreams()
            case .http: outcome = runRequests()
            }
        }
        if plan.scenario != nil { outcome.heldLowest = heldSample.map { HeldSample(held: $0.count, wanted: $0.wanted) } }
        judge(&outcome)
        outcome.series = series.seconds
        outcome.sources = sources.count
        outcome.workers = workers.count
        outcome.interrupted = interrupted
        outcome.startedAt = startedAt
        outcome.endedAt = WallClock.nanoseconds()
        if let listenQueueStart { outcome.listenQueue = ListenQueueCounters.read()?.since(listenQueueStart) }
        return LoadReport(plan: plan, outcome: outcome)
    }

    // MARK: - SSE: open, hold, drain

    private func holdStreams() -> LoadOutcome {
        let wanted = plan.connectionCount
        let rampStart = MonotonicClock.nanoseconds()
        grow(to: wanted)
        run("opening", timeout: rampBudget(wanted)) { $0.settled && $0.attempted >= wanted }
        let rampSeconds = seconds(since: rampStart)
        let openedAtHold = total.open
        if plan.churn > 0 && !stopping {
            for worker in workers { worker.send(.churn(group: nil, perSecond: plan.churn / Double(workers.count))) }
        }

        let holdStart = MonotonicClock.nanoseconds()
        if plan.publishRate > 0 && !stopping {
            if plan.publishAfter.seconds > 0 { run("holding", timeout: plan.publishAfter.seconds) { _ in false } }
            startPublisher(
                pace: .openLoop(plan.publishRate), limit: plan.publishCount.value > 0 ? plan.publishCount.value : nil)
        }
        run("holding", timeout: plan.duration.seconds - seconds(since: holdStart)) { _ in false }
        let holdSeconds = seconds(since: holdStart)
        heldSample = (total.open + total.reopening, wanted)

        var outcome = finish()
        outcome.rampSeconds = rampSeconds
        outcome.holdSeconds = holdSeconds
        // Streams that never opened or did not last say more than the errors behind them.
        let held = outcome.recorder.counts.open
        if !stopping {
            if openedAtHold < wanted {
                outcome.failure = "only \(openedAtHold) of \(wanted) streams opened"
            } else if held < openedAtHold {
                outcome.failure = "\(openedAtHold - held) streams ended during the hold"
            }
        }
        return outcome
    }

    // MARK: - SSE: find the most streams held cleanly

    /// Steps up by `--step` streams to the `--connections` ceiling. After each step every stream must
    /// be open without an error, and a probe event published to the server must reach every one
    /// (skipped, with a note, if publishing is refused). The first step that fails ends the search.
    private func findMaximum() -> LoadOutcome {
        var search = FindMaxSearch(ceiling: plan.connectionCount, step: plan.step.value)
        startPublisher(pace: .manual)
        var probing = true
        var notes: [String] = []
        let rampStart = MonotonicClock.nanoseconds()
        while let level = search.nextLevel, !stopping {
            let budget = rampBudget(level - search.clean)
            grow(to: level)
            let settled = run("stepping to \(level)", timeout: budget) { $0.settled && $0.attempted >= level }
            guard search.judge(level: level, settled: settled, status: total, budget: budget) else { break }
            if probing, let publisher {
                let before = publisher.recorder.counts.requests
                let errorsBefore = publisher.recorder.counts.errorCount
                publisher.enqueue()
                run("probing \(level)", timeout: 5) { _ in
                    publisher.recorder.counts.requests > before || publisher.recorder.counts.errorCount > errorsBefore
                }
                if publisher.recorder.counts.errorCount > errorsBefore || publisher.recorder.counts.requests == before {
                    probing = false
                    notes.append(
                        "probe events off: POST \(plan.publishPath) failed ("
                            + LoadCounts.summary(publisher.recorder.counts.errors)
                            + "); only connections and heartbeats were checked")
                } else {
                    announce(publisher.recorder.counts.requests)
                    let published = publisher.recorder.counts.requests
                    let delivered = run("probing \(level)", timeout: 5) { _ in
                        self.workers.allSatisfy { $0.status.published == published && $0.status.gaps == 0 }
                    }
                    guard search.probed(level: level, delivered: delivered, gaps: total.gaps) else { break }
                }
            }
            search.passed(level)
        }
        let rampSeconds = seconds(since: rampStart)
        var outcome = finish()
        outcome.rampSeconds = rampSeconds
        let conclusion = search.conclusion(interrupted: interrupted, notes: notes)
        outcome.maximum = conclusion.maximum
        outcome.stoppedBecause = conclusion.stoppedBecause
        // A search that found its maximum met its target; errors past that point are its answer.
        outcome.failure = conclusion.failure
        return outcome
    }

    // MARK: - HTTP

    private func runRequests() -> LoadOutcome {
        grow(to: plan.connectionCount, rate: plan.requestRate)
        run("running", timeout: plan.duration.seconds) { _ in false }
        var outcome = finish()
        outcome.holdSeconds = outcome.recorder.counts.activeSeconds
        if !stopping && outcome.recorder.counts.opened < plan.connectionCount {
            outcome.failure = "only \(outcome.recorder.counts.opened) of \(plan.connectionCount) connections opened"
        }
        return outcome
    }

    // MARK: - Steps shared by every run

    /// SIGINT or SIGTERM: the run stops where it is and reports what it did so far.
    var interrupted: Bool { loop.remote.isStopRequested }
    /// Every connection so far was refused and none opened: nobody is listening, so the run ends
    /// after the first round instead of waiting out its duration.
    private var nothingListening = false
    var stopping: Bool { interrupted || nothingListening || abortReason != nil }

    /// Connections refused before any opened that mean nothing is listening (or all of them, if fewer).
    static let refusalsMeaningNothingListens = 16
    func seconds(since start: UInt64) -> Double { Double(MonotonicClock.nanoseconds() - start) / 1e9 }

    /// The workers' statuses, summed.
    var total: LoadCounts { workers.reduce(into: LoadCounts()) { $0.merge($1.status) } }

    /// Asks the workers for `count` connections in all, an even share each; `rate` (ramp or
    /// requests per second) is shared the same way.
    private func grow(to count: Int, rate: Double? = nil) {
        goal = count
        let rate = rate ?? Double(plan.rate.value)
        let weights = self.weights.count == workers.count ? self.weights : workers.map { _ in 1.0 }
        let shares = LoadShares.split(count, weights: weights)
        let totalWeight = weights.reduce(0, +)
        for (index, worker) in workers.enumerated() {
            worker.send(
                .grow(
                    connections: shares[index], rate: rate * weights[index] / totalWeight, sourceOffset: index,
                    pending: StreamLoad.pendingShare(workers: workers.count)))
        }
    }

    /// How long opening `count` streams may take: the ramp itself plus the connect timeout and some.
    /// Unpaced, at 2,000/s: a server and generator sharing two cores with a million streams' heartbeats
    /// open them at 5–10k/s, so this is a bound for a stuck ramp, not a pace.
    private func rampBudget(_ count: Int) -> Double {
        (plan.rate.value > 0 ? Double(count) / Double(plan.rate.value) : Double(count) / 2_000) + 30
    }

    /// Runs the loop until `done` (given the workers' summed status), `timeout` seconds or the run
    /// stopping (an interrupt, or nothing listening; not while `draining`, which collects the results
    /// of a run that stopped); whether `done` came true. The status is summed once per turn of the
    /// loop: a local worker's counts its streams.
    @discardableResult
    func run(_ phase: String, timeout: Double, draining: Bool = false, until done: (LoadCounts) -> Bool) -> Bool
    {
        let start = MonotonicClock.nanoseconds()
        var status = total
        while !done(status) {
            if !draining && (stopping || refusedEverything(status)) { return false }
            if seconds(since: start) >= timeout { return false }
            loop.runOnce(maximumWait: .milliseconds(20))
            status = total
            tick(phase, status)
        }
        return true
    }

    /// Notes (once) that every connection so far was refused and none opened.
    private func refusedEverything(_ status: LoadCounts) -> Bool {
        let refused = status.errors[.connectRefused, default: 0]
        if status.opened == 0 && refused > 0 && refused >= min(goal, LoadRun.refusalsMeaningNothingListens) {
            nothingListening = true
        }
        return nothingListening
    }

    /// Publishes `t=<CLOCK_REALTIME ns>` events (padded to --payload-bytes) over one connection.
    private func startPublisher(pace: RequestLoad.Pace, limit: Int? = nil) {
        let publishTarget = TargetURL(target.with(target: plan.publishPath))!
        let payload = max(plan.payloadBytes.value, 22)
        let head =
            "POST \(plan.publishPath) HTTP/1.1\r\nHost: \(target.hostHeader)\r\nContent-Length: \(payload)\r\n\r\n"
        let publisher = RequestLoad(
            loop: loop, target: publishTarget, sources: [], connections: 1, pace: pace, limit: limit
        ) {
            var data = Array("t=\(WallClock.nanoseconds()) ".utf8)
            if data.count < payload { data += [UInt8](repeating: UInt8(ascii: "x"), count: payload - data.count) }
            return Array(head.utf8) + data
        }
        publisher.start()
        self.publisher = publisher
    }

    /// Streams open while a scenario publishes: one that subscribed after the fan-out of a POST whose
    /// response is not in yet is not owed that event, so the count announced (each stream's baseline
    /// when its head arrives) is of the publications started, announced as each is about to be sent
    /// (ahead of the event on the server's sockets). The finish announces what completed.
    func announceStarted() {
        guard mode == .sse && countsGaps else { return }
        announce(scenarioPublishers.reduce(publishedCount) { $0 + $1.inFlight })
    }

    /// Tells the workers how many events have been published, so they can count gaps.
    func announce(_ published: Int) {
        guard published != announced else { return }
        announced = published
        for worker in workers { worker.send(.published(published)) }
    }

    /// Streams are owed every event published (not so in a scenario whose publishers post to topics
    /// some stream groups do not follow: there gaps are not counted).
    var countsGaps: Bool { plan.scenario?.streamsOweEveryEvent ?? true }

    /// Events published so far, by every publisher.
    var publishedCount: Int {
        scenarioPublishers.reduce(publisher?.recorder.counts.requests ?? 0) { $0 + $1.recorder.counts.requests }
    }

    /// Stops publishing, lets the workers drain, and merges their results.
    func finish() -> LoadOutcome {
        let publishers = (publisher.map { [$0] } ?? []) + scenarioPublishers
        if !publishers.isEmpty {
            for publisher in publishers { publisher.stop() }
            run("draining", timeout: 2, draining: true) { _ in publishers.allSatisfy { $0.inFlight == 0 } }
        }
        let published = publishedCount
        for worker in workers { worker.send(.finish(published: countsGaps ? published : 0)) }
        // Each worker's result is its histograms as JSON: 51 of them on a loaded machine took longer
        // than 15 s at a million streams (46 "sent no result"), so the wait grows with the workers.
        run("draining", timeout: 15 + 2 * Double(workers.count), draining: true) { _ in
            self.workers.allSatisfy { $0.result != nil }
        }

        var outcome = LoadOutcome()
        for (index, worker) in workers.enumerated() {
            guard let result = worker.result else {
                outcome.recorder.error(.worker(index, "sent no result"))
                continue
            }
            outcome.recorder.merge(result)
        }
        outcome.recorder.counts.published = published
        if let publisher {
            outcome.recorder.requestLatency = publisher.recorder.requestLatency
            for (kind, count) in publisher.recorder.counts.errors where !plan.findMax {
                outcome.recorder.counts.errors[.publish(kind), default: 0] += count
            }
        }
        for publisher in scenarioPublishers {
            outcome.recorder.publishLatency.add(publisher.recorder.requestLatency)
            for (kind, count) in publisher.recorder.counts.errors {
                outcome.recorder.counts.errors[.publish(kind), default: 0] += count
            }
        }
        let counts = outcome.recorder.counts
        if interrupted {
            outcome.failure = "interrupted"
        } else if nothingListening {
            outcome.failure = "connection refused: is a server listening on \(target.address)?"
            outcome.nothingListening = true
        } else if counts.gaps > 0 {
            outcome.failure = "\(counts.gaps) streams missed events (\(published) published)"
        } else if counts.errorCount > 0 && !plan.findMax {
            outcome.failure = "errors: " + LoadCounts.summary(counts.errors)
        }
        return outcome
    }

    // MARK: - Progress and the per-second series

    private func tick(_ phase: String, _ status: LoadCounts) {
        let published = publishedCount
        if plan.scenario == nil && published != announced && mode == .sse && !plan.findMax { announce(published) }
        metricsEndpoint?.status = status
        metricsEndpoint?.published = published
        watchThresholds(status)
        series.record(second: Int(seconds(since: runStart)), status, published: published)
        let rate = series.seconds.last.map { mode == .sse ? "\($0.events) events/s" : "\($0.requests) req/s" } ?? "-"
        progress("\(phase): \(status.open)/\(goal) open, \(rate), \(status.errorCount) errors")
    }
}

/// What a run produced, before it is formatted: the workers' recorders merged, and the run's own figures.
public struct LoadOutcome {
    public var recorder = LoadRecorder()
    public var series: [LoadSecond] = []
    public var rampSeconds = 0.0
    public var holdSeconds = 0.0
    public var sources = 0
    public var workers = 1
    /// --find-max: the most streams held cleanly, and why the search stopped.
    public var maximum: Int? = nil
    public var stoppedBecause: String? = nil
    /// Why the run failed its targets, or nil.
    public var failure: String? = nil
    /// Stopped by SIGINT/SIGTERM: what it did so far.
    public var interrupted = false
    /// Ended after the first round of refusals.
    public var nothingListening = false
    /// Each `--threshold` with ✓/✗ and the measured value; whether any failed (exit status 99, as k6).
    public var thresholds: [ThresholdResult] = []
    public var thresholdsFailed = false
    /// Stages: the lowest share of streams held at the end of a hold.
    public var heldLowest: HeldSample? = nil
    /// CLOCK_REALTIME nanoseconds at the start and the end of the run.
    public var startedAt: UInt64? = nil
    public var endedAt: UInt64? = nil
    /// How much the kernel's listen-queue counters grew during the run (loopback targets only).
    public var listenQueue: ListenQueueCounters? = nil

    public init() {}
}

/// The per-second series: each new second, the totals' growth since the last one.
struct LoadSeries {
    private(set) var seconds: [LoadSecond] = []
    private var lastSecond = 0
    private var last = LoadCounts()
    private var lastPublished = 0

    /// Notes the summed `status` (and the publisher's count) at `second` since the start.
    mutating func record(second: Int, _ status: LoadCounts, published: Int) {
        guard second > lastSecond else { return }
        seconds.append(
            LoadSecond(
                second: second, open: status.open, events: status.events - last.events,
                requests: status.requests + published - last.requests - lastPublished,
                errors: status.errorCount - last.errorCount))
        last = status
        lastPublished = published
        lastSecond = second
    }
}
