import CEpoll
#if canImport(Glibc)
import Glibc
#endif

/// Thin wrappers over the socket calls the reactor makes. Each keeps the C name, goes through the one
/// errno policy in `syscall`, and takes or returns raw descriptors owned elsewhere.
enum Socket {
    /// A non-blocking, close-on-exec IPv4 TCP socket.
    static func makeTCP() throws(SystemError) -> OwnedFD {
        let fd = try syscallChecked("socket") {
            Glibc.socket(AF_INET, CEPOLL_SOCK_STREAM | CEPOLL_SOCK_NONBLOCK | CEPOLL_SOCK_CLOEXEC, 0)
        }
        return OwnedFD(fd)
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ label: String)
        throws(SystemError)
    {
        var value = value
        try syscallChecked("setsockopt(\(label))") {
            Glibc.setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    static func getOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ label: String) throws(SystemError) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        try syscallChecked("getsockopt(\(label))") { Glibc.getsockopt(fd, level, name, &value, &length) }
        return value
    }

    static func bind(_ fd: Int32, _ address: SocketAddress) throws(SystemError) {
        var storage = address.sockaddr
        try syscallChecked("bind(\(address))") {
            withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    static func listen(_ fd: Int32, backlog: Int32) throws(SystemError) {
        try syscallChecked("listen") { Glibc.listen(fd, backlog) }
    }

    /// `.wouldBlock` while the connection is in progress (EINPROGRESS).
    static func connect(_ fd: Int32, _ address: SocketAddress) throws(SystemError) -> IOResult<Int> {
        var storage = address.sockaddr
        return try syscall("connect(\(address))") {
            Int(
                withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                })
        }
    }

    /// One accepted connection, non-blocking and close-on-exec, or `.wouldBlock` when the queue is empty.
    static func accept(_ fd: Int32) throws(SystemError) -> IOResult<Int> {
        try syscall("accept4") { Int(cepoll_accept(fd)) }
    }

    static func localAddress(_ fd: Int32) throws(SystemError) -> SocketAddress {
        try address(fd, "getsockname", Glibc.getsockname)
    }

    static func peerAddress(_ fd: Int32) throws(SystemError) -> SocketAddress {
        try address(fd, "getpeername", Glibc.getpeername)
    }

    private static func address(
        _ fd: Int32, _ label: String,
        _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) throws(SystemError) -> SocketAddress {
        var storage = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try syscallChecked(label) {
            withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
            }
        }
        return SocketAddress(storage)
    }

    /// The pending error of a socket (SO_ERROR), 0 if none. Reading it clears it. If getsockopt
    /// itself fails, its errno is the best account of what went wrong with the socket.
    static func pendingError(_ fd: Int32) -> Int32 {
        do {
            return try getOption(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR")
        } catch {
            return error.errno
        }
    }
}
