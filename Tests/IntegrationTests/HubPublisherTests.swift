import Reactor
import SSE
import SSEHub
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Server side on a loop thread: an accepted connection sends one line (`-` or a Last-Event-ID),
/// then is subscribed to topic `t`. Counts subscriptions where the test thread can see them.
final class SubscribeOnFirstLine: ConnectionHandler {
    let hub: Hub
    let subscribed: SubscriptionCount

    init(hub: Hub, subscribed: SubscriptionCount) {
        self.hub = hub
        self.subscribed = subscribed
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        guard !hub.isSubscribed(connection) else { return }
        let line = String(decoding: bytes.prefix { $0 != 10 }, as: UTF8.self)
        hub.subscribe(connection, topics: ["t"], lastEventID: line == "-" ? nil : line)
        subscribed.value.add(1, ordering: .releasing)
    }
    func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
        hub.connectionWritabilityDidChange(connection, isWritable: isWritable)
    }
    func connectionDidClose(_ connection: Connection, reason: CloseReason) { hub.unsubscribe(connection) }
}

/// Subscriptions made so far on one loop, readable from any thread.
final class SubscriptionCount: Sendable {
    let value = Atomic<Int>(0)
    var now: Int { value.load(ordering: .acquiring) }
}

/// Client side, on the test thread's loop: sends its first line on open and parses the stream.
final class EventClients: ConnectionHandler {
    var firstLine = "-"
    var parsers: [Int32: EventStreamParser] = [:]
    var events: [Int32: [ReceivedEvent]] = [:]
    var opened: [Connection] = []

    func connectionDidOpen(_ connection: Connection) {
        opened.append(connection)
        parsers[connection.fd] = EventStreamParser()
        events[connection.fd] = []
        connection.write(Array((firstLine + "\n").utf8))
    }
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        parsers[connection.fd]!.feed(bytes) { item in
            if case .event(let event) = item { events[connection.fd, default: []].append(event) }
        }
    }
    func connectionDidClose(_ connection: Connection, reason: CloseReason) {}

    /// Events of the connections opened with `fds`, as received.
    func streams(_ connections: [Connection]) -> [[ReceivedEvent]] { connections.map { events[$0.fd] ?? [] } }
}

/// Runs `body(index)` on `count` new POSIX threads at once and waits for them all.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Work {
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { (self.body, self.index) = (body, index) }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        var thread = pthread_t()
        let work = Unmanaged.passRetained(Work(body, index)).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { context in
                let work = Unmanaged<Work>.fromOpaque(context!).takeRetainedValue()
                work.body(work.index)
                return nil
            }, work)
        precondition(result == 0, "pthread_create: \(result)")
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// The data of each published event: which publisher, and its count there.
func publication(_ publisher: Int, _ index: Int) -> String { "p\(publisher)-\(index)" }

/// Checks that every stream got every one of `publishers` × `perPublisher` events exactly once, each
/// publisher's in its own order, and that all streams saw one and the same sequence.
func expectOneOrder(
    _ streams: [[ReceivedEvent]], publishers: Int, perPublisher: Int, sourceLocation: SourceLocation = #_sourceLocation
) {
    let expected = Set((0..<publishers).flatMap { p in (0..<perPublisher).map { publication(p, $0) } })
    guard let first = streams.first else {
        Issue.record("no streams", sourceLocation: sourceLocation)
        return
    }
    let order = first.map(\.dataString).filter { $0 != "end" }
    #expect(order.count == expected.count, sourceLocation: sourceLocation)
    #expect(Set(order) == expected, "every event exactly once", sourceLocation: sourceLocation)
    for p in 0..<publishers {
        let mine = order.filter { $0.hasPrefix("p\(p)-") }
        #expect(mine == (0..<perPublisher).map { publication(p, $0) }, "publisher \(p)'s order", sourceLocation: sourceLocation)
    }
    let ids = first.map(\.lastEventID)
    #expect(Set(ids).count == ids.count, "ids are unique", sourceLocation: sourceLocation)
    for stream in streams.dropFirst() {
        #expect(stream.map(\.dataString) == first.map(\.dataString), "one order", sourceLocation: sourceLocation)
        #expect(stream.map(\.lastEventID) == ids, "one set of ids", sourceLocation: sourceLocation)
    }
}

extension Loopback {
    @Suite struct HubPublisherTests {
        static let subscribers = 40
        static let perPublisher = 50

        /// 4 threads and one task publish into one hub on its loop thread: every subscriber gets every
        /// event exactly once, each publisher's in its order, all subscribers in one order.
        @Test func publishesFromThreadsAndATask() async throws {
            let fdsBefore = openFDCount()
            try await publishFromThreadsAndATask()
            // The publisher kept the hub, and so its loop's descriptors, alive until it went.
            #expect(openFDCount() == fdsBefore, "descriptors leaked")
        }

        private func publishFromThreadsAndATask() async throws {
            let subscribed = SubscriptionCount()
            let (thread, (publisher, address)) = try LoopThread.start { loop in
                let hub = Hub(loop: loop)
                let listener = try loop.listen(on: loopback, handler: SubscribeOnFirstLine(hub: hub, subscribed: subscribed))
                return (hub.publisher, listener.address)
            }
            let clientLoop = try EventLoop()
            let clients = EventClients()
            for _ in 0..<Self.subscribers { _ = try clientLoop.connect(to: address, handler: clients) }
            #expect(drive(clientLoop) { subscribed.now == Self.subscribers })

            let perPublisher = Self.perPublisher
            let task = Task {
                var ids: [String] = []
                for index in 0..<perPublisher {
                    let (id, subscribers) = try await publisher.publish(
                        OutgoingEvent(data: publication(4, index)), topic: "t")
                    #expect(subscribers == Self.subscribers)
                    ids.append(id)
                }
                return ids
            }
            runOnThreads(4) { p in
                for index in 0..<perPublisher {
                    try! publisher.publish(OutgoingEvent(data: publication(p, index)), topic: "t")
                }
            }
            let taskIDs = try await task.value
            let (endID, reached) = try await publisher.publish(OutgoingEvent(data: "end"), topic: "t")
            #expect(reached == Self.subscribers)
            #expect(drive(clientLoop) { clients.events.values.allSatisfy { $0.last?.dataString == "end" } })

            let streams = clients.streams(clients.opened)
            expectOneOrder(streams, publishers: 5, perPublisher: perPublisher)
            // The task's ids are those its events arrived with; the hub numbers 1, 2, 3...
            let byData = Dictionary(uniqueKeysWithValues: streams[0].map { ($0.dataString, $0.lastEventID) })
            #expect(taskIDs == (0..<perPublisher).map { byData[publication(4, $0)] ?? "?" })
            #expect(endID == String(5 * perPublisher + 1))

            clientLoop.closeAll()
            thread.stopAndJoin()
        }

        /// A bad event fails on the caller's thread (no loop trip); after a stop, async publishing throws.
        @Test func refusalsAndStops() async throws {
            let fdsBefore = openFDCount()
            try await refuseAndStop()
            #expect(openFDCount() == fdsBefore, "descriptors leaked")
        }

        private func refuseAndStop() async throws {
            let (thread, publisher) = try LoopThread.start { loop in Hub(loop: loop).publisher }
            #expect(throws: EventEncodingError.invalidID) {
                try publisher.publish(OutgoingEvent(data: "x", id: "a\nb"), topic: "t")
            }
            await #expect(throws: EventEncodingError.invalidName) {
                _ = try await publisher.publish(OutgoingEvent(data: "x", name: "a\rb"), topic: "t")
            }
            let (id, subscribers) = try await publisher.publish(OutgoingEvent(data: "x", id: "mine"), topic: "t")
            #expect(id == "mine" && subscribers == 0)
            thread.stopAndJoin()
            await #expect(throws: HubPublisherError.loopStopped) {
                _ = try await publisher.publish(OutgoingEvent(data: "x"), topic: "t")
            }
        }
    }
}
