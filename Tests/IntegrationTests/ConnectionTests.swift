import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Client side of the echo test: each connection sends a message, waits for its echo, `rounds` times.
private final class EchoClients: ConnectionHandler {
    let rounds: Int
    let messageSize: Int
    var buffers: [Int32: [UInt8]] = [:]
    var roundsDone: [Int32: Int] = [:]
    var finished = 0
    var mismatches = 0
    var failures: [CloseReason] = []

    init(rounds: Int, messageSize: Int) {
        self.rounds = rounds
        self.messageSize = messageSize
    }

    func message(for connection: Connection, round: Int) -> [UInt8] {
        (0..<messageSize).map { patternByte($0 + Int(connection.fd) * 7 + round) }
    }

    func connectionDidOpen(_ connection: Connection) {
        roundsDone[connection.fd] = 0
        connection.write(message(for: connection, round: 0))
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        buffers[connection.fd, default: []] += bytes
        guard buffers[connection.fd]!.count >= messageSize else { return }
        let round = roundsDone[connection.fd]!
        if buffers[connection.fd]! != message(for: connection, round: round) { mismatches += 1 }
        buffers[connection.fd] = []
        roundsDone[connection.fd] = round + 1
        if round + 1 == rounds {
            finished += 1
            connection.close()
        } else {
            connection.write(message(for: connection, round: round + 1))
        }
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        if reason != .local { failures.append(reason) }
    }
}

/// Streams `total` pattern bytes as fast as the watermarks allow, then closes after the flush.
private final class StreamWriter: ConnectionHandler {
    let total: Int
    let sendBuffer: Int32
    var sent = 0
    var transitions: [Bool] = []
    /// How the first connection closed.
    var closeReason: CloseReason?
    /// Signalled on every close.
    let closed = Semaphore()
    /// Signalled when the queue first crosses the high watermark.
    let blocked = Semaphore()

    init(total: Int, sendBuffer: Int32 = 4096) {
        self.total = total
        self.sendBuffer = sendBuffer
    }

    func connectionDidOpen(_ connection: Connection) {
        try? connection.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: sendBuffer)
        pump(connection)
    }

    private func pump(_ connection: Connection) {
        var chunkIndex = 0
        while sent < total && connection.isWritable {
            let count = min(16_384 + chunkIndex % 7, total - sent)
            let chunk = (sent..<sent + count).map(patternByte)
            // Alternate the copying path and the by-reference path.
            let accepted = chunkIndex % 2 == 0 ? connection.write(chunk) : connection.write(SharedBytes(chunk))
            guard accepted else { return }
            sent += count
            chunkIndex += 1
        }
        if sent == total { connection.closeAfterFlush() }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}

    func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
        if !isWritable && !transitions.contains(false) { blocked.signal() }
        transitions.append(isWritable)
        if isWritable { pump(connection) }
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        if closeReason == nil { closeReason = reason }  // the first connection's
        closed.signal()
    }
}

extension Loopback {
    @Suite struct ConnectionTests {
        /// 1,000 concurrent connections in one loop (both ends in it) echo five rounds each, byte-exact.
        @Test func echoAcrossAThousandConnections() throws {
            ResourceLimits.raiseOpenFilesToHardLimit()
            try expectNoFDLeak {
                let loop = try EventLoop()
                let listener = try loop.listen(on: loopback, handler: EchoHandler())
                let clients = EchoClients(rounds: 5, messageSize: 300)
                for _ in 0..<1_000 {
                    _ = try loop.connect(to: listener.address, handler: clients)
                }
                #expect(drive(loop, for: .seconds(60)) { clients.finished + clients.failures.count == 1_000 })
                #expect(clients.finished == 1_000)
                #expect(clients.mismatches == 0)
                #expect(clients.failures.isEmpty)
                #expect(listener.accepted == 1_000)
                // The server side sees the clients' FIN and closes in turn.
                #expect(drive(loop) { loop.openConnections == 0 })
                listener.close()
            }
        }

        /// Against a reader with tiny buffers, writes go partial, the rest is queued, the watermarks
        /// flip both ways, and every byte arrives in order before the close.
        @Test func slowReaderGetsEveryByteInOrder() throws {
            try expectNoFDLeak {
                let writer = StreamWriter(total: 4 << 20)
                let (thread, address) = try LoopThread.start { loop in
                    try loop.listen(on: loopback, handler: writer).address
                }
                let client = try BlockingClient(connectingTo: address, receiveBuffer: 4096)
                // Read nothing until the writer has queued past the high watermark: the reader is
                // slow by construction, not by sleeping.
                #expect(writer.blocked.wait())
                var received = 0
                var outOfOrder = 0
                while let chunk = client.receive(upTo: 3000) {
                    for byte in chunk {
                        if byte != patternByte(received) { outOfOrder += 1 }
                        received += 1
                    }
                }
                #expect(writer.closed.wait())
                thread.stopAndJoin()
                #expect(received == 4 << 20)
                #expect(outOfOrder == 0)
                #expect(writer.transitions.contains(false))
                #expect(writer.transitions.contains(true))
                #expect(writer.closeReason == .local)
            }
        }

        /// A peer that resets while the server is mid-write closes the connection with `.reset`,
        /// and the loop carries on serving others.
        @Test func peerResetMidWrite() throws {
            try expectNoFDLeak {
                let writer = StreamWriter(total: 256 << 20)
                let (thread, address) = try LoopThread.start { loop in
                    try loop.listen(on: loopback, handler: writer).address
                }
                do {
                    let client = try BlockingClient(connectingTo: address, receiveBuffer: 4096)
                    _ = client.receive(upTo: 1000)
                    client.reset()
                }
                #expect(writer.closed.wait())
                // Still serving.
                let second = try BlockingClient(connectingTo: address)
                #expect(second.receive(upTo: 10)?.isEmpty == false)
                thread.stopAndJoin()
                #expect(writer.closeReason == .reset)
            }
        }

        /// After the peer half-closes, the server still writes, then half-closes too; both ends see
        /// everything, and the connection then closes with `.eof`.
        @Test func halfClose() throws {
            try expectNoFDLeak {
                let server = Recorder()
                let closed = Semaphore()
                server.onRead = { connection, bytes in connection.write(bytes) }
                server.onEOF = { connection in
                    connection.write(Array("bye".utf8))
                    connection.shutdownWrite()
                }
                final class CloseWatcher: ConnectionHandler {
                    let inner: Recorder, closed: Semaphore
                    init(_ inner: Recorder, _ closed: Semaphore) {
                        self.inner = inner
                        self.closed = closed
                    }
                    func connectionDidOpen(_ c: Connection) { inner.connectionDidOpen(c) }
                    func connection(_ c: Connection, didRead b: UnsafeRawBufferPointer) {
                        inner.connection(c, didRead: b)
                    }
                    func connectionDidReadEOF(_ c: Connection) { inner.connectionDidReadEOF(c) }
                    func connectionDidClose(_ c: Connection, reason: CloseReason) {
                        inner.connectionDidClose(c, reason: reason)
                        closed.signal()
                    }
                }
                let (thread, address) = try LoopThread.start { loop in
                    try loop.listen(on: loopback, handler: CloseWatcher(server, closed)).address
                }
                do {
                    let client = try BlockingClient(connectingTo: address)
                    client.send(Array("hello".utf8))
                    client.shutdownWrite()
                    #expect(String(decoding: client.receiveAll(), as: UTF8.self) == "hellobye")
                }
                #expect(closed.wait())
                thread.stopAndJoin()
                server.onRead = nil
                server.onEOF = nil
                #expect(server.eofs.count == 1)
                #expect(server.closes.map(\.1) == [.eof])
            }
        }

        /// Outgoing connections: from a chosen source address, with bytes queued before the connect
        /// completes, refused, and timed out.
        @Test func connector() throws {
            try expectNoFDLeak { try connectorScenario() }
        }

        /// A socket pair adopted by two loops (as a supervisor and its worker do): bytes both ways,
        /// the far end's close is seen, and both descriptors are closed once.
        @Test func adoptedSocketPair() throws {
            try expectNoFDLeak {
                let loop = try EventLoop()
                let (left, right) = try EventLoop.makeSocketPair()
                let a = Recorder()
                let b = EchoHandler()
                let leftConnection = try loop.adopt(connectedSocket: left, handler: a)
                let rightConnection = try loop.adopt(connectedSocket: right, handler: b)
                #expect(leftConnection.isOpen && rightConnection.isOpen)
                let message = (0..<100_000).map(patternByte)
                #expect(leftConnection.write(message))
                #expect(drive(loop) { a.received[left]?.count == message.count })
                #expect(a.received[left] == message)
                rightConnection.close()
                #expect(drive(loop) { a.closes.count == 1 })
                #expect(a.closes.map(\.1) == [.eof])  // a Unix socket reports the hang-up at once
            }
        }

        /// No callback runs inside a call the handler made: a write that crosses the high watermark
        /// reports it after the write returns, at the loop's next safe point, in order with the
        /// drain that follows.
        @Test func writabilityIsReportedAfterTheWrite() throws {
            try expectNoFDLeak {
                let loop = try EventLoop()
                let server = Recorder()
                let listener = try loop.listen(on: loopback, handler: server)
                let client = try BlockingClient(connectingTo: listener.address, receiveBuffer: 4096)
                #expect(drive(loop) { server.opened.count == 1 })
                let connection = server.opened[0]
                try connection.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: 4096)
                var insideWrites = false
                var reentered = false
                server.onWritability = { _, _ in if insideWrites { reentered = true } }
                // 512 KiB written in one go, like a hub's round: far past the 256 KiB high watermark.
                let chunk = [UInt8](repeating: 7, count: 64 * 1024)
                insideWrites = true
                for _ in 0..<8 { #expect(connection.write(chunk)) }
                insideWrites = false
                #expect(!connection.isWritable)
                #expect(server.writability.isEmpty, "reported from inside write")
                loop.runOnce(maximumWait: .zero)
                #expect(server.writability == [false])
                // The client drains; the loop flushes and reports writable again.
                var drained = 0
                var buffer = [UInt8](repeating: 0, count: 65_536)
                #expect(
                    drive(loop) {
                        let count = buffer.withUnsafeMutableBytes {
                            recv(client.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
                        }
                        if count > 0 { drained += count }
                        return server.writability.count == 2
                    })
                #expect(server.writability == [false, true])
                #expect(!reentered)
                server.onWritability = nil
                listener.close()
                loop.closeAll()
            }
        }

        /// Writes to a closed handle are refused, and closing twice calls back once.
        @Test func staleHandles() throws {
            try expectNoFDLeak {
                let loop = try EventLoop()
                let server = Recorder()
                let listener = try loop.listen(on: loopback, handler: server)
                let client = try BlockingClient(connectingTo: listener.address)
                #expect(drive(loop) { server.opened.count == 1 })
                let connection = server.opened[0]
                #expect(connection.isOpen)
                connection.close()
                connection.close()
                #expect(!connection.isOpen)
                #expect(!connection.write(Array("late".utf8)))
                #expect(server.closes.count == 1)
                #expect(client.receive() == nil)  // EOF
                listener.close()
            }
        }
    }
}

/// Outgoing connections: from a chosen source address, with bytes queued before the connect
/// completes, refused, and timed out.
private func connectorScenario() throws {
    // A manual clock: the connect timeout below fires when the test says, not after a real wait.
    let loop = try EventLoop(clock: .manual(ManualClock()))
    let server = Recorder()
    let listener = try loop.listen(on: loopback, handler: server)
    let client = Recorder()

    let source = SocketAddress("127.0.0.2", port: 0)!
    let outgoing = try loop.connect(to: listener.address, from: source, handler: client)
    #expect(outgoing.write(Array("early".utf8)))  // queued while connecting
    #expect(drive(loop) { client.opened.count == 1 && server.received.values.first?.count == 5 })
    #expect(try outgoing.localAddress().host == "127.0.0.2")
    #expect(try server.opened[0].peerAddress().host == "127.0.0.2")
    #expect(server.received.values.first == Array("early".utf8))

    // Refused: nothing listens on a port that was just freed.
    let closedPort = try loop.listen(on: loopback, handler: Recorder())
    let freeAddress = closedPort.address
    closedPort.close()
    let refused: CloseReason
    do {
        _ = try loop.connect(to: freeAddress, handler: client)
        drive(loop) { client.closes.count == 1 }
        refused = client.closes.first?.1 ?? .local
    } catch {
        refused = .connectFailed(error)  // found at once
    }
    #expect(refused == .connectFailed(SystemError(operation: "connect", errno: ECONNREFUSED)))

    // Timed out: a listener that never accepts and whose queue is full drops our SYN.
    let silent = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    defer { Glibc.close(silent) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(silent, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    Glibc.listen(silent, 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(silent, $0, &length) }
    }
    let silentAddress = SocketAddress(ip: 0x7F00_0001, port: UInt16(bigEndian: address.sin_port))
    let fillers = Recorder()
    for _ in 0..<4 { _ = try loop.connect(to: silentAddress, timeout: nil, handler: fillers) }
    // A backlog of 0 holds one connection: once it is open the others' SYNs are being dropped.
    #expect(drive(loop) { fillers.opened.count == 1 })
    let timedOut = Recorder()
    _ = try loop.connect(to: silentAddress, timeout: .milliseconds(300), handler: timedOut)
    loop.runOnce(maximumWait: .milliseconds(1))
    loop.advanceTime(by: .milliseconds(299))
    #expect(timedOut.closes.isEmpty)
    loop.advanceTime(by: .milliseconds(1))
    #expect(timedOut.closes.count == 1)
    #expect(timedOut.closes.first?.1 == .connectFailed(SystemError(operation: "connect", errno: ETIMEDOUT)))
    #expect(timedOut.opened.isEmpty)

    listener.close()
    loop.closeAll()
}
