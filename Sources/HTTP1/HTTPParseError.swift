/// Why a message was refused, each mapped to the status a server answers with before closing.
public enum HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    // 400: malformed syntax
    case invalidMethod
    case invalidTarget
    case invalidVersion
    case invalidStatusLine
    case invalidHeaderName
    case whitespaceBeforeColon
    case obsoleteLineFolding
    case bareCR
    case bareLF
    case invalidHeaderValue
    case invalidContentLength
    case conflictingContentLength
    case contentLengthWithTransferEncoding
    case chunkedNotLast
    case invalidChunkSize
    case invalidChunkExtension
    case missingChunkTerminator
    case missingHost
    case multipleHost
    case unexpectedEOF
    // 414, 431, 413, 501, 505
    case requestLineTooLong
    case headerSectionTooLarge
    case tooManyHeaders
    case bodyTooLarge
    case unsupportedTransferCoding
    case unsupportedVersion

    /// The HTTP status a server sends for this error.
    public var status: Int {
        switch self {
        case .requestLineTooLong: 414
        case .headerSectionTooLarge, .tooManyHeaders: 431
        case .bodyTooLarge: 413
        case .unsupportedTransferCoding: 501
        case .unsupportedVersion: 505
        default: 400
        }
    }

    /// A short plain-text reason for the response body and logs.
    public var reason: String {
        switch self {
        case .invalidMethod: "invalid method"
        case .invalidTarget: "invalid request target"
        case .invalidVersion: "invalid HTTP version"
        case .invalidStatusLine: "invalid status line"
        case .invalidHeaderName: "invalid header name"
        case .whitespaceBeforeColon: "whitespace before colon in header"
        case .obsoleteLineFolding: "obsolete line folding"
        case .bareCR: "bare CR"
        case .bareLF: "bare LF line ending (CRLF required)"
        case .invalidHeaderValue: "invalid byte in header value"
        case .invalidContentLength: "invalid Content-Length"
        case .conflictingContentLength: "conflicting Content-Length headers"
        case .contentLengthWithTransferEncoding: "Content-Length with Transfer-Encoding"
        case .chunkedNotLast: "chunked is not the final transfer coding"
        case .invalidChunkSize: "invalid chunk size"
        case .invalidChunkExtension: "invalid chunk extension"
        case .missingChunkTerminator: "missing CRLF after chunk data"
        case .missingHost: "missing Host header"
        case .multipleHost: "more than one Host header"
        case .unexpectedEOF: "connection closed inside a message"
        case .requestLineTooLong: "request line too long"
        case .headerSectionTooLarge: "header section too large"
        case .tooManyHeaders: "too many headers"
        case .bodyTooLarge: "body too large"
        case .unsupportedTransferCoding: "unsupported transfer coding"
        case .unsupportedVersion: "HTTP version not supported"
        }
    }

    public var description: String { "\(status) \(reason)" }
}

/// Bounds on what a parser accepts; each maps to its own error and status.
public struct HTTPLimits: Sendable, Equatable {
    /// Request line (method, target, version) → 414.
    public var requestLine = 8 * 1024
    /// The whole head: start line and header lines (and chunked trailers) → 431.
    public var headerSection = 16 * 1024
    /// Header fields in one head → 431.
    public var headerCount = 100
    /// Decoded body bytes → 413.
    public var body = 1 << 20
    /// A chunk-size line with its extensions → 400.
    public var chunkLine = 1024

    public init() {}
}

/// An HTTP version, HTTP/1.0 or HTTP/1.1 here: HTTP/1.x for x > 1 is read as HTTP/1.1 (RFC 9110 2.5);
/// HTTP/0.x and HTTP/2 and above are refused with 505.
public struct HTTPVersion: Hashable, Sendable, CustomStringConvertible {
    public var major: UInt8
    public var minor: UInt8
    public init(major: UInt8, minor: UInt8) {
        self.major = major
        self.minor = minor
    }
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)
    public var description: String { "HTTP/\(major).\(minor)" }
}
