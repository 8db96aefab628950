/// What a `text/event-stream` carries, as a client sees it.
public enum EventStreamItem: Equatable, Sendable {
    /// A dispatched event (a blank line ended it and its data was not empty).
    case event(ReceivedEvent)
    /// A comment line (without the colon); servers send them as heartbeats.
    case comment([UInt8])
    /// A valid `retry:` field: the reconnection delay in milliseconds.
    case retry(Int)
}

/// An event as the client's EventSource would dispatch it.
public struct ReceivedEvent: Equatable, Sendable {
    /// The `event:` type, "message" if none was given.
    public var type: String
    /// The data lines joined with LF (the final LF removed).
    public var data: [UInt8]
    /// The last event ID in force when the event was dispatched (it persists across events).
    public var lastEventID: String

    public init(type: String = "message", data: [UInt8], lastEventID: String = "") {
        self.type = type
        self.data = data
        self.lastEventID = lastEventID
    }

    public var dataString: String { String(decoding: data, as: UTF8.self) }
}

/// Parses a `text/event-stream` incrementally, per the WHATWG HTML "Server-sent events" section
/// (9.2.6): lines end at CRLF, LF or CR (also when the CR and LF arrive in different reads), a
/// leading BOM is skipped, events dispatch only at a blank line, `id` with NUL is ignored, `retry`
/// with anything but digits is ignored, unknown fields are ignored.
///
/// State between events is a few small buffers, empty and unallocated while the stream is idle
/// between events (capacity is dropped after each event unless `keepCapacity`).
public struct EventStreamParser {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var eventType: [UInt8] = []
    private var sawData = false
    private var lastEventID: [UInt8] = []
    private var atStreamStart = true
    private var afterCR = false
    /// Keep buffers' capacity between events (faster, more memory per idle stream).
    public var keepCapacity = false

    public init() {}

    /// Parses the next bytes of the stream, calling `handle` for each complete item.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ handle: (EventStreamItem) -> Void) {
        var index = 0
        if atStreamStart {
            // The BOM may arrive split across reads: decide once three bytes (or a mismatch) are in.
            line.append(contentsOf: bytes)
            let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
            if line.count < 3 && Array(line) == Array(bom.prefix(line.count)) { return }
            atStreamStart = false
            let pending = line
            line.removeAll()
            let start = pending.starts(with: bom) ? 3 : 0
            pending[start...].withUnsafeBytes { feed($0, handle) }
            return
        }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if afterCR {
                afterCR = false
                if byte == 10 { continue }  // the LF of a CRLF split across reads
            }
            if byte == 10 || byte == 13 {
                afterCR = byte == 13
                processLine(handle)
                line.removeAll(keepingCapacity: keepCapacity)
            } else {
                line.append(byte)
            }
        }
    }

    private mutating func processLine(_ handle: (EventStreamItem) -> Void) {
        if line.isEmpty {
            dispatch(handle)
            return
        }
        if line[0] == UInt8(ascii: ":") {
            var text = Array(line.dropFirst())
            if text.first == 32 { text.removeFirst() }
            handle(.comment(text))
            return
        }
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let field = colon.map { line[..<$0] } ?? line[...]
        var value = colon.map { line[($0 + 1)...] } ?? []
        if value.first == 32 { value = value.dropFirst() }
        switch String(decoding: field, as: UTF8.self) {
        case "event":
            eventType = Array(value)
        case "data":
            data.append(contentsOf: value)
            data.append(10)
            sawData = true
        case "id":
            if !value.contains(0) { lastEventID = Array(value) }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ $0 >= 48 && $0 <= 57 }), value.count <= 15 {
                handle(.retry(value.reduce(0) { $0 * 10 + Int($1 - 48) }))
            }
        default:
            break
        }
    }

    private mutating func dispatch(_ handle: (EventStreamItem) -> Void) {
        defer {
            data.removeAll(keepingCapacity: keepCapacity)
            eventType.removeAll(keepingCapacity: keepCapacity)
            sawData = false
        }
        guard sawData else { return }
        data.removeLast()  // the LF after the last data line
        let type = eventType.isEmpty ? "message" : String(decoding: eventType, as: UTF8.self)
        handle(.event(ReceivedEvent(type: type, data: data, lastEventID: String(decoding: lastEventID, as: UTF8.self))))
    }
}
