import HTTP1

/// A request as its handler sees it: a view of the request's bytes, valid only during the handler
/// call (it points into the loop's read buffer, or the server's copy of a head whose body followed).
/// Do not keep it, or the buffers from its `...Bytes` accessors, past the call: take the Strings
/// (made on demand) or copies instead.
public struct HTTPRequest {
    let bytes: UnsafeRawBufferPointer
    let head: MessageHead
    let target: RequestTarget
    let parameter: ByteRange
    /// The collected body (empty unless the route collects one).
    public let body: [UInt8]

    init(bytes: UnsafeRawBufferPointer, head: MessageHead, parameter: ByteRange, body: [UInt8] = []) {
        self.bytes = bytes
        self.head = head
        target = RequestTarget(head.target, in: bytes)
        self.parameter = parameter
        self.body = body
    }

    /// The method token.
    public var method: String { bytes.string(head.method) }
    public var methodBytes: UnsafeRawBufferPointer { slice(head.method) }
    /// The path, as sent (not percent-decoded).
    public var path: String { target.path.isEmpty ? "/" : bytes.string(target.path) }
    public var pathBytes: UnsafeRawBufferPointer { slice(target.path) }
    /// What the route's `:name` or `*` matched, percent-decoded; nil if malformed or not UTF-8.
    public var pathParameter: String? { percentDecodedString(pathParameterBytes, plusIsSpace: false) }
    /// What the route's `:name` or `*` matched, as sent.
    public var pathParameterBytes: UnsafeRawBufferPointer { slice(parameter) }
    /// The query as sent, without `?`; nil if the target has none.
    public var queryBytes: UnsafeRawBufferPointer? { target.query.map(slice) }
    public var version: HTTPVersion { head.version }
    /// Whether the client will send another request on this connection.
    public var keepAlive: Bool { head.keepAlive }

    /// The query's name=value pairs in order, percent-decoded (`+` as space); nil if an escape is
    /// malformed or a part is not UTF-8.
    public var queryParameters: [(name: String, value: String)]? { target.parameters(in: bytes) }

    /// The first value of query parameter `name`; nil if absent or the query is malformed.
    public func query(_ name: String) -> String? {
        queryParameters?.first { $0.name == name }?.value
    }

    /// Every value of query parameter `name`, in order.
    public func queryValues(_ name: String) -> [String] {
        queryParameters?.filter { $0.name == name }.map(\.value) ?? []
    }

    /// The value of the first header named `name` (any case), as sent.
    public func headerBytes(_ name: String) -> UnsafeRawBufferPointer? {
        for field in head.headers where field.name.count == name.utf8.count {
            var index = Int(field.name.start)
            var equal = true
            for byte in name.utf8 {
                if Self.lowercase(bytes[index]) != Self.lowercase(byte) {
                    equal = false
                    break
                }
                index += 1
            }
            if equal { return slice(field.value) }
        }
        return nil
    }

    /// The value of the first header named `name` (any case) as a String (invalid UTF-8 repaired).
    public func header(_ name: String) -> String? {
        headerBytes(name).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The credentials of an `Authorization: Bearer <token>` header (scheme in any case, RFC 6750);
    /// nil without one, or with another scheme. Compare it with the expected token yourself.
    public var bearerToken: String? {
        guard let value = headerBytes("authorization") else { return nil }
        let scheme = Array("bearer".utf8)
        guard value.count > scheme.count, value[scheme.count] == UInt8(ascii: " ") else { return nil }
        for (index, byte) in scheme.enumerated() where Self.lowercase(value[index]) != byte { return nil }
        let token = value.dropFirst(scheme.count).drop { $0 == UInt8(ascii: " ") }
        return token.isEmpty ? nil : String(decoding: token, as: UTF8.self)
    }

    /// Every header line in order, as Strings.
    public var headers: [(name: String, value: String)] {
        head.headers.map { (bytes.string($0.name), bytes.string($0.value)) }
    }

    /// Where an event stream resumes: the `Last-Event-ID` header, else the `lastEventId` (or
    /// `last-event-id`) query parameter, which an `EventSource` cannot send as a header on its
    /// first connection; nil if neither, or empty.
    public var lastEventID: String? {
        var value = header("last-event-id")
        if value == nil, let parameters = queryParameters {
            for (name, parameterValue) in parameters where name == "lastEventId" || name == "last-event-id" {
                value = parameterValue
            }
        }
        return value.flatMap { $0.isEmpty ? nil : $0 }
    }

    private func slice(_ range: ByteRange) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[range.range])
    }

    private static func lowercase(_ byte: UInt8) -> UInt8 { byte &- 0x41 < 26 ? byte | 0x20 : byte }
}
