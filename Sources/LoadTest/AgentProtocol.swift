import Foundation
import Reactor
import Workers

/// `rill load --agent`: the coordinator's TCP connection to an agent on another host carries the
/// same framed JSON as a local worker's socket pair (`WorkerCommand` down, `WorkerReply` up), after
/// one exchange of its own: a hello (protocol version, token, the worker's command line) and the
/// agent's welcome or refusal. The token travels in clear (there is no TLS yet): use agents on a
/// network you trust.
public enum AgentProtocol {
    /// Bump whenever the hello, `WorkerCommand`, `WorkerReply` or `LoadRecorder` changes shape: an
    /// agent of another version is refused by name instead of misreading the run.
    public static let version = 1
    /// The frame type of the hello and the welcome (worker messages keep `WorkerMessage.json`).
    static let helloFrame: UInt8 = 2
    /// A hello bigger than this is not one: the connection is dropped before it is authenticated.
    static let maximumHelloBytes = 64 << 10
    /// How long each side waits for the other's hello or welcome.
    public static let handshakeTimeout: Duration = .seconds(5)

    /// Coordinator → agent, first.
    struct Hello: Codable {
        var protocolVersion: Int
        var rillVersion: String
        var token: String
        /// The worker's command line without the program name (`load URL …`); the agent appends
        /// `--worker-channel 0`.
        var arguments: [String]
    }

    /// Agent → coordinator, in answer: accepted (with how many connections its worker may open), or
    /// refused, and why.
    struct Welcome: Codable {
        var protocolVersion: Int
        var rillVersion: String
        var refusal: Refusal?
        /// Connections one worker process on the agent may hold (its open-file limit, less reserve).
        var capacity: Int
    }

    enum Refusal: Codable, Equatable {
        case token
        case version(theirs: Int)
        case arguments(String)
        case start(String)
    }

    /// Only the version, read first, so a hello of another shape is refused for its version rather
    /// than as garbage.
    struct VersionProbe: Codable {
        var protocolVersion: Int
        var rillVersion: String?
    }

    static func encode<Message: Encodable>(_ message: Message) -> [UInt8] {
        guard let json = try? JSONEncoder().encode(message) else { return [] }
        return Frame.encode(type: helloFrame) { $0 += json }
    }

    static func decode<Message: Decodable>(_ payload: UnsafeRawBufferPointer, as type: Message.Type) -> Message? {
        try? JSONDecoder().decode(Message.self, from: Data(payload))
    }

    /// Whether `given` is `expected`, in time that depends only on `expected`'s length, so an
    /// attacker cannot find the token byte by byte by timing refusals.
    public static func tokenMatches(_ given: String, expected: String) -> Bool {
        let given = Array(given.utf8)
        let expected = Array(expected.utf8)
        var difference: UInt8 = given.count == expected.count ? 0 : 1
        for index in expected.indices {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0 && !expected.isEmpty
    }
}

/// Why `rill load --agent` cannot run with its agents.
public enum AgentError: Error, Equatable, CustomStringConvertible {
    case unreachable(SocketAddress, String)
    case refusedToken(SocketAddress)
    case otherVersion(SocketAddress, agent: Int, agentRill: String?, ours: Int)
    case refused(SocketAddress, String)
    case noWelcome(SocketAddress)
    case tooSmall(SocketAddress, share: Int, capacity: Int)

    public var description: String {
        switch self {
        case .unreachable(let address, let why):
            return "agent \(address) is unreachable (\(why)): is `rill load agent --listen \(address)` running there?"
        case .refusedToken(let address):
            return "agent \(address) refused the token: pass the one it was started with (--agent-token)"
        case .otherVersion(let address, let agent, let rill, let ours):
            return "agent \(address) speaks agent protocol \(agent)\(rill.map { " (rill \($0))" } ?? ""), "
                + "this rill speaks \(ours): run the same rill version on every host"
        case .refused(let address, let why):
            return "agent \(address) refused the run: \(why)"
        case .noWelcome(let address):
            return "agent \(address) accepted the connection but did not answer the hello within "
                + "\(AgentProtocol.handshakeTimeout): is it a rill load agent?"
        case .tooSmall(let address, let share, let capacity):
            return "agent \(address) would hold \(share) connections but its worker may open \(capacity) "
                + "(its open-file limit): lower -c, add agents, or raise the agent's limit (ulimit -n)"
        }
    }
}

/// How a total splits over workers of unequal weight (this host's processes share one host's
/// part; each agent is a host): whole shares that add up to the total, the remainder going to
/// the largest fractions first (ties to the first worker).
public enum LoadShares {
    public static func split(_ total: Int, weights: [Double]) -> [Int] {
        guard !weights.isEmpty else { return [] }
        let sum = weights.reduce(0, +)
        guard sum > 0 else { return weights.map { _ in 0 } }
        let exact = weights.map { Double(total) * $0 / sum }
        var shares = exact.map { Int($0.rounded(.down)) }
        let order = exact.indices.sorted {
            let a = exact[$0] - Double(shares[$0])
            let b = exact[$1] - Double(shares[$1])
            return a != b ? a > b : $0 < $1
        }
        var left = total - shares.reduce(0, +)
        for index in order where left > 0 {
            shares[index] += 1
            left -= 1
        }
        return shares
    }
}

/// The agents a run spreads over, besides this host (`rill load --agent HOST:PORT --agent-token T`).
public struct AgentPlan {
    public var addresses: [SocketAddress]
    public var token: String
    /// The worker's command line for the agents: `load URL …` without the coordinator's own flags
    /// (--agent, --agent-token, --json, --html, --workers).
    public var arguments: [String]
    public var rillVersion: String

    public init(addresses: [SocketAddress], token: String, arguments: [String], rillVersion: String) {
        self.addresses = addresses
        self.token = token
        self.arguments = arguments
        self.rillVersion = rillVersion
    }

    /// This host's part of `total` connections: one host's share, as each agent gets one.
    public func localShare(of total: Int) -> Int {
        LoadShares.split(total, weights: [Double](repeating: 1, count: addresses.count + 1))[0]
    }

    /// Flags only the coordinator acts on, left out of the agents' worker command line.
    public static let coordinatorFlags: Set<String> = ["--agent", "--agent-token", "--json", "--html", "--workers"]

    /// `commandLine` without the coordinator's own flags (and their values).
    public static func workerArguments(_ commandLine: [String]) -> [String] {
        var kept: [String] = []
        var skipNext = false
        for argument in commandLine {
            if skipNext {
                skipNext = false
                continue
            }
            let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
            if coordinatorFlags.contains(name) {
                skipNext = !argument.contains("=")
                continue
            }
            kept.append(argument)
        }
        return kept
    }
}
