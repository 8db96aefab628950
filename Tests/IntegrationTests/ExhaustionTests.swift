import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    @Suite struct ExhaustionTests {
        /// `rill echo` in a child limited to 24 descriptors: past the limit it pauses accepting instead
        /// of spinning or dying, keeps serving the connections it has, and accepts the waiting ones
        /// once descriptors are freed.
        @Test func listenerSurvivesDescriptorExhaustion() throws {
            let rill = ChildProcess.builtProduct("rill")
            #expect(access(rill, X_OK) == 0, "rill is not built at \(rill)")
            try expectNoFDLeak {
                let child = try ChildProcess(cleanShell: "ulimit -n 24 && exec '\(rill)' echo --port 0")
                let banner = try #require(child.readLine())
                #expect(banner.contains("open-file limit 24"))
                let endpoint = try #require(banner.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") })
                let port = try #require(UInt16(endpoint.dropFirst("127.0.0.1:".count).prefix { $0.isNumber }))
                let address = SocketAddress(ip: 0x7F00_0001, port: port)

                // More clients than the child has descriptors; the kernel completes their handshakes
                // into the listen backlog whether or not the server can accept them.
                var clients: [BlockingClient] = []
                for _ in 0..<40 { clients.append(try BlockingClient(connectingTo: address)) }
                var shortTimeout = timeval(tv_sec: 0, tv_usec: 300_000)
                for client in clients {
                    setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &shortTimeout, socklen_t(MemoryLayout<timeval>.size))
                }
                func echoes(_ index: Int) -> Bool {
                    clients[index].send([UInt8(index)])
                    return clients[index].receive(upTo: 1) == [UInt8(index)]
                }
                #expect(echoes(0), "an early client is served")
                #expect(!echoes(39), "the last client cannot have been accepted yet")

                // Free descriptors: the paused listener resumes and serves the waiting clients.
                clients.removeFirst(30)
                var longTimeout = timeval(tv_sec: 5, tv_usec: 0)
                for client in clients {
                    setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &longTimeout, socklen_t(MemoryLayout<timeval>.size))
                }
                // The byte sent to client 39 above is still queued; its echo comes once accepted.
                #expect(clients[9].receive(upTo: 1) == [39])
                #expect(echoes(9))

                clients.removeAll()
                child.signal(SIGTERM)
                let summary = try #require(child.readLine())
                #expect(child.waitForExit() == 0)
                let pauses = summary.split(separator: " ").last.flatMap { Int($0) } ?? 0
                #expect(summary.contains("fd-exhaustion pauses"))
                #expect(pauses >= 1, "\(summary)")
            }
        }
    }
}
