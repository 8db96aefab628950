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
/// Lines are found a word (8 bytes) at a time. `scan` hands out views into the caller's bytes: an
/// event whose lines arrived in one read, with one data line, is parsed without a copy or an
/// allocation. Bytes are copied only for a line split across reads or several data lines, into
/// buffers released after the event, so an idle stream holds only its last event ID.
public struct EventStreamParser {
    /// The start of a line split across reads.
    private var line: [UInt8] = []
    /// The event's data once it is owned (several lines, or kept past a read).
    private var data: [UInt8] = []
    private var dataState = Field.absent
    private var eventType: [UInt8] = []
    private var typeState = Field.absent
    /// The last event ID string (the ID of the last event dispatched: what a reconnection sends) in
    /// its first `committedIDCount` bytes; after them, while `idPending`, the last event ID buffer:
    /// an `id:` line's value, in force from the next dispatch (a blank line) on. A connection that
    /// ends between the two resumes from the earlier ID, as in a browser. One array, so that moving
    /// the ID in and out (`init(lastEventID:)`, `takeLastEventID()`) moves all its storage.
    private var lastEventID: [UInt8] = []
    private var committedIDCount = 0
    private var idPending = false
    private var atStreamStart = true
    private var afterCR = false

    /// Where a field of the event being assembled is.
    private enum Field {
        case absent
        /// In the bytes being scanned (valid until `scan` returns).
        case borrowed(UnsafeRawBufferPointer)
        /// In the parser's own buffer.
        case owned
    }

    /// An item of the stream, as views valid only during the `scan` callback.
    public enum View {
        case event(EventView)
        /// The comment's text (after the colon and one space).
        case comment(UnsafeRawBufferPointer)
        case retry(Int)

        /// The item, copied.
        public var item: EventStreamItem {
            switch self {
            case .event(let event): return .event(event.received)
            case .comment(let text): return .comment(Array(text))
            case .retry(let milliseconds): return .retry(milliseconds)
            }
        }
    }

    /// An event's fields, as views valid only during the `scan` callback.
    public struct EventView {
        /// The data lines joined with LF.
        public let data: UnsafeRawBufferPointer
        /// The `event:` type; empty for "message".
        public let type: UnsafeRawBufferPointer
        /// The last event ID in force.
        public let lastEventID: UnsafeRawBufferPointer

        public var typeName: String { type.isEmpty ? "message" : String(decoding: type, as: UTF8.self) }

        /// The event, copied.
        public var received: ReceivedEvent {
            ReceivedEvent(type: typeName, data: Array(data), lastEventID: String(decoding: lastEventID, as: UTF8.self))
        }
    }

    public init() {}

    /// A parser past the stream's start (no BOM expected) whose last event ID is `lastEventID`; its
    /// storage is reused, not copied. With `takeLastEventID()` and `isBetweenEvents`, a client that
    /// holds many idle streams keeps only each one's ID between reads, not a whole parser.
    public init(lastEventID: [UInt8]) {
        self.lastEventID = lastEventID
        committedIDCount = lastEventID.count
        atStreamStart = false
    }

    /// Nothing is pending: no partial line, no field of an event (its ID included) yet to be dispatched, past the
    /// stream's start and not between a CR and a possible LF. The parser's only state is then its
    /// last event ID, and `init(lastEventID:)` gives a parser that goes on exactly as this one would.
    public var isBetweenEvents: Bool {
        guard !atStreamStart && !afterCR && line.isEmpty && !idPending else { return false }
        if case .absent = dataState, case .absent = typeState { return true }
        return false
    }

    /// Hands over the last event ID's storage (the parser keeps an empty one).
    public mutating func takeLastEventID() -> [UInt8] {
        if idPending {
            lastEventID.removeSubrange(committedIDCount...)
            idPending = false
        }
        var taken: [UInt8] = []
        swap(&taken, &lastEventID)
        committedIDCount = 0
        return taken
    }

    /// Parses the next bytes of the stream, calling `handle` for each complete item (copied).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ handle: (EventStreamItem) -> Void) {
        scan(bytes) { handle($0.item) }
    }

    /// Parses the next bytes of the stream, calling `handle` with a view of each complete item.
    public mutating func scan(_ bytes: UnsafeRawBufferPointer, _ handle: (View) -> Void) {
        if atStreamStart {
            // The BOM may arrive split across reads: decide once three bytes (or a mismatch) are in.
            line.append(contentsOf: bytes)
            let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
            if line.count < 3 && line.elementsEqual(bom.prefix(line.count)) { return }
            atStreamStart = false
            let pending = line
            line = []
            let start = pending.starts(with: bom) ? 3 : 0
            pending.withUnsafeBytes { scan(UnsafeRawBufferPointer(rebasing: $0[start...]), handle) }
            return
        }
        var index = 0
        if afterCR && !bytes.isEmpty {
            afterCR = false
            if bytes[0] == 10 { index = 1 }  // the LF of a CRLF split across reads
        }
        while index < bytes.count {
            guard let end = EventStreamParser.lineEnd(in: bytes, from: index) else {
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index...]))
                break
            }
            if line.isEmpty {
                process(UnsafeRawBufferPointer(rebasing: bytes[index..<end]), borrowed: true, handle)
            } else {
                line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
                let whole = line
                line = []
                whole.withUnsafeBytes { process($0, borrowed: false, handle) }
            }
            index = end + 1
            if bytes[end] == 13 {
                if index == bytes.count { afterCR = true } else if bytes[index] == 10 { index += 1 }
            }
        }
        // Fields still pointing into `bytes` are copied before the caller reuses them.
        if case .borrowed(let value) = dataState {
            data = Array(value)
            dataState = .owned
        }
        if case .borrowed(let value) = typeState {
            eventType = Array(value)
            typeState = .owned
        }
    }

    /// The offset of the first CR or LF at or after `start`, a word at a time.
    static func lineEnd(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard let base = bytes.baseAddress else { return nil }
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var index = start
        while index + 8 <= bytes.count {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            // A byte equal to LF (CR) is a zero byte of word ^ 0x0A… (0x0D…); the lowest flagged byte
            // of the classic has-zero test is exact.
            let lf = word ^ (ones &* 10)
            let cr = word ^ (ones &* 13)
            let found = ((lf &- ones) & ~lf | (cr &- ones) & ~cr) & highs
            if found != 0 { return index + found.trailingZeroBitCount / 8 }
            index += 8
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 10 || byte == 13 { return index }
            index += 1
        }
        return nil
    }

    private static func isField(_ field: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        field.count == name.utf8CodeUnitCount
            && field.elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
    }

    /// One line without its end; `borrowed`: the line lies in the caller's bytes (it may be kept
    /// by reference until the scan returns).
    private mutating func process(_ line: UnsafeRawBufferPointer, borrowed: Bool, _ handle: (View) -> Void) {
        if line.isEmpty {
            dispatch(handle)
            return
        }
        if line[0] == UInt8(ascii: ":") {
            var text = UnsafeRawBufferPointer(rebasing: line[1...])
            if text.first == 32 { text = UnsafeRawBufferPointer(rebasing: text[1...]) }
            handle(.comment(text))
            return
        }
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let field = UnsafeRawBufferPointer(rebasing: line[..<(colon ?? line.count)])
        var value =
            colon.map { UnsafeRawBufferPointer(rebasing: line[($0 + 1)...]) }
            ?? UnsafeRawBufferPointer(start: nil, count: 0)
        if value.first == 32 { value = UnsafeRawBufferPointer(rebasing: value[1...]) }
        if EventStreamParser.isField(field, "data") {
            switch dataState {
            case .absent:
                if borrowed {
                    dataState = .borrowed(value)
                } else {
                    data = Array(value)
                    dataState = .owned
                }
            case .borrowed(let first):
                data = Array(first)
                data.append(10)
                data.append(contentsOf: value)
                dataState = .owned
            case .owned:
                data.append(10)
                data.append(contentsOf: value)
            }
        } else if EventStreamParser.isField(field, "event") {
            if borrowed {
                typeState = .borrowed(value)
            } else {
                eventType = Array(value)
                typeState = .owned
            }
        } else if EventStreamParser.isField(field, "id") {
            if !value.contains(0) {
                lastEventID.removeSubrange(committedIDCount...)
                lastEventID.append(contentsOf: value)
                idPending = true
            }
        } else if EventStreamParser.isField(field, "retry") {
            if !value.isEmpty, value.count <= 15, value.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
                handle(.retry(value.reduce(0) { $0 * 10 + Int($1 - 48) }))
            }
        }
    }

    private mutating func dispatch(_ handle: (View) -> Void) {
        if idPending {
            // In place: the buffer's bytes move to the front, the array keeps its storage.
            lastEventID.removeSubrange(0..<committedIDCount)
            committedIDCount = lastEventID.count
            idPending = false
        }
        defer {
            data = []
            dataState = .absent
            eventType = []
            typeState = .absent
        }
        let dataState = self.dataState
        guard case .absent = dataState else {
            let typeState = self.typeState
            lastEventID.withUnsafeBytes { id in
                data.withUnsafeBytes { owned in
                    eventType.withUnsafeBytes { ownedType in
                        let data: UnsafeRawBufferPointer
                        if case .borrowed(let value) = dataState { data = value } else { data = owned }
                        let type: UnsafeRawBufferPointer
                        switch typeState {
                        case .borrowed(let value): type = value
                        case .owned: type = ownedType
                        case .absent: type = UnsafeRawBufferPointer(start: nil, count: 0)
                        }
                        handle(.event(EventView(data: data, type: type, lastEventID: id)))
                    }
                }
            }
            return
        }
    }
}
