import Reactor

/// What is wrong with a target URL, each said in its own words.
public enum TargetURLError: Error, Equatable, CustomStringConvertible {
    case noScheme
    case unknownScheme(String)
    case https
    case missingHost
    case ipv6Literal
    case hostNotNumeric(String)
    case portNotANumber(String)
    case portOutOfRange(String)
    case spaceInPath
    case fragment

    public var description: String {
        switch self {
        case .noScheme: return "it has no scheme: write http://HOST:PORT/PATH, e.g. http://127.0.0.1:8080/sse"
        case .unknownScheme(let scheme): return "unknown scheme '\(scheme)': rill load speaks http://"
        case .https: return "https is not supported yet: use http://"
        case .missingHost: return "it has no host: write http://HOST:PORT/PATH, e.g. http://127.0.0.1:8080/sse"
        case .ipv6Literal:
            return "IPv6 literals are not supported yet: use an IPv4 address (127.0.0.1 for this machine)"
        case .hostNotNumeric(let host):
            return "host '\(host)' is not a numeric IPv4 address or localhost (rill load resolves no names)"
        case .portNotANumber(let port): return "port '\(port)' is not a number"
        case .portOutOfRange(let port): return "port \(port) is out of range (1-65535)"
        case .spaceInPath: return "the path has a space: write it as %20"
        case .fragment: return "a #fragment is never sent to a server: leave it out"
        }
    }
}

/// `http://HOST[:PORT]/path?query`, HOST numeric IPv4 or `localhost` (no name resolution here).
public struct TargetURL: CustomStringConvertible {
    public let address: SocketAddress
    public let hostHeader: String
    /// Path and query, as sent in the request line.
    public let target: String

    public init?(_ text: String) {
        guard let url = try? TargetURL(parsing: text) else { return nil }
        self = url
    }

    /// Parses `text`, or says what is wrong with it.
    public init(parsing text: String) throws(TargetURLError) {
        guard let schemeEnd = text.firstRange(of: "://") else {
            throw text.lowercased().hasPrefix("https:") ? .https : text.hasPrefix("http:") ? .missingHost : .noScheme
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" else { throw scheme == "https" ? .https : .unknownScheme(String(scheme)) }
        let rest = text[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        var path = String(rest.dropFirst(authority.count))
        if path.contains(" ") || authority.contains(" ") { throw .spaceInPath }
        if path.contains("#") { throw .fragment }
        if path.hasPrefix("?") { path = "/" + path }
        if authority.hasPrefix("[") { throw .ipv6Literal }
        let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let host = parts[0]
        guard !host.isEmpty else { throw .missingHost }
        var port: UInt16 = 80
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
                throw .portNotANumber(String(digits))
            }
            guard let number = UInt16(digits), number > 0 else { throw .portOutOfRange(String(digits)) }
            port = number
        }
        let numeric = host == "localhost" ? "127.0.0.1" : String(host)
        guard let address = SocketAddress(numeric, port: port) else {
            throw host.contains(":") ? .ipv6Literal : .hostNotNumeric(String(host))
        }
        self.address = address
        hostHeader = String(authority)
        target = path.isEmpty ? "/" : path
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

    /// For a loopback target: 127.0.0.2 upwards, one address per `connectionsPerAddress` connections
    /// and at least 8, so no source/destination pair runs short of ephemeral ports (~28k each) or
    /// meets TIME_WAIT leftovers. Counted on from 127.0.0.2 as one number, so past 127.0.0.255 it goes
    /// on at 127.0.1.0 (all of 127.0.0.0/8 is loopback); nil past what one range holds (65,536 addresses).
    public static func automatic(connections: Int) -> SourceRange? {
        let each = connectionsPerAddress
        let count = max(8, connections / each + (connections % each == 0 ? 0 : 1))
        guard count <= maximumAddresses else { return nil }
        let first: UInt32 = 0x7F00_0002
        return SourceRange(addresses: (first..<first + UInt32(count)).map { SocketAddress(ip: $0, port: 0) })
    }

    /// Connections per source address: under half the ~28k ephemeral ports of a source/destination
    /// pair, because Linux's connect() scans the ports of one parity first — past ~14k connections
    /// of one pair every further connect walks all of them before it tries the other half, and a
    /// ramp of 250,000 streams over 13 addresses fell from 15,000/s to 250/s there.
    public static let connectionsPerAddress = 10_000

    /// Addresses one range may hold.
    public static let maximumAddresses = 65_536

    private init(addresses: [SocketAddress]) { self.addresses = addresses }
}
