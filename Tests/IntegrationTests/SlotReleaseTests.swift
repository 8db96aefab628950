import Testing
@testable import Reactor
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    @Suite struct SlotReleaseTests {
        /// After many connections have left, the fd table gives back its slots above the highest fd
        /// in use; a connection made again on one of those fds gets a generation no handle of an
        /// earlier owner carries, so the stale handles stay closed.
        @Test func releasedSlotsNeverRenameAStaleHandle() throws {
            try expectNoFDLeak {
                let loop = try EventLoop(clock: .manual(ManualClock()))
                var connections: [Connection] = []
                for _ in 0..<300 {
                    let (left, right) = try EventLoop.makeSocketPair()
                    connections.append(try loop.adopt(connectedSocket: left, handler: RecordedCloses()))
                    connections.append(try loop.adopt(connectedSocket: right, handler: RecordedCloses()))
                }
                let highest = Int(connections.map(\.fd).max()!)
                #expect(loop.slots.count == highest + 1)
                loop.releaseUnusedSlots(minimumEntries: 100)
                #expect(loop.slots.count == highest + 1, "nothing above the highest fd in use yet")
                for connection in connections { connection.close() }
                loop.runOnce(maximumWait: .zero)
                loop.releaseUnusedSlots(minimumEntries: 100)
                #expect(loop.slots.count < highest + 1 - 500, "the slots of the closed connections are given back")
                let (left, right) = try EventLoop.makeSocketPair()
                let again = try loop.adopt(connectedSocket: left, handler: RecordedCloses())
                let peer = try loop.adopt(connectedSocket: right, handler: RecordedCloses())
                let earlier = connections.filter { $0.fd == again.fd || $0.fd == peer.fd }
                #expect(!earlier.isEmpty && earlier.allSatisfy { !$0.isOpen && $0.id != again.id && $0.id != peer.id })
                #expect(again.isOpen && peer.isOpen)
                again.close()
                peer.close()
                loop.closeAll()
            }
        }
    }
}
