import Reactor

/// The coordinator's side of stages and scenarios: it starts each group on the workers (publishers
/// here), announces every stage when it begins (the workers ramp between announcements on their own
/// clocks), samples the held share at the end of each hold, and judges the thresholds.
extension LoadRun {
    func runScenario(_ scenario: LoadScenario) -> LoadOutcome {
        let groups = scenario.groups
        goal = scenario.peakConnections
        var publishers: [Int: RequestLoad] = [:]
        for (index, group) in groups.enumerated() {
            if group.kind == .publish {
                publishers[index] = makePublisher(group)
                continue
            }
            for (position, worker) in workers.enumerated() {
                worker.send(
                    .startGroup(
                        group: index, definition: group, connections: share(group.connections, of: position),
                        sourceOffset: position, pending: StreamLoad.pendingShare(workers: workers.count)))
                if group.churn > 0 {
                    worker.send(.churn(group: index, perSecond: group.churn / Double(workers.count)))
                }
            }
        }
        // Worker processes answer once they run: the stages' clock starts when all can follow it.
        run("starting", timeout: 15) { $0.settled }
        scenarioPublishers = groups.indices.compactMap { publishers[$0] }
        for publisher in scenarioPublishers {
            publisher.willSend = { [unowned self] in self.announceStarted() }
            publisher.start()
        }

        let start = MonotonicClock.nanoseconds()
        let end = scenario.totalSeconds
        // The next stage of each group, and where it starts (seconds into the run).
        var next = Array(repeating: 0, count: groups.count)
        var nextStart = Array(repeating: 0.0, count: groups.count)
        while !stopping {
            let elapsed = seconds(since: start)
            // A hold of a stream group ends now: the streams open are judged before anything moves.
            let holdEnds = groups.indices.filter { index in
                let stages = groups[index].stages
                let number = next[index]
                // Stage `number - 1` ended (just now: the last one's end is judged once, after settling).
                guard groups[index].kind == .sse, number > 0, number < stages.count, nextStart[index] <= elapsed
                else { return false }
                let previous = number >= 2 ? stages[number - 2].target : 0
                return stages[number - 1].target > 0 && stages[number - 1].target == previous
            }
            // Judged as at the boundary (the loop may come late; nothing has moved yet).
            if let boundary = holdEnds.map({ nextStart[$0] }).min() { sampleHeld(scenario, at: boundary) }
            for (index, group) in groups.enumerated() {
                while next[index] < group.stages.count && nextStart[index] <= elapsed {
                    let stage = group.stages[next[index]]
                    let ends = nextStart[index] + stage.seconds
                    begin(index, group, stage, over: max(0, ends - elapsed), publisher: publishers[index])
                    next[index] += 1
                    nextStart[index] = ends
                }
            }
            guard elapsed < end else { break }
            let boundary = groups.indices.filter { next[$0] < groups[$0].stages.count }.map { nextStart[$0] }.min() ?? end
            // Short slices, so the progress line, thresholds and interrupts are looked at often.
            let level = Int(scenario.streamLevel(at: elapsed).rounded())
            run("stage \(stageName(next, groups)) to \(level)", timeout: min(max(0, min(boundary, end) - elapsed), 0.25)) {
                _ in false
            }
        }
        let elapsed = seconds(since: start)
        // The last stages' end: workers that lag (a loaded machine) get up to 5 s to reach the last
        // level; a hold there is judged once they did.
        let last = Int(scenario.streamLevel(at: end).rounded())
        if !stopping {
            run("settling", timeout: 5) { $0.settled && $0.open + $0.reopening <= last }
            if last > 0 { sampleHeld(scenario, at: end) }
        }
        var outcome = finish()
        outcome.holdSeconds = elapsed
        outcome.rampSeconds = 0
        if !stopping, outcome.failure == nil, outcome.recorder.counts.failed > 0 {
            outcome.failure = "\(outcome.recorder.counts.failed) connections did not open"
        }
        return outcome
    }

    /// Stage numbers (1-based) each group is in, for the progress line.
    private func stageName(_ next: [Int], _ groups: [LoadGroup]) -> String {
        groups.count == 1 ? "\(next[0])/\(groups[0].stages.count)" : next.map(String.init).joined(separator: ",")
    }

    /// Worker `position`'s share of `count` (the first ones get the remainder).
    private func share(_ count: Int, of position: Int) -> Int {
        count / workers.count + (position < count % workers.count ? 1 : 0)
    }

    /// Announces `stage` of group `index`: to the publisher here, or split over the workers.
    private func begin(_ index: Int, _ group: LoadGroup, _ stage: LoadStage, over seconds: Double, publisher: RequestLoad?)
    {
        if let publisher {
            publisher.move(to: stage.target, over: seconds)
            return
        }
        let target = stage.target
        for (position, worker) in workers.enumerated() {
            let part =
                group.kind == .sse
                ? Double(share(Int(target.rounded()), of: position)) : target / Double(workers.count)
            worker.send(.stage(group: index, target: part, seconds: seconds))
        }
    }

    /// At the end of a hold (a flat stage with streams), the streams open against the levels of every
    /// stream group; the lowest share is the run's `streams.held`. Skipped while another stream group
    /// ramps (its streams are on their way, not lost).
    private func sampleHeld(_ scenario: LoadScenario, at elapsed: Double) {
        let steady = scenario.groups.filter { $0.kind == .sse }.allSatisfy { group in
            // Flat over the last quarter second before `elapsed` (streams of a ramp may be on their way).
            let before = group.stages.level(at: max(0, elapsed - 0.25))
            let after = group.stages.level(at: max(0, elapsed - 0.001))
            return abs(before - after) < 0.5
        }
        guard steady else { return }
        let wanted = Int(scenario.streamLevel(at: max(0, elapsed - 0.001)).rounded())
        guard wanted > 0 else { return }
        // A stream the churn is reopening is held: closing it was this run's doing, not a loss.
        let status = total
        let open = status.open + status.reopening
        if let sample = heldSample, Double(sample.count) / Double(sample.wanted) <= Double(open) / Double(wanted) {
            return
        }
        heldSample = (open, wanted)
    }

    /// A publisher of `t=<CLOCK_REALTIME ns>` events for a publish group, on this process's loop.
    private func makePublisher(_ group: LoadGroup) -> RequestLoad {
        let target = TargetURL(group.url)!
        let payload = max(group.payloadBytes, 22)
        let head =
            "POST \(target.target) HTTP/1.1\r\nHost: \(target.hostHeader)\r\nContent-Length: \(payload)\r\n\r\n"
        return RequestLoad(
            loop: loop, target: target, sources: [], connections: max(1, group.connections), pace: .staged,
            limit: group.count
        ) {
            var data = Array("t=\(WallClock.nanoseconds()) ".utf8)
            if data.count < payload { data += [UInt8](repeating: UInt8(ascii: "x"), count: payload - data.count) }
            return Array(head.utf8) + data
        }
    }

    // MARK: - Thresholds

    /// The thresholds against the finished run: with any, they alone decide pass or fail (but an
    /// interrupt, nothing listening or an abort still fail it).
    func judge(_ outcome: inout LoadOutcome) {
        guard !plan.thresholds.isEmpty else { return }
        var held = heldSample
        if plan.findMax || (mode == .http && plan.scenario == nil) { held = nil }
        let measurements = LoadMeasurements(
            recorder: outcome.recorder, activeSeconds: outcome.holdSeconds, held: held)
        outcome.thresholds = plan.thresholds.map { $0.evaluate(measurements) }
        let failed = outcome.thresholds.filter { !$0.passed }
        outcome.thresholdsFailed = !failed.isEmpty || abortReason != nil
        if let abortReason {
            outcome.failure = "aborted: \(abortReason)"
        } else if outcome.interrupted || outcome.nothingListening {
            // The run did not happen as planned: that is its failure, not the thresholds'.
            outcome.thresholdsFailed = false
        } else if failed.isEmpty {
            outcome.failure = nil
        } else {
            outcome.failure =
                "\(failed.count) of \(outcome.thresholds.count) thresholds failed: "
                + failed.map { "\($0.threshold) (\($0.shown))" }.joined(separator: ", ")
        }
    }

    /// `--abort-on-fail`: a threshold on a figure that only gets worse (a count, the held share)
    /// that fails now fails at the end; the run stops. Looked at with the workers' statuses.
    func watchThresholds(_ status: LoadCounts) {
        guard plan.abortOnFail, abortReason == nil, !plan.thresholds.isEmpty else { return }
        var recorder = LoadRecorder()
        recorder.counts = status
        recorder.counts.published = publishedCount
        let live = LoadMeasurements(recorder: recorder, activeSeconds: 0, held: heldSample)
        for threshold in plan.thresholds where threshold.failsForGood {
            let result = threshold.evaluate(live)
            if !result.passed && result.measured != nil {
                abortReason = "threshold \(threshold.text) can no longer hold (\(result.shown))"
                return
            }
        }
    }
}

/// Streams open against the target at one moment (the end of a hold).
public struct HeldSample: Codable, Equatable, Sendable {
    public var held: Int
    public var wanted: Int

    public var share: Double { wanted > 0 ? Double(held) / Double(wanted) : 1 }
}

extension LoadReport {
    /// Stages and scenarios: the groups in place of the one-mode title, the lowest held share, a
    /// Requests line beside the streams when a scenario mixes them, and the churn.
    static func describeStages(plan: LoadPlan, outcome: LoadOutcome, spread: String, into lines: inout [String]) {
        let counts = outcome.recorder.counts
        if let scenario = plan.scenario {
            var heading = [
                String(
                    format: "rill load scenario: %d group%@ over %.1f s", scenario.groups.count,
                    scenario.groups.count == 1 ? "" : "s", scenario.totalSeconds)
            ]
            for group in scenario.groups {
                var line =
                    "  Group      \(group.name) (\(group.kind.rawValue)) \(group.url)  "
                    + group.stages.map(\.description).joined(separator: " ")
                    + (group.kind == .sse ? " streams" : group.kind == .http ? " requests/s" : " events/s")
                if group.kind == .http { line += " over \(group.connections) connections" }
                if group.churn > 0 { line += ", churn \(ChurnRate(perSecond: group.churn))" }
                heading.append(line)
            }
            if !lines.isEmpty { lines.removeFirst() }
            lines.insert(contentsOf: heading, at: 0)
            if let index = lines.firstIndex(where: { $0.hasPrefix("  Streams") }) {
                lines[index] =
                    String(
                        format: "  Streams    %8d opened  %8d held at the end  %6d failed, ",
                        counts.opened, counts.open, counts.failed) + spread
                if let held = outcome.heldLowest {
                    lines.insert(
                        String(
                            format: "  Held       %d of %d at the end of a hold (%.2f%%, the lowest)", held.held,
                            held.wanted, held.share * 100), at: index + 1)
                }
            }
            if !scenario.streamsOweEveryEvent {
                lines.append("  Gaps       not counted: some stream groups do not follow every publisher's topic")
            }
            if plan.mode == .sse && scenario.groups.contains(where: { $0.kind == .http }) {
                lines.append(
                    String(
                        format: "  Requests   %8d in %.2f s   %.1f requests/s", counts.requests, outcome.holdSeconds,
                        counts.requestsPerSecond))
            }
        }
        let churn = plan.scenario?.groups.reduce(0) { $0 + $1.churn } ?? plan.churn
        if churn > 0 {
            lines.append(
                "  Churn      \(counts.churned) streams closed and reopened (asked: \(ChurnRate(perSecond: churn))), "
                    + "\(counts.reconnectFailures) reopenings failed")
        }
    }
}
