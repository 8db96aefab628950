import Foundation
@testable import LoadTest
import Testing

@Suite struct ScenarioTests {
    static let packageRoot = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")

    /// The README's scenario example (the first yaml block of "#### Scenarios") parses, whole.
    @Test func readmeExampleParses() throws {
        let readme = try String(contentsOfFile: ScenarioTests.packageRoot + "/README.md", encoding: .utf8)
        let section = try #require(readme.range(of: "#### Scenarios"))
        let rest = readme[section.upperBound...]
        let start = try #require(rest.range(of: "```yaml\n"))
        let end = try #require(rest[start.upperBound...].range(of: "```"))
        let scenario = try LoadScenario(yaml: String(rest[start.upperBound..<end.lowerBound]))
        #expect(scenario.groups.map(\.name) == ["readers", "late-joiners", "newsroom", "api"])
        #expect(scenario.groups.map(\.kind) == [.sse, .sse, .publish, .http])
        #expect(scenario.groups[0].url == "http://127.0.0.1:8080/sse?topic=news")
        #expect(scenario.groups[0].stages.map(\.description) == ["30s:10000", "5m:10000", "30s:0"])
        #expect(abs(scenario.groups[0].churn - 200.0 / 60) < 1e-9)
        #expect(scenario.groups[1].stages[1] == LoadStage(seconds: 30, target: 2_000))
        #expect(scenario.groups[2].payloadBytes == 64 && scenario.groups[2].count == 5_000)
        #expect(scenario.groups[3].connections == 8 && scenario.groups[3].url.hasSuffix("/metrics"))
        #expect(scenario.thresholds == ["event.p99<250ms", "connect.p99<50ms", "streams.held>=99.9%", "errors==0"])
        #expect(scenario.abortOnFail)
        #expect(scenario.totalSeconds == 360)
        #expect(scenario.peakConnections == 10_000 + 2_000 + 8)
        #expect(scenario.streamsOweEveryEvent)
    }

    /// Flags and file mean the same thing: `--stage … --publish-rate … --churn …` is the scenario a
    /// file with the same groups gives.
    @Test func flagsAndFileParseIntoTheSameModel() throws {
        var plan = LoadPlan(target: TargetURL("http://127.0.0.1:9000/sse?topic=a")!)
        plan.publishRate = 5
        plan.publishPath = "/publish?topic=a"
        plan.payloadBytes = CountArgument(40)
        plan.churn = 10
        let stages = try ["1s:100", "2s:100", "1s:0"].map { try LoadStage(parsing: $0) }
        let fromFlags = LoadScenario(plan: plan, stages: stages)
        let fromFile = try LoadScenario(
            yaml: """
                url: http://127.0.0.1:9000
                groups:
                  - {name: sse, mode: sse, path: "/sse?topic=a", churn: 10/s, stages: [1s:100, 2s:100, 1s:0]}
                  - name: publish
                    mode: publish
                    path: /publish?topic=a
                    payload-bytes: 40
                    stages: [0s:0, 0s:5]
                """)
        #expect(fromFlags == fromFile)
    }

    /// Mistakes name their place in the file.
    @Test(arguments: [
        ("groups: []", "'groups' is required"),
        ("groups:\n  - {mode: sse, path: /sse, stages: [1s:1]}", "a path needs a base"),
        ("url: http://127.0.0.1:1\ngroups:\n  - {mode: sse, path: /sse, stages: [1s:1], colour: red}", "unknown key 'colour'"),
        ("url: http://127.0.0.1:1\ngroups:\n  - {name: a, path: /sse, stages: [1s:1]}", "group 'a': 'mode' is required"),
        ("url: http://127.0.0.1:1\ngroups:\n  - {name: a, mode: ftp, path: /, stages: [1s:1]}", "not one of sse, http, publish"),
        ("url: http://127.0.0.1:1\ngroups:\n  - {name: a, mode: sse, path: /sse, stages: [1s:1, 5m]}", "group 'a'.stages[1]: stage '5m'"),
        ("url: http://127.0.0.1:1\ngroups:\n  - {name: a, mode: http, path: /, churn: 1/s, stages: [1s:1]}", "only sse groups churn"),
        ("url: https://x\ngroups:\n  - {mode: sse, path: /sse, stages: [1s:1]}", "https is not supported"),
        ("thresholds: [p99<1]\ngroups:\n  - {mode: sse, url: http://127.0.0.1:1/sse, stages: [1s:1]}", "thresholds[0]"),
        ("groups: [\n", "not valid YAML"),
    ])
    func mistakesAreNamed(yaml: String, expected: String) {
        do {
            _ = try LoadScenario(yaml: yaml)
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    /// Gaps are only counted when every stream group follows every publisher's topic.
    @Test func gapsNeedEveryTopic() throws {
        let base = "url: http://127.0.0.1:1\ngroups:\n"
        let both = try LoadScenario(
            yaml: base + "  - {mode: sse, path: '/sse?topic=a&topic=b', stages: [1s:1]}\n"
                + "  - {mode: publish, path: '/publish?topic=b', stages: [1s:1]}")
        #expect(both.streamsOweEveryEvent)
        let other = try LoadScenario(
            yaml: base + "  - {mode: sse, path: '/sse?topic=a', stages: [1s:1]}\n"
                + "  - {mode: publish, path: '/publish?topic=b', stages: [1s:1]}")
        #expect(!other.streamsOweEveryEvent)
    }
}
