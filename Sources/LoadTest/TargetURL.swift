import Reactor

/// `http://HOST[:PORT]/path?query`, HOST numeric IPv4 or `localhost` (no name resolution here).
public struct TargetURL: CustomStringConvertible {
    public let address: SocketAddress
    public let hostHeader: String
    /// Path and query, as sent in the request line.
    public let target: String

    public init?(_ text: String) {
        guard text.hasPrefix("http://") else { return nil }
        let rest = text.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        let parts = authority.split(separator: ":", maxSplits: 1)
        guard let host = parts.first else { return nil }
        let port = parts.count == 2 ? UInt16(parts[1]) : 80
        let numeric = host == "localhost" ? "127.0.0.1" : String(host)
        guard let port, let address = SocketAddress(numeric, port: port) else { return nil }
        self.address = address
        hostHeader = String(authority)
        target = path.isEmpty ? "/" : String(path)
    }

    /// Loopback targets get source addresses spread automatically.
    public var isLoopback: Bool { address.ip >> 24 == 127 }

    /// The same server, another path (the publish endpoint beside a stream).
    public func with(target: String) -> String { "http://\(hostHeader)\(target)" }

    public var description: String { "http://\(hostHeader)\(target)" }
}

/// Source addresses to spread connections over: `127.0.0.2-127.0.0.20`, one address, or `none`.
public struct SourceRange {
    public let addresses: [SocketAddress]

    public init?(_ text: String) {
        if text == "none" {
            addresses = []
            return
        }
        let ends = text.split(separator: "-", maxSplits: 1).map(String.init)
        guard let first = SocketAddress(ends[0], port: 0) else { return nil }
        let last = ends.count == 2 ? SocketAddress(ends[1], port: 0) : first
        guard let last, last.ip >= first.ip, last.ip - first.ip < SourceRange.maximumAddresses else { return nil }
        addresses = (first.ip...last.ip).map { SocketAddress(ip: $0, port: 0) }
    }

    /// For a loopback target: 127.0.0.2 upwards, one address per 20,000 connections and at least 8, so
    /// no source/destination pair runs short of ephemeral ports (~28k each) or meets TIME_WAIT leftovers.
    /// Counted on from 127.0.0.2 as one number, so past 127.0.0.255 it goes on at 127.0.1.0 (all of
    /// 127.0.0.0/8 is loopback); nil past what one range holds (65,536 addresses).
    public static func automatic(connections: Int) -> SourceRange? {
        let count = max(8, connections / 20_000 + (connections % 20_000 == 0 ? 0 : 1))
        guard count <= maximumAddresses else { return nil }
        let first: UInt32 = 0x7F00_0002
        return SourceRange(addresses: (first..<first + UInt32(count)).map { SocketAddress(ip: $0, port: 0) })
    }

    /// Addresses one range may hold.
    public static let maximumAddresses = 65_536

    private init(addresses: [SocketAddress]) { self.addresses = addresses }
}
