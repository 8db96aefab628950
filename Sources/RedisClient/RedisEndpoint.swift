import Reactor

/// Where a Redis server is: `redis://HOST[:PORT][/DB]`, HOST a numeric IPv4 address or `localhost`
/// (no resolver here: the libraries use libc only, and a server address is configuration).
public struct RedisEndpoint: Equatable, Sendable, CustomStringConvertible {
    public var address: SocketAddress
    /// The database number, selected on every (re)connection when not 0.
    public var database: Int

    public init(address: SocketAddress, database: Int = 0) {
        self.address = address
        self.database = database
    }

    /// Parses `redis://HOST[:PORT][/DB]` (port 6379 and database 0 by default); nil if malformed.
    public init?(url: String) {
        let scheme = "redis://"
        guard url.hasPrefix(scheme) else { return nil }
        var rest = Substring(url.dropFirst(scheme.count))
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let number = rest[rest.index(after: slash)...]
            if !number.isEmpty {
                guard let parsed = Int(number), parsed >= 0, parsed < 1 << 16 else { return nil }
                database = parsed
            }
            rest = rest[..<slash]
        }
        var host = rest
        var port: UInt16 = 6379
        if let colon = rest.lastIndex(of: ":") {
            guard let parsed = UInt16(rest[rest.index(after: colon)...]), parsed > 0 else { return nil }
            port = parsed
            host = rest[..<colon]
        }
        let numeric = host == "localhost" ? "127.0.0.1" : String(host)
        guard let address = SocketAddress(numeric, port: port) else { return nil }
        self.init(address: address, database: database)
    }

    public var description: String { "redis://\(address)" + (database == 0 ? "" : "/\(database)") }
}
