import ArgumentParser
import Reactor
import RedisClient
import RillServer
import SSE
#if canImport(Glibc)
import Glibc
#endif

/// `rill serve`: the SSE server (demo page, streams, publishing, metrics): one event-loop thread,
/// `--threads N` loops in one process, or `--workers N` processes with one each.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Server-Sent Events server: one event-loop thread, or --workers processes with one each.",
        discussion: """
            Routes: GET / (demo page), GET /sse?topic=A&topic=B[&lastEventId=ID] (event stream; the \
            Last-Event-ID header works too), POST /publish?topic=T&event=NAME&id=ID (body = data; 204), \
            GET /metrics (Prometheus text), GET /static/PATH (with --static).
            Prints one line when listening; error counts are logged per class every 10 s; SIGINT or \
            SIGTERM drains the streams (--drain-window) and exits 0. With --workers, SIGHUP replaces the \
            workers (new ones first, then the old ones drain one at a time) and SIGUSR2 re-executes the \
            supervisor from the binary on disk (then replaces the workers), the port open throughout.
            Durations are seconds (1.5) or take a unit (500ms, 30s, 2m, 1h), at most a week. Sizes are \
            bytes or take a unit: 64k, 1M (powers of 1024; also KiB, MiB), 64kB, 1MB (powers of 1000).
            """
    )

    @Option(help: "Address to listen on (numeric IPv4).")
    var host = "127.0.0.1"

    @Option(
        parsing: .unconditional, help: "Port to listen on; 0 picks a free one (printed at start). (default: 8080)",
        transform: Parse.port)
    var port: UInt16 = 8080

    @Option(
        parsing: .unconditional,
        help: "Seconds between heartbeat comments on an otherwise silent stream; 0 turns them off. (default: 15)",
        transform: { try Parse.seconds($0, zero: "off") })
    var heartbeat: Double = 15

    @Option(
        parsing: .unconditional, help: "Events kept per topic for Last-Event-ID replay. (default: 1000)",
        transform: { try Parse.count($0, minimum: 0) })
    var history = 1000

    @Option(
        name: .customLong("stream-send-buffer"), parsing: .unconditional,
        help:
            "SO_SNDBUF of each event stream; 0 keeps the kernel's autotuning (which lets a stream that is not read pin megabytes). (default: 64k)",
        transform: Parse.bytes)
    var streamSendBuffer = 64 << 10

    @Option(
        name: .customLong("stream-notsent-lowat"), parsing: .unconditional,
        help:
            "TCP_NOTSENT_LOWAT of each event stream: unsent bytes the kernel holds before the rest waits in rill's queue; 0: the system's. (default: 0)",
        transform: Parse.bytes)
    var streamNotSentLowat = 0

    @Option(
        name: .customLong("history-bytes"), parsing: .unconditional,
        help: "Bytes of events kept per topic for replay. (default: 1M, i.e. 1 MiB)",
        transform: Parse.bytes)
    var historyBytes = 1 << 20

    @Option(
        name: .customLong("history-total"), parsing: .unconditional,
        help:
            "Bytes of events kept for replay over all topics together; past it the oldest go first, whatever their topic. (default: an eighth of the machine's memory, at most 1G)",
        transform: Parse.bytes)
    var historyTotal: Int?

    @Option(
        name: .customLong("max-connections"), parsing: .unconditional,
        help:
            "Connections held at once (per worker; with --workers auto, in all: the workers are sized for it); past it clients get 503 with Retry-After. Default: what the open-file limit allows.",
        transform: { try Parse.count($0, minimum: 1) })
    var maxConnections: Int?

    @Option(
        parsing: .unconditional,
        help:
            "Seconds between server-time events on topic 'time' (the demo page shows them); 0 turns them off. (default: 1)",
        transform: { try Parse.seconds($0, zero: "off") })
    var tick: Double = 1

    @Option(name: .customLong("static"), help: "Directory to serve under /static/ (off when not given; it must exist).")
    var staticDirectory: String?

    @Option(
        name: .customLong("cors-origin"),
        help: "Access-Control-Allow-Origin for every response, e.g. '*' (off when not given).")
    var corsOrigin: String?

    @Option(
        name: .customLong("publish-token"),
        help: "Require 'Authorization: Bearer TOKEN' on POST /publish (open when not given).")
    var publishToken: String?

    @Option(
        name: .customLong("max-queued"), parsing: .unconditional,
        help: "Bytes a subscriber may have queued before it is dropped as too slow. (default: 1M, i.e. 1 MiB)",
        transform: Parse.bytes)
    var maxQueued = 1 << 20

    @Option(
        name: .customLong("max-body"), parsing: .unconditional,
        help: "Largest published event data in bytes (413 past it). (default: 1M, i.e. 1 MiB)", transform: Parse.bytes)
    var maxBody = 1 << 20

    @Option(
        name: .customLong("header-timeout"), parsing: .unconditional,
        help:
            "Seconds a client has to send a whole request; more than 0 (a request split over reads needs time). (default: 10)",
        transform: { try Parse.seconds($0, zero: nil) })
    var headerTimeout: Double = 10

    @Option(
        name: .customLong("idle-timeout"), parsing: .unconditional,
        help: "Seconds a keep-alive connection may wait between requests; more than 0. (default: 60)",
        transform: { try Parse.seconds($0, zero: nil) })
    var idleTimeout: Double = 60

    @Option(
        name: .customLong("body-timeout"), parsing: .unconditional,
        help:
            "Seconds a request body may take after its head (extended as bytes arrive at --min-body-rate); more than 0. (default: 5)",
        transform: { try Parse.seconds($0, zero: nil) })
    var bodyTimeout: Double = 5

    @Option(
        name: .customLong("min-body-rate"), parsing: .unconditional,
        help:
            "Bytes per second a request body must keep up to push its deadline on; 0: the whole body within --body-timeout. (default: 16k)",
        transform: Parse.bytes)
    var minBodyRate = 16 << 10

    @Option(
        name: .customLong("max-partial-bytes"), parsing: .unconditional,
        help:
            "Bytes all unfinished requests together may hold (bodies being received); past it a request gets 503. (default: 64M)",
        transform: Parse.bytes)
    var maxPartialBytes = 64 << 20

    @Option(
        parsing: .unconditional,
        help:
            "Worker processes, each with its own reactor on the same port (SO_REUSEPORT): 'auto' (one per CPU, or as many as --max-connections needs at the open-file limit per process) or a number (more than the CPUs is fine: the limit they lift is open files). 1: this process serves. (default: 1)",
        transform: Parse.workers)
    var workers = WorkersArgument.count(1)

    @Option(
        parsing: .unconditional,
        help:
            "Event-loop threads in this one process, each with its own listener on the port (SO_REUSEPORT) and hub; publications reach every thread's subscribers in one order. Not with --workers. 1: the main thread serves. (default: 1)",
        transform: { try Parse.count($0, minimum: 1) })
    var threads = 1

    @Option(
        name: .customLong("log-format"),
        help:
            "Log lines on stderr (error counts, worker restarts): text (timestamp, level, message) or json (one object per line). (default: text)"
    )
    var logFormat = LogFormat.text

    @Option(
        name: .customLong("drain-window"), parsing: .unconditional,
        help:
            "On SIGTERM/SIGINT: stop accepting and end the event streams spread at random over this many seconds, each told first by a random retry: when to reconnect; exit once the last is gone (0: end them all at once). (default: 3)",
        transform: { try Parse.seconds($0, zero: "all at once") })
    var drainWindow: Double = 3

    /// A worker silent this long (it reports every second) has stalled and is killed and restarted;
    /// 0: never; nil: `defaultLiveness`. Hidden: tests shorten it.
    @Option(
        name: .customLong("worker-liveness"), parsing: .unconditional, help: .hidden,
        transform: { try Parse.seconds($0, zero: "off") })
    var workerLiveness: Double? = nil

    /// Seconds of silence after which a worker has stalled: 5, or one per worker per CPU when that
    /// is more. Fifty workers on two CPUs, each ramping its streams, can each be off the CPU for
    /// seconds; killing them then sends their clients back all at once, which starves the others in
    /// turn (seen at 785,000 streams: a cascade of restarts).
    static func defaultLiveness(workers: Int, cores: Int) -> Double {
        max(5, Double(workers) / Double(max(1, cores)))
    }

    /// Bytes queued, unread, to a worker past which it has stalled (killed and restarted). Hidden:
    /// tests lower it. 64 MiB: well past any burst a reading worker leaves (a publication is at
    /// most --max-body, 1 MiB by default).
    @Option(name: .customLong("worker-queue-limit"), parsing: .unconditional, help: .hidden, transform: Parse.bytes)
    var workerQueueLimit = 64 << 20

    @Option(
        help:
            "Store events in Redis, redis://HOST[:PORT][/DB] (HOST numeric IPv4 or localhost): every node started with the same Redis and prefix delivers every event, in one order, with the same ids, and replays on any node. Off: events live in this process (the memory engine)."
    )
    var redis: String?

    @Option(name: .customLong("redis-prefix"), help: "Prefix of the Redis keys (PREFIX:events, PREFIX:epoch). (default: rill)")
    var redisPrefix = "rill"

    @Option(
        name: .customLong("redis-maxlen"), parsing: .unconditional,
        help: "Events the Redis stream keeps, about (XADD MAXLEN ~), over all topics. (default: 10000)",
        transform: { try Parse.count($0, minimum: 1) })
    var redisMaxlen = 10_000

    @Option(name: .customLong("worker-channel"), help: .hidden)
    var workerChannel: Int32?

    /// The memory engine's epoch base (ids continue from it): the supervisor's, given to its
    /// workers; a start's own by default. Hidden: tests that expect ids from 1 give 0.
    @Option(name: .customLong("epoch-base"), help: .hidden)
    var epochBase: UInt64?

    @Option(name: .customLong("worker-index"), help: .hidden)
    var workerIndex: Int?

    /// The supervisor's listen-queue counters at its start (OVERFLOWS,DROPS), so every worker's
    /// `/metrics` counts from there. Hidden: the supervisor passes it.
    /// The descriptor of the state a supervisor handed its re-executed self (SIGUSR2). Hidden.
    @Option(name: .customLong("supervisor-state"), help: .hidden)
    var supervisorState: Int32?

    @Option(name: .customLong("listen-queue-baseline"), help: .hidden)
    var listenQueueBaseline: String?

    /// `--listen-queue-baseline`, parsed.
    var givenListenQueueBaseline: ListenQueueCounters? {
        guard let numbers = listenQueueBaseline?.split(separator: ",").compactMap({ Int($0) }), numbers.count == 2
        else { return nil }
        return ListenQueueCounters(overflows: numbers[0], drops: numbers[1])
    }

    func validate() throws {
        var workerProcesses = true
        if case .count(1) = workers { workerProcesses = false }
        if threads > 1 && workerProcesses {
            throw ValidationError(
                "--threads and --workers do not go together: choose threads in one process or worker processes")
        }
        if let redis {
            guard threads == 1 else {
                throw ValidationError("--threads does not go with --redis yet: use --workers (each worker is a Redis node)")
            }
            guard RedisEndpoint(url: redis) != nil else {
                throw ValidationError("--redis must be redis://HOST[:PORT][/DB] with a numeric IPv4 HOST or localhost, got \(redis)")
            }
        }
        if let staticDirectory, let problem = Serve.directoryProblem(staticDirectory) {
            throw ValidationError("--static \(staticDirectory): \(problem)")
        }
    }

    /// Why `path` cannot be served as a directory, or nil if it can.
    static func directoryProblem(_ path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            return errno == ENOENT ? "no such directory" : "cannot be read (\(String(cString: strerror(errno))))"
        }
        guard status.st_mode & S_IFMT == S_IFDIR else { return "is a file, not a directory" }
        guard access(path, R_OK | X_OK) == 0 else { return "cannot be read (permission denied)" }
        return nil
    }

    func run() throws {
        guard let address = SocketAddress(host, port: port) else {
            throw ValidationError("--host must be a numeric IPv4 address, got \(host)")
        }
        let limits = ResourceLimits.raiseOpenFilesToHardLimit()
        if let workerChannel { return try runWorker(address: address, limits: limits, channel: workerChannel) }
        let processes: Int
        var sizing: WorkerSizing? = nil
        switch workers {
        case .auto:
            sizing = WorkerSizing(
                connections: maxConnections,
                perWorker: Int(clamping: limits.soft) - ServerConfiguration.reservedDescriptors,
                processors: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
            processes = sizing!.workers
        case .count(let count): processes = count
        }
        if processes > 1 {
            return try runSupervisor(address: address, limits: limits, processes: processes, sizing: sizing)
        }
        if threads > 1 { return try runThreads(address: address, limits: limits) }

        let loop = try EventLoop()
        var configuration = configuration(address: address, limits: limits)
        // Under Redis every node would store its own ticks: the demo ticker is off.
        if redis != nil {
            configuration.tick = nil
        } else {
            configuration.epochBase = epochBase ?? ServerConfiguration.epochBase(nanoseconds: WallClock.nanoseconds())
        }
        let server = try SSEServer(loop: loop, configuration: configuration)
        let engine = try redis.map { try startRedis($0, server: server, loop: loop) }
        stopOnInterrupt(loop, secondExits: true)  // a second signal cuts the drain short (exit 130)
        print(
            "rill serve listening on http://\(server.listener.address)/ (demo page; streams at /sse), "
                + "version \(RillVersion.current), open-file limit \(limits.soft), up to \(server.maximumConnections) connections; "
                + settings)
        flushStandardOutput()
        loop.run()
        let streams = drain(server, loop: loop)
        engine?.stop()
        let hub = server.hub.statistics
        print(
            "rill serve stopped: \(server.statistics.connectionsTotal) connections, \(streams) streams open at stop, "
                + "\(hub.events) events, \(hub.heartbeats) heartbeats, \(server.statistics.connectionsRejected) turned away"
        )
        flushStandardOutput()
    }

    var settings: String {
        let engine = redis.flatMap { RedisEndpoint(url: $0) }.map { "engine redis \($0) prefix \(redisPrefix)" } ?? "engine memory"
        let ticks = tick == 0 || redis != nil ? "off" : "\(tick) s"
        return "heartbeat \(heartbeat == 0 ? "off" : "\(heartbeat) s"), history \(history), tick \(ticks), \(engine)"
    }

    /// The supervisor's check before it starts workers: Redis answers, or one line and exit 1.
    private func probeRedis(_ url: String, loop: EventLoop) throws {
        let endpoint = RedisEndpoint(url: url)!
        let connection = RedisConnection(loop: loop, configuration: .init(endpoint: endpoint))
        connection.start()
        defer { connection.stop() }
        let deadline = MonotonicClock.nanoseconds() + 30_000_000_000
        while !connection.isConnected && connection.consecutiveFailures == 0 && MonotonicClock.nanoseconds() < deadline {
            loop.runOnce(maximumWait: .milliseconds(20))
        }
        guard connection.isConnected else {
            LogLine(
                .error, "rill serve: cannot reach Redis at \(endpoint) (\(connection.lastError ?? "no answer in 30 s"))",
                fields: [("redis", .text(endpoint.description))]
            ).write(logFormat)
            throw ExitCode(1)
        }
    }

    /// Connects the Redis engine and reads the stream to its end before serving; if Redis cannot be
    /// reached, one line naming the address and exit 1.
    private func startRedis(_ url: String, server: SSEServer, loop: EventLoop) throws -> RedisEngine {
        var configuration = RedisEngine.Configuration(endpoint: RedisEndpoint(url: url)!)
        configuration.prefix = redisPrefix
        configuration.maximumLength = redisMaxlen
        let engine = RedisEngine(server: server, loop: loop, configuration: configuration)
        let format = logFormat
        engine.log = { $0.write(format) }
        server.publications = .sequencer(engine)
        engine.start()
        let deadline = MonotonicClock.nanoseconds() + 30_000_000_000
        while !engine.isReady && engine.consecutiveFailures == 0 && MonotonicClock.nanoseconds() < deadline {
            loop.runOnce(maximumWait: .milliseconds(20))
        }
        guard engine.isReady else {
            LogLine(
                .error,
                "rill serve: cannot reach Redis at \(configuration.endpoint) (\(engine.lastError ?? "no answer in 30 s"))",
                fields: [("redis", .text(configuration.endpoint.description))]
            ).write(logFormat)
            engine.stop()
            throw ExitCode(1)
        }
        return engine
    }

    func configuration(address: SocketAddress, limits: (soft: UInt64, hard: UInt64)) -> ServerConfiguration {
        let allowed = Int(clamping: limits.soft) - ServerConfiguration.reservedDescriptors
        var configuration = ServerConfiguration()
        configuration.address = address
        configuration.hub.heartbeat = .seconds(heartbeat)
        configuration.hub.historyCount = history
        configuration.hub.historyBytes = historyBytes
        configuration.hub.streamSendBufferBytes = streamSendBuffer > 0 ? streamSendBuffer : nil
        configuration.hub.streamNotSentLowWatermark = streamNotSentLowat > 0 ? streamNotSentLowat : nil
        if let historyTotal { configuration.hub.historyTotalBytes = historyTotal }
        configuration.hub.maximumQueuedBytes = maxQueued
        configuration.tick = .seconds(tick)
        configuration.staticDirectory = staticDirectory
        configuration.corsOrigin = corsOrigin
        configuration.publishToken = publishToken
        configuration.limits.body = maxBody
        configuration.headerTimeout = .seconds(headerTimeout)
        configuration.bodyTimeout = .seconds(bodyTimeout)
        configuration.minimumBodyRate = minBodyRate
        configuration.maximumPartialRequestBytes = maxPartialBytes
        configuration.idleTimeout = .seconds(idleTimeout)
        configuration.logFormat = logFormat
        configuration.listenQueueBaseline = givenListenQueueBaseline
        if let maxConnections {
            if maxConnections > allowed && workerChannel == nil {
                LogLine(
                    .warning,
                    "rill serve: --max-connections \(maxConnections) is more than this process's open-file limit allows "
                        + "(\(limits.soft) files, hard limit \(limits.hard)): holding at most \(allowed). Use --workers to hold more.",
                    fields: [("maxConnections", .number(maxConnections)), ("holding", .number(allowed))]
                ).write(logFormat)
            }
            configuration.maximumConnections = min(maxConnections, allowed)
        }
        return configuration
    }

    /// Stops accepting and drains: the streams end spread over `--drain-window` (each first gets a
    /// random `retry:`), keep-alive connections after their current response; waits for the last
    /// to close (at most the window and 1.5 s for clients to close), then closes the rest; returns
    /// how many streams were open.
    private func drain(_ server: SSEServer, loop: EventLoop) -> Int {
        let streams = server.hub.statistics.subscribers
        server.beginDrain(window: .milliseconds(Int64(drainWindow * 1_000)))
        let deadline = MonotonicClock.nanoseconds() + UInt64(drainWindow * 1e9) + 1_500_000_000
        let own = server.relay == nil ? 0 : 1  // the supervisor's channel stays open to the end
        while loop.openConnections > own && MonotonicClock.nanoseconds() < deadline {
            loop.runOnce(maximumWait: .milliseconds(20))
        }
        loop.closeAll()
        server.logErrors(interval: "run")
        return streams
    }

    /// One worker under `--workers`: waits for the history and the go-ahead, then serves on the shared
    /// port; stops on SIGTERM (passed on by the supervisor) or when the supervisor goes away.
    private func runWorker(address: SocketAddress, limits: (soft: UInt64, hard: UInt64), channel: Int32) throws {
        guard let startup = WorkerRelay.awaitStart(channel: channel) else { return }
        var configuration = configuration(address: address, limits: limits)
        configuration.reusePort = true
        configuration.workerIndex = workerIndex
        configuration.epochBase = epochBase
        configuration.tick = nil  // the supervisor ticks, so every worker sends the same event
        let loop = try EventLoop()
        let server = try SSEServer(loop: loop, configuration: configuration)
        let relay = try WorkerRelay(server: server, channel: channel, startup: startup)
        server.relay = relay
        relay.onSupervisorGone = { [unowned loop] in loop.stop() }
        // Under Redis each worker is a node of its own (its two connections), the supervisor only
        // supervises: publications go to Redis, not up the relay.
        let engine = try redis.map { try startRedis($0, server: server, loop: loop) }
        watchWorkerSignals(loop, server: server)
        loop.run()
        _ = drain(server, loop: loop)
        engine?.stop()
    }

    private func runSupervisor(
        address: SocketAddress, limits: (soft: UInt64, hard: UInt64), processes: Int, sizing: WorkerSizing?
    ) throws {
        // With --port 0 the port is chosen here and held (bound, not listening) while the workers run.
        let reservation: ReservedPort?
        do {
            reservation = address.port == 0 ? try ReservedPort(address) : nil
        } catch {
            throw ValidationError("could not find a free port on \(host): \(error)")
        }
        let port = reservation?.port ?? address.port
        defer { withExtendedLifetime(reservation) {} }
        let loop = try EventLoop()
        if let redis { try probeRedis(redis, loop: loop) }
        // After a SIGUSR2 exec: the earlier image's ids, history and workers.
        let handover = try supervisorState.map {
            guard let handover = SupervisorHandover.load($0) else {
                throw ValidationError("rill serve: the state handed over across the exec is unreadable")
            }
            return handover
        }
        let supervisor = ServeSupervisor(loop: loop, command: self, workers: processes, port: port, handover: handover)
        watchSupervisorSignals(loop, supervisor: supervisor)
        if let handover {
            supervisor.resume(handover)
        } else if let failure = supervisor.start() {
            supervisor.stop()
            throw ValidationError("rill serve: \(failure)")
        }
        let perWorker = Int(clamping: limits.soft) - ServerConfiguration.reservedDescriptors
        // Sized automatically, --max-connections is the total: each worker holds what its limit allows.
        let each = sizing != nil ? perWorker : maxConnections.map { min($0, perWorker) } ?? perWorker
        let how: String = sizing.map { "SO_REUSEPORT; " + $0.summary } ?? "SO_REUSEPORT"
        print(
            "rill serve \(handover == nil ? "listening" : "re-executed, still listening") on http://\(host):\(port)/ "
                + "(demo page; streams at /sse), version \(RillVersion.current), \(processes) workers "
                + "(\(how)), open-file limit \(limits.soft) each, up to \(each * processes) connections "
                + "(\(each) per worker); " + settings)
        flushStandardOutput()
        loop.run()
        while supervisor.upgradeRequested {
            supervisor.upgradeRequested = false
            let failure = supervisor.reexec(arguments: argumentsForReexec(port: port))
            LogLine(.error, "rill serve: SIGUSR2 re-exec failed: \(failure); serving on", fields: [("upgrade", .text(failure))])
                .write(logFormat)
            loop.run()
        }
        supervisor.stop()
        print("rill serve stopped: \(processes) workers, \(supervisor.restarts) restarts, \(supervisor.events) events")
        flushStandardOutput()
    }
}

extension Serve {
    /// This command line for the re-executed supervisor: the port fixed (it may have been 0), and
    /// what the handover carries (epoch, counters' baseline, an earlier handover) left out.
    func argumentsForReexec(port: UInt16) -> [String] {
        Serve.commandLine(without: ["--port", "--epoch-base", "--listen-queue-baseline", "--supervisor-state"])
            + ["--port", String(port)]
    }

    /// This process's arguments (without the program name) less the options `names`, in either
    /// form (`--name value`, `--name=value`).
    static func commandLine(without names: [String]) -> [String] {
        var arguments: [String] = []
        var skip = false
        for argument in CommandLine.arguments.dropFirst() {
            if skip {
                skip = false
                continue
            }
            if names.contains(argument) {
                skip = true
                continue
            }
            if names.contains(where: { argument.hasPrefix($0 + "=") }) { continue }
            arguments.append(argument)
        }
        return arguments
    }
}

extension LogFormat: ExpressibleByArgument {}
