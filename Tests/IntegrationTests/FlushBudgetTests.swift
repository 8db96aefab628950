import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Server side: writes `payload` to every accepted connection through a small send buffer, so that
/// most of it is queued in the loop and goes out on EPOLLOUT, flush by flush.
private final class Pusher: ConnectionHandler {
    let payload: [UInt8]
    var connections: [Connection] = []
    init(bytes: Int) { payload = (0..<bytes).map(patternByte) }
    func connectionDidOpen(_ connection: Connection) {
        try? connection.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: 16 << 10)
        connections.append(connection)
        _ = connection.write(payload)
    }
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
}

/// Reads what a client has without blocking; returns the byte count.
private func drain(_ client: BlockingClient) -> Int {
    var buffer = [UInt8](repeating: 0, count: 64 << 10)
    var total = 0
    while true {
        let received = buffer.withUnsafeMutableBytes { recv(client.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard received > 0 else { return total }
        total += received
    }
}

extension Loopback {
    @Suite struct FlushBudgetTests {
        /// Many clients catching up at once (issue 19, attacks 1 and 6): one wake-up flushes queued
        /// bytes until `flushBytesPerWakeup` is spent and leaves the other writable sockets for the
        /// next (here a budget of one byte: one connection flushed per turn); level triggering
        /// reports them again in turn, so every client still gets every byte.
        @Test func oneWakeupFlushesABoundedAmount() throws {
            var configuration = EventLoop.Configuration()
            configuration.flushBytesPerWakeup = 1
            try expectNoFDLeak {
                let loop = try EventLoop(configuration: configuration)
                let bytes = 256 << 10
                let server = Pusher(bytes: bytes)
                let listener = try loop.listen(on: loopback, handler: server)
                let clients = try (0..<8).map { _ in
                    try BlockingClient(connectingTo: listener.address, receiveBuffer: 4096)
                }
                #expect(drive(loop) { server.connections.count == clients.count })
                var received = [Int](repeating: 0, count: clients.count)
                var mostFlushed = 0
                var turns = 0
                while received.reduce(0, +) < clients.count * bytes && turns < 100_000 {
                    for (index, client) in clients.enumerated() { received[index] += drain(client) }
                    let queuedBefore = server.connections.map(\.queuedBytes)
                    loop.runOnce(maximumWait: .milliseconds(5))
                    let flushed = zip(queuedBefore, server.connections.map(\.queuedBytes)).filter { $0.1 < $0.0 }.count
                    mostFlushed = max(mostFlushed, flushed)
                    turns += 1
                }
                #expect(received == [Int](repeating: bytes, count: clients.count), "every client got every byte")
                #expect(mostFlushed == 1, "\(mostFlushed) connections flushed in one turn")
                listener.close()
                loop.closeAll()
            }
        }
    }
}
