#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 address and port. Numeric only (plus `localhost`): Rill never resolves names, so no call
/// blocks the loop.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address in host byte order: 127.0.0.1 is `0x7F00_0001`.
    public var ip: UInt32
    public var port: UInt16

    public init(ip: UInt32, port: UInt16) {
        self.ip = ip
        self.port = port
    }

    /// Parses a dotted quad such as `127.0.0.2` (or `localhost`); nil if it is not one.
    public init?(_ host: String, port: UInt16) {
        guard let ip = SocketAddress.parseIPv4(host) else { return nil }
        self.init(ip: ip, port: port)
    }

    /// 127.0.0.1 at `port` (0: the kernel picks a free one when listening).
    public static func loopback(port: UInt16) -> SocketAddress { SocketAddress(ip: 0x7F00_0001, port: port) }

    /// `127.0.0.1:8080`.
    public var description: String { "\(host):\(port)" }

    /// The dotted quad alone.
    public var host: String {
        "\(ip >> 24).\((ip >> 16) & 0xFF).\((ip >> 8) & 0xFF).\(ip & 0xFF)"
    }

    /// The same address with another port.
    public func with(port: UInt16) -> SocketAddress { SocketAddress(ip: ip, port: port) }

    static func parseIPv4(_ text: String) -> UInt32? {
        if text == "localhost" { return 0x7F00_0001 }
        var value: UInt32 = 0
        var octets = 0
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard part.count >= 1, part.count <= 3, let octet = UInt32(part), octet <= 255 else { return nil }
            value = value << 8 | octet
            octets += 1
        }
        return octets == 4 ? value : nil
    }

    var sockaddr: sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = ip.bigEndian
        return address
    }

    init(_ address: sockaddr_in) {
        self.init(ip: UInt32(bigEndian: address.sin_addr.s_addr), port: UInt16(bigEndian: address.sin_port))
    }
}
