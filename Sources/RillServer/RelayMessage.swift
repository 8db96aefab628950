import Reactor
import SSE
import Workers

/// What `rill serve --workers` processes tell each other over their socket pairs. Each message is
/// one `Frame` (Workers: `u32 length | u8 type | payload`), the frame type its kind; the payload is
/// binary (events can be many per second): strings and data as `u32 length | bytes`, an absent
/// optional as length 0xFFFF_FFFF.
///
/// The supervisor is the sequencer: a worker forwards each publication (`publish`); the supervisor
/// gives it its id and sends it to every worker in one order (`event`), so each worker frames it once
/// for its own subscribers and keeps the same history. Workers report their metrics (`statistics`),
/// the supervisor answers with the sums (`totals`). A (re)started worker gets the history as events
/// and then `start`, before it listens.
public enum RelayMessage: Equatable, Sendable {
    /// Worker → supervisor: a publication taken by the worker; `token` names its request.
    case publish(token: UInt64, topic: String, event: RelayedEvent)
    /// Supervisor → worker: an event to deliver, with its final id; `token` is the request's if this
    /// worker took the publication, else 0.
    case event(token: UInt64, topic: String, event: RelayedEvent)
    /// Worker → supervisor: the worker's metric values, in `SSEServer.metricsSamples()` order.
    case statistics([Int])
    /// Supervisor → worker: every worker's values summed, and how many workers there are.
    case totals([Int], workers: Int)
    /// Supervisor → worker: the history has been sent; start listening.
    case start

    /// The event fields that cross the relay.
    public struct RelayedEvent: Equatable, Sendable {
        public var data: [UInt8]
        public var id: String?
        public var name: String?

        public init(data: [UInt8], id: String?, name: String?) {
            self.data = data
            self.id = id
            self.name = name
        }

        public var outgoing: OutgoingEvent { OutgoingEvent(data: data, id: id, name: name) }
    }

    private enum Kind: UInt8 { case publish = 1, event, statistics, totals, start }

    /// The message as it goes on the wire: one frame.
    public var encoded: [UInt8] {
        switch self {
        case .publish: return Frame.encode(type: Kind.publish.rawValue, encodeFields)
        case .event: return Frame.encode(type: Kind.event.rawValue, encodeFields)
        case .statistics: return Frame.encode(type: Kind.statistics.rawValue, encodeFields)
        case .totals: return Frame.encode(type: Kind.totals.rawValue, encodeFields)
        case .start: return Frame.encode(type: Kind.start.rawValue, encodeFields)
        }
    }

    /// Appends the frame's payload (everything after the type byte).
    private func encodeFields(_ body: inout [UInt8]) {
        func put(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { body += $0 } }
        func put(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { body += $0 } }
        func put(_ bytes: [UInt8]?) {
            guard let bytes else { return put(UInt32.max) }
            put(UInt32(bytes.count))
            body += bytes
        }
        func put(_ event: RelayedEvent) {
            put(event.data)
            put(event.id.map { Array($0.utf8) })
            put(event.name.map { Array($0.utf8) })
        }
        switch self {
        case .publish(let token, let topic, let event), .event(let token, let topic, let event):
            put(token)
            put(Array(topic.utf8))
            put(event)
        case .statistics(let values):
            put(UInt32(values.count))
            for value in values { put(UInt64(bitPattern: Int64(value))) }
        case .totals(let values, let workers):
            put(UInt32(workers))
            put(UInt32(values.count))
            for value in values { put(UInt64(bitPattern: Int64(value))) }
        case .start:
            break
        }
    }

    /// Decodes one frame's type and payload; nil if it is malformed.
    public init?(type: UInt8, payload body: UnsafeRawBufferPointer) {
        var offset = 0
        func u32() -> UInt32? {
            guard offset + 4 <= body.count else { return nil }
            defer { offset += 4 }
            return UInt32(littleEndian: body.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        }
        func u64() -> UInt64? {
            guard offset + 8 <= body.count else { return nil }
            defer { offset += 8 }
            return UInt64(littleEndian: body.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        }
        func bytes() -> [UInt8]?? {
            guard let length = u32() else { return nil }
            if length == .max { return .some(nil) }
            guard offset + Int(length) <= body.count else { return nil }
            defer { offset += Int(length) }
            return .some(Array(body[offset..<offset + Int(length)]))
        }
        func text() -> String?? {
            guard let value = bytes() else { return nil }
            return .some(value.map { String(decoding: $0, as: UTF8.self) })
        }
        func values() -> [Int]? {
            guard let count = u32(), Int(count) * 8 <= body.count - offset else { return nil }
            var values: [Int] = []
            for _ in 0..<count { values.append(Int(Int64(bitPattern: u64()!))) }
            return values
        }
        guard let kind = Kind(rawValue: type) else { return nil }
        switch kind {
        case .publish, .event:
            guard let token = u64(), let topic = text(), let topic, let data = bytes(), let data,
                let id = text(), let name = text()
            else { return nil }
            let event = RelayedEvent(data: data, id: id, name: name)
            self =
                kind == .publish
                ? .publish(token: token, topic: topic, event: event)
                : .event(token: token, topic: topic, event: event)
        case .statistics:
            guard let values = values() else { return nil }
            self = .statistics(values)
        case .totals:
            guard let workers = u32(), let values = values() else { return nil }
            self = .totals(values, workers: Int(workers))
        case .start:
            self = .start
        }
        guard offset == body.count else { return nil }
    }
}

/// Reassembles relay messages from a byte stream split anywhere (frames, then their payloads).
public struct RelayReader {
    private var decoder = FrameDecoder(maximumLength: RelayReader.maximumMessage)
    /// A message may not claim more than this (a corrupt prefix must not make us wait for gigabytes).
    public static let maximumMessage = 64 << 20

    public init() {}

    /// Appends `bytes` and returns the complete messages; nil if the stream is corrupt.
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) -> [RelayMessage]? {
        var messages: [RelayMessage] = []
        do {
            try decoder.receive(bytes) { (type, payload) throws(FrameError) in
                guard let message = RelayMessage(type: type, payload: payload) else { throw .malformed(type: type) }
                messages.append(message)
            }
        } catch {
            return nil
        }
        return messages
    }
}
