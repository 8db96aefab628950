import HTTP1

/// Whole responses and heads that never change, built once: writing them is one `write`.
public enum FixedResponses {
    /// The head of a Server-Sent Events stream (no Content-Length: the body runs until close).
    public static let eventStreamHead: [UInt8] = Array(
        ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            + "X-Accel-Buffering: no\r\n\r\n").utf8)

    /// The interim answer to `Expect: 100-continue` on a publication.
    public static let continueResponse: [UInt8] = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// The answer to a request that did not arrive whole in time.
    public static let requestTimeout = plainText(status: 408, body: "request not received in time")

    /// The answer to a request that would take unfinished requests past their memory budget.
    public static let partialBudgetExhausted = plainText(
        status: 503, body: "too many unfinished requests, retry later", extraHeaders: "Retry-After: 1\r\n")

    /// A complete plain-text response that closes the connection.
    public static func plainText(status: Int, body: String, extraHeaders: String = "") -> [UInt8] {
        let text = body + "\n"
        return Array(
            ("HTTP/1.1 \(status) \(reasonPhrase(status))\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + "Content-Length: \(text.utf8.count)\r\n\(extraHeaders)Connection: close\r\n\r\n\(text)").utf8)
    }

    /// The response to a request the parser refused: its status, its reason as the body, then close.
    public static func response(for error: HTTPParseError) -> [UInt8] {
        errorResponses[error] ?? plainText(status: error.status, body: error.reason)
    }

    private static let errorResponses: [HTTPParseError: [UInt8]] = {
        let all: [HTTPParseError] = [
            .invalidMethod, .invalidTarget, .invalidVersion, .invalidStatusLine, .invalidHeaderName,
            .whitespaceBeforeColon, .obsoleteLineFolding, .bareCR, .bareLF, .invalidHeaderValue,
            .invalidContentLength, .conflictingContentLength, .contentLengthWithTransferEncoding,
            .chunkedNotLast, .invalidChunkSize, .invalidChunkExtension, .missingChunkTerminator, .missingHost,
            .multipleHost, .unexpectedEOF, .requestLineTooLong, .headerSectionTooLarge, .tooManyHeaders,
            .bodyTooLarge, .unsupportedTransferCoding, .unsupportedVersion
        ]
        return Dictionary(uniqueKeysWithValues: all.map { ($0, plainText(status: $0.status, body: $0.reason)) })
    }()
}
