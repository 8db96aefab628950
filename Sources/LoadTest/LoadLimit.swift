#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// The limits a run can meet, how to tell them from the errors, and how to lift each one.
public enum LoadLimit: CaseIterable, Sendable, CustomStringConvertible {
    case openFiles
    case ephemeralPorts
    case serverConnections
    case acceptBacklog
    case serverClosed
    case heartbeats

    /// The limit behind an error class, if one is.
    public init?(_ error: LoadErrorClass) {
        switch error.underlying {
        case .outOfFileDescriptors: self = .openFiles
        case .addressNotAvailable: self = .ephemeralPorts
        case .status(503): self = .serverConnections
        case .connectRefused, .connectTimeout: self = .acceptBacklog
        case .resetByServer, .closedByServer: self = .serverClosed
        case .heartbeatsStopped: self = .heartbeats
        default: return nil
        }
    }

    /// How to lift it, as the report's "Limit" line says.
    public var description: String {
        switch self {
        case .openFiles:
            return
                "this process's open-file limit: use --workers auto (or more workers), or raise the hard limit (ulimit -Hn)"
        case .ephemeralPorts:
            return "ephemeral ports per source address (net.ipv4.ip_local_port_range): add --source addresses"
        case .serverConnections:
            return
                "the server's connection limit (rill serve --max-connections, its open-file limit): run it with workers"
        case .acceptBacklog:
            return
                "the server's accept backlog (net.core.somaxconn, its listen backlog), or nothing listening: lower --rate"
        case .serverClosed:
            return "the server closed connections: see its log (idle timeout, limits, or it exited)"
        case .heartbeats:
            return
                "the server stopped writing to some streams (overloaded, or its heartbeat is slower than --heartbeat-interval)"
        }
    }

    /// One line per limit the errors point at, in a fixed order.
    public static func advice(for errors: [LoadErrorClass: Int]) -> [String] {
        let met = Set(errors.keys.compactMap { LoadLimit($0) })
        return allCases.filter { met.contains($0) }.map(\.description)
    }

    /// Ports the kernel hands out per source/destination pair (net.ipv4.ip_local_port_range).
    public static func ephemeralPorts() -> Int {
        let numbers = ProcFile.fields("/proc/sys/net/ipv4/ip_local_port_range")?.compactMap { Int($0) } ?? []
        guard numbers.count == 2, numbers[1] >= numbers[0] else { return 28_232 }
        return numbers[1] - numbers[0] + 1
    }
}
