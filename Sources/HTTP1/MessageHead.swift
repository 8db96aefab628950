/// A parsed request or response head. Every field is a byte range into the buffer the parser was
/// given with the `.head` event; strings are made only on demand (`bytes.string(head.target)`).
/// The header list's storage is reused from message to message, so parsing allocates nothing once
/// it has grown to the largest head seen.
public struct MessageHead: Sendable {
    /// Request: the method token. Empty for responses.
    public internal(set) var method = ByteRange(0, 0)
    /// Request: the request target (origin form `/path?query`, or absolute, authority or `*`).
    public internal(set) var target = ByteRange(0, 0)
    /// Response: the status code. 0 for requests.
    public internal(set) var status = 0
    /// Response: the reason phrase (may be empty).
    public internal(set) var reason = ByteRange(0, 0)
    public internal(set) var version = HTTPVersion.http1_1
    /// Header fields in arrival order.
    public internal(set) var headers: [HeaderField] = []
    /// How the body is delimited.
    public internal(set) var framing = BodyFraming.none
    /// Whether the connection may carry another message after this one (RFC 9112 9.3: HTTP/1.1
    /// unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    public var keepAlive: Bool {
        if framing == .untilClose || sawTransferEncodingOn1_0 { return false }
        return version == .http1_1 ? !connectionClose : connectionKeepAlive && !connectionClose
    }
    /// Bytes of the head, from the start of the buffer (leading empty lines included).
    public internal(set) var length = 0
    /// Offset of the start line (after skipped empty lines).
    var startLineOffset = 0

    // Framing facts gathered while the header lines arrive.
    private var contentLength: Int? = nil
    private var contentLengthInvalid = false
    private var contentLengthConflict = false
    private var sawTransferEncoding = false
    private var chunkedLast = false
    private var chunkedNotLast = false
    private var unknownCoding = false
    private var hostCount = 0
    private var connectionClose = false
    private var connectionKeepAlive = false
    private var sawTransferEncodingOn1_0: Bool { sawTransferEncoding && version == .http1_0 }

    /// Clears the head for the next message, keeping the header storage.
    mutating func reset() {
        // Field by field: rebuilding the whole struct showed up in profiles.
        method = ByteRange(0, 0)
        target = ByteRange(0, 0)
        status = 0
        reason = ByteRange(0, 0)
        version = .http1_1
        if !headers.isEmpty { headers.removeAll(keepingCapacity: true) }
        framing = .none
        length = 0
        startLineOffset = 0
        contentLength = nil
        contentLengthInvalid = false
        contentLengthConflict = false
        sawTransferEncoding = false
        chunkedLast = false
        chunkedNotLast = false
        unknownCoding = false
        hostCount = 0
        connectionClose = false
        connectionKeepAlive = false
    }

    /// Adds a header line, noting the ones that decide framing and persistence. Inlined into the
    /// header loop: most names are rejected by their length alone. Nothing is refused here: what is
    /// wrong with the framing headers is noted, and decided when the head is complete.
    @inline(__always)
    mutating func record(_ field: HeaderField, _ base: UnsafePointer<UInt8>) {
        headers.append(field)
        note(field, base)
    }

    /// `record` without the append: the framing facts of a field the caller stores itself.
    @inline(__always)
    mutating func note(_ field: HeaderField, _ base: UnsafePointer<UInt8>) {
        switch field.name.count {
        case 4, 10, 14, 17: noteFraming(field, base)
        default: break
        }
    }

    /// Bit n set: a name of n bytes may be Host (4), Connection (10), Content-Length (14) or
    /// Transfer-Encoding (17). A caller that shifts it by a length taken modulo 64 gets a few false
    /// candidates, which `noteFraming` sorts out; never a missed one.
    static var framingLengths: UInt64 { 1 << 4 | 1 << 10 | 1 << 14 | 1 << 17 }

    /// The part of `record` for names as long as Host, Connection, Content-Length or Transfer-Encoding
    /// (any other name is let through untouched).
    mutating func noteFraming(_ field: HeaderField, _ base: UnsafePointer<UInt8>) {
        let bytes = UnsafeRawBufferPointer(start: base, count: Int(field.value.end))
        switch field.name.count {
        case 4 where tokenEquals(bytes, field.name, "host"):
            hostCount += 1
        case 10 where tokenEquals(bytes, field.name, "connection"):
            // The usual values whole (a list of one element): one compare, no list walk.
            if listElementEquals(bytes, field.value, "keep-alive") {
                connectionKeepAlive = true
                break
            }
            if listElementEquals(bytes, field.value, "close") {
                connectionClose = true
                break
            }
            forEachListElement(field.value, bytes) { element in
                if listElementEquals(bytes, element, "close") { connectionClose = true }
                if listElementEquals(bytes, element, "keep-alive") { connectionKeepAlive = true }
            }
        case 14 where tokenEquals(bytes, field.name, "content-length"):
            // 1*DIGIT only: no sign, no list ("5, 5" is refused rather than guessed at).
            guard !field.value.isEmpty, field.value.count <= 15 else {
                contentLengthInvalid = true
                break
            }
            var value = 0
            for index in field.value.range {
                let digit = bytes[index] &- 48
                guard digit < 10 else {
                    contentLengthInvalid = true
                    return
                }
                value = value * 10 + Int(digit)
            }
            if let contentLength, contentLength != value { contentLengthConflict = true }
            contentLength = value
        case 17 where tokenEquals(bytes, field.name, "transfer-encoding"):
            sawTransferEncoding = true
            if listElementEquals(bytes, field.value, "chunked") {
                // One element, as the closure below would see it.
                if chunkedLast { chunkedNotLast = true }
                chunkedLast = true
                break
            }
            forEachListElement(field.value, bytes) { coding in
                if chunkedLast { chunkedNotLast = true }  // something follows chunked
                chunkedLast = listElementEquals(bytes, coding, "chunked")
                if !chunkedLast { unknownCoding = true }
            }
        default:
            break
        }
    }

    /// RFC 9112 6.3 for requests, strictly: anything ambiguous is refused (request smuggling).
    func requestFraming(limits: HTTPLimits) -> Result<BodyFraming, HTTPParseError> {
        if contentLengthInvalid { return .failure(.invalidContentLength) }
        if contentLengthConflict { return .failure(.conflictingContentLength) }
        if version == .http1_1 && hostCount == 0 { return .failure(.missingHost) }
        if hostCount > 1 { return .failure(.multipleHost) }
        if sawTransferEncoding {
            if contentLength != nil { return .failure(.contentLengthWithTransferEncoding) }
            // "gzip" alone or "chunked, gzip": the length cannot be known (a MUST-400); "gzip, chunked"
            // could be framed but not decoded (501).
            if chunkedNotLast || !chunkedLast { return .failure(.chunkedNotLast) }
            if unknownCoding { return .failure(.unsupportedTransferCoding) }
            return .success(.chunked)
        }
        guard let contentLength, contentLength > 0 else { return .success(.none) }
        if contentLength > limits.body { return .failure(.bodyTooLarge) }
        return .success(.length(contentLength))
    }

    /// RFC 9112 6.3 for responses: no body for HEAD, 1xx, 204, 304; Transfer-Encoding wins over
    /// Content-Length; without either the body runs until the connection closes.
    func responseFraming(respondingToHEAD: Bool) -> BodyFraming {
        if respondingToHEAD || (100..<200).contains(status) || status == 204 || status == 304 { return .none }
        if sawTransferEncoding { return chunkedLast && !chunkedNotLast ? .chunked : .untilClose }
        if let contentLength { return contentLength == 0 ? .none : .length(contentLength) }
        return .untilClose
    }

    /// Errors a response head can carry (Content-Length that is not a number, or conflicting).
    var responseError: HTTPParseError? {
        if contentLengthInvalid { return .invalidContentLength }
        if contentLengthConflict && !sawTransferEncoding { return .conflictingContentLength }
        return nil
    }
}

/// Calls `body` with each element of a comma-separated list (RFC 9110 5.6.1), whitespace trimmed,
/// empty elements skipped. No allocation.
@inline(__always)
func forEachListElement(_ range: ByteRange, _ bytes: UnsafeRawBufferPointer, _ body: (ByteRange) -> Void) {
    var index = Int(range.start)
    let end = Int(range.end)
    while index < end {
        var elementEnd = index
        while elementEnd < end && bytes[elementEnd] != UInt8(ascii: ",") { elementEnd += 1 }
        var start = index
        var stop = elementEnd
        while start < stop && (bytes[start] == 32 || bytes[start] == 9) { start += 1 }
        while stop > start && (bytes[stop - 1] == 32 || bytes[stop - 1] == 9) { stop -= 1 }
        if stop > start { body(ByteRange(start, stop)) }
        index = elementEnd + 1
    }
}

/// Whether the token at `range` is `lowercase` (letters and `-` only), ignoring case, with one or two
/// word loads. OR-ing 0x20 lowercases letters; in a valid token no other byte turns into a lowercase
/// letter or `-` that way, so the comparison is exact for header names (which the parser validated).
@inline(__always)
func tokenEquals(_ bytes: UnsafeRawBufferPointer, _ range: ByteRange, _ lowercase: StaticString) -> Bool {
    let count = lowercase.utf8CodeUnitCount
    guard range.count == count else { return false }
    let name = bytes.baseAddress! + Int(range.start)
    let literal = UnsafeRawPointer(lowercase.utf8Start)
    if count >= 8 {
        // Overlapping 8-byte words: the first, the last, and for names over 16 bytes the middle one.
        func word(_ offset: Int) -> Bool {
            name.loadUnaligned(fromByteOffset: offset, as: UInt64.self) | 0x2020_2020_2020_2020
                == literal.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        }
        return word(0) && word(count - 8) && (count <= 16 || word(8))
    }
    if count >= 4 {
        // Two overlapping 4-byte words.
        func word(_ offset: Int) -> Bool {
            name.loadUnaligned(fromByteOffset: offset, as: UInt32.self) | 0x2020_2020
                == literal.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
        }
        return word(0) && word(count - 4)
    }
    var index = 0
    while index < count {
        if name.load(fromByteOffset: index, as: UInt8.self) | 0x20
            != literal.load(fromByteOffset: index, as: UInt8.self)
        {
            return false
        }
        index += 1
    }
    return true
}

/// `tokenEquals` for an element of a list-valued header (Connection, Transfer-Encoding), compared
/// with a literal of letters and `-`. Still exact although field values are not tokens: OR-ing 0x20
/// turns only the uppercase letters into lowercase ones, and only CR (0x0D) besides `-` into `-`;
/// a value never holds CR.
@inline(__always)
func listElementEquals(_ bytes: UnsafeRawBufferPointer, _ range: ByteRange, _ lowercase: StaticString) -> Bool {
    tokenEquals(bytes, range, lowercase)
}
