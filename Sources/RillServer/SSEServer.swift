import HTTP1
import HTTPServer
import Reactor
import SSE
import SSEHub

/// The server behind `rill serve`, an application of `HTTPServer`: its routes (the demo page,
/// `/sse`, `/publish`, `/metrics`, `/static/*`) over a `Hub`, the demo ticker and the error log.
/// Loop-confined.
///
/// Publications go where `publications` says: to this hub at once, or to a sequencer (the
/// supervisor's relay under `--workers`) that answers the request later through its
/// `DeferredResponse`.
public final class SSEServer {
    public let configuration: ServerConfiguration
    public let hub: Hub
    /// The HTTP server (set once in `init`: its routes need `self`).
    public private(set) var http: HTTPServer!
    /// Where publications go: this hub, or a sequencer that answers later.
    public var publications: PublicationRoute = .localHub

    let loop: EventLoop
    var counters = ApplicationCounters()
    var errorLog = ErrorLog()
    let staticFiles: StaticFiles?
    /// Small static files' responses, kept while their files do not change.
    var staticFileCache = StaticFileCache()
    /// Topics published to (here, relayed, or by the ticker): publications may create new topics
    /// while fewer than `maximumTopics` have been published to, whatever subscribers created.
    var publishedTopics: Set<String> = []
    private var tickTimer: TimerID? = nil
    private var logTimer: TimerID? = nil
    /// The demo page, built once.
    private var demoPage: PreparedResponse!
    /// The kernel's listen-queue counters at the start (`/metrics` shows what they grew since).
    let listenQueueBaseline: ListenQueueCounters?

    /// Listens on `configuration.address` and starts the hub's heartbeats and the ticker. `hub`: one
    /// made elsewhere on this loop (a `HubGroup`'s); nil: a hub of its own, with `configuration.hub`.
    public init(
        loop: EventLoop, configuration: ServerConfiguration = ServerConfiguration(), hub: Hub? = nil
    ) throws(SystemError) {
        self.loop = loop
        self.configuration = configuration
        listenQueueBaseline = configuration.listenQueueBaseline ?? ListenQueueCounters.read()
        var hubConfiguration = configuration.hub
        if let base = configuration.epochBase { hubConfiguration.sequenceBase = base }
        self.hub = hub ?? Hub(loop: loop, configuration: hubConfiguration)
        staticFiles = configuration.staticDirectory.map {
            StaticFiles(directory: $0, maximumBytes: configuration.maximumStaticFileBytes)
        }
        http = try HTTPServer(loop: loop, configuration: configuration.http, router: routes())
        demoPage = http.prepare(status: 200, contentType: "text/html; charset=utf-8", body: DemoPage.html)
        if let tick = configuration.tick, tick > .zero {
            tickTimer = loop.scheduleRepeating(every: tick) { [unowned self] in self.publishTick() }
        }
        if let interval = configuration.logInterval, interval > .zero {
            let text = "\(interval.components.seconds) s"
            logTimer = loop.scheduleRepeating(every: interval) { [unowned self] in self.logErrors(interval: text) }
        }
    }

    deinit {
        for timer in [tickTimer, logTimer] { if let timer { loop.cancel(timer) } }
    }

    /// The listener (its address, accept errors).
    public var listener: Listener { http.listener }
    /// Connections held at most (streams and requests); past it, 503.
    public var maximumConnections: Int { http.maximumConnections }
    /// Connections held now (turned-away ones excluded).
    public var heldConnections: Int { http.heldConnections }
    /// Set by `beginShutdown`: no new connections, no keep-alive.
    public var isDraining: Bool { http.isDraining }
    /// Requests currently split across reads, and the bytes they hold.
    public var partialRequestCount: Int { http.partialRequestCount }
    public var partialRequestBytes: Int { http.partialRequestBytes }

    /// Under a supervisor (`rill serve --workers`): the channel to it (reports, totals). Setting it
    /// sends publications there to be sequenced, unless an engine (Redis) takes them: set
    /// `publications` after it then.
    public var relay: WorkerRelay? {
        didSet { publications = relay.map { .sequencer($0) } ?? .localHub }
    }

    /// The engine publications go through, if not the memory engine (this hub).
    public var engine: (any EventEngine)? {
        if case .sequencer(let sequencer) = publications { return sequencer as? any EventEngine }
        return nil
    }

    /// The HTTP server's counters and this application's, together.
    public var statistics: ServerStatistics { ServerStatistics(http: http.statistics, application: counters) }

    /// Stops accepting and ends every event stream and idle connection cleanly (FIN after what is
    /// queued); requests in progress may finish. Then turn the loop until `openConnections` is 0 (or
    /// a deadline) and call `loop.closeAll()`.
    public func beginShutdown() {
        if let tickTimer { loop.cancel(tickTimer) }
        tickTimer = nil
        http.beginShutdown()
    }

    /// A graceful drain over `window` (`HTTPServer.beginDrain`): streams end spread over it, each
    /// told first by `retry:` when to come back. Turn the loop until `openConnections` is 0 (or the
    /// window and a little more) and call `loop.closeAll()`.
    public func beginDrain(window: Duration) {
        if let tickTimer { loop.cancel(tickTimer) }
        tickTimer = nil
        http.beginDrain(window: window)
    }

    // MARK: - Routes

    private func routes() -> Router {
        var router = Router()
        router.get("/") { [unowned self] _, responder in responder.respond(demoPage) }
        router.eventStream("/sse", hub: hub) { [unowned self] request in subscription(request) }
        router.post(
            "/publish", collectingBody: configuration.limits.body,
            check: { [unowned self] request, responder in
                if let refusal = publicationRefusal(request) { refuse(&responder, refusal) }
            },
            { [unowned self] request, responder in publish(request, &responder) })
        router.get("/metrics") { [unowned self] _, responder in
            responder.respond(
                status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: metricsText().utf8)
        }
        if staticFiles != nil {
            router.get("/static/*") { [unowned self] request, responder in staticFile(request, &responder) }
        }
        return router
    }

    // MARK: - Publishing

    private func publishTick() {
        counters.ticks += 1
        publishedTopics.insert(ServerConfiguration.tickTopic)
        _ = try? hub.publish(SSEServer.tickEvent(), topic: ServerConfiguration.tickTopic)
    }

    /// The demo ticker's event: the server time, ISO 8601 (a supervisor publishes it for its workers).
    public static func tickEvent() -> OutgoingEvent {
        OutgoingEvent(data: iso8601(nanoseconds: WallClock.nanoseconds()), name: "time")
    }

    /// An event sequenced elsewhere (by the supervisor): delivered here; if this worker took its
    /// publication (`token`, the publishing connection's id), its waiting request is answered.
    public func deliverRelayed(token: UInt64, topic: String, event: RelayMessage.RelayedEvent) {
        publishedTopics.insert(topic)
        let delivered = try? hub.publish(event.outgoing, topic: topic)
        guard token != 0, let response = relay?.waiting.removeValue(forKey: token) else { return }
        answer(response, delivered: delivered.map { (id: $0.id, subscribers: $0.subscribers) })
    }

    /// Answers a publication a sequencer took: 204 with the event's id and subscriber count once
    /// delivered, or 400 if its event was refused (nil).
    public func answer(_ response: DeferredResponse, delivered: (id: String, subscribers: Int)?) {
        if let delivered {
            counters.publishes += 1
            response.respond(status: 204, contentType: nil) { head in
                head.header("X-Event-Id", delivered.id)
                head.header("X-Subscribers", delivered.subscribers)
            }
        } else {
            counters.badRequests += 1
            response.respond(status: 400, body: "event id and name must not contain NUL, CR or LF\n".utf8)
        }
    }
}

/// Where `rill serve` sends a publication.
public enum PublicationRoute {
    /// This server's hub: sequenced and delivered at once, answered at once.
    case localHub
    /// Sequenced elsewhere (the supervisor's relay, or a `HubGroupSequencer` across loops), which
    /// answers the request later with `SSEServer.answer(_:delivered:)`.
    case sequencer(any PublicationSequencer)
}

/// Takes publications to sequence and deliver, and answers each request when its event has been
/// delivered (with `SSEServer.answer(_:delivered:)`). Loop-confined.
public protocol PublicationSequencer: AnyObject {
    func sequence(_ event: RelayMessage.RelayedEvent, topic: String, response: DeferredResponse)
}
