import Foundation
import Reactor
import Testing

@testable import LoadTest

@Suite struct AgentProtocolTests {
    /// The token check: equal strings only, never an empty expected token, lengths matter.
    @Test func tokensMatchOnlyWhenEqual() {
        #expect(AgentProtocol.tokenMatches("s3cret", expected: "s3cret"))
        #expect(!AgentProtocol.tokenMatches("s3cres", expected: "s3cret"))
        #expect(!AgentProtocol.tokenMatches("s3cre", expected: "s3cret"))
        #expect(!AgentProtocol.tokenMatches("s3cret!", expected: "s3cret"))
        #expect(!AgentProtocol.tokenMatches("", expected: ""))
        #expect(!AgentProtocol.tokenMatches("x", expected: ""))
    }

    /// Shares add up to the total, follow the weights, and give remainders to the first largest fractions.
    @Test func sharesFollowWeights() {
        #expect(LoadShares.split(10, weights: [1, 1, 1]) == [4, 3, 3])
        #expect(LoadShares.split(300, weights: [0.5, 0.5, 1, 1]) == [50, 50, 100, 100])
        #expect(LoadShares.split(7, weights: [1, 2]) == [2, 5])
        #expect(LoadShares.split(0, weights: [1, 1]) == [0, 0])
        #expect(LoadShares.split(5, weights: []) == [])
        for total in [1, 2, 99, 1_000_001] {
            #expect(LoadShares.split(total, weights: [0.25, 0.25, 0.25, 0.25, 1, 1]).reduce(0, +) == total)
        }
        let plan = AgentPlan(addresses: [.loopback(port: 1), .loopback(port: 2)], token: "t", arguments: [], rillVersion: "x")
        #expect(plan.localShare(of: 10) == 4)
    }

    /// The agents' command line keeps the run's flags and drops the coordinator's own, in both spellings.
    @Test func workerArgumentsDropCoordinatorFlags() {
        let line = [
            "load", "http://10.0.0.1:8080/sse", "-c", "10k", "--agent", "10.0.0.2:7000", "--agent=10.0.0.3:7000",
            "--agent-token", "t", "--json", "out.json", "--html=out.html", "--workers", "4", "--rate", "500",
        ]
        #expect(
            AgentPlan.workerArguments(line) == ["load", "http://10.0.0.1:8080/sse", "-c", "10k", "--rate", "500"])
    }

    /// Refusals name the agent and what to do.
    @Test func errorsSayWhatToDo() {
        let address = SocketAddress("198.18.1.20", port: 7000)!
        #expect(AgentError.refusedToken(address).description.contains("198.18.1.20:7000 refused the token"))
        #expect(
            AgentError.otherVersion(address, agent: 2, agentRill: "0.3.0", ours: 1).description
                == "agent 198.18.1.20:7000 speaks agent protocol 2 (rill 0.3.0), this rill speaks 1: run the same rill version on every host")
        #expect(AgentError.unreachable(address, "refused").description.contains("rill load agent --listen 198.18.1.20:7000"))
    }
}
