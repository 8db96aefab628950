import Reactor
import SSE
import SSEHub
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Server side for hub tests: every accepted connection subscribes at once (no HTTP here).
private final class SubscribeOnAccept: ConnectionHandler {
    let hub: Hub
    var topicsForNext: [String] = ["default"]
    var lastEventIDForNext: String?
    var subscribeOnOpen = true
    /// False plays a buggy server that forgets to unsubscribe.
    var unsubscribeOnClose = true
    var servers: [Connection] = []
    /// The hub's event writes made inside the last `subscribe` (a replay's first slice).
    var writesInSubscribe = 0
    /// The connection's queued bytes right after the last `subscribe`.
    var queuedAfterSubscribe = 0

    init(hub: Hub) { self.hub = hub }

    func connectionDidOpen(_ connection: Connection) {
        servers.append(connection)
        let before = hub.statistics.eventWrites
        if subscribeOnOpen { hub.subscribe(connection, topics: topicsForNext, lastEventID: lastEventIDForNext) }
        writesInSubscribe = hub.statistics.eventWrites - before
        queuedAfterSubscribe = connection.queuedBytes
    }
    func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
        hub.connectionWritabilityDidChange(connection, isWritable: isWritable)
    }
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        if unsubscribeOnClose { hub.unsubscribe(connection) }
    }
}

/// Client side: parses each connection's stream and records events and heartbeat times.
private final class StreamClients: ConnectionHandler {
    var parsers: [Int32: EventStreamParser] = [:]
    var events: [Int32: [ReceivedEvent]] = [:]
    var heartbeats: [Int32: [UInt64]] = [:]
    var opened: [Connection] = []
    var closed = 0
    unowned(unsafe) var loop: EventLoop?

    func connectionDidOpen(_ connection: Connection) {
        opened.append(connection)
        parsers[connection.fd] = EventStreamParser()
    }
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        parsers[connection.fd]!.feed(bytes) { item in
            switch item {
            case .event(let event): events[connection.fd, default: []].append(event)
            case .comment: heartbeats[connection.fd, default: []].append(loop?.now ?? 0)
            case .retry: break
            }
        }
    }
    func connectionDidClose(_ connection: Connection, reason: CloseReason) { closed += 1 }
}

/// A loop with a listener whose connections subscribe to a hub, and clients connected to it.
private func hubScenario(
    clients count: Int, configuration: Hub.Configuration = Hub.Configuration(),
    clock: EventLoop.Clock = .monotonic,
    _ body: (EventLoop, Hub, SubscribeOnAccept, StreamClients, SocketAddress) throws -> Void
) throws {
    let loop = try EventLoop(clock: clock)
    let hub = Hub(loop: loop, configuration: configuration)
    let server = SubscribeOnAccept(hub: hub)
    let listener = try loop.listen(on: loopback, handler: server)
    let clients = StreamClients()
    clients.loop = loop
    for _ in 0..<count { _ = try loop.connect(to: listener.address, handler: clients) }
    #expect(drive(loop) { hub.statistics.subscribers == count && clients.opened.count == count })
    try body(loop, hub, server, clients, listener.address)
    listener.close()
    loop.closeAll()
}

extension Loopback {
    @Suite struct HubTests {
        /// 1,000 subscribers each receive each of 20 events exactly once, in order, from one encoding.
        @Test func fanOutToAThousand() throws {
            try expectNoFDLeak {
                try hubScenario(clients: 1_000) { loop, hub, _, clients, _ in
                    for index in 1...20 {
                        let (id, delivered) = try hub.publish(OutgoingEvent(data: "t=\(index)"), topic: "default")
                        #expect(id == "\(index)")
                        #expect(delivered == 1_000)
                    }
                    #expect(drive(loop) { clients.events.values.reduce(0) { $0 + $1.count } == 20_000 })
                    // A last event as a marker: whatever else was written comes before it.
                    try hub.publish(OutgoingEvent(data: "end"), topic: "default")
                    #expect(drive(loop) { clients.events.values.allSatisfy { $0.last?.dataString == "end" } })
                    #expect(clients.events.count == 1_000)
                    for (_, received) in clients.events {
                        #expect(received.map(\.dataString) == (1...20).map { "t=\($0)" } + ["end"])
                    }
                    #expect(hub.statistics.eventWrites == 21_000)
                }
            }
        }

        /// Subscribers get the topics they asked for, and only those.
        @Test func topics() throws {
            try expectNoFDLeak {
                try hubScenario(clients: 0) { loop, hub, server, clients, address in
                    server.topicsForNext = ["a"]
                    let onlyA = try loop.connect(to: address, handler: clients)
                    #expect(drive(loop) { hub.statistics.subscribers == 1 })
                    server.topicsForNext = ["a", "b"]
                    let both = try loop.connect(to: address, handler: clients)
                    #expect(drive(loop) { hub.statistics.subscribers == 2 })
                    try hub.publish(OutgoingEvent(data: "for a", name: "x"), topic: "a")
                    try hub.publish(OutgoingEvent(data: "for b"), topic: "b")
                    try hub.publish(OutgoingEvent(data: "for c"), topic: "c")
                    // Markers last on both topics: whatever else was written comes before them.
                    try hub.publish(OutgoingEvent(data: "end"), topic: "a")
                    try hub.publish(OutgoingEvent(data: "end"), topic: "b")
                    #expect(
                        drive(loop) {
                            clients.events[both.fd]?.count == 4 && clients.events[onlyA.fd]?.last?.dataString == "end"
                        })
                    #expect(clients.events[onlyA.fd]?.map(\.dataString) == ["for a", "end"])
                    #expect(clients.events[onlyA.fd]?.first?.type == "x")
                    #expect(clients.events[both.fd]?.map(\.dataString) == ["for a", "for b", "end", "end"])
                    #expect(hub.subscriberCount(topic: "b") == 1)
                }
            }
        }

        /// Reconnecting with a Last-Event-ID replays what came after it, then the live stream;
        /// an unknown id gets the live stream only, and is counted.
        @Test func lastEventIDReplay() throws {
            try expectNoFDLeak {
                try hubScenario(clients: 0) { loop, hub, server, clients, address in
                    for index in 1...5 { try hub.publish(OutgoingEvent(data: "e\(index)"), topic: "default") }
                    server.lastEventIDForNext = "2"
                    let resumed = try loop.connect(to: address, handler: clients)
                    #expect(drive(loop) { clients.events[resumed.fd]?.count == 3 })
                    server.lastEventIDForNext = "no-such-id"
                    let fresh = try loop.connect(to: address, handler: clients)
                    #expect(drive(loop) { hub.statistics.subscribers == 2 })
                    try hub.publish(OutgoingEvent(data: "live"), topic: "default")
                    #expect(
                        drive(loop) { clients.events[resumed.fd]?.count == 4 && clients.events[fresh.fd]?.count == 1 })
                    #expect(clients.events[resumed.fd]?.map(\.dataString) == ["e3", "e4", "e5", "live"])
                    #expect(clients.events[resumed.fd]?.last?.lastEventID == "6")
                    #expect(clients.events[fresh.fd]?.map(\.dataString) == ["live"])
                    #expect(hub.statistics.replays == 1)
                    #expect(hub.statistics.replayMisses == 1)
                }
            }
        }

        /// A replay over many full topics is written a slice at a time as the socket drains (a merge by
        /// sequence, no per-client copy): subscribing writes one slice, a client that does not read holds
        /// a bounded queue, and events published mid-replay arrive once, in order, after the history.
        @Test func replayIsIncrementalAndLiveEventsWaitForIt() throws {
            var configuration = Hub.Configuration()
            configuration.heartbeat = .zero
            configuration.historyCount = 300
            configuration.historyBytes = .max
            configuration.maximumQueuedBytes = .max
            let topics = (0..<16).map { "t\($0)" }
            try expectNoFDLeak {
                try hubScenario(clients: 0, configuration: configuration) { loop, hub, server, clients, address in
                    let payload = String(repeating: "h", count: 1_000)
                    for index in 0..<(16 * 300) {
                        try hub.publish(OutgoingEvent(data: payload), topic: topics[index % 16])
                    }
                    server.topicsForNext = topics
                    server.lastEventIDForNext = "1"
                    let stalled = try BlockingClient(connectingTo: address, receiveBuffer: 4096)
                    #expect(drive(loop) { hub.statistics.subscribers == 1 })
                    #expect(
                        server.writesInSubscribe <= configuration.replayEntriesPerSlice,
                        "subscribe wrote the whole history")
                    #expect(
                        server.queuedAfterSubscribe <= 512 * 1024,
                        "subscribe queued \(server.queuedAfterSubscribe) bytes")
                    let reader = try loop.connect(to: address, handler: clients)
                    #expect(drive(loop) { hub.statistics.subscribers == 2 })
                    #expect(server.writesInSubscribe <= configuration.replayEntriesPerSlice)
                    // Live events while both replay: they must wait for the cursor, not overtake it.
                    var live = 0
                    while hub.replaysInProgress == 2 && live < 200 {
                        live += 1
                        try hub.publish(OutgoingEvent(data: "live-\(live)"), topic: topics[live % 16])
                        loop.runOnce(maximumWait: .milliseconds(1))
                    }
                    #expect(live > 0, "the replay finished before any live event")
                    let expected = 16 * 300 - 1 + live
                    #expect(drive(loop) { clients.events[reader.fd]?.count == expected })
                    let ids = clients.events[reader.fd]?.map { UInt64($0.lastEventID) ?? 0 } ?? []
                    #expect(ids == Array(2...UInt64(16 * 300 + live)), "once each, in order")
                    #expect(
                        clients.events[reader.fd]?.suffix(live).map(\.dataString) == (1...live).map { "live-\($0)" })
                    // The client that never reads holds a bounded queue and is still replaying.
                    let stalledServer = server.servers[0]
                    #expect(stalledServer.isOpen && hub.replaysInProgress == 1)
                    #expect(stalledServer.queuedBytes < 1 << 20, "queued \(stalledServer.queuedBytes)")
                    _ = stalled
                }
            }
        }

        /// History has a hub-wide byte budget: big events on many topics evict the hub's oldest first,
        /// the newest stay, emptied topics are reclaimed, and a reconnection naming an evicted id is a miss.
        @Test func historyHasAGlobalBudget() throws {
            var configuration = Hub.Configuration()
            configuration.heartbeat = .zero
            configuration.historyTotalBytes = 1 << 20
            try expectNoFDLeak {
                try hubScenario(clients: 0, configuration: configuration) { loop, hub, server, clients, address in
                    let payload = String(repeating: "m", count: 64 * 1024)
                    for index in 1...200 { try hub.publish(OutgoingEvent(data: payload), topic: "big-\(index)") }
                    #expect(hub.statistics.historyBytes <= 1 << 20)
                    #expect(hub.statistics.historyBytes >= (1 << 20) - 2 * 66 * 1024, "the budget is used, not emptied")
                    #expect(hub.statistics.historyEntries == hub.topicCount, "one event per topic left")
                    #expect(hub.topicCount < 20, "evicted topics with no subscriber are reclaimed")
                    #expect(hub.hasTopic("big-200") && !hub.hasTopic("big-1"))
                    #expect(hub.statistics.historyEvictions == 200 - hub.topicCount)
                    // An evicted id is a miss; a kept one replays.
                    server.topicsForNext = ["big-1"]
                    server.lastEventIDForNext = "1"
                    let missed = try loop.connect(to: address, handler: clients)
                    #expect(drive(loop) { hub.statistics.subscribers == 1 })
                    #expect(hub.statistics.replayMisses == 1 && hub.statistics.replays == 0)
                    server.topicsForNext = ["big-199", "big-200"]
                    server.lastEventIDForNext = "199"
                    let resumed = try loop.connect(to: address, handler: clients)
                    #expect(drive(loop) { clients.events[resumed.fd]?.count == 1 })
                    #expect(clients.events[resumed.fd]?.first?.lastEventID == "200")
                    #expect(hub.statistics.replays == 1)
                    _ = missed
                }
            }
        }

        /// Subscribers that never read are dropped once their unread output (the loop's queue and the
        /// kernel's send queue, kept small by SO_SNDBUF) passes the bound, with a reset; subscribers
        /// that read are never dropped.
        @Test func nonReadersAreResetAndReadersKept() throws {
            var configuration = Hub.Configuration()
            configuration.heartbeat = .zero
            configuration.maximumQueuedBytes = 256 * 1024
            try expectNoFDLeak {
                try hubScenario(clients: 10, configuration: configuration) { loop, hub, server, clients, address in
                    var stalled: [BlockingClient] = []
                    for _ in 0..<60 { stalled.append(try BlockingClient(connectingTo: address, receiveBuffer: 4096)) }
                    #expect(drive(loop) { hub.statistics.subscribers == 70 })
                    let payload = String(repeating: "r", count: 4 * 1024)
                    for index in 1...200 {
                        try hub.publish(OutgoingEvent(data: payload), topic: "default")
                        // The readers read as they would: each event arrives before the next is sent.
                        #expect(
                            drive(loop) {
                                clients.events.values.allSatisfy { $0.count == index } && clients.events.count == 10
                            })
                    }
                    #expect(hub.statistics.slowSubscribersDropped == 60)
                    #expect(hub.statistics.subscribers == 10)
                    #expect(clients.closed == 0, "a reader was dropped")
                    // Each non-reader's socket was reset: after what it had received, ECONNRESET.
                    var resets = 0
                    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                    for client in stalled {
                        var result = 0
                        repeat { result = recv(client.fd, &buffer, buffer.count, 0) } while result > 0
                        if result < 0 && errno == ECONNRESET { resets += 1 }
                    }
                    #expect(resets == 60)
                }
            }
        }

        /// Heartbeats are spread over the interval slice by slice, on a manual clock: every step of
        /// H / slices visits one slice, whose members (dealt round-robin at subscription) get one
        /// heartbeat at its first visit after they subscribed and then once they have been silent for
        /// three quarters of an interval; a subscriber that just got an event is skipped until then.
        @Test func heartbeatsAreSpread() throws {
            var configuration = Hub.Configuration()
            configuration.heartbeat = .milliseconds(400)
            configuration.heartbeatSlices = 8
            let step = Duration.milliseconds(50)
            try expectNoFDLeak {
                try hubScenario(clients: 80, configuration: configuration, clock: .manual(ManualClock())) {
                    loop, hub, server, clients, _ in
                    // Subscriber i is in slice i % 8 (in subscription order); find each one's client.
                    var clientByPort: [UInt16: Int32] = [:]
                    for client in clients.opened { clientByPort[try client.localAddress().port] = client.fd }
                    let sliceClients: [[Int32]] = try (0..<8).map { slice in
                        try server.servers.enumerated().filter { $0.offset % 8 == slice }
                            .map { clientByPort[try $0.element.peerAddress().port]! }
                    }
                    var expected: [Int32: Int] = [:]
                    /// Advances one step, lets the written heartbeats arrive, and compares per client.
                    func stepAndCheck(
                        _ number: Int, beating slice: Int?, sourceLocation: SourceLocation = #_sourceLocation
                    ) {
                        let before = hub.statistics.heartbeats
                        loop.advanceTime(by: step)
                        if let slice { for fd in sliceClients[slice] { expected[fd, default: 0] += 1 } }
                        #expect(
                            hub.statistics.heartbeats - before == (slice == nil ? 0 : 10), "step \(number)",
                            sourceLocation: sourceLocation)
                        // Writes are synchronous: the hub has counted them; wait only for the bytes.
                        #expect(
                            drive(loop) {
                                clients.heartbeats.values.reduce(0) { $0 + $1.count } == hub.statistics.heartbeats
                            },
                            sourceLocation: sourceLocation)
                        let got = Dictionary(
                            uniqueKeysWithValues: clients.opened.map { ($0.fd, clients.heartbeats[$0.fd]?.count ?? 0) })
                        #expect(
                            got == clients.opened.reduce(into: [:]) { $0[$1.fd] = expected[$1.fd, default: 0] },
                            "step \(number)", sourceLocation: sourceLocation)
                    }
                    // Steps 1-15 (50-750 ms): slice 1, ..., 7, 0, 1, ..., 7 in turn: new subscribers
                    // are due at their slice's first visit, then every 400 ms.
                    for number in 1...15 { stepAndCheck(number, beating: number % 8) }
                    // An event at 750 ms to everyone: nobody needs a heartbeat for three quarters
                    // of the interval (the threshold: 300 ms).
                    try hub.publish(OutgoingEvent(data: "news"), topic: "default")
                    #expect(drive(loop) { clients.events.values.reduce(0) { $0 + $1.count } == 80 })
                    // Steps 16-20 (800-1000 ms): slices 0-4 were written to at 750, too recently.
                    for number in 16...20 { stepAndCheck(number, beating: nil) }
                    // Steps 21-22 (1050-1100 ms): slices 5 and 6, silent for 300 ms and 350 ms.
                    for number in 21...22 { stepAndCheck(number, beating: number % 8) }
                    // Steps 23-30 (1150-1500 ms): slice 7, 0, 1, ..., 6: silent for 400 ms or more.
                    for number in 23...30 { stepAndCheck(number, beating: number % 8) }
                    #expect(hub.statistics.heartbeats == 250)
                    #expect(clients.heartbeats.values.allSatisfy { $0.count >= 2 && $0.count <= 4 })
                }
            }
        }

        /// With one slice (an interval under a second) a stream that gets an event every two thirds
        /// of the interval never needs a heartbeat, while a quiet one gets one every interval.
        @Test func busyStreamNeedsNoHeartbeat() throws {
            var configuration = Hub.Configuration()
            configuration.heartbeat = .milliseconds(300)
            try expectNoFDLeak {
                try hubScenario(clients: 0, configuration: configuration, clock: .manual(ManualClock())) {
                    loop, hub, server, clients, address in
                    server.topicsForNext = ["busy"]
                    let busy = try loop.connect(to: address, handler: clients)
                    #expect(drive(loop) { hub.statistics.subscribers == 1 })
                    server.topicsForNext = ["quiet"]
                    let quiet = try loop.connect(to: address, handler: clients)
                    #expect(drive(loop) { hub.statistics.subscribers == 2 })
                    for step in 1...30 {  // 3 s in 100 ms steps; an event every 200 ms on "busy"
                        loop.advanceTime(by: .milliseconds(100))
                        if step % 2 == 0 { try hub.publish(OutgoingEvent(data: "tick"), topic: "busy") }
                    }
                    #expect(
                        drive(loop) {
                            clients.events[busy.fd]?.count == 15
                                && clients.heartbeats[quiet.fd]?.count == hub.statistics.heartbeats
                        })
                    #expect(clients.heartbeats[busy.fd] == nil)
                    #expect(hub.statistics.heartbeats == 10)
                }
            }
        }

        /// A subscriber whose connection closed without `unsubscribe` never reaches the next owner of
        /// its fd: the hub names connections by identity (fd and generation), not by fd.
        @Test func closedSubscriberNeverReachesTheFDsNextOwner() throws {
            var configuration = Hub.Configuration()
            configuration.heartbeat = .milliseconds(400)
            try expectNoFDLeak {
                try hubScenario(clients: 1, configuration: configuration, clock: .manual(ManualClock())) {
                    loop, hub, server, clients, address in
                    server.unsubscribeOnClose = false
                    server.subscribeOnOpen = false
                    // Connected in the kernel's backlog before the old fd is freed, so that its
                    // socket does not take that fd; the loop's accept does.
                    let newcomer = try BlockingClient(connectingTo: address)
                    let old = server.servers[0]
                    old.close()
                    #expect(drive(loop) { server.servers.count == 2 })
                    let next = server.servers[1]
                    #expect(next.fd == old.fd, "the accepted socket did not reuse the fd")
                    #expect(hub.isSubscribed(old))
                    #expect(!hub.isSubscribed(next))
                    #expect(try hub.publish(OutgoingEvent(data: "not for you"), topic: "default").subscribers == 0)
                    loop.advanceTime(by: .seconds(1))  // heartbeat rounds pass over its slice too
                    #expect(hub.statistics.heartbeats == 0)
                    // The stale membership is gone once the hub came across it.
                    #expect(hub.statistics.subscribers == 0)
                    #expect(!hub.isSubscribed(old))
                    // Everything the server wrote to the newcomer comes before this marker: nothing.
                    next.write(Array("end".utf8))
                    next.closeAfterFlush()
                    #expect(drive(loop) { !next.isOpen })
                    #expect(String(decoding: newcomer.receiveAll(), as: UTF8.self) == "end")
                    #expect(drive(loop) { clients.closed == 1 })
                }
            }
        }

        /// Topics nobody subscribes to and that keep no history are reclaimed, so subscribing to made-up
        /// names and leaving does not use the topic limit up; reused ids never confuse live members.
        @Test func unusedTopicsAreReclaimed() throws {
            try expectNoFDLeak {
                try hubScenario(clients: 0) { loop, hub, server, clients, address in
                    server.topicsForNext = ["keep", "shared"]
                    let keeper = try loop.connect(to: address, handler: clients)
                    #expect(drive(loop) { hub.statistics.subscribers == 1 })
                    var passers: [Connection] = []
                    for index in 0..<50 {
                        server.topicsForNext = ["made-up-\(index)", "shared"]
                        passers.append(try loop.connect(to: address, handler: clients))
                        #expect(drive(loop) { hub.statistics.subscribers == index + 2 })
                    }
                    #expect(hub.topicCount == 52)
                    for passer in passers { passer.close() }
                    #expect(drive(loop) { hub.statistics.subscribers == 1 })
                    #expect(hub.topicCount == 2, "made-up topics are reclaimed when their last subscriber leaves")
                    #expect(!hub.hasTopic("made-up-7"))
                    // New topics take the freed ids; the keeper's topics are untouched.
                    for index in 0..<10 { try hub.publish(OutgoingEvent(data: "n\(index)"), topic: "new-\(index)") }
                    #expect(hub.topicCount == 12, "a topic with history stays")
                    try hub.publish(OutgoingEvent(data: "k"), topic: "keep")
                    try hub.publish(OutgoingEvent(data: "s"), topic: "shared")
                    #expect(drive(loop) { clients.events[keeper.fd]?.count == 2 })
                    #expect(clients.events[keeper.fd]?.map(\.dataString) == ["k", "s"])
                    #expect(hub.subscriberCount(topic: "keep") == 1 && hub.subscriberCount(topic: "new-3") == 0)
                }
            }
        }

        /// A subscriber that stops reading is dropped past the queue limit; the others get everything.
        @Test func slowSubscriberIsDropped() throws {
            var configuration = Hub.Configuration()
            configuration.maximumQueuedBytes = 256 * 1024
            configuration.heartbeat = .zero
            try expectNoFDLeak {
                try hubScenario(clients: 3, configuration: configuration) { loop, hub, server, clients, address in
                    let stalled = try BlockingClient(connectingTo: address, receiveBuffer: 4096)
                    #expect(drive(loop) { hub.statistics.subscribers == 4 })
                    _ = stalled
                    // Loopback send buffers grow to 4 MiB: keep publishing until the stalled one is out.
                    let payload = String(repeating: "x", count: 16 * 1024)
                    var published = 0
                    while hub.statistics.slowSubscribersDropped == 0 && published < 2_000 {
                        try hub.publish(OutgoingEvent(data: payload), topic: "default")
                        published += 1
                        loop.runOnce(maximumWait: .milliseconds(1))
                    }
                    #expect(
                        drive(loop) {
                            clients.events.count == 3 && clients.events.values.allSatisfy { $0.count == published }
                        })
                    #expect(hub.statistics.slowSubscribersDropped == 1)
                    #expect(hub.statistics.subscribers == 3)
                    #expect(server.servers.count == 4)
                }
            }
        }
    }
}
