import HTTP1
import Testing

/// Responses of each framing: input (`|` = CRLF), whether it answers HEAD, expected transcript.
let responseCases: [(String, Bool, String)] = [
    (
        "HTTP/1.1 200 OK|Content-Length: 5||hello", false,
        "{HTTP/1.1 200 OK [Content-Length=5] length(5) keep body=hello}"
    ),
    (
        "HTTP/1.1 200 OK|Transfer-Encoding: chunked||3|abc|2|de|0||", false,
        "{HTTP/1.1 200 OK [Transfer-Encoding=chunked] chunked keep body=abcde}"
    ),
    (
        "HTTP/1.1 200 OK|Content-Type: text/event-stream||data: 1||data: 2||", false,
        "{HTTP/1.1 200 OK [Content-Type=text/event-stream] untilClose close body=data: 1\r\n\r\ndata: 2\r\n\r\n}"
    ),
    ("HTTP/1.0 200 OK||body", false, "{HTTP/1.0 200 OK untilClose close body=body}"),
    ("HTTP/1.1 204 No Content|Content-Length: 7||", false, "{HTTP/1.1 204 No Content [Content-Length=7] none keep}"),
    (
        "HTTP/1.1 304 Not Modified|Transfer-Encoding: chunked||", false,
        "{HTTP/1.1 304 Not Modified [Transfer-Encoding=chunked] none keep}"
    ),
    ("HTTP/1.1 200 OK|Content-Length: 9||", true, "{HTTP/1.1 200 OK [Content-Length=9] none keep}"),
    (
        "HTTP/1.1 100 Continue||HTTP/1.1 200 OK|Content-Length: 2||ok", false,
        "{HTTP/1.1 100 Continue none keep}{HTTP/1.1 200 OK [Content-Length=2] length(2) keep body=ok}"
    ),
    (
        "HTTP/1.1 101 Switching Protocols|Upgrade: x||\u{1}\u{2}binary", false,
        "{HTTP/1.1 101 Switching Protocols [Upgrade=x] none keep}"
    ),
    ("HTTP/1.1 503 ||", false, "{HTTP/1.1 503  untilClose close}"),
    (
        "HTTP/1.1 404|Content-Length: 0||HTTP/1.1 200 OK|Content-Length: 1||x", false,
        "{HTTP/1.1 404  [Content-Length=0] none keep}{HTTP/1.1 200 OK [Content-Length=1] length(1) keep body=x}"
    ),
    (
        "HTTP/1.1 200 OK|Transfer-Encoding: gzip||zz", false,
        "{HTTP/1.1 200 OK [Transfer-Encoding=gzip] untilClose close body=zz}"
    )
]

let invalidResponses: [(String, HTTPParseError)] = [
    ("HTTP/1.1 2000 OK||", .invalidStatusLine),
    ("HTTP/1.1 600 OK||", .invalidStatusLine),
    ("HTTP/1.1 20 OK||", .invalidStatusLine),
    ("HTTX/1.1 200 OK||", .invalidStatusLine),
    ("HTTP/3.0 200 OK||", .unsupportedVersion),
    ("HTTP/1.1 200 OK\nContent-Length: 1\n\n", .bareLF),
    ("HTTP/1.1 200 OK|Content-Length: x||", .invalidContentLength),
    ("HTTP/1.1 200 OK|Content-Length: 5||abc", .unexpectedEOF),
    ("HTTP/1.1 200 OK|Transfer-Encoding: chunked||5|ab", .unexpectedEOF)
]

@Suite struct ResponseParserTests {
    /// Each framing gives the expected transcript whole, byte by byte and in random splits.
    @Test(arguments: responseCases)
    func response(input: String, head: Bool, expected: String) {
        let bytes = crlf(input)
        #expect(responseTranscript(bytes, head: head) == expected)
        #expect(responseTranscript(bytes, chunks: byteByByte(bytes.count), head: head) == expected)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            #expect(
                responseTranscript(bytes, chunks: randomSplits(bytes.count, using: &generator), head: head) == expected)
        }
    }

    @Test(arguments: invalidResponses)
    func invalidResponse(input: String, error: HTTPParseError) {
        let bytes = crlf(input)
        let whole = responseTranscript(bytes)
        #expect(whole.hasSuffix("!\(error)"), "\(whole)")
        #expect(responseTranscript(bytes, chunks: byteByByte(bytes.count)) == whole)
    }

    /// An SSE stream read as it arrives: body bytes come out as soon as they are in, never held back.
    @Test func streamingBodyIsDeliveredAtOnce() {
        var parser = ResponseParser()
        let head = crlf("HTTP/1.1 200 OK|Content-Type: text/event-stream||")
        head.withUnsafeBytes { #expect(parser.parse($0) == HTTPParseStep(event: .head, consumed: head.count)) }
        let event = crlf("data: hi||")
        event.withUnsafeBytes {
            #expect(parser.parse($0) == HTTPParseStep(event: .body(ByteRange(0, event.count)), consumed: event.count))
        }
        #expect(parser.finish() == .end)
    }
}
