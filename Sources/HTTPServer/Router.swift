import HTTP1
import RillBytes
import SSEHub

/// An HTTP method, matched byte for byte against the request's method token.
public struct HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    let bytes: [UInt8]
    public init(_ name: String) { bytes = Array(name.utf8) }
    public var description: String { String(decoding: bytes, as: UTF8.self) }
    public static let GET = HTTPMethod("GET")
    public static let HEAD = HTTPMethod("HEAD")
    public static let POST = HTTPMethod("POST")
    public static let PUT = HTTPMethod("PUT")
    public static let DELETE = HTTPMethod("DELETE")
    public static let PATCH = HTTPMethod("PATCH")
    public static let OPTIONS = HTTPMethod("OPTIONS")
}

/// A route's path pattern: exact (`/metrics`), prefix (`/static/*`: the rest is the path
/// parameter) or one parameter segment (`/topics/:name`, optionally followed by more path,
/// `/topics/:name/events`). Matching compares bytes; it never makes a String.
public struct RoutePattern: Sendable, Equatable, CustomStringConvertible {
    enum Kind: Equatable {
        case exact
        case prefix
        case parameter(suffix: [UInt8])
    }
    let kind: Kind
    let head: [UInt8]
    public let description: String

    public init(_ pattern: String) {
        description = pattern
        if pattern.hasSuffix("*") {
            kind = .prefix
            head = Array(pattern.utf8.dropLast())
        } else if let colon = pattern.utf8.firstIndex(of: UInt8(ascii: ":")) {
            let rest = pattern.utf8[pattern.utf8.index(after: colon)...]
            let suffixStart = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
            kind = .parameter(suffix: Array(rest[suffixStart...]))
            head = Array(pattern.utf8[..<colon])
        } else {
            kind = .exact
            head = Array(pattern.utf8)
        }
    }

    /// The path parameter's range if `path` (a range of `bytes`) matches; an empty range at the
    /// path's end for an exact pattern.
    func match(_ path: ByteRange, in bytes: UnsafeRawBufferPointer) -> ByteRange? {
        let start = Int(path.start)
        let end = Int(path.end)
        guard end - start >= head.count, Self.equal(bytes, start, head) else { return nil }
        let rest = start + head.count
        switch kind {
        case .exact:
            return rest == end ? ByteRange(end, end) : nil
        case .prefix:
            return ByteRange(rest, end)
        case .parameter(let suffix):
            var stop = rest
            while stop < end && bytes[stop] != UInt8(ascii: "/") { stop += 1 }
            guard stop > rest, end - stop == suffix.count, Self.equal(bytes, stop, suffix) else { return nil }
            return ByteRange(rest, stop)
        }
    }

    private static func equal(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ literal: [UInt8]) -> Bool {
        var index = 0
        while index < literal.count {
            if bytes[start + index] != literal[index] { return false }
            index += 1
        }
        return true
    }
}

/// Routes by method and path. Handlers run on the loop thread with a request view
/// (`HTTPRequest`, valid only during the call) and a responder (`HTTPResponder`), and must answer
/// through it (at once, or later with `deferred()`). Routes are tried in the order they were
/// added; a path some route matches but not with this method gets 405 with `Allow` (or, with
/// CORS configured, a preflight answer to OPTIONS); any other path 404.
public struct Router {
    /// Answers a request. The request view and its ranges are valid only during the call.
    public typealias Handler = (HTTPRequest, inout HTTPResponder) -> Void

    struct Route {
        let method: HTTPMethod
        let pattern: RoutePattern
        /// Bytes of body collected at most (413 past it); nil: a body is read and dropped.
        let bodyLimit: Int?
        let check: Handler?
        let handler: Handler
    }

    private(set) var routes: [Route] = []

    public init() {}

    /// Adds a route.
    /// - Parameters:
    ///   - collectingBody: the route takes a body of at most this many bytes (`request.body`;
    ///     413 past it); nil, the default: a body is read and dropped.
    ///   - check: runs on the head, before the body arrives (and before `100 Continue`): if it
    ///     answers (a 401, say), the body is not collected and `handler` is not called. It may
    ///     only `respond`.
    ///   - handler: runs once the request has arrived whole.
    public mutating func route(
        _ method: HTTPMethod, _ pattern: String, collectingBody: Int? = nil, check: Handler? = nil,
        _ handler: @escaping Handler
    ) {
        routes.append(
            Route(
                method: method, pattern: RoutePattern(pattern), bodyLimit: collectingBody, check: check,
                handler: handler))
    }

    /// GET (and, unless told otherwise, HEAD: the responder leaves the body out).
    public mutating func get(_ pattern: String, includingHEAD: Bool = true, _ handler: @escaping Handler) {
        route(.GET, pattern, handler)
        if includingHEAD { route(.HEAD, pattern, handler) }
    }

    /// POST with a collected body (1 MiB at most unless told otherwise).
    public mutating func post(
        _ pattern: String, collectingBody: Int = 1 << 20, check: Handler? = nil, _ handler: @escaping Handler
    ) {
        route(.POST, pattern, collectingBody: collectingBody, check: check, handler)
    }

    /// A GET route answered with an event stream bound to `hub`, or refused: `decide` chooses the
    /// topics (the stream resumes after `request.lastEventID`) or a refusal; `onOpen` gets the
    /// stream (for per-connection events). History replay, heartbeats and the slow-subscriber
    /// drop are the hub's.
    public mutating func eventStream(
        _ pattern: String, hub: Hub, _ decide: @escaping (HTTPRequest) -> EventStreamDecision,
        onOpen: ((EventStream, HTTPRequest) -> Void)? = nil
    ) {
        get(pattern, includingHEAD: false) { request, responder in
            switch decide(request) {
            case .accept(let topics):
                let stream = responder.eventStream(hub: hub, topics: topics, lastEventID: request.lastEventID)
                onOpen?(stream, request)
            case .reset(let topics, let headers, let firstEvent):
                let stream = responder.eventStream(hub: hub, topics: topics, headers: headers, firstEvent: firstEvent)
                onOpen?(stream, request)
            case .later(let open):
                // `onOpen` is not called for a stream opened later.
                open(responder.deferred())
            case .refuse(let status, let body, let headers):
                responder.respond(status: status, body: body.utf8) { writer in
                    for (name, value) in headers { writer.header(name, value) }
                }
            }
        }
    }

    /// What routing found for a request.
    enum Match {
        case route(Int, parameter: ByteRange)
        case notFound
        case methodNotAllowed(allow: String)
        case preflight(allow: String)
    }

    func match(method: ByteRange, path: ByteRange, in bytes: UnsafeRawBufferPointer, cors: Bool) -> Match {
        // The absolute form may have no path: it is the root.
        let original = path
        var path = path
        var rootBytes: UnsafeRawBufferPointer = bytes
        let slash: StaticString = "/"
        if path.isEmpty {
            rootBytes = UnsafeRawBufferPointer(start: slash.utf8Start, count: 1)
            path = ByteRange(0, 1)
        }
        var pathMatched = false
        for index in routes.indices {
            guard let parameter = routes[index].pattern.match(path, in: rootBytes) else { continue }
            if Self.methodEquals(bytes, method, routes[index].method) {
                let substituted = original.isEmpty
                return .route(index, parameter: substituted ? ByteRange(Int(original.start), Int(original.start)) : parameter)
            }
            pathMatched = true
        }
        guard pathMatched else { return .notFound }
        // Rare: the strings are made here only.
        var allowed: [String] = []
        for route in routes where route.pattern.match(path, in: rootBytes) != nil {
            let name = route.method.description
            if !allowed.contains(name) { allowed.append(name) }
        }
        if cors { allowed.append("OPTIONS") }
        let allow = allowed.joined(separator: ", ")
        if cors && bytes.equals(method, "OPTIONS") { return .preflight(allow: allow) }
        return .methodNotAllowed(allow: allow)
    }

    private static func methodEquals(_ bytes: UnsafeRawBufferPointer, _ range: ByteRange, _ method: HTTPMethod) -> Bool {
        guard range.count == method.bytes.count else { return false }
        var index = 0
        while index < method.bytes.count {
            if bytes[Int(range.start) + index] != method.bytes[index] { return false }
            index += 1
        }
        return true
    }
}

/// What an event-stream route decided about a request.
public enum EventStreamDecision {
    /// Subscribe to `topics` (resuming after the request's Last-Event-ID, if any).
    case accept(topics: [String])
    /// Subscribe to `topics` without replay: the request's Last-Event-ID cannot be resumed (another
    /// history's, or older than it holds). `headers` go into the head and `firstEvent` (encoded, the
    /// application's `event: reset`) before the live events, so the client is told, never silently.
    case reset(topics: [String], headers: [(name: String, value: String)], firstEvent: SharedBytes)
    /// Decide later: `open` gets the request's `DeferredResponse` and answers it (with
    /// `eventStream(...)` or a refusal) when it can, e.g. once the events a Last-Event-ID names
    /// have arrived. The connection reads nothing meanwhile.
    case later((DeferredResponse) -> Void)
    /// Answer `status` with `body` (plain text) and the stream does not open.
    case refuse(status: Int, body: String, headers: [(name: StaticString, value: String)] = [])

    /// 401 with `WWW-Authenticate: Bearer`: the request carried no credentials.
    public static func unauthorized(_ body: String) -> EventStreamDecision {
        .refuse(status: 401, body: body, headers: [("WWW-Authenticate", "Bearer")])
    }

    /// 403: the credentials were read and are not good enough.
    public static func forbidden(_ body: String) -> EventStreamDecision {
        .refuse(status: 403, body: body)
    }
}
