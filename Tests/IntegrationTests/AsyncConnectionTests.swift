@testable import Reactor
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What a server-side handler saw, handed to the test.
private final class Observed: Sendable {
    let bytes = Mutex(0)
    let outOfOrder = Mutex(0)
    let mostBuffered = Mutex(0)
    let mostQueuedAfterWrite = Mutex(0)
    let done = Semaphore()
}

extension Loopback {
    @Suite struct AsyncConnectionTests {
        /// An async echo (handler isolated to its connection) answers 200 round trips byte-exact, at
        /// one loop job per message; the connection closes when the handler returns.
        @Test func asyncEchoOverLoopback() async throws {
            try await expectNoFDLeakAsync {
                let (thread, address) = try LoopThread.start { loop in
                    try loop.listen(on: loopback) { connection in
                        for try await chunk in connection.inbound { try await connection.write(chunk) }
                    }.address
                }
                let client = try BlockingClient(connectingTo: address)
                let rounds = 200
                let jobsBefore = thread.remote.sync { $0.statistics.jobsRun }
                var mismatches = 0
                for round in 0..<rounds {
                    let message = (0..<100).map { patternByte($0 + round) }
                    client.send(message)
                    var echoed: [UInt8] = []
                    while echoed.count < message.count, let chunk = client.receive() { echoed += chunk }
                    if echoed != message { mismatches += 1 }
                }
                let jobs = thread.remote.sync { $0.statistics.jobsRun } - jobsBefore
                #expect(mismatches == 0)
                #expect(jobs <= rounds + 2)
                client.shutdownWrite()
                #expect(client.receive() == nil)  // the handler returned at EOF: closed after the flush
                thread.stopAndJoin()
            }
        }

        /// A consumer that does not read while the producer sends: the server holds at most
        /// `maximumBufferedChunks` chunks (reading pauses, the kernel pushes back), then every byte
        /// arrives in order once the consumer catches up.
        @Test func slowConsumerKeepsTheQueueBounded() async throws {
            try await expectNoFDLeakAsync {
                var loopConfiguration = EventLoop.Configuration()
                loopConfiguration.readBufferSize = 4096
                let configuration = AsyncConnection.Configuration(maximumBufferedChunks: 4, resumeReadingAt: 1)
                let observed = Observed()
                let (go, goContinuation) = AsyncStream<Void>.makeStream()
                let served = Mutex<AsyncConnection?>(nil)
                let (thread, address) = try LoopThread.start(configuration: loopConfiguration) { loop in
                    try loop.listen(on: loopback, configuration: configuration) { connection in
                        served.withLock { $0 = connection }
                        for await _ in go { break }
                        var index = 0
                        var outOfOrder = 0
                        for try await chunk in connection.inbound {
                            for (offset, byte) in chunk.enumerated() where byte != patternByte(index + offset) {
                                outOfOrder += 1
                            }
                            index += chunk.count
                            // Slower than the producer: give the loop a few turns per chunk.
                            await Task.yield()
                        }
                        observed.bytes.withLock { $0 = index }
                        observed.outOfOrder.withLock { $0 = outOfOrder }
                        observed.mostBuffered.withLock { $0 = connection.mostBufferedChunks }
                        observed.done.signal()
                    }.address
                }
                let client = try BlockingClient(connectingTo: address)
                let total = 4 << 20
                let stream = (0..<total).map(patternByte)
                var sent = 0
                // Send without blocking until the server has paused reading with a full queue.
                var paused = false
                for _ in 0..<10_000 where !paused {
                    while sent < total {
                        let count = stream[sent...].withUnsafeBytes {
                            Glibc.send(client.fd, $0.baseAddress, min($0.count, 65_536), Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                        }
                        guard count > 0 else { break }
                        sent += count
                    }
                    if let connection = served.withLock({ $0 }) {
                        paused = try await thread.remote.submit { _ in
                            connection.assumeIsolated { $0.bufferedChunks == configuration.maximumBufferedChunks }
                        }
                    }
                }
                #expect(paused)
                #expect(sent < total)  // the kernel pushed back: the server did not read it all
                goContinuation.yield()
                client.send(Array(stream[sent...]))
                client.shutdownWrite()
                #expect(observed.done.wait(limit: .seconds(60)))
                #expect(observed.bytes.withLock { $0 } == total)
                #expect(observed.outOfOrder.withLock { $0 } == 0)
                #expect(observed.mostBuffered.withLock { $0 } == configuration.maximumBufferedChunks)
                thread.stopAndJoin()
            }
        }

        /// Writes to a reader that is not reading suspend: after each write returns, the queue is
        /// within the high watermark; the reader then gets every byte in order.
        @Test func writesSuspendAboveTheHighWatermark() async throws {
            try await expectNoFDLeakAsync {
                let observed = Observed()
                let total = 4 << 20
                let piece = 64 * 1024
                let blocked = Semaphore()
                let (thread, address) = try LoopThread.start { loop in
                    let high = loop.configuration.writeHighWatermark
                    return (
                        try loop.listen(on: loopback) { connection in
                            connection.loopExecutor.assumeLoop { _ in
                                try? connection.connection?.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: 4096)
                            }
                            var offset = 0
                            var most = 0
                            while offset < total {
                                try await connection.write((offset..<offset + piece).map(patternByte))
                                offset += piece
                                let queued = connection.loopExecutor.assumeLoop { _ in
                                    connection.connection?.queuedBytes ?? 0
                                }
                                if most == 0 && queued > 0 { blocked.signal() }
                                most = max(most, queued)
                            }
                            observed.mostQueuedAfterWrite.withLock { $0 = most }
                            observed.done.signal()
                        }.address, high
                    )
                }
                let client = try BlockingClient(connectingTo: address.0, receiveBuffer: 8192)
                // Not reading until the writer has a queue: with 4 MiB to send it must cross the
                // high watermark, and would pass it if `write` did not suspend.
                #expect(blocked.wait())
                var received = 0
                var outOfOrder = 0
                while let chunk = client.receive() {
                    for (offset, byte) in chunk.enumerated() where byte != patternByte(received + offset) {
                        outOfOrder += 1
                    }
                    received += chunk.count
                }
                #expect(observed.done.wait())
                #expect(received == total)
                #expect(outOfOrder == 0)
                let most = observed.mostQueuedAfterWrite.withLock { $0 }
                #expect(most > 0 && most <= address.1)
                thread.stopAndJoin()
            }
        }

        /// An async client (`remote.connect`) talks to a callback echo server; a refused connect throws.
        @Test func asyncClientAgainstCallbackEcho() async throws {
            try await expectNoFDLeakAsync {
                let (thread, address) = try LoopThread.start { loop in
                    try loop.listen(on: loopback, handler: EchoHandler()).address
                }
                let connection = try await thread.remote.connect(to: address)
                let message = Array("hello, loop".utf8)
                try await connection.write(message)
                var echoed: [UInt8] = []
                for try await chunk in connection.inbound {
                    echoed += chunk
                    if echoed.count >= message.count { break }
                }
                #expect(echoed == message)
                await connection.close()
                #expect(await !connection.isOpen)
                await #expect(throws: AsyncConnectionError.self) { try await connection.write(message) }

                let nobody = SocketAddress(ip: 0x7F00_0001, port: try freeLoopbackPort())
                await #expect(throws: AsyncConnectionError.self) { try await thread.remote.connect(to: nobody) }
                thread.stopAndJoin()
            }
        }
    }
}

/// `expectNoFDLeak` for async bodies.
func expectNoFDLeakAsync(
    _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation
) async rethrows {
    let before = openFDCount()
    try await body()
    // The last reference to a stopped loop (and so its descriptors) may go with a task that the
    // concurrency runtime releases on one of its own threads a moment after the body returns.
    expectBackTo(before, sourceLocation: sourceLocation)
}
