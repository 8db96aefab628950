import Reactor
import SSE
import SSEHub
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Two loops on threads of their own, each listening on the same port (SO_REUSEPORT), with one hub
/// each from a `HubGroup`; `body` gets the group, the per-loop subscription counts and the address.
private func twoLoopScenario(
    _ body: (EventLoopGroup, HubGroup, [SubscriptionCount], SocketAddress) async throws -> Void
) async throws {
    let hubs = HubGroup(count: 2)
    let counts = [SubscriptionCount(), SubscriptionCount()]
    var port: UInt16 = 0
    let group = try EventLoopGroup.start(count: 2) { index, loop in
        let hub = hubs.makeHub(at: index, loop: loop)
        let handler = SubscribeOnFirstLine(hub: hub, subscribed: counts[index])
        let listener = try loop.listen(
            on: SocketAddress(ip: loopback.ip, port: port), reusePort: true, handler: handler)
        port = listener.address.port
    }
    try await body(group, hubs, counts, SocketAddress(ip: loopback.ip, port: port))
    group.stopAndJoin()
}

extension Loopback {
    @Suite struct LoopGroupTests {
        /// Subscribers on both loops of a group get every event published from other threads and a
        /// task, in one order with the same ids; a Last-Event-ID on either loop replays the same events;
        /// a publication from a loop completes on that loop.
        @Test func subscribersOnBothLoops() async throws {
            let fdsBefore = openFDCount()
            try await twoLoopScenario { group, hubs, counts, address in
                let clientLoop = try EventLoop()
                let clients = EventClients()
                // Enough clients that the kernel's spreading gives both loops some.
                var live = 0
                while live < 100 && (live < 20 || counts.contains { $0.now < 5 }) {
                    _ = try clientLoop.connect(to: address, handler: clients)
                    live += 1
                    #expect(drive(clientLoop) { counts[0].now + counts[1].now == live })
                }
                #expect(counts[0].now >= 5 && counts[1].now >= 5, "both loops have subscribers")
                let perPublisher = 30
                let returnedIDs = Mutex<[String: String]>([:])
                let task = Task {
                    for index in 0..<perPublisher {
                        let (id, subscribers) = try await hubs.publish(
                            OutgoingEvent(data: publication(2, index)), topic: "t")
                        #expect(subscribers == live)
                        returnedIDs.withLock { $0[publication(2, index)] = id }
                    }
                }
                runOnThreads(2) { p in
                    for index in 0..<perPublisher {
                        let id = try! hubs.publish(OutgoingEvent(data: publication(p, index)), topic: "t")
                        returnedIDs.withLock { $0[publication(p, index)] = id }
                    }
                }
                try await task.value
                // From loop 1, as an HTTP /publish there would: the completion runs on loop 1.
                let completed = Mutex<(onLoop: Bool, id: String, subscribers: Int)?>(nil)
                let origin = counts[1].now
                group.remote(at: 1).execute { loop in
                    try! hubs.publish(OutgoingEvent(data: "end"), topic: "t", from: 1) { id, subscribers in
                        let onLoop = loop.inLoopThread
                        completed.withLock { $0 = (onLoop, id, subscribers) }
                    }
                }
                #expect(drive(clientLoop) { clients.events.values.allSatisfy { $0.last?.dataString == "end" } })
                #expect(drive(clientLoop) { completed.withLock { $0 != nil } })
                let completion = completed.withLock { $0 }
                #expect(completion?.onLoop == true)
                #expect(completion?.subscribers == origin)
                #expect(completion?.id == String(3 * perPublisher + 1))

                let streams = clients.streams(clients.opened)
                expectOneOrder(streams, publishers: 3, perPublisher: perPublisher)
                let ids = returnedIDs.withLock { $0 }
                for event in streams[0] where event.dataString != "end" {
                    #expect(ids[event.dataString] == event.lastEventID, "the id publish returned")
                }

                // Resuming after the 10th event, on whichever loop: the same events after it.
                let resumeAfter = streams[0][9].lastEventID
                let expected = streams[0].dropFirst(10).map(\.dataString)
                clients.firstLine = resumeAfter
                let before = (counts[0].now, counts[1].now)
                var resumed: [Connection] = []
                while resumed.count < 60 && (resumed.count < 4 || counts[0].now == before.0 || counts[1].now == before.1) {
                    resumed.append(try clientLoop.connect(to: address, handler: clients))
                    let target = before.0 + before.1 + resumed.count
                    #expect(drive(clientLoop) { counts[0].now + counts[1].now == target })
                }
                #expect(counts[0].now > before.0 && counts[1].now > before.1, "replays on both loops")
                #expect(drive(clientLoop) { resumed.allSatisfy { clients.events[$0.fd]?.count == expected.count } })
                for stream in clients.streams(resumed) {
                    #expect(stream.map(\.dataString) == expected)
                    #expect(stream.map(\.lastEventID) == streams[0].dropFirst(10).map(\.lastEventID))
                }
                clientLoop.closeAll()
            }
            #expect(openFDCount() == fdsBefore, "descriptors leaked")
        }

        /// A group's loops all run their setup, take work through their remotes, and stop together.
        @Test func groupRunsAndStops() throws {
            try expectNoFDLeak {
                let ran = Atomic<Int>(0)
                let (group, indices) = try EventLoopGroup.start(count: 3) { index, _ in index }
                #expect(indices == [0, 1, 2])
                #expect(group.count == 3)
                let done = Atomic<Int>(0)
                for remote in group.remotes {
                    remote.execute { loop in
                        if loop.inLoopThread { ran.add(1, ordering: .relaxed) }
                        done.add(1, ordering: .releasing)
                    }
                }
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(10)
                while done.load(ordering: .acquiring) < 3 && clock.now < deadline { sched_yield() }
                #expect(ran.load(ordering: .relaxed) == 3)
                group.stopAndJoin()
            }
        }
    }
}
