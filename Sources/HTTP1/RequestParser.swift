/// An incremental, zero-copy HTTP/1.1 request parser for servers.
///
/// Call `parse` with the bytes received and not yet consumed; it returns one event and how many bytes
/// from the front may be dropped. Feed bytes in any split, down to one at a time: the events are the
/// same. Typical loop:
///
/// ```swift
/// var parser = RequestParser()
/// while true {
///     let step = parser.parse(window)
///     switch step.event {
///     case .head: route(parser.head, window)    // ranges index into `window`
///     case .body(let range): consume(window[range.range])
///     case .end: finishRequest()
///     case .needMore: break                     // keep the rest, read more
///     case .error(let error): respond(error.status, error.reason); close()
///     }
///     window = window.dropFirst(step.consumed)
///     if step.event == .needMore { break }
/// }
/// ```
///
/// Choices where RFC 9112 leaves room: a bare LF line ending is refused (400), as is a bare CR, so
/// that no two parsers can disagree about where a line ends; up to 64 bytes of empty lines (CRLF)
/// before a request line are skipped (RFC 9112 2.2). An HTTP/1.1 request must carry exactly one Host.
public struct RequestParser {
    private var core: MessageParser

    public init(limits: HTTPLimits = HTTPLimits()) {
        core = MessageParser(kind: .request, limits: limits)
    }

    /// Parses what `bytes` holds from the current position of the message stream.
    public mutating func parse(_ bytes: UnsafeRawBufferPointer) -> HTTPParseStep {
        core.parse(bytes)
    }

    /// The head of the current request, valid with the bytes of the `.head` step.
    public var head: MessageHead { core.head }

    /// Forgets any message in progress (and a previous error): the parser is as new, but keeps the
    /// header storage it has grown, so reusing it allocates nothing.
    public mutating func reset() { core.reset() }

    /// The error this parser stopped at, if any.
    public var error: HTTPParseError? { core.error }

    /// The limits in force.
    public var limits: HTTPLimits { core.limits }

    /// True between messages: nothing of a next request has been seen yet (an idle keep-alive
    /// connection), so closing now loses nothing.
    public var isIdle: Bool { core.isBetweenMessages }
}
