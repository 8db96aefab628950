// An embedded Server-Sent Events service: HTTPServer routes, a Hub, and a task that publishes.
//   SSEService [PORT] [SECONDS]        (defaults: 8081, forever)
//   curl -N 'http://127.0.0.1:8081/events?token=s3cret&topic=ticks'
import HTTPServer
import Reactor
import SSE
import SSEHub

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let port = UInt16(arguments.first ?? 8081)
let seconds = arguments.dropFirst().first ?? .max
let token = "s3cret"

ResourceLimits.raiseOpenFilesToHardLimit()
let loop = try EventLoop()
let hub = Hub(loop: loop)  // topics, history for Last-Event-ID, heartbeats, slow-subscriber drop

var router = Router()
router.eventStream("/events", hub: hub) { request in
    // On the loop thread, once per GET /events. An accepted stream resumes after request.lastEventID.
    guard let given = request.bearerToken ?? request.query("token") else {
        return .unauthorized("send a token: Authorization: Bearer …, or ?token=…\n")
    }
    guard given == token else { return .forbidden("wrong token\n") }
    let topics = request.queryValues("topic")
    return .accept(topics: topics.isEmpty ? ["ticks"] : topics)
} onOpen: { stream, _ in
    _ = try? stream.send(OutgoingEvent(data: "welcome", name: "hello"))  // to this client only
}
let server = try HTTPServer(loop: loop, configuration: .init(address: .loopback(port: port)), router: router)
print("serving http://\(server.listener.address)/events?token=\(token)")

// Publishes from another thread: `publish` returns once the loop has queued the event to everyone.
let publisher = hub.publisher
let remote = loop.remote
Task.detached {
    for tick in 1...seconds {
        try await Task.sleep(for: .seconds(1))
        let (id, subscribers) = try await publisher.publish(OutgoingEvent(data: "tick \(tick)"), topic: "ticks")
        print("event \(id) to \(subscribers) subscribers")
    }
    remote.stop()
}
loop.run()
