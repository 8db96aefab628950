import HTTP1
@testable import HTTPServer
import Testing

/// What `router` finds for `method` and `target`, as a value tests can compare.
private func match(_ router: Router, _ method: String, _ target: String, cors: Bool = false) -> String {
    let bytes = Array("\(method) \(target) HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
    return bytes.withUnsafeBytes { buffer in
        var parser = RequestParser()
        guard parser.parse(buffer).event == .head else { return "unparsed" }
        let head = parser.head
        let path = RequestTarget(head.target, in: buffer).path
        switch router.match(method: head.method, path: path, in: buffer, cors: cors) {
        case .route(let index, let parameter): return "route \(index) [\(buffer.string(parameter))]"
        case .notFound: return "404"
        case .methodNotAllowed(let allow): return "405 \(allow)"
        case .preflight(let allow): return "preflight \(allow)"
        }
    }
}

/// Routing by method and path, without sockets.
@Suite struct RouterTests {
    /// Built afresh for each use (a `Router` holds closures: it is not `Sendable`).
    static var router: Router {
        var router = Router()
        router.get("/") { _, responder in responder.respond(status: 200, text: "root") }  // 0, 1 (HEAD)
        router.post("/publish") { _, responder in responder.respond(status: 204, text: "") }  // 2
        router.get("/static/*", includingHEAD: false) { _, responder in responder.respond(status: 200, text: "") }  // 3
        router.get("/topics/:name", includingHEAD: false) { _, r in r.respond(status: 200, text: "") }  // 4
        router.route(.DELETE, "/topics/:name") { _, r in r.respond(status: 204, text: "") }  // 5
        router.get("/topics/:name/events", includingHEAD: false) { _, r in r.respond(status: 200, text: "") }  // 6
        return router
    }

    /// An exact pattern matches only its own path (not a longer one, not a trailing slash).
    @Test func exact() {
        #expect(match(Self.router, "GET", "/") == "route 0 []")
        #expect(match(Self.router, "HEAD", "/") == "route 1 []")
        #expect(match(Self.router, "POST", "/publish?topic=a") == "route 2 []")
        #expect(match(Self.router, "POST", "/publish/") == "404")
        #expect(match(Self.router, "POST", "/publishing") == "404")
        #expect(match(Self.router, "GET", "http://host") == "route 0 []", "absolute form without a path")
    }

    /// A prefix pattern hands the rest of the path (query excluded) to the handler, empty included.
    @Test func prefix() {
        #expect(match(Self.router, "GET", "/static/css/site.css?v=1") == "route 3 [css/site.css]")
        #expect(match(Self.router, "GET", "/static/") == "route 3 []")
        #expect(match(Self.router, "GET", "/static") == "404")
    }

    /// A parameter segment matches one non-empty segment; what follows must be the suffix exactly.
    @Test func parameter() {
        #expect(match(Self.router, "GET", "/topics/news") == "route 4 [news]")
        #expect(match(Self.router, "DELETE", "/topics/news") == "route 5 [news]")
        #expect(match(Self.router, "GET", "/topics/news/events") == "route 6 [news]")
        #expect(match(Self.router, "GET", "/topics/") == "404")
        #expect(match(Self.router, "GET", "/topics/news/other") == "404")
        #expect(match(Self.router, "GET", "/topics/news/events/more") == "404")
    }

    /// A path some route matches with another method: 405 with every method for it, once each, in
    /// the order they were added (OPTIONS added with CORS, where OPTIONS is a preflight).
    @Test func methodNotAllowed() {
        #expect(match(Self.router, "PUT", "/topics/news") == "405 GET, DELETE")
        #expect(match(Self.router, "GET", "/publish") == "405 POST")
        #expect(match(Self.router, "POST", "/") == "405 GET, HEAD")
        #expect(match(Self.router, "get", "/") == "405 GET, HEAD", "methods are case-sensitive")
        #expect(match(Self.router, "PUT", "/publish", cors: true) == "405 POST, OPTIONS")
        #expect(match(Self.router, "OPTIONS", "/publish", cors: true) == "preflight POST, OPTIONS")
        #expect(match(Self.router, "OPTIONS", "/publish") == "405 POST")
        #expect(match(Self.router, "OPTIONS", "/nothing", cors: true) == "404")
    }

    /// Routes are tried in order: the first that matches wins.
    @Test func firstMatchWins() {
        var router = Router()
        router.get("/a/*", includingHEAD: false) { _, r in r.respond(status: 200, text: "") }
        router.get("/a/b", includingHEAD: false) { _, r in r.respond(status: 200, text: "") }
        #expect(match(router, "GET", "/a/b") == "route 0 [b]")
        #expect(match(Router(), "GET", "/") == "404")
    }

    /// The refusal helpers: 401 asks for a bearer token, 403 does not.
    @Test func refusals() {
        guard case .refuse(401, "no\n", let headers) = EventStreamDecision.unauthorized("no\n") else {
            Issue.record("unauthorized is not a 401 refusal")
            return
        }
        #expect(headers.map { "\($0.name): \($0.value)" } == ["WWW-Authenticate: Bearer"])
        guard case .refuse(403, "wrong\n", let none) = EventStreamDecision.forbidden("wrong\n") else {
            Issue.record("forbidden is not a 403 refusal")
            return
        }
        #expect(none.isEmpty)
    }
}
