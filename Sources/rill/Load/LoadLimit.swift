#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// The limits a run can meet, how to tell them from the errors, and how to lift each one.
enum LoadLimit {
    /// One line per limit the errors point at.
    static func advice(for errors: [String: Int]) -> [String] {
        var lines: [String] = []
        func has(_ prefix: String) -> Bool { errors.keys.contains { $0.hasPrefix(prefix) || $0.hasPrefix("publish: " + prefix) } }
        if has("out of file descriptors") {
            lines.append("this process's open-file limit: use --workers auto (or more workers), or raise the hard limit (ulimit -Hn)")
        }
        if has("address not available") {
            lines.append("ephemeral ports per source address (net.ipv4.ip_local_port_range): add --source addresses")
        }
        if has("status 503") {
            lines.append("the server's connection limit (rill serve --max-connections, its open-file limit): run it with workers")
        }
        if has("connect refused") || has("connect timeout") {
            lines.append("the server's accept backlog (net.core.somaxconn, its listen backlog), or nothing listening: lower --rate")
        }
        if has("reset by server") || has("closed by server") {
            lines.append("the server closed connections: see its log (idle timeout, limits, or it exited)")
        }
        if has("heartbeats stopped") {
            lines.append("the server stopped writing to some streams (overloaded, or its heartbeat is slower than --heartbeat-interval)")
        }
        return lines
    }

    /// Ports the kernel hands out per source/destination pair (net.ipv4.ip_local_port_range).
    static func ephemeralPorts() -> Int {
        let numbers = ProcFile.fields("/proc/sys/net/ipv4/ip_local_port_range")?.compactMap { Int($0) } ?? []
        guard numbers.count == 2, numbers[1] >= numbers[0] else { return 28_232 }
        return numbers[1] - numbers[0] + 1
    }
}
