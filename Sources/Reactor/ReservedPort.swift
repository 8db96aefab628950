#if canImport(Glibc)
import Glibc
#endif

/// A TCP port held for processes that will share it: a socket bound with SO_REUSEPORT (and
/// SO_REUSEADDR) but not listening, so it takes no connections, while each process binds its own
/// listener to the same address. Closed when released. For `--port 0` under several workers.
public final class ReservedPort {
    /// The port the kernel chose (or the one asked for).
    public let port: UInt16
    private let fd: Int32

    /// Binds `address` (port 0: any free port) and keeps it until this object goes away.
    public init(_ address: SocketAddress) throws(SystemError) {
        let socket = try Socket.makeTCP()
        try Socket.setOption(socket.raw, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT")
        try Socket.setOption(socket.raw, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
        try Socket.bind(socket.raw, address)
        port = try Socket.localAddress(socket.raw).port
        fd = socket.release()
    }

    deinit { closeDescriptor(fd) }
}
