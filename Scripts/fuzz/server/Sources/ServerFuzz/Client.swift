#if canImport(Glibc)
import Glibc
#endif

/// One client end: a non-blocking loopback TCP socket to the server's listener, owned by the
/// harness. Its receive buffer is small so that a client that stops reading makes the server's
/// writes back up (backpressure, slow-subscriber drops) within a few kilobytes.
struct Client {
    let fd: Int32
    /// Whether each loop turn drains what the server sent (a client that stopped reading does not).
    var reading = true

    /// Connects (blocking, which on loopback completes at once or is refused), then goes non-blocking.
    init?(port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        precondition(fd >= 0, "socket: errno \(errno)")
        var buffer: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            _ = Glibc.close(fd)  // refused: the server is draining and closed its listener
            return nil
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        self.fd = fd
    }

    /// Sends what the socket takes now; the rest is dropped (the server is not reading, or is gone).
    func send(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        _ = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
    }

    /// Reads and discards what has arrived (bounded, so a chatty server cannot hold the harness).
    func drain() {
        withUnsafeTemporaryAllocation(byteCount: 16 << 10, alignment: 16) { buffer in
            for _ in 0..<16 {
                let count = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
                if count <= 0 { return }
            }
        }
    }

    func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }

    /// Closes with FIN.
    func close() { _ = Glibc.close(fd) }

    /// Closes with RST (SO_LINGER with a zero timeout).
    func reset() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        _ = Glibc.close(fd)
    }
}

/// Open descriptors of this process, from /proc/self/fd (less the directory stream's own).
func openDescriptorCount() -> Int {
    guard let directory = opendir("/proc/self/fd") else { fatalError("opendir(/proc/self/fd): errno \(errno)") }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
        let first = withUnsafeBytes(of: entry.pointee.d_name) { $0[0] }
        if first != UInt8(ascii: ".") { count += 1 }
    }
    return count - 1
}
