import ArgumentParser
import LoadTest
import Reactor

/// `rill load`'s stages, scenario file, churn, thresholds and live metrics: flags that turn a run
/// into a scenario (`LoadScenario`, the model the file parses into too) and judge it.
struct LoadStagingOptions: ParsableArguments {
    @Option(
        name: .customLong("stage"), parsing: .unconditionalSingleValue,
        help: ArgumentHelp(
            "Ramp to TARGET over DURATION, from where the previous stage ended (repeat it, as k6 stages): "
                + "streams (sse) or requests/s (http). e.g. --stage 30s:10k --stage 5m:10k --stage 30s:0. "
                + "Replaces -c, --rate and -d.",
            valueName: "DURATION:TARGET"),
        transform: { text in
            do { return try LoadStage(parsing: text) } catch { throw Parse.Invalid("\(error)") }
        })
    var stages: [LoadStage] = []

    @Option(
        help: ArgumentHelp(
            "A YAML file of groups, each with its own stages: streams on topics or URLs, a publisher, HTTP requests "
                + "(see README, 'Scenarios'). The URL argument, if given, is the base of the groups' paths.",
            valueName: "FILE"))
    var scenario: String?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "sse: close and reopen this many streams per time while the total is held (100/s, 200k/min); "
                + "the report gives the reopen latency.", valueName: "RATE"),
        transform: { text in
            do { return try ChurnRate(parsing: text) } catch { throw Parse.Invalid("\(error)") }
        })
    var churn: ChurnRate?

    @Option(
        name: .customLong("threshold"), parsing: .unconditionalSingleValue,
        help: ArgumentHelp(
            "A pass/fail criterion, repeatable: 'event.p99<250ms', 'connect.p99<50ms', 'errors==0', "
                + "'streams.held>=99.9%', 'requests.rate>=50000'. With any, the thresholds alone decide the "
                + "exit status: 0 if all hold, 99 if one fails.", valueName: "EXPR"),
        transform: { text in
            do { return try Threshold(parsing: text) } catch { throw Parse.Invalid("\(error)") }
        })
    var thresholds: [Threshold] = []

    @Flag(
        name: .customLong("abort-on-fail"),
        help: "Stop the run as soon as a threshold can no longer hold (a count past its limit, a held share below).")
    var abortOnFail = false

    @Option(
        name: .customLong("metrics-port"), parsing: .unconditional,
        help: ArgumentHelp(
            "Serve live counters in Prometheus text format at http://127.0.0.1:PORT/metrics while running "
                + "(ADDRESS:PORT to bind another address).", valueName: "[ADDRESS:]PORT"),
        transform: LoadStagingOptions.metricsAddress)
    var metricsAddress: SocketAddress?

    static func metricsAddress(_ text: String) throws -> SocketAddress {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let host = parts.count == 2 ? String(parts[0]) : "127.0.0.1"
        guard parts.count <= 2, let port = UInt16(parts.last!), let address = SocketAddress(host, port: port) else {
            throw Parse.Invalid("must be PORT or IPv4ADDRESS:PORT (port 0: any free one)")
        }
        return address
    }

    /// Why the options cannot go together, or nil.
    func conflict(findMax: Bool, hasURL: Bool) -> String? {
        if scenario != nil && !stages.isEmpty { return "--stage and --scenario: the file's groups have their own stages" }
        if findMax && (scenario != nil || !stages.isEmpty) { return "--find-max does not take stages or a scenario" }
        if scenario == nil && !hasURL { return "a URL is required (or --scenario FILE)" }
        return nil
    }

    /// `plan` with these options applied; the scenario file is read here.
    func apply(to plan: inout LoadPlan, url: String?) throws(ScenarioError) {
        plan.churn = churn?.perSecond ?? 0
        plan.abortOnFail = abortOnFail
        plan.metricsAddress = metricsAddress
        plan.thresholds = thresholds
        if let scenario {
            let parsed = try LoadScenario(file: scenario, base: url)
            plan.target = TargetURL(parsed.groups[0].url)!
            plan.mode = parsed.groups.contains { $0.kind == .sse } ? .sse : .http
            plan.connections = max(1, parsed.peakConnections)
            plan.abortOnFail = abortOnFail || parsed.abortOnFail
            plan.thresholds += parsed.thresholds.compactMap { try? Threshold(parsing: $0) }
            var resolved = parsed
            resolved.thresholds = plan.thresholds.map(\.text)
            resolved.abortOnFail = plan.abortOnFail
            plan.scenario = resolved
        } else if !stages.isEmpty {
            let scenario = LoadScenario(plan: plan, stages: stages)
            plan.connections = max(1, scenario.peakConnections)
            plan.scenario = scenario
        }
    }
}
