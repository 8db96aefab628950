import Reactor
import Testing

/// Server side: counts what each connection was given to read.
private final class ReadCounter: ConnectionHandler {
    var bytes: [Int32: Int] = [:]
    func connection(_ connection: Connection, didRead buffer: UnsafeRawBufferPointer) {
        bytes[connection.fd, default: 0] += buffer.count
    }
}

/// Server side: every read in order (fd and size), so a test sees which came first in a turn.
private final class ReadLog: ConnectionHandler {
    var reads: [(fd: Int32, count: Int)] = []
    var fds: Set<Int32> = []
    func connection(_ connection: Connection, didRead buffer: UnsafeRawBufferPointer) {
        reads.append((connection.fd, buffer.count))
        fds.insert(connection.fd)
    }
}

/// Client side: writes `payload` bytes at once, then waits.
private final class Uploader: ConnectionHandler {
    let payload: [UInt8]
    init(bytes: Int) { payload = [UInt8](repeating: 0x61, count: bytes) }
    func connectionDidOpen(_ connection: Connection) { _ = connection.write(payload) }
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
}

extension Loopback {
    @Suite struct ReadBudgetTests {
        /// Many clients uploading at once (issue 19, attacks 1 and 3): one wake-up reads about
        /// `readBytesPerWakeup`, plus one small read per other ready socket, and a client that sent
        /// a small request is read in the first turn its bytes are ready, not after the flood.
        @Test func oneWakeupReadsABoundedAmountAndEverySocketGetsARead() throws {
            var configuration = EventLoop.Configuration()
            configuration.readBytesPerWakeup = 128 << 10
            try expectNoFDLeak {
                let loop = try EventLoop(configuration: configuration)
                let server = ReadCounter()
                let listener = try loop.listen(on: loopback, handler: server)
                let uploaders = 16
                for _ in 0..<uploaders { _ = try loop.connect(to: listener.address, handler: Uploader(bytes: 1 << 20)) }
                #expect(drive(loop) { server.bytes.count == uploaders })
                _ = try loop.connect(to: listener.address, handler: Uploader(bytes: 100))
                var worstTurn = 0
                var turnsUntilSmallRead = 0
                while !server.bytes.values.contains(100) && turnsUntilSmallRead < 1_000 {
                    let before = loop.statistics.bytesRead
                    loop.runOnce(maximumWait: .milliseconds(20))
                    worstTurn = max(worstTurn, loop.statistics.bytesRead - before)
                    turnsUntilSmallRead += 1
                }
                let done = server.bytes.values.contains(100)
                #expect(done, "the small request was never read")
                // Turns: connecting it, accepting it, reading it (not the flood's 16 MiB first).
                #expect(turnsUntilSmallRead <= 6, "\(turnsUntilSmallRead) turns")
                #expect(
                    worstTurn <= configuration.readBytesPerWakeup + configuration.readBufferSize + (uploaders + 1)
                        * 4096,
                    "\(worstTurn) bytes read in one turn")
                #expect(drive(loop) { server.bytes.values.reduce(0, +) == uploaders * (1 << 20) + 100 })
                listener.close()
                loop.closeAll()
            }
        }

        /// A new client beside a flood (issue 19, attack 1): the turn in which its connection is
        /// ready accepts it before reading any busy connection, and reads its request at once
        /// rather than a turn later, so its answer waits for one turn of the flood, not three.
        @Test func aNewClientIsAcceptedAndReadFirst() throws {
            var configuration = EventLoop.Configuration()
            configuration.readBytesPerWakeup = 128 << 10
            try expectNoFDLeak {
                let loop = try EventLoop(configuration: configuration)
                let server = ReadLog()
                let listener = try loop.listen(on: loopback, handler: server)
                let uploaders = 16
                for _ in 0..<uploaders { _ = try loop.connect(to: listener.address, handler: Uploader(bytes: 4 << 20)) }
                #expect(drive(loop) { server.fds.count == uploaders })
                // Connected by the kernel (the listener's backlog) and its request sent, before the
                // loop has looked: the next turn finds the listener and 16 busy sockets ready.
                let newcomer = try BlockingClient(connectingTo: listener.address)
                newcomer.send([UInt8](repeating: 0x62, count: 100))
                server.reads.removeAll()
                loop.runOnce(maximumWait: .milliseconds(100))
                #expect(server.reads.first?.count == 100, "first reads of the turn: \(server.reads.prefix(3))")
                #expect(server.reads.count > 1, "the flood was read in the same turn")
                listener.close()
                loop.closeAll()
            }
        }
    }
}
