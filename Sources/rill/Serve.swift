import ArgumentParser
import Reactor
import RillServer
import SSE

/// `rill serve`: the SSE server (demo page, streams, publishing, metrics) on one reactor thread.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Server-Sent Events server on one event-loop thread.",
        discussion: """
            Routes: GET / (demo page), GET /sse?topic=A&topic=B[&lastEventId=ID] (event stream; the \
            Last-Event-ID header works too), POST /publish?topic=T&event=NAME&id=ID (body = data; 204), \
            GET /metrics (Prometheus text), GET /static/PATH (with --static).
            Prints one line when listening; error counts are logged per class every 10 s; SIGINT or \
            SIGTERM closes every stream and exits 0.
            """
    )

    @Option(help: "Address to listen on (numeric IPv4).")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one (printed at start).")
    var port: UInt16 = 8080

    @Option(help: "Seconds between heartbeat comments on an otherwise silent stream; 0 turns them off.")
    var heartbeat: Double = 15

    @Option(help: "Events kept per topic for Last-Event-ID replay.")
    var history = 1000

    @Option(name: .customLong("history-bytes"), help: "Bytes of events kept per topic for replay.")
    var historyBytes = 1 << 20

    @Option(name: .customLong("max-connections"),
            help: "Connections held at once; past it clients get 503 with Retry-After. Default: what the open-file limit allows.")
    var maxConnections: Int?

    @Option(help: "Seconds between server-time events on topic 'time' (the demo page shows them); 0 turns them off.")
    var tick: Double = 1

    @Option(name: .customLong("static"), help: "Directory to serve under /static/ (off when not given).")
    var staticDirectory: String?

    @Option(name: .customLong("cors-origin"), help: "Access-Control-Allow-Origin for every response, e.g. '*' (off when not given).")
    var corsOrigin: String?

    @Option(name: .customLong("publish-token"),
            help: "Require 'Authorization: Bearer TOKEN' on POST /publish (open when not given).")
    var publishToken: String?

    @Option(name: .customLong("max-queued"), help: "Bytes a subscriber may have queued before it is dropped as too slow.")
    var maxQueued = 1 << 20

    @Option(name: .customLong("max-body"), help: "Largest published event data in bytes (413 past it).")
    var maxBody = 1 << 20

    @Option(name: .customLong("header-timeout"), help: "Seconds a client has to send a whole request.")
    var headerTimeout: Double = 10

    @Option(name: .customLong("idle-timeout"), help: "Seconds a keep-alive connection may wait between requests.")
    var idleTimeout: Double = 60

    func validate() throws {
        for (name, value) in [("--heartbeat", heartbeat), ("--tick", tick), ("--header-timeout", headerTimeout),
                              ("--idle-timeout", idleTimeout)] where value < 0 || !value.isFinite {
            throw ValidationError("\(name) must be a number of seconds ≥ 0, got \(value)")
        }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
    }

    func run() throws {
        guard let address = SocketAddress(host, port: port) else {
            throw ValidationError("--host must be a numeric IPv4 address, got \(host)")
        }
        let limits = ResourceLimits.raiseOpenFilesToHardLimit()
        let allowed = Int(clamping: limits.soft) - ServerConfiguration.reservedDescriptors
        var configuration = ServerConfiguration()
        configuration.address = address
        configuration.hub.heartbeat = .seconds(heartbeat)
        configuration.hub.historyCount = history
        configuration.hub.historyBytes = historyBytes
        configuration.hub.maximumQueuedBytes = maxQueued
        configuration.tick = .seconds(tick)
        configuration.staticDirectory = staticDirectory
        configuration.corsOrigin = corsOrigin
        configuration.publishToken = publishToken
        configuration.limits.body = maxBody
        configuration.headerTimeout = .seconds(headerTimeout)
        configuration.idleTimeout = .seconds(idleTimeout)
        if let maxConnections {
            if maxConnections > allowed {
                print("rill serve: --max-connections \(maxConnections) is more than this process's open-file limit allows "
                      + "(\(limits.soft) files, hard limit \(limits.hard)): holding at most \(allowed). "
                      + "Run several processes (SO_REUSEPORT) to hold more.")
            }
            configuration.maximumConnections = min(maxConnections, allowed)
        }

        let loop = try EventLoop()
        let server = try SSEServer(loop: loop, configuration: configuration)
        stopOnInterrupt(loop.remote)
        print("rill serve listening on http://\(server.listener.address)/ (demo page; streams at /sse), "
              + "open-file limit \(limits.soft), up to \(server.maximumConnections) connections; "
              + "heartbeat \(heartbeat == 0 ? "off" : "\(heartbeat) s"), history \(history), tick \(tick == 0 ? "off" : "\(tick) s")")
        flushStandardOutput()
        loop.run()

        // Stop accepting, end every stream with a FIN, give clients a moment to close, then close the rest.
        let streams = server.hub.statistics.subscribers
        server.beginShutdown()
        let deadline = MonotonicClock.nanoseconds() + 1_500_000_000
        while loop.openConnections > 0 && MonotonicClock.nanoseconds() < deadline {
            loop.runOnce(maximumWait: .milliseconds(20))
        }
        loop.closeAll()
        server.logErrors(interval: "run")
        let hub = server.hub.statistics
        print("rill serve stopped: \(server.statistics.connectionsTotal) connections, \(streams) streams open at stop, "
              + "\(hub.events) events, \(hub.heartbeats) heartbeats, \(server.statistics.connectionsRejected) turned away")
        flushStandardOutput()
    }
}
