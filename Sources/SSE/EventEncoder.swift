import RillBytes

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
    /// The encoded event in one immutable buffer, as the hub shares it: sized exactly by a first
    /// pass, written by a second, so encoding costs the buffer's allocation and nothing else.
    public static func encodeShared(_ event: OutgoingEvent) throws(EventEncodingError) -> SharedBytes {
        try validate(event)
        return sized { write(event, to: &$0) }
    }

    /// The encoded event, ending with the blank line that makes the client dispatch it.
    public static func encode(_ event: OutgoingEvent) throws(EventEncodingError) -> [UInt8] {
        try encodeShared(event).array
    }

    /// A comment (`: text`), which clients ignore: the heartbeat that keeps proxies and NATs from
    /// timing an idle stream out. Multi-line text becomes several comment lines.
    public static func comment(_ text: String) -> [UInt8] {
        let lines = Array(text.utf8)
        return sized { sink in
            writeLines(": ", lines, to: &sink)
            sink.append(10)
        }.array
    }

    /// Runs `write` once to count the bytes and once to fill a buffer of exactly that size.
    private static func sized(_ write: (inout ByteSink) -> Void) -> SharedBytes {
        var counter = ByteSink(base: nil)
        write(&counter)
        return SharedBytes(capacity: counter.count) { buffer in
            var sink = ByteSink(base: buffer.baseAddress)
            write(&sink)
            return sink.count
        }
    }

    /// Checks what `encode` would refuse (unsafe id or name, negative retry) without encoding.
    public static func validate(_ event: OutgoingEvent) throws(EventEncodingError) {
        if let id = event.id, !isSafeFieldValue(id) { throw .invalidID }
        if let name = event.name, !isSafeFieldValue(name) { throw .invalidName }
        if let retry = event.retry, retry < 0 { throw .negativeRetry }
    }

    private static func write(_ event: OutgoingEvent, to sink: inout ByteSink) {
        if let id = event.id { writeField("id", id, to: &sink) }
        if let name = event.name { writeField("event", name, to: &sink) }
        if let retry = event.retry { writeField("retry", String(retry), to: &sink) }
        writeLines("data: ", event.data, to: &sink)
        sink.append(10)
    }

    private static func isSafeFieldValue(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            for byte in bytes where byte == 0 || byte == 10 || byte == 13 { return false }
            return true
        }
    }

    private static func writeField(_ name: StaticString, _ value: String, to sink: inout ByteSink) {
        sink.append(name)
        sink.append(UInt8(ascii: ":"))
        sink.append(32)
        var value = value
        value.withUTF8 { sink.append($0) }  // contiguous UTF-8, no copy for native strings
        sink.append(10)
    }

    /// One `prefix` line per line of `text`, split at CRLF, LF or CR (an empty text is one empty line).
    private static func writeLines(_ prefix: StaticString, _ text: [UInt8], to sink: inout ByteSink) {
        text.withUnsafeBufferPointer { text in
            var start = 0
            var index = 0
            while index <= text.count {
                if index == text.count || text[index] == 10 || text[index] == 13 {
                    sink.append(prefix)
                    sink.append(UnsafeBufferPointer(rebasing: text[start..<index]))
                    sink.append(10)
                    if index < text.count && text[index] == 13 && index + 1 < text.count && text[index + 1] == 10 {
                        index += 1
                    }
                    start = index + 1
                }
                index += 1
            }
        }
    }
}

/// Writes bytes at `base`, or, with no base, only counts them: the same code sizes and fills a buffer.
private struct ByteSink {
    let base: UnsafeMutableRawPointer?
    var count = 0

    mutating func append(_ byte: UInt8) {
        base?.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        if let base, bytes.count > 0 { (base + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        count += bytes.count
    }

    mutating func append(_ literal: StaticString) {
        append(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }
}
