import HTTP1
@testable import HTTPServer
import Testing

/// Parses `text` (one request head) and hands `body` its view, with the path parameter `pattern`
/// matched (nil: none).
private func withRequest<Result>(
    _ text: String, pattern: String? = nil, _ body: (HTTPRequest) throws -> Result
) throws -> Result {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBytes { buffer in
        var parser = RequestParser()
        let step = parser.parse(buffer)
        try #require(step.event == .head, "not a request head: \(text)")
        let head = parser.head
        var parameter = ByteRange(0, 0)
        if let pattern {
            let path = RequestTarget(head.target, in: buffer).path
            parameter = try #require(RoutePattern(pattern).match(path, in: buffer))
        }
        return try body(HTTPRequest(bytes: buffer, head: head, parameter: parameter))
    }
}

/// A request line and Host, nothing else.
private func get(_ target: String, _ headers: String = "") -> String {
    "GET \(target) HTTP/1.1\r\nHost: t\r\n\(headers)\r\n"
}

/// The request view: query decoding, path parameters, headers, Last-Event-ID and bearer tokens.
@Suite struct RequestViewTests {
    /// `%XX` escapes and `+` decode in names and values; repeated names keep every value in order;
    /// empty pairs are skipped; a name without `=` has an empty value.
    @Test func decodesTheQuery() throws {
        try withRequest(get("/p?a=1&topic=x%20y&topic=a+b&&flag&%C3%A9t%C3%A9=%E2%9C%93&empty=")) { request in
            let parameters = try #require(request.queryParameters)
            #expect(parameters.map(\.name) == ["a", "topic", "topic", "flag", "été", "empty"])
            #expect(parameters.map(\.value) == ["1", "x y", "a b", "", "✓", ""])
            #expect(request.query("topic") == "x y")
            #expect(request.queryValues("topic") == ["x y", "a b"])
            #expect(request.query("missing") == nil)
            #expect(request.queryValues("missing").isEmpty)
            #expect(request.path == "/p")
            #expect(request.queryBytes.map { String(decoding: $0, as: UTF8.self) }?.hasPrefix("a=1&") == true)
        }
        try withRequest(get("/p")) { request in
            #expect(request.queryBytes == nil)
            #expect(request.queryParameters?.isEmpty == true)
        }
        try withRequest(get("/p?")) { request in
            #expect(request.queryBytes?.count == 0)
            #expect(request.queryParameters?.isEmpty == true)
        }
    }

    /// A malformed escape (not two hex digits, cut off at the end) or bytes that are not UTF-8 make
    /// the whole query nil; lookups then find nothing rather than a wrong value.
    @Test(arguments: ["a=%zz", "a=%4", "a=1&b=%", "%ff=1", "a=%C3", "a=%2"])
    func refusesAMalformedQuery(query: String) throws {
        try withRequest(get("/p?" + query)) { request in
            #expect(request.queryParameters == nil)
            #expect(request.query("a") == nil)
            #expect(request.queryValues("a").isEmpty)
        }
    }

    /// Percent-decoding at the byte level: `+` is a space only in queries; `%2B` is a plus.
    @Test func percentDecodingAlone() {
        func decode(_ text: String, plus: Bool) -> [UInt8]? {
            Array(text.utf8).withUnsafeBytes { percentDecoded($0, plusIsSpace: plus) }
        }
        #expect(decode("a+b%2Bc%2f", plus: true) == Array("a b+c/".utf8))
        #expect(decode("a+b", plus: false) == Array("a+b".utf8))
        #expect(decode("%41%4a%4A", plus: false) == Array("AJJ".utf8))
        #expect(decode("", plus: true) == [])
        #expect(decode("%", plus: true) == nil)
        #expect(decode("%g0", plus: true) == nil)
    }

    /// A path parameter is decoded without turning `+` into a space; its raw bytes stay available;
    /// a malformed one is nil.
    @Test func pathParameter() throws {
        try withRequest(get("/topics/caf%C3%A9+bar/events"), pattern: "/topics/:name/events") { request in
            #expect(request.pathParameter == "café+bar")
            #expect(String(decoding: request.pathParameterBytes, as: UTF8.self) == "caf%C3%A9+bar")
        }
        try withRequest(get("/static/a/b.css?v=2"), pattern: "/static/*") { request in
            #expect(request.pathParameter == "a/b.css")
            #expect(request.query("v") == "2")
        }
        try withRequest(get("/topics/%zz/events"), pattern: "/topics/:name/events") { request in
            #expect(request.pathParameter == nil)
        }
    }

    /// The absolute form routes like the origin form; an absent path is the root.
    @Test func absoluteFormTarget() throws {
        try withRequest(get("http://example.test:8080/a/b?x=1")) { request in
            #expect(request.path == "/a/b")
            #expect(request.query("x") == "1")
        }
        try withRequest(get("HTTP://example.test?x=2")) { request in
            #expect(request.path == "/")
            #expect(request.query("x") == "2")
        }
    }

    /// Header lookup ignores case and returns the first of repeated headers; all lines keep their order.
    @Test func headers() throws {
        try withRequest(get("/", "X-Thing: one\r\nx-thing: two\r\nAccept: */*\r\n")) { request in
            #expect(request.header("X-THING") == "one")
            #expect(request.header("x-thing-else") == nil)
            #expect(request.headers.map(\.name) == ["Host", "X-Thing", "x-thing", "Accept"])
            #expect(request.method == "GET")
            #expect(request.keepAlive)
        }
    }

    /// Last-Event-ID: the header wins over the query (`lastEventId` or `last-event-id`); an empty
    /// value is no value.
    @Test func lastEventID() throws {
        #expect(try withRequest(get("/s", "Last-Event-ID: 41\r\n")) { $0.lastEventID } == "41")
        #expect(try withRequest(get("/s?lastEventId=7")) { $0.lastEventID } == "7")
        #expect(try withRequest(get("/s?last-event-id=8")) { $0.lastEventID } == "8")
        #expect(try withRequest(get("/s?lastEventId=7", "last-event-id: 9\r\n")) { $0.lastEventID } == "9")
        #expect(try withRequest(get("/s?lastEventId=")) { $0.lastEventID } == nil)
        #expect(try withRequest(get("/s", "Last-Event-ID: \r\n")) { $0.lastEventID } == nil)
        #expect(try withRequest(get("/s")) { $0.lastEventID } == nil)
    }

    /// `Authorization: Bearer` in any case, with the token after one or more spaces; other schemes,
    /// a missing token or a missing header give nil.
    @Test func bearerToken() throws {
        #expect(try withRequest(get("/", "Authorization: Bearer s3cret\r\n")) { $0.bearerToken } == "s3cret")
        #expect(try withRequest(get("/", "authorization: bEaReR   t0k=\r\n")) { $0.bearerToken } == "t0k=")
        #expect(try withRequest(get("/", "Authorization: Basic czNjcmV0\r\n")) { $0.bearerToken } == nil)
        #expect(try withRequest(get("/", "Authorization: Bearer\r\n")) { $0.bearerToken } == nil)
        #expect(try withRequest(get("/", "Authorization: Bearers x\r\n")) { $0.bearerToken } == nil)
        #expect(try withRequest(get("/")) { $0.bearerToken } == nil)
    }
}
