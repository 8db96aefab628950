import ArgumentParser
import Foundation
import LoadTest
import Reactor
import RillServer

/// `rill load agent --listen ADDR:PORT --token T`: runs on another host and lends it to `rill load
/// --agent ADDR:PORT --agent-token T`, which splits its streams or rate over the agents and itself
/// and merges their results into one report.
struct LoadAgent: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rill load agent",
        abstract: "Lend this host to `rill load --agent HOST:PORT` runs started elsewhere.",
        discussion: """
            Each run that presents the token gets a worker process of its own, driven by the coordinator \
            exactly as a local worker is. The token travels in clear: use agents on a network you trust. \
            Stops on SIGINT or SIGTERM.
            """)

    @Option(
        help: "Address and port to listen on: A.B.C.D:PORT (numeric IPv4; port 0 picks a free one and prints it).",
        transform: { try Parse.hostPort($0, portZero: true) })
    var listen: SocketAddress

    @Option(help: "The token coordinators must present (default: $RILL_AGENT_TOKEN).")
    var token: String?

    func run() throws {
        guard let token = token ?? ProcessInfo.processInfo.environment["RILL_AGENT_TOKEN"], !token.isEmpty else {
            throw ValidationError("rill load agent needs a non-empty --token (or RILL_AGENT_TOKEN)")
        }
        // A worker raises its limit to the hard one (or the coordinator's --fd-limit, checked there).
        let limits = ResourceLimits.raiseOpenFilesToHardLimit()
        let loop = try EventLoop()
        stopOnInterrupt(loop, secondExits: true)
        let server = try AgentServer(
            loop: loop, address: listen, token: token, capacity: Int(limits.soft) - LoadSession.reservedFiles,
            rillVersion: RillVersion.current
        ) { line in
            print("rill load agent: " + line)
            flushStandardOutput()
        }
        print("rill load agent listening on \(server.address ?? listen), version \(RillVersion.current), agent protocol \(AgentProtocol.version)")
        flushStandardOutput()
        loop.run()
        server.close()
        loop.closeAll()
        print("rill load agent: stopped after \(server.accepted) runs (\(server.refusals) refused)")
        flushStandardOutput()
    }
}

/// `rill load`'s flags for agents on other hosts.
struct AgentOptions: ParsableArguments {
    @Option(
        name: .customLong("agent"), parsing: .singleValue,
        help: "An agent (`rill load agent`) at HOST:PORT to share the run with; repeat for several.")
    var agents: [String] = []

    @Option(name: .customLong("agent-token"), help: "The agents' token (default: $RILL_AGENT_TOKEN).")
    var token: String?

    /// The agents of the run, if any; `commandLine` is this run's (without the program name).
    func plan(commandLine: [String]) throws -> AgentPlan? {
        guard !agents.isEmpty else { return nil }
        guard let token = token ?? ProcessInfo.processInfo.environment["RILL_AGENT_TOKEN"], !token.isEmpty else {
            throw ValidationError("--agent needs --agent-token (or RILL_AGENT_TOKEN)")
        }
        return AgentPlan(
            addresses: try agents.map { try Parse.hostPort($0) }, token: token, arguments: AgentPlan.workerArguments(commandLine),
            rillVersion: RillVersion.current)
    }
}

extension Parse {
    /// `A.B.C.D:PORT` (or `localhost:PORT`); port 0 only where `portZero` allows it (listening).
    static func hostPort(_ text: String, portZero: Bool = false) throws -> SocketAddress {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1]), port > 0 || portZero,
            let address = SocketAddress(String(parts[0]), port: port)
        else { throw ValidationError("'\(text)' is not A.B.C.D:PORT (numeric IPv4, port 1-65535)") }
        return address
    }
}
