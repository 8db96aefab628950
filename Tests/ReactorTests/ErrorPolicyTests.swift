import CEpoll
import Testing
@testable import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Records closes.
private final class Closes: ConnectionHandler {
    var reasons: [CloseReason] = []
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
    func connectionDidClose(_ connection: Connection, reason: CloseReason) { reasons.append(reason) }
}

@Suite struct ErrorPolicyTests {
    /// epoll_ctl refusing a change (here ENOENT; in production ENOMEM) closes that connection with
    /// the error, at the next safe point: never a trap, never a callback inside the caller's call.
    @Test func refusedInterestChangeClosesTheConnection() throws {
        let loop = try EventLoop(clock: .manual(ManualClock()))
        let (left, right) = try EventLoop.makeSocketPair()
        let handler = Closes()
        let connection = try loop.adopt(connectedSocket: left, handler: handler)
        let peer = try loop.adopt(connectedSocket: right, handler: Closes())
        // Take the fd out of the epoll set behind the loop's back: its next epoll_ctl(MOD) fails.
        #expect(cepoll_ctl(loop.epollFD, EPOLL_CTL_DEL, left, 0, 0) == 0)
        connection.pauseReading()
        #expect(handler.reasons.isEmpty, "called back from inside pauseReading")
        #expect(!connection.write(Array("refused".utf8)), "a failed connection takes no writes")
        loop.runOnce(maximumWait: .zero)
        #expect(handler.reasons == [.error(SystemError(operation: "epoll_ctl(mod)", errno: ENOENT))])
        #expect(!connection.isOpen)
        peer.close()
    }
}
