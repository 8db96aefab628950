import HTTP1
import Reactor
import RillServer
import SSE
import SSEHub
#if canImport(Glibc)
import Glibc
#endif

/// One fuzz input's run: a fresh manual-clock loop and server, the steps performed on them, then
/// the invariants. A fresh pair per input keeps every finding reproducible from its input alone.
struct Session {
    let loop: EventLoop
    let server: SSEServer
    var clients: [Client?] = Array(repeating: nil, count: Program.slots)
    /// Clients whose connect succeeded: each must have been accepted (or the listener closed, which
    /// resets those still in its backlog) before the server can be quiet.
    var connected = 0
    /// Timers the loop holds with no client at all (the hub's heartbeat, the ticker): after the
    /// input, exactly these must be left.
    let idleTimers: Int

    init() {
        var loopConfiguration = EventLoop.Configuration()
        // Small reads and batches: requests split across reads, events across batches.
        loopConfiguration.eventBatch = 8
        loopConfiguration.readBufferSize = 512
        loopConfiguration.readsPerWakeup = 2
        loopConfiguration.writeHighWatermark = 4096
        loopConfiguration.writeLowWatermark = 1024
        do {
            loop = try EventLoop(configuration: loopConfiguration, clock: .manual(ManualClock()))
            server = try SSEServer(loop: loop, configuration: Session.configuration)
        } catch {
            fatalError("cannot start the server: \(error)")
        }
        idleTimers = loop.scheduledTimers
    }

    /// Small limits everywhere, so that an input of a few hundred bytes reaches them.
    static let configuration: ServerConfiguration = {
        var configuration = ServerConfiguration()
        configuration.address = SocketAddress(ip: 0x7F00_0001, port: 0)
        configuration.maximumConnections = 8
        configuration.tick = .seconds(1)
        configuration.logInterval = nil
        configuration.staticDirectory = StaticDirectory.path
        configuration.corsOrigin = "*"
        configuration.publishToken = "t0k"
        configuration.headerTimeout = .milliseconds(300)
        configuration.bodyTimeout = .milliseconds(200)
        configuration.minimumBodyRate = 1024
        configuration.idleTimeout = .seconds(1)
        configuration.lingerTimeout = .milliseconds(200)
        configuration.maximumPartialRequestBytes = 2048
        configuration.maximumRequestsPerTurn = 2
        configuration.maximumResponseBytesPerTurn = 1024
        configuration.maximumResponseBytesPerLoopTurn = 4096
        configuration.maximumTopics = 4
        configuration.maximumTopicsPerSubscription = 2
        configuration.limits.requestLine = 512
        configuration.limits.headerSection = 1024
        configuration.limits.headerCount = 16
        configuration.limits.body = 1024
        configuration.limits.chunkLine = 64
        configuration.hub.heartbeat = .milliseconds(100)
        configuration.hub.historyCount = 8
        configuration.hub.historyBytes = 1024
        configuration.hub.historyTotalBytes = 4096
        configuration.hub.maximumQueuedBytes = 4096
        configuration.hub.streamSendBufferBytes = 4096
        configuration.hub.replayEntriesPerSlice = 2
        return configuration
    }()

    static let topics = ["default", "time", "a", "b"]

    // MARK: - Steps

    mutating func perform(_ step: Step) {
        switch step {
        case .open(let slot):
            open(slot)
        case .write(let slot, let bytes, let piece):
            guard let client = open(slot) else { return }
            guard piece > 0 else { return client.send(bytes) }
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + piece)
                client.send(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                start = end
                turn()
            }
        case .shutdownWrite(let slot):
            clients[slot]?.shutdownWrite()
        case .close(let slot):
            clients[slot]?.close()
            clients[slot] = nil
        case .reset(let slot):
            clients[slot]?.reset()
            clients[slot] = nil
        case .drain(let slot):
            clients[slot]?.drain()
        case .toggleReading(let slot):
            clients[slot]?.reading.toggle()
        case .advance(let milliseconds):
            loop.advanceTime(by: .milliseconds(milliseconds))
        case .turn:
            turn()
        case .publish(let topic, let data, let id, let named):
            let event = OutgoingEvent(
                data: Array(data), id: id.map { String(decoding: $0, as: UTF8.self) }, name: named ? "fuzz" : nil)
            _ = try? server.hub.publish(event, topic: Session.topics[topic % Session.topics.count])
        case .beginShutdown:
            server.beginShutdown()
        }
    }

    /// The client on `slot`, connected first if it was not (nil if the server refuses: draining).
    @discardableResult
    private mutating func open(_ slot: Int) -> Client? {
        if let client = clients[slot] { return client }
        clients[slot] = Client(port: server.listener.address.port)
        if clients[slot] != nil { connected += 1 }
        return clients[slot]
    }

    /// One loop turn without waiting, then the reading clients take what arrived.
    private func turn() {
        loop.runOnce(maximumWait: .zero)
        for client in clients { if let client, client.reading { client.drain() } }
    }

    // MARK: - The end of an input

    /// Closes every client end, lets every timeout pass, turns the loop until nothing is left and
    /// traps unless the server holds nothing: no connection, no partial request, no subscriber, no
    /// timer beyond those of an idle server.
    mutating func finish() {
        for slot in clients.indices {
            clients[slot]?.close()
            clients[slot] = nil
        }
        var rounds = 0
        while loop.openConnections > 0 || loop.scheduledTimers > idleTimers
            || (server.listener.isOpen && server.listener.accepted + server.listener.acceptErrors < connected)
        {
            rounds += 1
            check(rounds <= 100, "not quiet after 100 rounds: \(describe())")
            loop.runOnce(maximumWait: .zero)
            loop.advanceTime(by: .milliseconds(500))
        }
        // Tasks the server posted to itself (a yielded connection's resumption) hold the server, and
        // the server holds the loop: a loop dropped before they run is never freed (see
        // Scripts/fuzz/crashes/README.md). Two more turns run them and any they post in turn.
        loop.runOnce(maximumWait: .zero)
        loop.runOnce(maximumWait: .zero)
        check(server.heldConnections == 0, "held connections leaked: \(describe())")
        check(server.partialRequestCount == 0, "partial requests leaked: \(describe())")
        check(server.partialRequestBytes == 0, "partial request bytes leaked: \(describe())")
        check(server.hub.statistics.subscribers == 0, "subscribers leaked: \(describe())")
        check(server.hub.replaysInProgress == 0, "replays leaked: \(describe())")
        if getenv("RILL_FUZZ_TRACE") != nil { print(server.statistics, server.hub.statistics, "rounds \(rounds)") }
        server.beginShutdown()
    }

    private func describe() -> String {
        "open \(loop.openConnections), held \(server.heldConnections), partial \(server.partialRequestCount) "
            + "(\(server.partialRequestBytes) B), subscribers \(server.hub.statistics.subscribers), "
            + "replays \(server.hub.replaysInProgress), accepted \(server.listener.accepted) of \(connected), "
            + "timers \(loop.scheduledTimers) (idle \(idleTimers))"
    }
}

/// A directory with one small file for `/static/` (a static response opens and closes a descriptor).
enum StaticDirectory {
    static let path: String = {
        let path = "/tmp/rill-server-fuzz-static-\(getpid())"
        mkdir(path, 0o755)
        let fd = Glibc.open(path + "/hello.txt", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        check(fd >= 0, "cannot create \(path)/hello.txt")
        let text = Array("hello from the fuzzer\n".utf8)
        _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return path
    }()
}
