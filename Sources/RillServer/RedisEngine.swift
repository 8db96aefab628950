import HTTPServer
import Reactor
import RedisClient
import SSE
import SSEHub

/// The Redis engine: every node stores its publications in one Redis stream and delivers what it
/// reads back from that stream, so every node's subscribers get every event in the stream's order,
/// with the same ids. Loop-confined; two Redis connections per node, whatever the topics and
/// subscribers: one for commands (XADD, the epoch), one that reads the stream (XREAD BLOCK).
///
/// **One stream for all topics** (`PREFIX:events`, the topic a field): one order over all topics,
/// which is what a subscriber of several topics needs to resume with one id, and one reader per
/// node. Each entry holds `t` (topic), `d` (data) and, if given, `n` (event name) and `i` (an id
/// the publisher chose). Trimmed with `XADD ... MAXLEN ~` to about `maximumLength` entries.
///
/// **Ids** are `<epoch>-<stream id>`, e.g. `m5k2q9x1-1733540000000-0`. The epoch is the stream's
/// identity: a random value kept under `PREFIX:epoch`, created with SET NX by whichever node comes
/// first; if Redis loses its data (restarted empty), the key goes with the stream and the next
/// node to reconnect makes a new one. Every node checks it on every (re)connection of its reader,
/// so an id from a lost history is recognised as such (`resetReason`). XADD runs in a Lua script
/// that first checks the key still holds this node's epoch (a command connection back before the
/// reader cannot store events under a lost epoch's ids), and stores the epoch in the entry (`e`)
/// so readers on every node see a change in the stream itself.
///
/// **Replay** is served from the node's hub: the reader delivers the stream from its start (as
/// far as Redis keeps it) into the hub, so the hub's history mirrors the stream's window, and a
/// Last-Event-ID is found in O(1) on any node with no Redis command at all (so 10,000 reconnections
/// cost Redis nothing).
///
/// **Faults**: a publication is answered 204 only once XADD returned its stream id; with the
/// command connection down (or XADD failing) it gets 503 with Retry-After. Streams stay open
/// (heartbeats are the hub's). The reader resumes from the last id it delivered, so nothing that
/// reached Redis is missed while the connection was down (unless MAXLEN trimmed it meanwhile).
public final class RedisEngine: EventEngine {
    public struct Configuration: Sendable {
        public var endpoint: RedisEndpoint
        /// Key prefix: the stream is `PREFIX:events`, the epoch `PREFIX:epoch`.
        public var prefix = "rill"
        /// Entries the stream keeps, about (`MAXLEN ~`).
        public var maximumLength = 10_000
        /// Entries one XREAD returns at most.
        public var readBatch = 1_000
        /// How long one XREAD waits for an entry before asking again (also how soon a silent
        /// reader connection is noticed: the client's timeout adds its command timeout to it).
        public var block: Duration = .seconds(2)

        public init(endpoint: RedisEndpoint) { self.endpoint = endpoint }
    }

    /// Counters for `/metrics`.
    public struct Statistics: Sendable {
        /// Publications stored (XADD answered).
        public var stored = 0
        /// Publications refused with 503: Redis unreachable, or XADD failed.
        public var refused = 0
        /// Stream entries read and delivered to this node's hub.
        public var delivered = 0
        /// Times the stream's epoch changed under this node (Redis lost its data).
        public var epochChanges = 0
    }

    public let configuration: Configuration
    public private(set) var statistics = Statistics()
    /// The stream's identity now; nil until the reader first connected.
    public private(set) var epoch: String?
    /// True once the reader has read the stream up to its end once (the hub mirrors it).
    public private(set) var hasCaughtUp = false
    /// Log lines (state changes, once each); `rill serve` writes them to stderr.
    public var log: (LogLine) -> Void = { _ in }

    let commands: RedisConnection
    let reader: RedisConnection
    private unowned let server: SSEServer
    private let loop: EventLoop
    private let streamKey: String
    private let epochKey: String
    /// The last stream id delivered: where the reader goes on, also after a reconnection.
    private(set) var lastStreamID = "0-0"
    /// Bumped on each reader connection: replies of an earlier one are ignored.
    private var readerGeneration = 0
    /// The reader's connection is up and has checked the epoch since it (re)connected. Until then
    /// this node cannot tell whether Redis kept its history, so resuming streams wait for it.
    private var readerConfirmed = false
    private var wasAvailable = true
    private var keepAlive: TimerID?
    private var stopped = false
    /// Streams waiting for the reader to reach their Last-Event-ID (a client from a node ahead of
    /// this one), by token; rare and short-lived.
    private var waiting: [UInt64: (after: StreamPosition, ready: () -> Void)] = [:]
    private var nextWaitToken: UInt64 = 0
    /// How long a stream waits for this node to read up to its Last-Event-ID before it is reset.
    static let longestWait: Duration = .seconds(2)

    deinit {
        if let keepAlive { loop.cancel(keepAlive) }
    }

    /// An engine for `server` (which it feeds): set `server.publications = .sequencer(engine)`.
    public init(server: SSEServer, loop: EventLoop, configuration: Configuration) {
        self.server = server
        self.loop = loop
        self.configuration = configuration
        streamKey = configuration.prefix + ":events"
        epochKey = configuration.prefix + ":epoch"
        let connection = RedisConnection.Configuration(endpoint: configuration.endpoint)
        commands = RedisConnection(loop: loop, configuration: connection)
        reader = RedisConnection(loop: loop, configuration: connection)
        commands.onStateChange = { [unowned self] connected in self.commandsChanged(connected) }
        reader.onStateChange = { [unowned self] connected in
            readerConfirmed = false
            if connected { readerConnected() }
        }
    }

    public func start() {
        commands.start()
        reader.start()
        // A PING when the command connection is idle: a Redis that stopped answering (SIGSTOP, a
        // partition) is noticed within the command timeout even when nobody publishes, so
        // `rill_engine_available` tells the truth.
        keepAlive = loop.scheduleRepeating(every: .seconds(1)) { [unowned self] in
            if commands.isConnected && commands.pendingCount == 0 { commands.send(RedisCommand.ping()) { _ in } }
        }
    }

    public func stop() {
        stopped = true  // closing its own connections is no loss to log
        if let keepAlive { loop.cancel(keepAlive) }
        keepAlive = nil
        commands.stop()
        reader.stop()
    }

    /// Ready to serve: both connections up, the epoch known, the stream read to its end once.
    public var isReady: Bool { commands.isConnected && reader.isConnected && hasCaughtUp }

    /// Why the last connection attempt failed, if it did.
    public var lastError: String? { commands.lastError ?? reader.lastError }

    /// Failed attempts in a row of the command connection (a starting server gives up after one).
    public var consecutiveFailures: Int { max(commands.consecutiveFailures, reader.consecutiveFailures) }

    public var isAvailable: Bool { commands.isConnected && epoch != nil }

    // MARK: - Publishing

    public func sequence(_ event: RelayMessage.RelayedEvent, topic: String, response: DeferredResponse) {
        guard isAvailable, let epoch else { return refuse(response) }
        var arguments: [[UInt8]] = [Array(epoch.utf8), Array(String(configuration.maximumLength).utf8)]
        arguments += [Array("t".utf8), Array(topic.utf8), Array("d".utf8), event.data]
        if let name = event.name { arguments += [Array("n".utf8), Array(name.utf8)] }
        if let id = event.id { arguments += [Array("i".utf8), Array(id.utf8)] }
        let command = RedisCommand.eval(RedisEngine.guardedAdd, keys: [epochKey, streamKey], arguments: arguments)
        commands.send(command) { [unowned self] result in
            if case .failure(.server(let message)) = result, message.hasPrefix("RILLEPOCH") {
                learnEpoch(over: commands)  // Redis lost its data (or another epoch began) under us
                return refuse(response)
            }
            guard case .success(let reply) = result, let streamID = reply.string else { return refuse(response) }
            statistics.stored += 1
            server.counters.publishes += 1
            server.publishedTopics.insert(topic)
            let id = event.id ?? epoch + "-" + streamID
            response.respond(status: 204, contentType: nil) { head in
                head.header("X-Event-Id", id)
                // This node's subscribers; every node delivers it to its own when its reader reads it.
                head.header("X-Subscribers", server.hub.subscriberCount(topic: topic))
            }
        }
    }

    /// XADD only while the stream's epoch is the one this node knows. Without the check, a command
    /// connection that reconnects to a Redis restarted empty before the reader has learnt the new
    /// epoch would store events into the new stream under the old epoch's ids: the lie epochs exist
    /// to prevent. The entry carries its epoch (`e`), so every node's reader learns a change from
    /// the stream itself. KEYS: epoch, stream; ARGV: epoch, MAXLEN, then field/value pairs.
    static let guardedAdd = """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('RILLEPOCH stream identity changed') end
        return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1], unpack(ARGV, 3))
        """

    private func refuse(_ response: DeferredResponse) {
        statistics.refused += 1
        response.respond(status: 503, body: "event store (Redis) unavailable, retry later\n".utf8) {
            $0.header("Retry-After", 1)
        }
    }

    // MARK: - Resuming

    public func resetReason(for lastEventID: String) -> StreamReset.Reason? {
        guard let (idEpoch, _) = RedisEngine.parse(lastEventID), let epoch else { return nil }
        return idEpoch == epoch ? nil : .epoch
    }

    public func hasNotRead(_ lastEventID: String) -> Bool {
        guard let epoch, let (idEpoch, streamID) = RedisEngine.parse(lastEventID) else { return false }
        if !readerConfirmed { return true }  // the epoch may have changed while the reader was away
        guard idEpoch == epoch,
            let position = StreamPosition(streamID), let last = StreamPosition(lastStreamID)
        else { return false }
        return last < position
    }

    public func whenRead(past lastEventID: String, _ ready: @escaping () -> Void) {
        guard let (_, streamID) = RedisEngine.parse(lastEventID), let position = StreamPosition(streamID) else {
            return loop.runSoon(ready)
        }
        nextWaitToken += 1
        let token = nextWaitToken
        waiting[token] = (position, ready)
        loop.schedule(after: RedisEngine.longestWait) { [weak self] in
            self?.waiting.removeValue(forKey: token)?.ready()
        }
    }

    /// Opens the waiting streams the reader has now read past (all of them if the epoch changed:
    /// they are reset then).
    private func releaseWaiting(all: Bool = false) {
        guard !waiting.isEmpty, let last = StreamPosition(lastStreamID) else { return }
        for (token, waiter) in waiting where all || !(last < waiter.after) {
            waiting[token] = nil
            waiter.ready()
        }
    }

    /// `<epoch>-<ms>-<seq>` split into the epoch and the stream id; nil for any other id (one the
    /// publisher chose).
    static func parse(_ id: String) -> (epoch: Substring, streamID: Substring)? {
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, UInt64(parts[1]) != nil, UInt64(parts[2]) != nil else { return nil }
        return (parts[0], id[parts[1].startIndex...])
    }

    // MARK: - Reading

    private func commandsChanged(_ connected: Bool) {
        guard !stopped else { return }
        let address = configuration.endpoint.description
        if connected {
            if !wasAvailable { log(LogLine(.info, "rill serve: Redis at \(address) is back; publishing resumes")) }
        } else {
            log(
                LogLine(
                    .warning,
                    "rill serve: lost Redis at \(address) (\(commands.lastError ?? "closed")); publications get 503 "
                        + "until it is back, streams stay open", fields: [("redis", .text(address))]))
        }
        wasAvailable = connected
    }

    /// A (re)connected reader: learns the epoch (making it if the key is missing), then reads on.
    private func readerConnected() {
        readerGeneration += 1
        let generation = readerGeneration
        learnEpoch(
            over: reader, isCurrent: { [unowned self] in generation == readerGeneration },
            then: { [unowned self] in
                readerConfirmed = true
                releaseWaiting()
                read(generation)
            })
    }

    /// Makes the epoch key if it is missing (SET NX: the first node wins), reads it over
    /// `connection`, adopts it, then runs `then`. `isCurrent` drops a reply of an older connection.
    private func learnEpoch(
        over connection: RedisConnection, isCurrent: @escaping () -> Bool = { true },
        then: @escaping () -> Void = {}
    ) {
        connection.send(RedisCommand.set(epochKey, RedisEngine.newEpoch(), onlyIfNew: true)) { _ in }
        connection.send(RedisCommand.get(epochKey)) { [unowned self] result in
            guard isCurrent() else { return }
            guard case .success(let reply) = result else { return }  // lost again: the next connection retries
            guard let current = reply.string, !current.isEmpty, !current.contains("-") else {
                log(LogLine(.error, "rill serve: \(epochKey) holds no usable epoch (\(reply)); trying again in 1 s"))
                loop.schedule(after: .seconds(1)) { [weak self] in
                    guard let self, isCurrent() else { return }
                    learnEpoch(over: connection, isCurrent: isCurrent, then: then)
                }
                return
            }
            adopt(epoch: current)
            then()
        }
    }

    /// The stream's identity as Redis holds it now; a change means Redis lost the history.
    private func adopt(epoch current: String) {
        guard epoch != current else { return }
        if let epoch {
            statistics.epochChanges += 1
            lastStreamID = "0-0"
            log(
                LogLine(
                    .warning,
                    "rill serve: Redis at \(configuration.endpoint) lost its events (new epoch \(current), was "
                        + "\(epoch)); ids from before are answered with event: reset"))
        }
        let changed = epoch != nil
        epoch = current
        if changed { releaseWaiting(all: true) }
    }

    /// One XREAD from `lastStreamID`; delivers what it returns and asks again.
    private func read(_ generation: Int) {
        let command = RedisCommand.xread(
            streamKey, after: lastStreamID, count: configuration.readBatch, block: configuration.block)
        reader.send(command, extraTime: configuration.block) { [unowned self] result in
            guard generation == readerGeneration else { return }
            switch result {
            case .success(let reply):
                guard let entries = StreamEntry.entries(ofRead: reply) else { return }
                for entry in entries { deliver(entry) }
                if entries.count < configuration.readBatch { hasCaughtUp = true }
                releaseWaiting()
                read(generation)
            case .failure(.server(let message)):
                log(LogLine(.error, "rill serve: XREAD on \(streamKey) failed: \(message); trying again in 1 s"))
                loop.schedule(after: .seconds(1)) { [weak self] in
                    guard let self, generation == readerGeneration else { return }
                    read(generation)
                }
            case .failure:
                break  // the connection is lost: its next one starts reading again
            }
        }
    }

    private func deliver(_ entry: StreamEntry) {
        if let entryEpoch = entry.field("e"), !entryEpoch.elementsEqual((epoch ?? "").utf8) {
            adopt(epoch: String(decoding: entryEpoch, as: UTF8.self))  // flushed under a connected reader
        }
        lastStreamID = entry.id
        guard let epoch, let topicBytes = entry.field("t"), let data = entry.field("d") else { return }
        let topic = String(decoding: topicBytes, as: UTF8.self)
        let id = entry.field("i").map { String(decoding: $0, as: UTF8.self) } ?? epoch + "-" + entry.id
        let name = entry.field("n").map { String(decoding: $0, as: UTF8.self) }
        server.publishedTopics.insert(topic)
        if (try? server.hub.publish(OutgoingEvent(data: data, id: id, name: name), topic: topic)) != nil {
            statistics.delivered += 1
        }
    }

    /// A fresh epoch: the wall clock's seconds and 32 random bits, in base 36 (no `-`).
    static func newEpoch() -> String {
        let seconds = WallClock.nanoseconds() / 1_000_000_000
        return String(seconds, radix: 36) + String(UInt32.random(in: .min ... .max), radix: 36)
    }
}

/// A stream id (`<ms>-<seq>`) as numbers, ordered as Redis orders them.
struct StreamPosition: Comparable {
    let milliseconds: UInt64
    let sequence: UInt64

    init?(_ id: some StringProtocol) {
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let milliseconds = UInt64(parts[0]), let sequence = UInt64(parts[1]) else { return nil }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    static func < (a: StreamPosition, b: StreamPosition) -> Bool {
        (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
    }
}
