import HTTP1
import Reactor
import RillServer
import SSE
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// An `SSEServer` on a loop that the test thread turns, with loop-side HTTP clients.
final class ServerHarness: ClientHarness {
    let loop: EventLoop
    let server: SSEServer
    let clients = HTTPClients()
    var address: SocketAddress { server.listener.address }

    init(clock: EventLoop.Clock = .monotonic, _ configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        loop = try EventLoop(clock: clock)
        var configuration = ServerConfiguration()
        configuration.address = loopback
        configuration.tick = nil
        configuration.logInterval = nil
        configure(&configuration)
        server = try SSEServer(loop: loop, configuration: configuration)
    }

    /// Ends the server the way `rill serve` does on SIGTERM, then closes what is left.
    func shutDown() {
        server.beginShutdown()
        drive(loop, for: .seconds(2)) { loop.openConnections == 0 }
        loop.closeAll()
    }

    /// Opens `count` event streams on `path` and waits until the server has them all.
    func subscribe(_ count: Int, path: String = "/sse", headers: String = "") throws -> [Connection] {
        let before = server.hub.statistics.subscribers
        var connections: [Connection] = []
        for _ in 0..<count {
            connections.append(try open("GET \(path) HTTP/1.1\r\nHost: t\r\n\(headers)\r\n"))
        }
        #expect(
            drive(loop) {
                server.hub.statistics.subscribers == before + count
                    && connections.allSatisfy { clients.peer($0).streaming }
            })
        return connections
    }

    /// Publishes through `POST /publish` and returns the response.
    @discardableResult
    func publish(_ data: String, query: String = "", headers: String = "") throws -> Response {
        try exchange(
            "POST /publish\(query.isEmpty ? "" : "?" + query) HTTP/1.1\r\nHost: t\r\nContent-Length: \(data.utf8.count)\r\n\(headers)\r\n\(data)"
        )
    }
}

/// A server on a loop that the test thread turns, reached by loop-side HTTP clients (`clients`).
protocol ClientHarness: AnyObject {
    var loop: EventLoop { get }
    var clients: HTTPClients { get }
    var address: SocketAddress { get }
}

extension ClientHarness {
    /// Opens a client connection that sends `request` (queued before the connect completes).
    @discardableResult
    func open(_ request: String) throws -> Connection {
        let connection = try loop.connect(to: address, handler: clients)
        if request.hasPrefix("HEAD ") { clients.peer(connection).parser.respondingToHEAD = true }
        if !request.isEmpty { connection.write(Array(request.utf8)) }
        return connection
    }

    /// Sends one request on a new connection and waits for its whole response (or the close).
    func exchange(_ request: String, until done: ((HTTPClients.Peer) -> Bool)? = nil) throws -> Response {
        let connection = try open(request)
        drive(loop) {
            done?(clients.peer(connection))
                ?? (clients.peer(connection).responses.count >= 1 || clients.peer(connection).closed)
        }
        let peer = clients.peer(connection)
        connection.close()
        return try #require(peer.responses.first, "no response; got \(String(decoding: peer.bytes, as: UTF8.self))")
    }
}

/// A parsed response.
struct Response {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Client connections: responses parsed as they arrive; an event-stream body goes to an SSE parser.
final class HTTPClients: ConnectionHandler {
    final class Peer {
        var bytes: [UInt8] = []
        var parser = ResponseParser()
        var responses: [Response] = []
        /// Interim (1xx) statuses, in order.
        var interim: [Int] = []
        var current: Response? = nil
        var streaming = false
        var events = EventStreamParser()
        var received: [ReceivedEvent] = []
        var comments: [UInt64] = []
        /// The `retry:` delays received, in milliseconds.
        var retries: [Int] = []
        var closed = false
        var closeReason: CloseReason? = nil
    }

    private var peers: [UInt64: Peer] = [:]

    func peer(_ connection: Connection) -> Peer {
        if let peer = peers[connection.id] { return peer }
        let peer = Peer()
        peers[connection.id] = peer
        return peer
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let peer = peer(connection)
        if peer.streaming {
            feedStream(peer, bytes)
            return
        }
        peer.bytes += bytes
        var consumed = 0
        peer.bytes.withUnsafeBytes { all in
            while true {
                let window = UnsafeRawBufferPointer(rebasing: all[consumed...])
                let step = peer.parser.parse(window)
                switch step.event {
                case .head:
                    let head = peer.parser.head
                    peer.current = Response(
                        status: head.status,
                        headers: head.headers.map {
                            (window.string($0.name), window.string($0.value))
                        }, body: [])
                    if peer.current?.header("content-type") == "text/event-stream" {
                        peer.responses.append(peer.current!)
                        peer.streaming = true
                        consumed += step.consumed
                        feedStream(peer, UnsafeRawBufferPointer(rebasing: all[consumed...]))
                        consumed = all.count
                        return
                    }
                case .body(let range):
                    peer.current?.body += window[range.range]
                case .end:
                    if let response = peer.current {
                        if response.status >= 200 {
                            peer.responses.append(response)
                        } else {
                            peer.interim.append(response.status)
                        }
                    }
                    peer.current = nil
                case .needMore, .error:
                    consumed += step.consumed
                    return
                }
                consumed += step.consumed
            }
        }
        peer.bytes.removeFirst(consumed)
    }

    private func feedStream(_ peer: Peer, _ bytes: UnsafeRawBufferPointer) {
        peer.events.feed(bytes) { item in
            switch item {
            case .event(let event): peer.received.append(event)
            case .comment: peer.comments.append(MonotonicClock.nanoseconds() / 1_000_000)
            case .retry(let milliseconds): peer.retries.append(milliseconds)
            }
        }
    }

    func connectionDidReadEOF(_ connection: Connection) {
        let peer = peer(connection)
        if peer.parser.finish() == .end, let response = peer.current { peer.responses.append(response) }
        connection.close()
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        let peer = peer(connection)
        peer.closed = true
        peer.closeReason = reason
    }
}

/// `rill serve` as a child process on a free port.
final class ServeProcess {
    let child: ChildProcess
    let port: UInt16
    let banner: String

    init(_ arguments: String = "") throws {
        let rill = ChildProcess.builtProduct("rill")
        child = try ChildProcess(cleanShell: "exec '\(rill)' serve --port 0 \(arguments)")
        banner = try #require(child.readLine(), "rill serve printed no startup line")
        let endpoint = try #require(banner.split(separator: " ").first { $0.hasPrefix("http://127.0.0.1:") })
        port = try #require(UInt16(endpoint.dropFirst("http://127.0.0.1:".count).prefix { $0.isNumber }))
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// A sample of the server's `/metrics` (one GET on a fresh connection), or -1 if it is missing.
    func metric(_ name: String) -> Int {
        guard let client = try? BlockingClient(connectingTo: SocketAddress(ip: 0x7F00_0001, port: port)) else {
            return -1
        }
        client.send(Array("GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8))
        let text = String(decoding: client.receiveAll(), as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { Int($0.split(separator: " ").last!) } ?? -1
    }
}

/// Waits until `condition` holds or `timeout` passes, looking every 20 ms; returns whether it held.
/// Only for state in another process (a child's connections, a log file) that no handshake can
/// signal: never to wait for a timer (the loop's manual clock is for that).
@discardableResult
func eventually(timeout: Duration = .seconds(30), _ condition: () throws -> Bool) rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try condition() { return true }
        var pause = timespec(tv_sec: 0, tv_nsec: 20_000_000)
        nanosleep(&pause, nil)
    }
    return try condition()
}

/// Runs a shell command line and returns its stdout (and exit status).
func shell(_ command: String, timeout: Duration = .seconds(30)) throws -> (output: String, status: Int32) {
    let child = try ChildProcess(cleanShell: command)
    var lines: [String] = []
    while let line = child.readLine(timeout: timeout) { lines.append(line) }
    return (lines.joined(separator: "\n"), child.waitForExit())
}

func commandExists(_ name: String) -> Bool {
    ["/usr/bin/", "/bin/", "/usr/sbin/"].contains { access($0 + name, X_OK) == 0 }
}
