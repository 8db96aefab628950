@testable import Reactor
@testable import SSEHub
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Unsubscribes what closes.
private final class Unsubscribing: ConnectionHandler {
    var hub: Hub?
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
    func connectionDidClose(_ connection: Connection, reason: CloseReason) { hub?.unsubscribe(connection) }
}

extension Loopback {
    @Suite struct HubReleaseTests {
        /// Once most subscribers have left, the next heartbeat round gives back the hub's membership
        /// table and the loop's fd table above the highest fd in use, and the subscriber lists
        /// their capacity; with most still subscribed nothing is released.
        @Test func tablesShrinkAfterDepartures() throws {
            try expectNoFDLeak {
                let loop = try EventLoop(clock: .manual(ManualClock()))
                var configuration = Hub.Configuration()
                configuration.heartbeat = .seconds(1)
                configuration.streamSendBufferBytes = nil
                let hub = Hub(loop: loop, configuration: configuration)
                let handler = Unsubscribing()
                handler.hub = hub
                var subscribed: [Connection] = []
                var peers: [Connection] = []
                for _ in 0..<1_200 {
                    let (left, right) = try EventLoop.makeSocketPair()
                    let connection = try loop.adopt(connectedSocket: left, handler: handler)
                    hub.subscribe(connection, topics: ["t"])
                    subscribed.append(connection)
                    peers.append(try loop.adopt(connectedSocket: right, handler: Unsubscribing()))
                }
                let peak = (members: hub.members.count, slots: loop.slots.count)
                loop.advanceTime(by: .seconds(1))
                loop.runOnce(maximumWait: .zero)
                #expect(hub.members.count == peak.members && loop.slots.count == peak.slots, "all still subscribed")
                // The first 100 stay (the lowest fds); the rest leave.
                for connection in subscribed[100...] { connection.close() }
                for connection in peers[100...] { connection.close() }
                loop.runOnce(maximumWait: .zero)
                #expect(hub.statistics.subscribers == 100)
                loop.advanceTime(by: .seconds(1))
                loop.runOnce(maximumWait: .zero)
                let highestLeft = Int((subscribed[..<100] + peers[..<100]).map(\.fd).max()!)
                #expect(hub.members.count <= highestLeft + 1)
                #expect(loop.slots.count == highestLeft + 1)
                #expect(hub.topics.allSatisfy { $0.subscribers.capacity <= 256 })
                #expect(subscribed[..<100].allSatisfy { $0.isOpen })
                // The last 100 leave too: fewer than the release's minimum at its peak since the
                // last release, but a release under way carries on down to zero.
                for connection in subscribed[..<100] { connection.close() }
                loop.runOnce(maximumWait: .zero)
                #expect(hub.statistics.subscribers == 0)
                loop.advanceTime(by: .seconds(1))
                loop.runOnce(maximumWait: .zero)
                #expect(hub.members.count == 0)
                loop.closeAll()
            }
        }
    }
}
