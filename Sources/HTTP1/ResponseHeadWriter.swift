/// Writes a response head (status line and header lines) into a buffer it keeps and reuses, so
/// writing a head allocates nothing once the buffer has grown to the largest head written.
///
/// ```swift
/// var writer = ResponseHeadWriter()
/// writer.start(status: 204)
/// writer.header("Content-Length", 0)
/// connection.write(writer.finish())
/// ```
public struct ResponseHeadWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// Begins a head: `HTTP/1.1 <status> <reason>`; the reason defaults to the standard phrase.
    public mutating func start(status: Int, reason: String? = nil, version: HTTPVersion = .http1_1) {
        bytes.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: "HTTP/1.".utf8)
        bytes.append(version.minor == 0 ? UInt8(ascii: "0") : UInt8(ascii: "1"))
        bytes.append(32)
        appendDecimal(status)
        bytes.append(32)
        if let reason {
            bytes.append(contentsOf: reason.utf8)
        } else {
            bytes.append(contentsOf: reasonPhrase(status).utf8)
        }
        bytes.append(contentsOf: [13, 10])
    }

    /// Adds a header line. A value holding CR, LF or NUL (response splitting) is refused: the line
    /// is not written and false is returned.
    @discardableResult
    public mutating func header(_ name: StaticString, _ value: some StringProtocol) -> Bool {
        guard !value.utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else { return false }
        appendName(name)
        bytes.append(contentsOf: value.utf8)
        bytes.append(contentsOf: [13, 10])
        return true
    }

    /// Adds a header line whose value is a literal (trusted: not checked for CR/LF).
    public mutating func header(_ name: StaticString, _ value: StaticString) {
        appendName(name)
        bytes.append(contentsOf: UnsafeBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount))
        bytes.append(contentsOf: [13, 10])
    }

    /// Adds a header line with a decimal value (Content-Length, Retry-After), without a String.
    public mutating func header(_ name: StaticString, _ value: Int) {
        appendName(name)
        appendDecimal(value)
        bytes.append(contentsOf: [13, 10])
    }

    /// Ends the head with the empty line; returns the whole head.
    public mutating func finish() -> [UInt8] {
        bytes.append(contentsOf: [13, 10])
        return bytes
    }

    /// Ends the head and appends `body` after it: the whole response in one buffer, so one write
    /// (and, with TCP_NODELAY, one segment) carries it. Add the Content-Length header first.
    public mutating func finish(body: some Collection<UInt8>) -> [UInt8] {
        bytes.append(contentsOf: [13, 10])
        bytes.append(contentsOf: body)
        return bytes
    }

    private mutating func appendName(_ name: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(contentsOf: [UInt8(ascii: ":"), 32])
    }

    private mutating func appendDecimal(_ value: Int) {
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            appendDecimal(-value)
            return
        }
        if value >= 10 { appendDecimal(value / 10) }
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
    }
}

/// The standard reason phrase of a status code (RFC 9110 15).
public func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 100: "Continue"
    case 101: "Switching Protocols"
    case 200: "OK"
    case 201: "Created"
    case 202: "Accepted"
    case 204: "No Content"
    case 301: "Moved Permanently"
    case 302: "Found"
    case 304: "Not Modified"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 408: "Request Timeout"
    case 417: "Expectation Failed"
    case 413: "Content Too Large"
    case 414: "URI Too Long"
    case 429: "Too Many Requests"
    case 431: "Request Header Fields Too Large"
    case 500: "Internal Server Error"
    case 501: "Not Implemented"
    case 503: "Service Unavailable"
    case 505: "HTTP Version Not Supported"
    default: "Status \(status)"
    }
}
