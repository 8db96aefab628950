import HTTPServer
import Reactor
import SSEHub
import Testing

/// An `HTTPServer` with a test's own routes and a `Hub`, on a loop with a manual clock that the
/// test thread turns: timeouts fire only when the test advances time.
final class EmbeddedHarness: ClientHarness {
    let loop: EventLoop
    let hub: Hub
    let server: HTTPServer
    let clients = HTTPClients()
    var address: SocketAddress { server.listener.address }

    init(
        configure: (inout HTTPServer.Configuration) -> Void = { _ in },
        routes: (inout Router, Hub) -> Void
    ) throws {
        loop = try EventLoop(clock: .manual(ManualClock()))
        hub = Hub(loop: loop)
        var router = Router()
        routes(&router, hub)
        var configuration = HTTPServer.Configuration(address: .loopback(port: 0))
        configure(&configuration)
        server = try HTTPServer(loop: loop, configuration: configuration, router: router)
    }

    /// Drains the server (streams end, idle connections close), then closes what is left.
    func shutDown() {
        server.beginShutdown()
        drive(loop, for: .seconds(2)) { loop.openConnections == 0 }
        loop.closeAll()
    }

    /// The responses `connection` has received so far.
    func responses(_ connection: Connection) -> [Response] { clients.peer(connection).responses }

    /// Turns the loop until `connection` has `count` responses (or closed); returns them.
    @discardableResult
    func awaitResponses(_ connection: Connection, _ count: Int) -> [Response] {
        drive(loop) { clients.peer(connection).responses.count >= count || clients.peer(connection).closed }
        return responses(connection)
    }

    /// Turns the loop until `connection` is closed; returns whether it closed.
    @discardableResult
    func awaitClose(_ connection: Connection) -> Bool {
        drive(loop) { clients.peer(connection).closed }
    }
}
