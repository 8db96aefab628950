import Reactor
import RillServer
import SSE
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback.WorkersTests {
    /// Keep-alive connections whose publications are answered while one worker is stopped: they
    /// are on the other one.
    static func healthyPublishers(_ clients: Clients, count: Int) throws -> [Connection] {
        var healthy: [Connection] = []
        for attempt in 0..<40 where healthy.count < count {
            let connection = try clients.loop.connect(to: clients.address, handler: clients.clients)
            let body = "probe\(attempt)"
            connection.write(
                Array("POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
            _ = drive(clients.loop, for: .milliseconds(300)) { !clients.clients.peer(connection).responses.isEmpty }
            if clients.clients.peer(connection).responses.first?.status == 204 {
                healthy.append(connection)
            } else {
                connection.close()
            }
        }
        return healthy
    }

    /// Publishes `data` on keep-alive `connection`; the status, nil if no answer within `limit`.
    static func publish(_ clients: Clients, on connection: Connection, _ data: String, limit: Duration) -> Int? {
        let peer = clients.clients.peer(connection)
        let before = peer.responses.count
        connection.write(
            Array("POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: \(data.utf8.count)\r\n\r\n\(data)".utf8))
        guard drive(clients.loop, for: limit, until: { peer.responses.count > before }) else { return nil }
        return peer.responses[before].status
    }

    /// Item 8: a stopped (SIGSTOP) worker does not stall publications through the other, is killed
    /// once it has been silent past `--worker-liveness`, and its new instance replays everything.
    @Test func silentWorkerIsKilledAndRestarted() throws {
        let serve = try ServeProcess("--workers 2 --tick 0 --heartbeat 0 --worker-liveness 3 --epoch-base 0")
        let clients = try Clients(port: serve.port)
        let stopped = try #require(Self.children(of: serve.child.pid).first)
        kill(stopped, SIGSTOP)
        defer { kill(stopped, SIGCONT) }
        let publishers = try Self.healthyPublishers(clients, count: 2)
        #expect(publishers.count == 2)
        var rounds = 0
        // Publishes through the healthy worker, a round per look, until the stopped one is gone.
        eventually(timeout: .seconds(10)) {
            for publisher in publishers {
                let status = Self.publish(clients, on: publisher, "event \(rounds)", limit: .seconds(1))
                #expect(status == 204, "round \(rounds)")
            }
            rounds += 1
            return !Self.children(of: serve.child.pid).contains(stopped)
        }
        #expect(!Self.children(of: serve.child.pid).contains(stopped), "the stopped worker was killed")
        #expect(Self.awaitRestart(serve, without: stopped))

        // Every id after the first probe's, on either worker.
        let published = Int(try #require(clients.clients.peer(publishers.last!).responses.last?.header("X-Event-Id")))!
        let byWorker = try Self.streamsOnBothWorkers(clients, lastEventID: "1")
        #expect(byWorker.keys.sorted() == ["0", "1"], "\(byWorker.mapValues(\.count))")
        let streams = byWorker.values.flatMap { $0 }
        _ = drive(clients.loop, for: .seconds(5)) { streams.allSatisfy { clients.events($0).count >= published - 1 } }
        for (worker, streams) in byWorker {
            for stream in streams {
                #expect(
                    clients.events(stream).map(\.lastEventID) == (2...published).map { "\($0)" }, "worker \(worker)")
            }
        }
        serve.child.signal(SIGTERM)
        #expect(serve.child.waitForExit() == 0)
        clients.loop.closeAll()
    }

    /// Item 8: a stopped worker's channel queue is bounded (`--worker-queue-limit`): past it the
    /// worker is killed, long before the liveness deadline, while publications through the other go on.
    @Test func workerThatStopsReadingIsKilledPastItsQueueBound() throws {
        let serve = try ServeProcess(
            "--workers 2 --tick 0 --heartbeat 0 --worker-liveness 60 --worker-queue-limit 64k --max-body 16k")
        let clients = try Clients(port: serve.port)
        let stopped = try #require(Self.children(of: serve.child.pid).first)
        kill(stopped, SIGSTOP)
        defer { kill(stopped, SIGCONT) }
        let publishers = try Self.healthyPublishers(clients, count: 1)
        #expect(publishers.count == 1)
        let event = String(repeating: "q", count: 8192)
        var published = 0
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(15)
        // 2 MB in all is past the kernel's socket buffer and the bound by far.
        while published < 250 && Self.children(of: serve.child.pid).contains(stopped) && clock.now < deadline {
            #expect(
                Self.publish(clients, on: publishers[0], event, limit: .seconds(1)) == 204, "publication \(published)")
            published += 1
        }
        #expect(!Self.children(of: serve.child.pid).contains(stopped), "killed after \(published) publications")
        #expect(Self.awaitRestart(serve, without: stopped))
        serve.child.signal(SIGTERM)
        #expect(serve.child.waitForExit() == 0)
        clients.loop.closeAll()
    }
}
