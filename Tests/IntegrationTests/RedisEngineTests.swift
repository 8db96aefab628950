import Reactor
import SSE
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// `rill serve --redis`: several nodes (child processes) on one real redis-server.
    @Suite struct RedisEngineTests {
        /// Streams and publications to any node, from one loop here.
        final class NodeClients {
            let loop: EventLoop
            let clients = HTTPClients()

            init() throws { loop = try EventLoop() }

            func stream(_ node: ServeProcess, topic: String = "news", lastEventID: String? = nil) throws -> Connection {
                let connection = try request(node, topic: topic, lastEventID: lastEventID)
                #expect(drive(loop, for: .seconds(10)) { clients.peer(connection).streaming }, "stream opened")
                return connection
            }

            /// Asks for a stream and returns at once.
            func request(_ node: ServeProcess, topic: String = "news", lastEventID: String? = nil) throws -> Connection {
                let connection = try loop.connect(to: SocketAddress("127.0.0.1", port: node.port)!, handler: clients)
                let header = lastEventID.map { "Last-Event-ID: \($0)\r\n" } ?? ""
                connection.write(Array("GET /sse?topic=\(topic) HTTP/1.1\r\nHost: t\r\n\(header)\r\n".utf8))
                return connection
            }

            func publish(_ node: ServeProcess, _ data: String, topic: String = "news") throws -> Response {
                let connection = try loop.connect(to: SocketAddress("127.0.0.1", port: node.port)!, handler: clients)
                connection.write(
                    Array(
                        ("POST /publish?topic=\(topic) HTTP/1.1\r\nHost: t\r\nContent-Length: \(data.utf8.count)\r\n\r\n"
                            + data).utf8))
                drive(loop) { clients.peer(connection).responses.count == 1 || clients.peer(connection).closed }
                connection.close()
                return try #require(clients.peer(connection).responses.first)
            }

            /// Publishes until a 204 (a node that is reconnecting answers 503 meanwhile), at most 10 s.
            func publishStored(_ node: ServeProcess, _ data: String) throws -> Response {
                var response = try publish(node, data)
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(10)
                while response.status != 204 && clock.now < deadline {
                    drive(loop, for: .milliseconds(50)) { false }
                    response = try publish(node, data)
                }
                return response
            }

            func events(_ connection: Connection) -> [ReceivedEvent] { clients.peer(connection).received }
        }

        static func node(_ redis: RedisServerProcess, prefix: String) throws -> ServeProcess {
            try ServeProcess("--redis \(redis.url) --redis-prefix \(prefix) --heartbeat 0.3")
        }

        /// Publications on either node reach subscribers on both in one order with the same ids (the
        /// ids the publishers were answered with); a Last-Event-ID from node A replays on node B.
        /// Node A runs two workers (each a node of its own on Redis): streams on both get it all too.
        @Test(.enabled(if: redisServerInstalled)) func twoNodesOneOrder() throws {
            let redis = try RedisServerProcess()
            let a = try ServeProcess("--redis \(redis.url) --redis-prefix t1 --heartbeat 0.3 --workers 2")
            let b = try Self.node(redis, prefix: "t1")
            #expect(a.banner.contains("engine redis"), "\(a.banner)")
            let nodes = try NodeClients()
            // Streams on A until both of its workers have one (SO_REUSEPORT spreads them).
            var onAByWorker: [String: Connection] = [:]
            for _ in 0..<40 where onAByWorker.count < 2 {
                let stream = try nodes.stream(a)
                onAByWorker[nodes.clients.peer(stream).responses.first?.header("X-Rill-Worker") ?? "?"] = stream
            }
            #expect(onAByWorker.keys.sorted() == ["0", "1"])
            let onA = try #require(onAByWorker["0"])
            let onA1 = try #require(onAByWorker["1"])
            let onB = try nodes.stream(b)
            var published: [String] = []
            for index in 1...20 {
                let response = try nodes.publish(index % 3 == 0 ? b : a, "e\(index)")
                #expect(response.status == 204, "\(response)")
                published.append(response.header("X-Event-Id") ?? "?")
            }
            #expect(drive(nodes.loop) { nodes.events(onA).count == 20 && nodes.events(onB).count == 20 })
            let seenA = nodes.events(onA).map { ($0.lastEventID, $0.dataString) }
            let seenB = nodes.events(onB).map { ($0.lastEventID, $0.dataString) }
            #expect(seenA.elementsEqual(seenB, by: ==), "one order, the same ids on both nodes")
            #expect(drive(nodes.loop) { nodes.events(onA1).count == 20 })
            #expect(nodes.events(onA1).map { ($0.lastEventID, $0.dataString) }.elementsEqual(seenB, by: ==))
            // Each publisher waited for its 204 before the next, so the stream order is the publication order.
            #expect(seenA.map(\.1) == (1...20).map { "e\($0)" })
            #expect(seenA.map(\.0) == published)

            let resumed = try nodes.stream(b, lastEventID: published[4])
            #expect(drive(nodes.loop) { nodes.events(resumed).count == 15 })
            #expect(nodes.events(resumed).map(\.dataString) == (6...20).map { "e\($0)" })
            #expect(b.metric("rill_replays_total") == 1)
            // Another topic's subscriber got none of them.
            let other = try nodes.stream(a, topic: "other")
            _ = try nodes.publish(b, "last")
            #expect(drive(nodes.loop) { nodes.events(onA).count == 21 })
            #expect(nodes.events(other).isEmpty)
            nodes.loop.closeAll()
        }

        /// Redis killed: publications get 503 with Retry-After, streams stay open (heartbeats go on);
        /// connections to Redis cut but data kept: both nodes resume where they were (nothing missed,
        /// nothing twice); Redis restarted empty: a new epoch, and an id from before gets `event: reset`.
        @Test(.enabled(if: redisServerInstalled)) func faults() throws {
            let redis = try RedisServerProcess()
            let a = try Self.node(redis, prefix: "t2")
            let b = try Self.node(redis, prefix: "t2")
            let nodes = try NodeClients()
            let onB = try nodes.stream(b)
            let first = try nodes.publish(a, "before")
            #expect(first.status == 204)
            let firstID = try #require(first.header("X-Event-Id"))

            // Every client connection cut (the nodes' too), the data kept: they reconnect and resume.
            #expect(redis.command("*4\r\n$6\r\nCLIENT\r\n$4\r\nKILL\r\n$4\r\nTYPE\r\n$6\r\nnormal\r\n").hasPrefix(":"))
            for index in 1...5 { #expect(try nodes.publishStored(a, "cut\(index)").status == 204) }
            #expect(drive(nodes.loop) { nodes.events(onB).count == 6 })
            #expect(nodes.events(onB).map(\.dataString) == ["before"] + (1...5).map { "cut\($0)" })

            // Redis gone.
            redis.kill()
            var refused = try nodes.publish(a, "lost")
            for _ in 0..<50 where refused.status == 204 { refused = try nodes.publish(a, "lost") }
            #expect(refused.status == 503)
            #expect(refused.header("Retry-After") == "1")
            let heartbeats = nodes.clients.peer(onB).comments.count
            #expect(drive(nodes.loop, for: .seconds(5)) { nodes.clients.peer(onB).comments.count >= heartbeats + 2 })
            #expect(!nodes.clients.peer(onB).closed, "the stream stays open")
            #expect(a.metric("rill_engine_available") == 0)

            // Back, empty: a new epoch.
            try redis.start()
            let after = try nodes.publishStored(a, "after")
            #expect(after.status == 204)
            #expect(drive(nodes.loop) { nodes.events(onB).last?.dataString == "after" })
            #expect(nodes.events(onB).count == 7, "\(nodes.events(onB).map(\.dataString))")
            let afterID = try #require(after.header("X-Event-Id"))
            #expect(afterID.split(separator: "-").first != firstID.split(separator: "-").first, "a new epoch")

            let stale = try nodes.stream(b, lastEventID: firstID)
            #expect(nodes.clients.peer(stale).responses.first?.header("Rill-Reset") == "epoch")
            #expect(drive(nodes.loop) { nodes.events(stale).count == 1 })
            let reset = try #require(nodes.events(stale).first)
            #expect(reset.type == "reset" && reset.lastEventID == afterID, "\(reset)")
            #expect(b.metric("rill_engine_epoch_changes_total") == 1)
            #expect(b.metric("rill_replay_resets_total{reason=\"epoch\"}") == 1)
            nodes.loop.closeAll()
        }

        /// A Last-Event-ID of this epoch that the node has not read yet (the client comes from a
        /// node that is ahead) waits for the node's reader rather than being reset: once the entry
        /// arrives, the stream opens and replays what follows it; one that never arrives is reset
        /// (unknown) after the wait.
        @Test(.enabled(if: redisServerInstalled)) func aheadOfThisNodeWaits() throws {
            let redis = try RedisServerProcess()
            let node = try Self.node(redis, prefix: "t3")
            let nodes = try NodeClients()
            let first = try #require(try nodes.publish(node, "first").header("X-Event-Id"))
            let epoch = try #require(first.split(separator: "-").first)
            // Stream ids in the future, which this node cannot have read.
            let future = WallClock.nanoseconds() / 1_000_000 + 600_000
            let waiting = try nodes.request(node, lastEventID: "\(epoch)-\(future)-0")
            let never = try nodes.request(node, lastEventID: "\(epoch)-\(future + 1000)-0")
            drive(nodes.loop, for: .milliseconds(300)) { false }
            #expect(!nodes.clients.peer(waiting).streaming, "it waits")
            // Another writer stores that entry and one more, straight into Redis.
            let add = { (id: String, data: String) in
                "*7\r\n$4\r\nXADD\r\n$9\r\nt3:events\r\n$\(id.utf8.count)\r\n\(id)\r\n$1\r\nt\r\n$4\r\nnews\r\n"
                    + "$1\r\nd\r\n$\(data.utf8.count)\r\n\(data)\r\n"
            }
            #expect(redis.command(add("\(future)-0", "there") + add("\(future)-1", "after")).hasPrefix("$"))
            #expect(drive(nodes.loop, for: .seconds(5)) { nodes.events(waiting).count == 1 })
            #expect(nodes.clients.peer(waiting).responses.first?.header("Rill-Reset") == nil)
            #expect(nodes.events(waiting).map(\.dataString) == ["after"])
            #expect(nodes.events(waiting).first?.lastEventID == "\(epoch)-\(future)-1")
            #expect(drive(nodes.loop, for: .seconds(5)) { nodes.clients.peer(never).streaming })
            #expect(nodes.clients.peer(never).responses.first?.header("Rill-Reset") == "unknown")
            #expect(drive(nodes.loop) { nodes.events(never).first?.type == "reset" })
            nodes.loop.closeAll()
        }

        /// Redis loses its data while every connection stays up (FLUSHALL; the same race as a
        /// restart where the command connection is back before the reader): the next publication is
        /// refused rather than stored under the lost epoch's ids, the publisher's node makes a new
        /// epoch, and the other node learns it from the stream: both deliver the new id.
        @Test(.enabled(if: redisServerInstalled)) func flushedUnderConnectedNodes() throws {
            let redis = try RedisServerProcess()
            let a = try Self.node(redis, prefix: "t4")
            let b = try Self.node(redis, prefix: "t4")
            let nodes = try NodeClients()
            let onA = try nodes.stream(a)
            let onB = try nodes.stream(b)
            let first = try nodes.publish(a, "before")
            #expect(first.status == 204)
            let firstEpoch = try #require(first.header("X-Event-Id")?.split(separator: "-").first)

            #expect(redis.command("*1\r\n$8\r\nFLUSHALL\r\n").hasPrefix("+OK"))
            let refused = try nodes.publish(a, "refused")
            #expect(refused.status == 503, "a publication under the lost epoch is refused, not stored")
            let after = try nodes.publishStored(a, "after")
            #expect(after.status == 204)
            let afterID = try #require(after.header("X-Event-Id"))
            #expect(afterID.split(separator: "-").first != firstEpoch, "a new epoch")
            #expect(drive(nodes.loop) { nodes.events(onA).count == 2 && nodes.events(onB).count == 2 })
            for stream in [onA, onB] {
                #expect(nodes.events(stream).map(\.dataString) == ["before", "after"])
                #expect(nodes.events(stream).last?.lastEventID == afterID)
            }
            #expect(a.metric("rill_engine_epoch_changes_total") == 1)
            #expect(b.metric("rill_engine_epoch_changes_total") == 1)
            nodes.loop.closeAll()
        }

        /// Redis unreachable at start: one line naming the address, exit status 1.
        @Test func unreachableAtStart() throws {
            let port = try freeLoopbackPort()
            let rill = ChildProcess.builtProduct("rill")
            let (output, status) = try shell("'\(rill)' serve --port 0 --redis redis://127.0.0.1:\(port) 2>&1")
            #expect(status == 1)
            let lines = output.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("cannot reach Redis at redis://127.0.0.1:\(port)"), "\(output)")
        }
    }
}
