import CEpoll
#if canImport(Glibc)
import Glibc
#endif

/// Connections that did not come from `listen` or `connect`: one end of a socket pair to a child
/// process, or a stream socket inherited as a standard descriptor. Supervisors and their workers
/// talk over these with the same handler API as over TCP.
extension EventLoop {
    /// A connected pair of Unix stream sockets, both close-on-exec (a child gets its end through
    /// `dup2`, which clears the flag on the copy). The caller owns both until one is adopted.
    public static func makeSocketPair() throws(SystemError) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        try syscallChecked("socketpair") {
            Glibc.socketpair(AF_UNIX, CEPOLL_SOCK_STREAM | CEPOLL_SOCK_CLOEXEC, 0, &fds)
        }
        return (fds[0], fds[1])
    }

    /// Registers an already connected stream socket as an open connection: it is made non-blocking
    /// and the loop owns it from now on (closed exactly once, by the loop). `connectionDidOpen` is
    /// not called; the connection is open on return.
    public func adopt(
        connectedSocket fd: Int32, handler: any ConnectionHandler,
        userData: UInt64 = 0
    ) throws(SystemError) -> Connection {
        let socket = OwnedFD(fd)
        let flags = try syscallChecked("fcntl(F_GETFL)") { Glibc.fcntl(socket.raw, F_GETFL) }
        try syscallChecked("fcntl(F_SETFL)") { Glibc.fcntl(socket.raw, F_SETFL, flags | O_NONBLOCK) }
        return try adopt(socket, kind: .connection, handler: handler, userData: userData)
    }
}
