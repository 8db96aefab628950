import Foundation
import Yams

/// Mixed work for one run, each group with its own stages: streams on several topics or URLs, a
/// publisher, HTTP requests alongside. The one model both `rill load --stage …` (one group, plus a
/// publisher with `--publish-rate`) and `rill load --scenario FILE.yaml` parse into; README has the
/// file format with a full example.
public struct LoadScenario: Codable, Equatable, Sendable {
    public var groups: [LoadGroup]
    /// Threshold texts (checked when parsed; `Threshold(parsing:)`).
    public var thresholds: [String] = []
    public var abortOnFail = false

    public init(groups: [LoadGroup], thresholds: [String] = [], abortOnFail: Bool = false) {
        self.groups = groups
        self.thresholds = thresholds
        self.abortOnFail = abortOnFail
    }

    /// Seconds until the longest group's last stage ends.
    public var totalSeconds: Double { groups.map(\.stages.totalSeconds).max() ?? 0 }

    /// Connections the workers hold at its peak: every stream group's highest target, and every
    /// request group's connections (the sizing of processes and source addresses is done for this many).
    public var peakConnections: Int {
        groups.reduce(0) { sum, group in
            switch group.kind {
            case .sse: return sum + Int(group.stages.peak.rounded())
            case .http: return sum + group.connections
            // Publishers run on the coordinator, beside the workers' connections.
            case .publish: return sum
            }
        }
    }

    /// Every stream group subscribes to the topic of every publisher, so each stream is owed every
    /// event published after it opened (and gaps can be counted). Otherwise gaps are not counted.
    public var streamsOweEveryEvent: Bool {
        let published = Set(groups.filter { $0.kind == .publish }.map { $0.topics.first ?? "" })
        return groups.filter { $0.kind == .sse }.allSatisfy { published.isSubset(of: Set($0.topics)) }
    }

    /// The stream groups' levels summed, `elapsed` seconds into the run.
    public func streamLevel(at elapsed: Double) -> Double {
        groups.filter { $0.kind == .sse }.reduce(0) { $0 + $1.stages.level(at: elapsed) }
    }
}

/// One group of a scenario.
public struct LoadGroup: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// Event streams held; stage targets are streams.
        case sse
        /// Keep-alive requests over `connections`; stage targets are requests per second.
        case http
        /// POSTs of `t=<CLOCK_REALTIME ns>` events from this process; stage targets are events per second.
        case publish
    }

    public var name: String
    public var kind: Kind
    /// `http://HOST:PORT/PATH?QUERY`.
    public var url: String
    public var stages: [LoadStage]
    /// http and publish: connections (publish: 1 unless given).
    public var connections = 1
    /// sse: streams closed and reopened per second.
    public var churn = 0.0
    public var method = "GET"
    public var body: String? = nil
    /// publish: bytes of each event's data (at least the stamp).
    public var payloadBytes = 32
    /// publish: stop after so many events.
    public var count: Int? = nil

    public init(name: String, kind: Kind, url: String, stages: [LoadStage]) {
        self.name = name
        self.kind = kind
        self.url = url
        self.stages = stages
    }

    /// The `topic=` values of its URL's query ("" for none: the server's default topic).
    var topics: [String] {
        guard let query = url.split(separator: "?", maxSplits: 1).dropFirst().first else { return [""] }
        let topics = query.split(separator: "&").filter { $0.hasPrefix("topic=") }.map { String($0.dropFirst(6)) }
        return topics.isEmpty ? [""] : topics
    }

    /// The request an http group sends, the same bytes every time.
    var httpRequest: [UInt8] {
        guard let target = TargetURL(url) else { return [] }
        var head = "\(method) \(target.target) HTTP/1.1\r\nHost: \(target.hostHeader)\r\n"
        if let body { head += "Content-Length: \(body.utf8.count)\r\n" }
        return Array((head + "\r\n" + (body ?? "")).utf8)
    }
}

/// What is wrong with a scenario file, with where.
public enum ScenarioError: Error, Equatable, CustomStringConvertible {
    case unreadable(String, String)
    case yaml(String)
    case expected(String, String)
    case unknownKey(String, String, known: [String])
    case missing(String, String)
    case invalid(String, String)

    public var description: String {
        switch self {
        case .unreadable(let path, let why): return "cannot read scenario '\(path)': \(why)"
        case .yaml(let why): return "scenario is not valid YAML: \(why)"
        case .expected(let place, let what): return "scenario \(place): expected \(what)"
        case .unknownKey(let place, let key, let known):
            return "scenario \(place): unknown key '\(key)' (known: \(known.joined(separator: ", ")))"
        case .missing(let place, let key): return "scenario \(place): '\(key)' is required"
        case .invalid(let place, let why): return "scenario \(place): \(why)"
        }
    }
}

extension LoadScenario {
    static let topKeys = ["url", "thresholds", "abort-on-fail", "groups"]
    static let groupKeys = [
        "name", "mode", "url", "path", "stages", "connections", "churn", "method", "body", "payload-bytes", "count"
    ]

    /// Parses a scenario file's text. Group URLs are full, or paths on the file's `url` (or `base`,
    /// the command line's URL, which wins over the file's).
    public init(yaml text: String, base: String? = nil) throws(ScenarioError) {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch { throw .yaml("\(error)") }
        guard let mapping = root?.mapping else { throw .expected("top level", "a mapping with 'groups:'") }
        try LoadScenario.checkKeys(mapping, LoadScenario.topKeys, "top level")
        let baseURL = base ?? mapping["url"]?.scalar?.string
        if let baseURL {
            do { _ = try TargetURL(parsing: baseURL) } catch { throw .invalid("url", "'\(baseURL)': \(error)") }
        }
        var thresholds: [String] = []
        if let node = mapping["thresholds"] {
            guard let sequence = node.sequence else { throw .expected("thresholds", "a list of thresholds") }
            for (index, item) in sequence.enumerated() {
                guard let text = item.scalar?.string else {
                    throw .expected("thresholds[\(index)]", "a threshold such as event.p99<250ms")
                }
                do { _ = try Threshold(parsing: text) } catch { throw .invalid("thresholds[\(index)]", "\(error)") }
                thresholds.append(text)
            }
        }
        var abortOnFail = false
        if let node = mapping["abort-on-fail"] {
            guard let flag = node.scalar.flatMap({ Bool.construct(from: $0) }) else {
                throw .expected("abort-on-fail", "true or false")
            }
            abortOnFail = flag
        }
        guard let groupNodes = mapping["groups"]?.sequence, !groupNodes.isEmpty else {
            throw .missing("top level", "groups")
        }
        var groups: [LoadGroup] = []
        for (index, node) in groupNodes.enumerated() {
            groups.append(try LoadScenario.group(node, index: index, base: baseURL))
        }
        let names = groups.map(\.name)
        if let repeated = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw .invalid("groups", "the name '\(repeated)' is used twice")
        }
        self.init(groups: groups, thresholds: thresholds, abortOnFail: abortOnFail)
    }

    /// Reads and parses the scenario file at `path`.
    public init(file path: String, base: String? = nil) throws(ScenarioError) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .unreadable(path, error.localizedDescription)
        }
        try self.init(yaml: text, base: base)
    }

    private static func checkKeys(_ mapping: Node.Mapping, _ known: [String], _ place: String) throws(ScenarioError) {
        for key in mapping.keys {
            guard let name = key.scalar?.string else { throw .expected(place, "plain keys") }
            guard known.contains(name) else { throw .unknownKey(place, name, known: known) }
        }
    }

    private static func group(_ node: Node, index: Int, base: String?) throws(ScenarioError) -> LoadGroup {
        var place = "groups[\(index)]"
        guard let mapping = node.mapping else { throw .expected(place, "a mapping with mode, path and stages") }
        try checkKeys(mapping, groupKeys, place)
        func string(_ key: String) throws(ScenarioError) -> String? {
            guard let value = mapping[key] else { return nil }
            guard let text = value.scalar?.string else { throw .expected("\(place).\(key)", "a single value") }
            return text
        }
        let name = try string("name") ?? "group\(index + 1)"
        place = "group '\(name)'"
        guard let modeText = try string("mode") else { throw .missing(place, "mode") }
        guard let kind = LoadGroup.Kind(rawValue: modeText.lowercased()) else {
            throw .invalid("\(place).mode", "'\(modeText)' is not one of sse, http, publish")
        }
        let url: String
        if let full = try string("url") {
            url = full
        } else if let path = try string("path") {
            guard let base, let baseURL = TargetURL(base) else {
                throw .invalid(place, "a path needs a base: 'url:' at the top or the URL on the command line")
            }
            url = baseURL.with(target: path.hasPrefix("/") ? path : "/" + path)
        } else {
            throw .missing(place, "url (or path)")
        }
        do { _ = try TargetURL(parsing: url) } catch { throw .invalid("\(place).url", "'\(url)': \(error)") }
        guard let stageNodes = mapping["stages"]?.sequence, !stageNodes.isEmpty else {
            throw .missing(place, "stages (a list such as [30s:10k, 5m:10k, 30s:0])")
        }
        var stages: [LoadStage] = []
        for (number, stageNode) in stageNodes.enumerated() {
            stages.append(try stage(stageNode, place: "\(place).stages[\(number)]"))
        }
        var group = LoadGroup(name: name, kind: kind, url: url, stages: stages)
        if let text = try string("connections") {
            guard let count = CountArgument(argument: text)?.value, count >= 1, kind != .sse else {
                throw .invalid(
                    "\(place).connections",
                    kind == .sse ? "an sse group's stages say how many streams" : "'\(text)' is not a count of at least 1")
            }
            group.connections = count
        } else if kind == .http {
            group.connections = 10
        }
        if let text = try string("churn") {
            guard kind == .sse else { throw .invalid("\(place).churn", "only sse groups churn") }
            do { group.churn = try ChurnRate(parsing: text).perSecond } catch {
                throw .invalid("\(place).churn", "\(error)")
            }
        }
        if let method = try string("method") { group.method = method }
        group.body = try string("body")
        if let text = try string("payload-bytes") {
            guard let bytes = CountArgument(argument: text)?.value else {
                throw .invalid("\(place).payload-bytes", "'\(text)' is not a number of bytes")
            }
            group.payloadBytes = bytes
        }
        if let text = try string("count") {
            guard let count = CountArgument(argument: text)?.value, count >= 1 else {
                throw .invalid("\(place).count", "'\(text)' is not a count of at least 1")
            }
            group.count = count
        }
        return group
    }

    /// `30s:10k`, or a mapping `{duration: 30s, target: 10k}`.
    private static func stage(_ node: Node, place: String) throws(ScenarioError) -> LoadStage {
        if let text = node.scalar?.string {
            do { return try LoadStage(parsing: text) } catch { throw .invalid(place, "\(error)") }
        }
        guard let mapping = node.mapping, let duration = mapping["duration"]?.scalar?.string,
            let target = mapping["target"]?.scalar?.string, mapping.count == 2
        else { throw .expected(place, "DURATION:TARGET (30s:10k) or {duration: 30s, target: 10k}") }
        do { return try LoadStage(parsing: "\(duration):\(target)") } catch { throw .invalid(place, "\(error)") }
    }
}

extension LoadScenario {
    /// The command line's meaning as a scenario: one group of the plan's mode on its URL with
    /// `stages`, and with `--publish-rate` a publisher from `--publish-after` to the end.
    public init(plan: LoadPlan, stages: [LoadStage]) {
        var main = LoadGroup(
            name: plan.mode.rawValue, kind: plan.mode == .sse ? .sse : .http, url: plan.target.description,
            stages: stages)
        main.connections = plan.mode == .http ? plan.connectionCount : 1
        main.churn = plan.churn
        main.method = plan.method
        main.body = plan.body
        var groups = [main]
        if plan.mode == .sse && plan.publishRate > 0 {
            var publisher = LoadGroup(
                name: "publish", kind: .publish, url: plan.target.with(target: plan.publishPath),
                stages: [
                    LoadStage(seconds: plan.publishAfter.seconds, target: 0),
                    LoadStage(seconds: 0, target: plan.publishRate),
                ])
            publisher.payloadBytes = plan.payloadBytes.value
            publisher.count = plan.publishCount.value > 0 ? plan.publishCount.value : nil
            groups.append(publisher)
        }
        self.init(groups: groups, thresholds: plan.thresholds.map(\.text), abortOnFail: plan.abortOnFail)
    }
}
