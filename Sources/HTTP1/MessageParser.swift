/// What one call to a parser found.
public enum HTTPEvent: Equatable, Sendable {
    /// Everything given was accepted, but the next element is incomplete: call again with more bytes
    /// (after dropping the `consumed` ones). A resumed call continues where this one stopped.
    case needMore
    /// The message head is complete; read it from the parser's `head`, with this call's bytes.
    case head
    /// Body bytes (decoded: chunk framing removed), as a range of this call's bytes.
    case body(ByteRange)
    /// The message is complete; the next call starts the next one (pipelining, keep-alive).
    case end
    /// The bytes are not a valid message (or break a limit). Every later call repeats the error:
    /// nothing after a malformed message is parsed.
    case error(HTTPParseError)
}

/// An event, and how many bytes from the front of the buffer the caller may now drop. Ranges in the
/// event and in the head refer to the buffer as it was passed, before dropping.
public struct HTTPParseStep: Equatable, Sendable {
    public var event: HTTPEvent
    public var consumed: Int

    public init(event: HTTPEvent, consumed: Int) {
        self.event = event
        self.consumed = consumed
    }
}

/// How a message's body is delimited.
public enum BodyFraming: Equatable, Sendable {
    case none
    case length(Int)
    case chunked
    /// A response body that runs until the connection closes.
    case untilClose
}

/// The resumable state machine shared by `RequestParser` and `ResponseParser`: start line, header
/// lines, body framing, Content-Length and chunked bodies with trailers.
///
/// Offsets are relative to the buffer of the current call, whose front the caller drops by
/// `consumed` after each step. While a head is incomplete nothing is consumed, so the head's ranges
/// stay valid until `.head` is returned; `position` remembers how far scanning got, so a resumed
/// call continues inside the element where it stopped instead of rescanning (a slowloris sending one
/// byte at a time costs O(1) per byte). Only the fixed-size version token is re-checked.
/// A request head that arrives whole is parsed straight through first (`parseWholeHead`), which
/// hands anything unusual back to this machine.
struct MessageParser {
    enum Kind { case request, response }

    enum State {
        case method, target, requestVersion, statusLine, reason
        case lineStart, name, valueStart, value, lineFeed
        case bodyLength, chunkSize, chunkExtension, chunkSizeLineFeed, chunkData, chunkDataEnd
        case untilClose, complete, upgraded, failed
    }

    let kind: Kind
    let limits: HTTPLimits
    /// The byte-class table, fetched once: reading the lazily initialised global costs a
    /// `swift_once` check on every access.
    let table = ByteScanning.table
    var state: State
    private(set) var error: HTTPParseError? = nil
    /// The head being built (its header storage is reused from message to message).
    var head = MessageHead()
    /// Set by the response parser's caller: the response answers a HEAD request (no body).
    var respondingToHEAD = false

    /// Where scanning stopped; the start of the current line (or element) and field.
    var position = 0
    var lineStart = 0
    private var fieldStart = 0
    private var nameEnd = 0
    private var valueStart = 0
    private var inTrailers = false
    /// Body bytes left in the current Content-Length body or chunk.
    private var remaining = 0
    private var bodyTotal = 0
    private var trailerCount = 0
    private var trailerBytes = 0

    /// Stands in for the base address of an empty buffer (which may be nil); never read.
    nonisolated(unsafe) private static let emptyInput = UnsafePointer(UnsafeMutablePointer<UInt8>.allocate(capacity: 1))

    init(kind: Kind, limits: HTTPLimits) {
        self.kind = kind
        self.limits = limits
        state = kind == .request ? .method : .statusLine
    }

    /// Nothing of a next message has arrived since the last one ended.
    var isBetweenMessages: Bool {
        (state == .method || state == .statusLine) && position == 0
    }

    // MARK: - Driving

    mutating func parse(_ buffer: UnsafeRawBufferPointer) -> HTTPParseStep {
        let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? MessageParser.emptyInput
        return step(base, buffer.count)
    }

    /// The connection closed: ends a close-delimited body, or reports a truncated message.
    mutating func finish() -> HTTPEvent {
        switch state {
        case .failed: return .error(error!)
        case .untilClose, .complete: return finishMessage()
        case .method, .statusLine:
            return position == 0 ? .needMore : fail(.unexpectedEOF)
        case .upgraded: return .needMore  // its .end was reported with the 101
        default: return fail(.unexpectedEOF)
        }
    }

    private mutating func step(_ base: UnsafePointer<UInt8>, _ count: Int) -> HTTPParseStep {
        // A request's first call: most heads are all there, and take the straight-line path.
        if state == .method && position == 0, let step = parseWholeHead(base, count) { return step }
        while true {
            switch state {
            case .failed:
                return HTTPParseStep(event: .error(error!), consumed: 0)
            case .upgraded:
                return HTTPParseStep(event: .needMore, consumed: 0)
            case .complete:
                return HTTPParseStep(event: finishMessage(), consumed: 0)
            case .bodyLength, .chunkData:
                if remaining == 0 {
                    if state == .bodyLength { return HTTPParseStep(event: finishMessage(), consumed: 0) }
                    state = .chunkDataEnd
                    continue
                }
                let take = min(remaining, count - position)
                guard take > 0 else { return needMore() }
                let range = ByteRange(position, position + take)
                remaining -= take
                position += take
                return consume(through: position, event: .body(range))
            case .untilClose:
                guard count > position else { return needMore() }
                let range = ByteRange(position, count)
                position = count
                return consume(through: position, event: .body(range))
            case .chunkDataEnd:
                guard count - position >= 2 else {
                    if count > position && base[position] != 13 {
                        return HTTPParseStep(event: fail(.missingChunkTerminator), consumed: 0)
                    }
                    return needMore()
                }
                guard base[position] == 13 && base[position + 1] == 10 else {
                    return HTTPParseStep(event: fail(.missingChunkTerminator), consumed: 0)
                }
                position += 2
                lineStart = position
                state = .chunkSize
                remaining = 0
            case .chunkSize, .chunkExtension, .chunkSizeLineFeed:
                if let event = scanChunkLine(base, count) { return event }
            default:
                if let event = scanHead(base, count) { return event }
            }
        }
    }

    /// Not enough bytes: keep the partial head (consume nothing), or drop finished framing bytes.
    private mutating func needMore() -> HTTPParseStep {
        switch state {
        case .method, .target, .requestVersion, .statusLine, .reason, .name, .valueStart, .value, .lineStart, .lineFeed:
            if !inTrailers { return HTTPParseStep(event: .needMore, consumed: 0) }
            return consume(through: lineStart, event: .needMore)
        case .chunkSize, .chunkExtension, .chunkSizeLineFeed:
            return consume(through: lineStart, event: .needMore)
        default:
            return consume(through: position, event: .needMore)
        }
    }

    /// Reports `event`, letting the caller drop `offset` bytes; internal offsets follow.
    private mutating func consume(through offset: Int, event: HTTPEvent) -> HTTPParseStep {
        position -= offset
        lineStart -= offset
        fieldStart -= offset
        nameEnd -= offset
        valueStart -= offset
        return HTTPParseStep(event: event, consumed: offset)
    }

    private mutating func fail(_ error: HTTPParseError) -> HTTPEvent {
        self.error = error
        state = .failed
        return .error(error)
    }

    /// Back to the start of a message stream, keeping the head's header storage.
    mutating func reset() {
        state = kind == .request ? .method : .statusLine
        error = nil
        position = 0
        lineStart = 0
        fieldStart = 0
        nameEnd = 0
        valueStart = 0
        inTrailers = false
        remaining = 0
        bodyTotal = 0
        trailerCount = 0
        trailerBytes = 0
        respondingToHEAD = false
        head.reset()
    }

    private mutating func finishMessage() -> HTTPEvent {
        if head.status == 101 && kind == .response {
            state = .upgraded
            return .end
        }
        state = kind == .request ? .method : .statusLine
        position = 0
        lineStart = 0
        inTrailers = false
        bodyTotal = 0
        head.reset()
        return .end
    }

    // MARK: - Head

    /// Advances through the start line and header lines; returns an event, or nil when the state
    /// moved on to the body (or to `.complete`).
    private mutating func scanHead(_ base: UnsafePointer<UInt8>, _ count: Int) -> HTTPParseStep? {
        while true {
            // One bound for the whole head (or trailer section): scanning never passes it, so whatever
            // the split of the bytes, an oversized head fails at the same byte.
            let limitEnd =
                inTrailers
                ? lineStart + limits.headerSection - trailerBytes
                : head.startLineOffset + limits.headerSection
            let end = min(count, limitEnd)
            switch state {
            case .method:
                if position == lineStart {
                    // RFC 9112 2.2: ignore empty lines (CRLF) before the request line (a few).
                    while position + 1 < count && base[position] == 13 && base[position + 1] == 10 && position < 64 {
                        position += 2
                    }
                    lineStart = position
                    head.startLineOffset = position
                    if position < count && base[position] == 13 && position + 1 == count { return needMore() }
                }
                let limit = min(count, lineStart + limits.requestLine)
                position = ByteScanning.tokenEnd(table, base, position, limit)
                if position == limit {
                    if limit == count { return needMore() }
                    return failed(.requestLineTooLong)
                }
                guard base[position] == 32, position > lineStart else { return failed(.invalidMethod) }
                head.method = ByteRange(lineStart, position)
                position += 1
                fieldStart = position
                state = .target
            case .target:
                let limit = min(count, lineStart + limits.requestLine)
                position = ByteScanning.nonVisibleByte(base, position, limit)
                if position == limit {
                    if limit == count { return needMore() }
                    return failed(.requestLineTooLong)
                }
                guard base[position] == 32, position > fieldStart else { return failed(.invalidTarget) }
                head.target = ByteRange(fieldStart, position)
                position += 1
                state = .requestVersion
            case .requestVersion:
                // "HTTP/1.1" CR LF
                if position + 10 - lineStart > limits.requestLine { return failed(.requestLineTooLong) }
                guard count - position >= 9 else { return needMore() }
                switch parseVersion(base, position) {
                case .failure(let error): return failed(error)
                case .success(let version): head.version = version
                }
                if base[position + 8] == 10 { return failed(.bareLF) }
                guard base[position + 8] == 13 else { return failed(.invalidVersion) }
                guard count - position >= 10 else { return needMore() }
                guard base[position + 9] == 10 else { return failed(.bareCR) }
                position += 10
                lineStart = position
                state = .lineStart
            case .statusLine:
                // "HTTP/1.1 200" then SP reason or CR LF
                guard count - position >= 13 else { return needMore() }
                switch parseVersion(base, position) {
                case .failure(let error): return failed(error == .unsupportedVersion ? error : .invalidStatusLine)
                case .success(let version): head.version = version
                }
                let digits = (base[position + 9], base[position + 10], base[position + 11])
                guard base[position + 8] == 32, (49...53).contains(digits.0), (48...57).contains(digits.1),
                    (48...57).contains(digits.2)
                else { return failed(.invalidStatusLine) }
                head.status = Int(digits.0 - 48) * 100 + Int(digits.1 - 48) * 10 + Int(digits.2 - 48)
                switch base[position + 12] {
                case 32: position += 13
                case 13: position += 12
                case 10: return failed(.bareLF)
                default: return failed(.invalidStatusLine)
                }
                fieldStart = position
                state = .reason
            case .reason:
                position = ByteScanning.fieldTextEnd(base, position, end)
                if position == end { return end == count ? needMore() : failed(.headerSectionTooLarge) }
                head.reason = ByteRange(fieldStart, position)
                if base[position] == 10 { return failed(.bareLF) }
                guard base[position] == 13 else { return failed(.invalidStatusLine) }
                guard position + 1 < count else { return needMore() }
                guard base[position + 1] == 10 else { return failed(.bareCR) }
                position += 2
                lineStart = position
                state = .lineStart
            case .lineStart:
                guard position < end else { return end == count ? needMore() : failed(.headerSectionTooLarge) }
                let first = base[position]
                if first == 13 {
                    guard position + 1 < count else { return needMore() }
                    guard base[position + 1] == 10 else { return failed(.bareCR) }
                    position += 2
                    return headComplete()
                }
                if first == 10 { return failed(.bareLF) }
                if first == 32 || first == 9 { return failed(.obsoleteLineFolding) }
                fieldStart = position
                state = .name
                // A header line runs name, value, line feed without going back to the dispatch at the
                // top: each case falls through to the next when its element is complete.
                fallthrough
            case .name:
                position = ByteScanning.tokenEnd(table, base, position, end)
                if position == end { return end == count ? needMore() : failed(.headerSectionTooLarge) }
                let stop = base[position]
                guard stop == UInt8(ascii: ":"), position > fieldStart else {
                    return failed(stop == 32 || stop == 9 ? .whitespaceBeforeColon : .invalidHeaderName)
                }
                nameEnd = position
                position += 1
                state = .valueStart
                fallthrough
            case .valueStart:
                while position < end && (base[position] == 32 || base[position] == 9) { position += 1 }
                if position == end { return end == count ? needMore() : failed(.headerSectionTooLarge) }
                valueStart = position
                state = .value
                fallthrough
            case .value:
                position = ByteScanning.fieldTextEnd(base, position, end)
                if position == end { return end == count ? needMore() : failed(.headerSectionTooLarge) }
                let stop = base[position]
                guard stop == 13 else { return failed(stop == 10 ? .bareLF : .invalidHeaderValue) }
                state = .lineFeed
                fallthrough
            case .lineFeed:
                guard position + 1 < count else { return needMore() }
                guard base[position + 1] == 10 else { return failed(.bareCR) }
                var valueEnd = position
                while valueEnd > valueStart && (base[valueEnd - 1] == 32 || base[valueEnd - 1] == 9) { valueEnd -= 1 }
                let field = HeaderField(name: ByteRange(fieldStart, nameEnd), value: ByteRange(valueStart, valueEnd))
                position += 2
                if inTrailers {
                    trailerCount += 1
                    trailerBytes += position - lineStart
                    if trailerCount > limits.headerCount { return failed(.tooManyHeaders) }
                } else {
                    guard head.headers.count < limits.headerCount else { return failed(.tooManyHeaders) }
                    head.record(field, base)
                }
                lineStart = position
                state = .lineStart
            default:
                preconditionFailure("scanHead in state \(state)")
            }
        }
    }

    mutating func failed(_ error: HTTPParseError) -> HTTPParseStep {
        HTTPParseStep(event: fail(error), consumed: 0)
    }

    private func parseVersion(_ base: UnsafePointer<UInt8>, _ at: Int) -> Result<HTTPVersion, HTTPParseError> {
        // One 8-byte compare for the two versions that exist in practice.
        let word = UnsafeRawPointer(base + at).loadUnaligned(as: UInt64.self)
        if word == MessageParser.http11 { return .success(.http1_1) }
        if word == MessageParser.http10 { return .success(.http1_0) }
        guard base[at] == 72, base[at + 1] == 84, base[at + 2] == 84, base[at + 3] == 80, base[at + 4] == 47,
            base[at + 6] == 46, (48...57).contains(base[at + 5]), (48...57).contains(base[at + 7])
        else { return .failure(.invalidVersion) }
        // RFC 9110 2.5: a higher minor version of HTTP/1 is handled as the highest we implement.
        // HTTP/0.x and HTTP/2 and above are not HTTP/1 framing at all.
        if base[at + 5] == 49 && base[at + 7] > 49 { return .success(.http1_1) }
        return .failure(.unsupportedVersion)
    }

    static var http11: UInt64 { UInt64(littleEndian: 0x312E_312F_5054_5448) }  // "HTTP/1.1"
    static var http10: UInt64 { UInt64(littleEndian: 0x302E_312F_5054_5448) }  // "HTTP/1.0"

    /// The empty line after the headers: decide the framing, report the head (or the trailers' end).
    mutating func headComplete() -> HTTPParseStep {
        if inTrailers {
            let offset = position
            return HTTPParseStep(event: finishMessage(), consumed: offset)
        }
        let framing: BodyFraming
        switch kind {
        case .request:
            switch head.requestFraming(limits: limits) {
            case .failure(let error): return failed(error)
            case .success(let value): framing = value
            }
        case .response:
            if let error = head.responseError { return failed(error) }
            framing = head.responseFraming(respondingToHEAD: respondingToHEAD)
        }
        head.framing = framing
        head.length = position
        switch framing {
        case .none: state = .complete
        case .length(let length):
            remaining = length
            state = .bodyLength
        case .chunked:
            state = .chunkSize
            lineStart = position
        case .untilClose: state = .untilClose
        }
        return consume(through: position, event: .head)
    }

    // MARK: - Chunked framing

    /// chunk-size [ chunk-ext ] CRLF, or the last chunk (size 0) followed by trailers.
    private mutating func scanChunkLine(_ base: UnsafePointer<UInt8>, _ count: Int) -> HTTPParseStep? {
        let end = min(count, lineStart + limits.chunkLine)
        while true {
            switch state {
            case .chunkSize:
                // The size is accumulated while the digits are checked (a resumed call starts over at
                // the line's start: at most 15 digits). A hex digit's value without a branch: its low
                // nibble, plus 9 for the letters (bit 6 set in A-F and a-f, clear in 0-9).
                var size = 0
                position = lineStart
                while position < end && table[Int(base[position])] & ByteScanning.hexBit != 0 {
                    guard position &- lineStart < 15 else { return failed(.invalidChunkSize) }  // > 2^56: nonsense
                    let digit = base[position]
                    size = size &<< 4 | Int(digit & 0x0F &+ (digit &>> 6) &* 9)
                    position &+= 1
                }
                if position == end { return end == count ? needMore() : failed(.invalidChunkExtension) }
                guard position > lineStart else { return failed(.invalidChunkSize) }
                remaining = size
                if bodyTotal + size > limits.body { return failed(.bodyTooLarge) }
                bodyTotal += size
                switch base[position] {
                case 13: state = .chunkSizeLineFeed
                case 10: return failed(.bareLF)
                case UInt8(ascii: ";"), 32, 9: state = .chunkExtension
                default: return failed(.invalidChunkSize)
                }
            case .chunkExtension:
                position = ByteScanning.fieldTextEnd(base, position, end)
                if position == end { return end == count ? needMore() : failed(.invalidChunkExtension) }
                switch base[position] {
                case 13: state = .chunkSizeLineFeed
                case 10: return failed(.bareLF)
                default: return failed(.invalidChunkExtension)
                }
            case .chunkSizeLineFeed:
                guard position + 1 < count else { return needMore() }
                guard base[position + 1] == 10 else { return failed(.bareCR) }
                position += 2
                lineStart = position
                if remaining == 0 {
                    inTrailers = true
                    trailerCount = 0
                    trailerBytes = 0
                    state = .lineStart
                } else {
                    state = .chunkData
                }
                return nil
            default:
                preconditionFailure("scanChunkLine in state \(state)")
            }
        }
    }
}
