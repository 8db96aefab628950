import Histogram
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// One run of `rill load`: ramp up, hold (publishing, if asked), drain, then the report.
final class LoadRun {
    let loop: EventLoop
    let command: Load
    let target: TargetURL
    let mode: Load.Mode
    let sources: [SocketAddress]
    private let progress = ProgressLine()
    private var lastSecond = 0
    private var lastTotals = (events: 0, requests: 0, errors: 0)
    private var runStart: UInt64 = 0

    init(loop: EventLoop, command: Load, target: TargetURL, mode: Load.Mode, sources: [SocketAddress]) {
        self.loop = loop
        self.command = command
        self.target = target
        self.mode = mode
        self.sources = sources
    }

    private var interrupted: Bool { loop.remote.isStopRequested }
    private func seconds(since start: UInt64) -> Double { Double(MonotonicClock.nanoseconds() - start) / 1e9 }

    func execute() -> LoadReport {
        runStart = MonotonicClock.nanoseconds()
        switch mode {
        case .sse: return runStreams()
        case .http: return runRequests()
        }
    }

    // MARK: - SSE

    private func runStreams() -> LoadReport {
        let wanted = command.connections.value
        let streams = StreamLoad(loop: loop, target: target, sources: sources)
        var recorder: LoadRecorder { streams.recorder }

        // Ramp: open at the asked rate, in batches small enough to keep reading the ones already open.
        let rampStart = MonotonicClock.nanoseconds()
        while streams.attempted < wanted && !interrupted {
            let allowed = command.rate.value == 0 ? wanted : min(wanted, Int(seconds(since: rampStart) * Double(command.rate.value)) + 1)
            var batch = 0
            while streams.attempted < allowed && batch < 256 {
                streams.openOne()
                batch += 1
            }
            loop.runOnce(maximumWait: .milliseconds(command.rate.value == 0 ? 0 : 2))
            tick(open: streams.streaming, recorder: recorder, line: "opening")
        }
        // Wait for the last handshakes and response heads.
        let settle = MonotonicClock.nanoseconds()
        while streams.streaming + recorder.connectionsFailed + recorder.errorCount < wanted && seconds(since: settle) < 10 && !interrupted {
            loop.runOnce(maximumWait: .milliseconds(10))
            tick(open: streams.streaming, recorder: recorder, line: "opening")
        }
        let rampSeconds = seconds(since: rampStart)
        let openedAtHold = streams.streaming

        // Hold, publishing if asked.
        var publisher: RequestLoad? = nil
        if command.publishRate > 0 {
            let publishTarget = TargetURL(target.with(target: command.publishPath))!
            let payload = max(command.payloadBytes.value, 22)
            let path = command.publishPath
            let host = target.hostHeader
            publisher = RequestLoad(loop: loop, target: publishTarget, sources: [], connections: 1, rate: command.publishRate) {
                var data = Array("t=\(WallClock.nanoseconds()) ".utf8)
                if data.count < payload { data += [UInt8](repeating: UInt8(ascii: "x"), count: payload - data.count) }
                return Array("POST \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Length: \(data.count)\r\n\r\n".utf8) + data
            }
            publisher!.start()
        }
        let holdStart = MonotonicClock.nanoseconds()
        var lastCheck = holdStart
        while seconds(since: holdStart) < command.duration.seconds && !interrupted {
            loop.runOnce(maximumWait: .milliseconds(20))
            tick(open: streams.streaming, recorder: recorder, line: "holding")
            if command.heartbeatInterval > 0 && MonotonicClock.nanoseconds() - lastCheck > 1_000_000_000 {
                lastCheck = MonotonicClock.nanoseconds()
                streams.checkHeartbeats(limit: UInt64(2 * command.heartbeatInterval * 1e9))
            }
        }
        // Drain: stop publishing, let the last events arrive.
        publisher?.stop()
        let published = publisher?.recorder.requests ?? 0
        let drainStart = MonotonicClock.nanoseconds()
        while seconds(since: drainStart) < 2 && (publisher?.inFlight ?? 0) + streams.streamsWithGaps(published: published) > 0 && !interrupted {
            loop.runOnce(maximumWait: .milliseconds(10))
        }
        let finalPublished = publisher?.recorder.requests ?? 0
        let gaps = streams.streamsWithGaps(published: finalPublished)
        var total = streams.recorder
        total.published = finalPublished
        if let publisher {
            total.requestLatency = publisher.recorder.requestLatency
            for (kind, count) in publisher.recorder.errors { total.errors["publish: " + kind, default: 0] += count }
        }
        total.series = series
        let held = streams.streaming
        progress.finish()
        loop.closeAll()

        var failure: String? = nil
        if interrupted { failure = "interrupted" }
        else if openedAtHold < wanted { failure = "only \(openedAtHold) of \(wanted) streams opened" }
        else if held < openedAtHold { failure = "\(openedAtHold - held) streams ended during the hold" }
        else if gaps > 0 { failure = "\(gaps) streams missed events (\(finalPublished) published)" }
        else if total.errorCount > 0 { failure = "errors: " + LoadReport.errorSummary(total.errors) }
        return LoadReport(mode: mode, command: command, target: target, recorder: total, rampSeconds: rampSeconds,
                          holdSeconds: seconds(since: holdStart), held: held, gaps: gaps, sources: sources.count,
                          failure: failure)
    }

    // MARK: - HTTP

    private func runRequests() -> LoadReport {
        var head = "\(command.method) \(target.target) HTTP/1.1\r\nHost: \(target.hostHeader)\r\n"
        if let body = command.body { head += "Content-Length: \(body.utf8.count)\r\n" }
        let request = Array((head + "\r\n" + (command.body ?? "")).utf8)
        let load = RequestLoad(loop: loop, target: target, sources: sources, connections: command.connections.value,
                               rate: command.requestRate > 0 ? command.requestRate : nil) { request }
        let start = MonotonicClock.nanoseconds()
        load.start()
        while seconds(since: start) < command.duration.seconds && !interrupted {
            loop.runOnce(maximumWait: .milliseconds(20))
            tick(open: load.openConnections, recorder: load.recorder, line: "running")
        }
        load.stop()
        let elapsed = seconds(since: start)
        let drain = MonotonicClock.nanoseconds()
        while load.inFlight > 0 && seconds(since: drain) < 2 { loop.runOnce(maximumWait: .milliseconds(10)) }
        var total = load.recorder
        total.series = series
        let held = load.openConnections
        progress.finish()
        loop.closeAll()
        var failure: String? = nil
        if interrupted { failure = "interrupted" }
        else if total.connectionsOpened < command.connections.value {
            failure = "only \(total.connectionsOpened) of \(command.connections.value) connections opened"
        } else if total.errorCount > 0 { failure = "errors: " + LoadReport.errorSummary(total.errors) }
        return LoadReport(mode: mode, command: command, target: target, recorder: total, rampSeconds: 0,
                          holdSeconds: elapsed, held: held, gaps: 0, sources: sources.count, failure: failure)
    }

    // MARK: - Progress and the per-second series

    private var series: [LoadRecorder.Second] = []

    private func tick(open: Int, recorder: LoadRecorder, line phase: String) {
        let second = Int(seconds(since: runStart))
        if second > lastSecond {
            series.append(LoadRecorder.Second(second: second, open: open, events: recorder.events - lastTotals.events,
                                              requests: recorder.requests - lastTotals.requests,
                                              errors: recorder.errorCount - lastTotals.errors))
            lastTotals = (recorder.events, recorder.requests, recorder.errorCount)
            lastSecond = second
        }
        let rate = series.last.map { mode == .sse ? "\($0.events) events/s" : "\($0.requests) req/s" } ?? "-"
        progress.show("\(phase): \(open)/\(command.connections.value) open, \(rate), \(recorder.errorCount) errors")
    }
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
