import HTTP1
import Testing

/// One line per case: input (`|` = CRLF) and the expected transcript (see `requestTranscript`).
let validRequests: [(String, String)] = [
    ("GET / HTTP/1.1|Host: a||", "{GET / HTTP/1.1 [Host=a] none keep}"),
    (
        "GET /p?q=1&r=%20 HTTP/1.1|Host: example.com|User-Agent: x/1.0||",
        "{GET /p?q=1&r=%20 HTTP/1.1 [Host=example.com] [User-Agent=x/1.0] none keep}"
    ),
    ("GET / HTTP/1.0||", "{GET / HTTP/1.0 none close}"),
    ("GET / HTTP/1.0|Connection: keep-alive||", "{GET / HTTP/1.0 [Connection=keep-alive] none keep}"),
    (
        "GET / HTTP/1.1|Host: a|Connection: Upgrade, close||",
        "{GET / HTTP/1.1 [Host=a] [Connection=Upgrade, close] none close}"
    ),
    ("||GET / HTTP/1.1|Host: a||", "{GET / HTTP/1.1 [Host=a] none keep}"),
    (
        "GET / HTTP/1.1|Host: a|X:  \tspaced value\t |Empty:|Opaque: caf\u{E9}||",
        "{GET / HTTP/1.1 [Host=a] [X=spaced value] [Empty=] [Opaque=café] none keep}"
    ),
    ("OPTIONS * HTTP/1.1|Host: a||", "{OPTIONS * HTTP/1.1 [Host=a] none keep}"),
    // RFC 9110 2.5: a higher HTTP/1 minor version is handled as HTTP/1.1.
    ("GET / HTTP/1.2|Host: a||", "{GET / HTTP/1.1 [Host=a] none keep}"),
    ("GET / HTTP/1.9|Host: a|Connection: close||", "{GET / HTTP/1.1 [Host=a] [Connection=close] none close}"),
    ("GET http://a/p?q HTTP/1.1|Host: a||", "{GET http://a/p?q HTTP/1.1 [Host=a] none keep}"),
    (
        "POST /p HTTP/1.1|Host: a|Content-Length: 5||hello",
        "{POST /p HTTP/1.1 [Host=a] [Content-Length=5] length(5) keep body=hello}"
    ),
    ("POST /p HTTP/1.1|Host: a|Content-Length: 0||", "{POST /p HTTP/1.1 [Host=a] [Content-Length=0] none keep}"),
    (
        "POST /p HTTP/1.1|Host: a|Content-Length: 3|content-length: 3||abc",
        "{POST /p HTTP/1.1 [Host=a] [Content-Length=3] [content-length=3] length(3) keep body=abc}"
    ),
    (
        "POST /p HTTP/1.1|Host: a|Transfer-Encoding: chunked||5|hello|6;ext=1;b|, worl|1|d|0||",
        "{POST /p HTTP/1.1 [Host=a] [Transfer-Encoding=chunked] chunked keep body=hello, world}"
    ),
    (
        "POST /p HTTP/1.1|Host: a|Transfer-Encoding: Chunked||A|0123456789|0|Trailer: x|Other: y||",
        "{POST /p HTTP/1.1 [Host=a] [Transfer-Encoding=Chunked] chunked keep body=0123456789}"
    ),
    (
        "GET /1 HTTP/1.1|Host: a||GET /2 HTTP/1.1|Host: a||POST /3 HTTP/1.1|Host: a|Content-Length: 2||okGET /4 HTTP/1.0||",
        "{GET /1 HTTP/1.1 [Host=a] none keep}{GET /2 HTTP/1.1 [Host=a] none keep}{POST /3 HTTP/1.1 [Host=a] [Content-Length=2] length(2) keep body=ok}{GET /4 HTTP/1.0 none close}"
    )
]

/// One line per error class: input, expected error, its status.
let invalidRequests: [(String, HTTPParseError, Int)] = [
    ("G@T / HTTP/1.1|Host: a||", .invalidMethod, 400),
    (" GET / HTTP/1.1|Host: a||", .invalidMethod, 400),
    ("GET  / HTTP/1.1|Host: a||", .invalidTarget, 400),
    ("GET /\u{7F} HTTP/1.1|Host: a||", .invalidTarget, 400),
    ("GET /caf\u{E9} HTTP/1.1|Host: a||", .invalidTarget, 400),
    ("GET / HTTQ/1.1|Host: a||", .invalidVersion, 400),
    ("GET / HTTP/1.1 |Host: a||", .invalidVersion, 400),
    ("GET / HTTP/2.0|Host: a||", .unsupportedVersion, 505),
    ("GET / HTTP/3.1|Host: a||", .unsupportedVersion, 505),
    ("GET / HTTP/0.9|Host: a||", .unsupportedVersion, 505),
    ("GET / HTTP/1.9||", .missingHost, 400),
    ("GET / HTTP/1.1\nHost: a\n\n", .bareLF, 400),
    ("GET / HTTP/1.1|Host: a\n\n", .bareLF, 400),
    ("GET / HTTP/1.1\rHost: a||", .bareCR, 400),
    ("GET / HTTP/1.1|Host: a\rb||", .bareCR, 400),
    ("GET / HTTP/1.1|Host : a||", .whitespaceBeforeColon, 400),
    ("GET / HTTP/1.1|H(st: a||", .invalidHeaderName, 400),
    ("GET / HTTP/1.1|: a||", .invalidHeaderName, 400),
    ("GET / HTTP/1.1|Host: a| folded||", .obsoleteLineFolding, 400),
    ("GET / HTTP/1.1|Host: a|X: a\u{0}b||", .invalidHeaderValue, 400),
    ("GET / HTTP/1.1|Host: a|X: a\u{1}b||", .invalidHeaderValue, 400),
    ("GET / HTTP/1.1|Host: a|X: a\u{7F}||", .invalidHeaderValue, 400),
    ("GET / HTTP/1.1||", .missingHost, 400),
    ("GET / HTTP/1.1|Host: a|Host: b||", .multipleHost, 400),
    ("POST / HTTP/1.1|Host: a|Content-Length: abc||", .invalidContentLength, 400),
    ("POST / HTTP/1.1|Host: a|Content-Length: -1||", .invalidContentLength, 400),
    ("POST / HTTP/1.1|Host: a|Content-Length: 5, 5||", .invalidContentLength, 400),
    ("POST / HTTP/1.1|Host: a|Content-Length: 99999999999999999999||", .invalidContentLength, 400),
    ("POST / HTTP/1.1|Host: a|Content-Length:||", .invalidContentLength, 400),
    ("POST / HTTP/1.1|Host: a|Content-Length: 3|Content-Length: 4||", .conflictingContentLength, 400),
    ("POST / HTTP/1.1|Host: a|Content-Length: 3|Transfer-Encoding: chunked||", .contentLengthWithTransferEncoding, 400),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: chunked, gzip||", .chunkedNotLast, 400),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: chunked|Transfer-Encoding: chunked||", .chunkedNotLast, 400),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: gzip||", .chunkedNotLast, 400),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: gzip, chunked||", .unsupportedTransferCoding, 501),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: chunked||zz|", .invalidChunkSize, 400),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: chunked||-1|", .invalidChunkSize, 400),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: chunked||5\n", .bareLF, 400),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: chunked||3;a\u{1}|", .invalidChunkExtension, 400),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: chunked||1000000000000000|", .invalidChunkSize, 400),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: chunked||3|abcX|", .missingChunkTerminator, 400),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: chunked||3|abc|0|Bad Trailer: x||", .whitespaceBeforeColon, 400)
]

/// Limits small enough to test, one per error.
let smallLimits: HTTPLimits = {
    var limits = HTTPLimits()
    limits.requestLine = 32
    limits.headerSection = 64
    limits.headerCount = 3
    limits.body = 10
    return limits
}()

let limitCases: [(String, HTTPParseError, Int)] = [
    ("GET /" + String(repeating: "a", count: 40) + " HTTP/1.1|Host: a||", .requestLineTooLong, 414),
    ("GET /" + String(repeating: "a", count: 22) + " HTTP/1.1|Host: a||", .requestLineTooLong, 414),
    ("GET / HTTP/1.1|Host: a|X: " + String(repeating: "v", count: 60) + "||", .headerSectionTooLarge, 431),
    ("GET / HTTP/1.1|Host: a|A: 1|B: 2|C: 3||", .tooManyHeaders, 431),
    ("POST / HTTP/1.1|Host: a|Content-Length: 11||", .bodyTooLarge, 413),
    ("POST / HTTP/1.1|Host: a|Transfer-Encoding: chunked||8|12345678|8|", .bodyTooLarge, 413)
]

@Suite struct RequestParserTests {
    /// Valid requests give the expected transcript whole, byte by byte and in random splits.
    @Test(arguments: validRequests)
    func validRequest(input: String, expected: String) {
        let bytes = crlf(input)
        #expect(requestTranscript(bytes) == expected)
        #expect(requestTranscript(bytes, chunks: byteByByte(bytes.count)) == expected)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            #expect(requestTranscript(bytes, chunks: randomSplits(bytes.count, using: &generator)) == expected)
        }
    }

    /// Every truncated prefix of a valid request is incomplete: no error, and the last message unfinished.
    @Test(arguments: validRequests)
    func prefixesAreIncomplete(input: String, expected: String) {
        let bytes = crlf(input)
        let messages = expected.filter { $0 == "}" }.count
        for length in 0..<bytes.count {
            let result = requestTranscript(Array(bytes.prefix(length)))
            #expect(!result.contains("!"), "prefix \(length): \(result)")
            #expect(result.filter { $0 == "}" }.count < messages, "prefix \(length) completed every message: \(result)")
        }
    }

    /// Each error class is found, mapped to its status, the same whatever the split.
    @Test(arguments: invalidRequests)
    func invalidRequest(input: String, error: HTTPParseError, status: Int) {
        let bytes = crlf(input)
        let whole = requestTranscript(bytes)
        #expect(whole.hasSuffix("!\(error)"), "\(whole)")
        #expect(error.status == status)
        #expect(requestTranscript(bytes, chunks: byteByByte(bytes.count)) == whole)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<10 {
            #expect(requestTranscript(bytes, chunks: randomSplits(bytes.count, using: &generator)) == whole)
        }
    }

    /// Limits map to 414, 431 and 413, at the same byte whatever the split.
    @Test(arguments: limitCases)
    func limits(input: String, error: HTTPParseError, status: Int) {
        let bytes = crlf(input)
        let whole = requestTranscript(bytes, limits: smallLimits)
        #expect(whole.hasSuffix("!\(error)"), "\(whole)")
        #expect(error.status == status)
        #expect(requestTranscript(bytes, chunks: byteByByte(bytes.count), limits: smallLimits) == whole)
    }

    /// Nothing after a malformed request is parsed: the error repeats, nothing is consumed.
    @Test func errorIsSticky() {
        var parser = RequestParser()
        let bytes = crlf("GET / HTTP/1.1|Host: a\u{0}||GET / HTTP/1.1|Host: a||")
        let first = bytes.withUnsafeBytes { parser.parse($0) }
        #expect(first == HTTPParseStep(event: .error(.invalidHeaderValue), consumed: 0))
        let again = bytes.withUnsafeBytes { parser.parse($0) }
        #expect(again == first)
    }

    /// A resumed parse continues where it stopped: feeding a long header one byte at a time scans each
    /// byte a bounded number of times (the slowloris defence), checked through the consumed counts.
    @Test func headOffsetsSurviveResumption() {
        var parser = RequestParser()
        let bytes = crlf("GET /x HTTP/1.1|Host: a|Long: " + String(repeating: "v", count: 5000) + "||")
        var window: [UInt8] = []
        var sawHead = false
        for byte in bytes {
            window.append(byte)
            let step = window.withUnsafeBytes { buffer -> HTTPParseStep in
                let step = parser.parse(buffer)
                if step.event == .head {
                    sawHead = true
                    #expect(buffer.string(parser.head.headers[1].value).count == 5000)
                    #expect(parser.head.length == bytes.count)
                }
                return step
            }
            #expect(step.consumed == 0 || step.event == .head)
        }
        #expect(sawHead)
    }

    /// Header lookup ignores case and allocates nothing.
    @Test func headerLookup() {
        var parser = RequestParser()
        let bytes = crlf("GET / HTTP/1.1|Host: a|Last-Event-ID: 42|Accept: text/event-stream||")
        bytes.withUnsafeBytes { buffer in
            #expect(parser.parse(buffer).event == .head)
            let id = parser.head.headers.value(of: "last-event-id", in: buffer)
            #expect(id.map { buffer.string($0) } == "42")
            #expect(parser.head.headers.value(of: "cookie", in: buffer) == nil)
            #expect(buffer.equalsIgnoringCase(parser.head.method, "get"))
        }
    }
}
