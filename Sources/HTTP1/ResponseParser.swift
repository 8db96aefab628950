/// An incremental, zero-copy HTTP/1.1 response parser for clients (the load generator, tests).
///
/// Same protocol as `RequestParser`. Framing follows RFC 9112 6.3: no body for responses to HEAD
/// (set `respondingToHEAD`), for 1xx, 204 and 304; Transfer-Encoding chunked; Content-Length; else
/// the body runs until the connection closes, and `finish()` at EOF ends it. A `101 Switching
/// Protocols` ends HTTP on the connection: after its `.end` the parser reports `.needMore` forever.
/// Interim 1xx responses are reported as whole messages (head, end) before the final one.
public struct ResponseParser {
    private var core: MessageParser

    /// By default response bodies are unbounded (an event stream never ends).
    public init(limits: HTTPLimits = ResponseParser.defaultLimits) {
        core = MessageParser(kind: .response, limits: limits)
    }

    public static var defaultLimits: HTTPLimits {
        var limits = HTTPLimits()
        limits.body = .max
        return limits
    }

    public mutating func parse(_ bytes: UnsafeRawBufferPointer) -> HTTPParseStep {
        core.parse(bytes)
    }

    /// Call at EOF: `.end` for a close-delimited body, `.error(.unexpectedEOF)` inside a message,
    /// `.needMore` between messages.
    public mutating func finish() -> HTTPEvent {
        core.finish()
    }

    /// Set before the response to a HEAD request arrives: its head announces a body that is not sent.
    public var respondingToHEAD: Bool {
        get { core.respondingToHEAD }
        set { core.respondingToHEAD = newValue }
    }

    public var head: MessageHead { core.head }
    /// True between messages.
    public var isIdle: Bool { core.isBetweenMessages }
    public var error: HTTPParseError? { core.error }
}
