/// An incremental RESP2 decoder: append bytes as they arrive, then take whole replies with `next()`.
/// A reply split anywhere (even inside `\r\n`) waits for the rest; bytes that are not RESP2, or a
/// reply past the bounds, are a `.failure` value (never a trap), after which the decoder is spent:
/// the connection is out of step and must be closed.
///
/// A partial reply is parsed again from its start when more bytes come; replies are small next to
/// a read (64 KiB), so that costs little, and the bounds keep it finite.
public struct RESPDecoder {
    /// Bounds on what one reply may hold.
    public struct Limits: Sendable {
        /// Largest bulk string: 16 MiB (an event is at most `--max-body`, 1 MiB by default).
        public var bulkBytes = 16 << 20
        /// Most elements of one array (a page of XRANGE is 1,000 entries of a few fields).
        public var arrayElements = 1 << 20
        /// Deepest nesting (XREAD's reply is 4 deep).
        public var depth = 16
        /// Longest `+`, `-` or `:` line.
        public var lineBytes = 64 << 10
        /// Bytes one reply may buffer before it is complete.
        public var replyBytes = 64 << 20
        public init() {}
    }

    /// What `next()` found.
    public enum Outcome: Equatable {
        case value(RESPValue)
        /// The buffer holds no whole reply yet.
        case needMore
        case failure(RedisError)
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    private var start = 0
    private var failed: RedisError?

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Bytes received and not yet taken as replies.
    public var bufferedBytes: Int { buffer.count - start }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard failed == nil else { return }
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    /// The next whole reply, `.needMore`, or the failure that spent this decoder.
    public mutating func next() -> Outcome {
        if let failed { return .failure(failed) }
        var cursor = start
        let outcome: Result<RESPValue?, RedisError> = buffer.withUnsafeBytes { bytes in
            var parser = Parser(bytes: bytes, limits: limits)
            return parser.value(at: &cursor, depth: 0)
        }
        switch outcome {
        case .success(let value?):
            start = cursor
            if start == buffer.count || start > 1 << 16 {
                buffer.removeFirst(start)
                start = 0
            }
            return .value(value)
        case .success(nil):
            if buffer.count - start > limits.replyBytes {
                return fail(.protocolViolation("a reply of more than \(limits.replyBytes) bytes"))
            }
            return .needMore
        case .failure(let error):
            return fail(error)
        }
    }

    private mutating func fail(_ error: RedisError) -> Outcome {
        failed = error
        buffer = []
        start = 0
        return .failure(error)
    }
}

/// One parse attempt over the buffered bytes: nil means incomplete.
private struct Parser {
    let bytes: UnsafeRawBufferPointer
    let limits: RESPDecoder.Limits

    mutating func value(at cursor: inout Int, depth: Int) -> Result<RESPValue?, RedisError> {
        guard depth <= limits.depth else { return .failure(.protocolViolation("nesting deeper than \(limits.depth)")) }
        guard cursor < bytes.count else { return .success(nil) }
        let kind = bytes[cursor]
        var position = cursor + 1
        let line: Range<Int>
        switch self.line(from: position) {
        case .failure(let error): return .failure(error)
        case .success(nil): return .success(nil)
        case .success(let found?): line = found
        }
        position = line.upperBound + 2
        switch kind {
        case UInt8(ascii: "+"):
            cursor = position
            return .success(.simpleString(text(line)))
        case UInt8(ascii: "-"):
            cursor = position
            return .success(.error(text(line)))
        case UInt8(ascii: ":"):
            guard let number = integer(line) else { return .failure(.protocolViolation("malformed integer")) }
            cursor = position
            return .success(.integer(number))
        case UInt8(ascii: "$"):
            guard let length = integer(line), length >= -1 else {
                return .failure(.protocolViolation("malformed bulk length"))
            }
            if length == -1 {
                cursor = position
                return .success(.bulk(nil))
            }
            guard length <= limits.bulkBytes else {
                return .failure(.protocolViolation("a bulk string of \(length) bytes (limit \(limits.bulkBytes))"))
            }
            let end = position + Int(length)
            guard end + 2 <= bytes.count else { return .success(nil) }
            guard bytes[end] == 13, bytes[end + 1] == 10 else {
                return .failure(.protocolViolation("bulk string not followed by CRLF"))
            }
            cursor = end + 2
            return .success(.bulk(Array(bytes[position..<end])))
        case UInt8(ascii: "*"):
            guard let count = integer(line), count >= -1 else {
                return .failure(.protocolViolation("malformed array length"))
            }
            if count == -1 {
                cursor = position
                return .success(.array(nil))
            }
            guard count <= limits.arrayElements else {
                return .failure(.protocolViolation("an array of \(count) elements (limit \(limits.arrayElements))"))
            }
            var elements: [RESPValue] = []
            // Each element takes at least 3 bytes: do not trust `count` for the reservation.
            elements.reserveCapacity(min(Int(count), (bytes.count - position) / 3 + 1))
            for _ in 0..<count {
                switch value(at: &position, depth: depth + 1) {
                case .failure(let error): return .failure(error)
                case .success(nil): return .success(nil)
                case .success(let element?): elements.append(element)
                }
            }
            cursor = position
            return .success(.array(elements))
        default:
            return .failure(.protocolViolation("unknown reply type byte \(kind)"))
        }
    }

    /// The line from `position` up to its CRLF (excluded); nil if the CRLF has not arrived.
    private func line(from position: Int) -> Result<Range<Int>?, RedisError> {
        var index = position
        while index < bytes.count {
            if bytes[index] == 13 {
                guard index + 1 < bytes.count else { return .success(nil) }
                guard bytes[index + 1] == 10 else { return .failure(.protocolViolation("CR without LF")) }
                return .success(position..<index)
            }
            if bytes[index] == 10 { return .failure(.protocolViolation("LF without CR")) }
            index += 1
            if index - position > limits.lineBytes {
                return .failure(.protocolViolation("a line of more than \(limits.lineBytes) bytes"))
            }
        }
        return .success(nil)
    }

    private func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// A signed decimal with no overflow, nil otherwise.
    private func integer(_ range: Range<Int>) -> Int64? {
        var index = range.lowerBound
        var negative = false
        if index < range.upperBound && bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < range.upperBound, range.upperBound - index <= 19 else { return nil }
        var value: Int64 = 0
        while index < range.upperBound {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times10, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times10.addingReportingOverflow(Int64(digit))
            guard !overflow, !carry else { return nil }
            value = sum
            index += 1
        }
        return negative ? -value : value
    }
}
