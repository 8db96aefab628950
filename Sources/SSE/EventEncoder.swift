/// An event to send on a Server-Sent Events stream.
public struct OutgoingEvent: Sendable, Equatable {
    /// `id:` — what a reconnecting client sends back as Last-Event-ID. No NUL, CR or LF.
    public var id: String?
    /// `event:` — the event type (the client's default is "message"). No NUL, CR or LF.
    public var name: String?
    /// `retry:` — the client's reconnection delay, in milliseconds.
    public var retry: Int?
    /// The payload; CR, LF or CRLF in it become separate `data:` lines.
    public var data: [UInt8]

    public init(data: [UInt8], id: String? = nil, name: String? = nil, retry: Int? = nil) {
        self.data = data
        self.id = id
        self.name = name
        self.retry = retry
    }

    public init(data: String, id: String? = nil, name: String? = nil, retry: Int? = nil) {
        self.init(data: Array(data.utf8), id: id, name: name, retry: retry)
    }
}

/// Why an event cannot be framed.
public enum EventEncodingError: Error, Equatable, Sendable {
    /// An id with NUL, CR or LF: the client would cut it or ignore it, and resume from the wrong place.
    case invalidID
    /// An event name with NUL, CR or LF: it would end the field early and inject another.
    case invalidName
    case negativeRetry
}

/// Frames events per the WHATWG HTML "Server-sent events" section (9.2), into bytes that are then
/// shared, unchanged, by every subscriber: an event is encoded once, whatever the number of clients.
public enum EventEncoder {
    /// The encoded event, ending with the blank line that makes the client dispatch it.
    public static func encode(_ event: OutgoingEvent) throws(EventEncodingError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(event.data.count + 16 + (event.id?.utf8.count ?? 0) + (event.name?.utf8.count ?? 0))
        if let id = event.id {
            guard isSafeFieldValue(id) else { throw .invalidID }
            appendField("id", id.utf8, to: &bytes)
        }
        if let name = event.name {
            guard isSafeFieldValue(name) else { throw .invalidName }
            appendField("event", name.utf8, to: &bytes)
        }
        if let retry = event.retry {
            guard retry >= 0 else { throw .negativeRetry }
            appendField("retry", String(retry).utf8, to: &bytes)
        }
        appendLines("data: ", event.data, to: &bytes)
        bytes.append(10)
        return bytes
    }

    /// A comment (`: text`), which clients ignore: the heartbeat that keeps proxies and NATs from
    /// timing an idle stream out. Multi-line text becomes several comment lines.
    public static func comment(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        appendLines(": ", Array(text.utf8), to: &bytes)
        bytes.append(10)
        return bytes
    }

    private static func isSafeFieldValue(_ value: String) -> Bool {
        !value.utf8.contains { $0 == 0 || $0 == 10 || $0 == 13 }
    }

    private static func appendField(_ name: StaticString, _ value: some Collection<UInt8>, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(contentsOf: [UInt8(ascii: ":"), 32])
        bytes.append(contentsOf: value)
        bytes.append(10)
    }

    /// One `prefix` line per line of `text`, split at CRLF, LF or CR (an empty text is one empty line).
    private static func appendLines(_ prefix: StaticString, _ text: [UInt8], to bytes: inout [UInt8]) {
        let prefixBytes = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
        var start = 0
        var index = 0
        while index <= text.count {
            if index == text.count || text[index] == 10 || text[index] == 13 {
                bytes.append(contentsOf: prefixBytes)
                bytes.append(contentsOf: text[start..<index])
                bytes.append(10)
                if index < text.count && text[index] == 13 && index + 1 < text.count && text[index + 1] == 10 { index += 1 }
                start = index + 1
            }
            index += 1
        }
    }
}
