import Reactor
import RedisClient
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// The Redis client against a real `redis-server`, and its reconnection on the manual clock.
    @Suite struct RedisClientTests {
        /// Replies come back in order to pipelined commands; error replies are values; XREAD BLOCK on
        /// a second connection wakes for an XADD on the first.
        @Test(.enabled(if: redisServerInstalled)) func commandsAgainstRealRedis() throws {
            try expectNoFDLeak {
                let redis = try RedisServerProcess()
                let loop = try EventLoop()
                let endpoint = RedisEndpoint(address: redis.address, database: 1)
                let commands = RedisConnection(loop: loop, configuration: .init(endpoint: endpoint))
                let reader = RedisConnection(loop: loop, configuration: .init(endpoint: endpoint))
                commands.start()
                reader.start()
                #expect(drive(loop) { commands.isConnected && reader.isConnected })

                var replies: [Result<RESPValue, RedisError>] = []
                commands.send(RedisCommand.ping()) { replies.append($0) }
                commands.send(RedisCommand.set("k", "v")) { replies.append($0) }
                commands.send(RedisCommand.set("k", "w", onlyIfNew: true)) { replies.append($0) }
                commands.send(RedisCommand.get("k")) { replies.append($0) }
                commands.send(RedisCommand.incr("n")) { replies.append($0) }
                commands.send(RedisCommand.incr("k")) { replies.append($0) }
                commands.send(RedisCommand.get("missing")) { replies.append($0) }
                #expect(drive(loop) { replies.count == 7 })
                #expect(replies[0] == .success(.simpleString("PONG")))
                #expect(replies[1] == .success(.simpleString("OK")))
                #expect(replies[2] == .success(.bulk(nil)))
                #expect(replies[3] == .success(.bulk(Array("v".utf8))))
                #expect(replies[4] == .success(.integer(1)))
                if case .failure(.server(let message)) = replies[5] {
                    #expect(message.hasPrefix("ERR"))
                } else {
                    Issue.record("INCR of a string: \(replies[5])")
                }
                #expect(replies[6] == .success(.bulk(nil)))

                var read: [StreamEntry]? = nil
                reader.send(RedisCommand.xread("s", after: "0-0", count: 10, block: .seconds(5)), extraTime: .seconds(5)) {
                    read = (try? $0.get()).flatMap(StreamEntry.entries(ofRead:))
                }
                var ids: [String] = []
                for index in 1...3 {
                    commands.send(RedisCommand.xadd("s", maximumLength: 100, fields: [("d", Array("e\(index)".utf8))])) {
                        if let id = (try? $0.get())?.string { ids.append(id) }
                    }
                }
                #expect(drive(loop) { ids.count == 3 && read != nil })
                #expect(read?.first?.field("d") == Array("e1".utf8))
                var range: [StreamEntry]? = nil
                commands.send(RedisCommand.xrange("s", from: "(" + ids[0], count: 10)) {
                    range = (try? $0.get()).flatMap(StreamEntry.entries(ofRange:))
                }
                #expect(drive(loop) { range != nil })
                #expect(range?.map(\.id) == Array(ids.dropFirst()))
                #expect(range?.map { $0.field("d") } == [Array("e2".utf8), Array("e3".utf8)])
                // Database 1 was selected: database 0 has no key k.
                #expect(redis.command("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") == "$-1\r\n")

                // Redis gone: the state change is reported once, a pending command fails, a new one
                // is refused; Redis back: both reconnect by themselves.
                var changes: [Bool] = []
                commands.onStateChange = { changes.append($0) }
                var blocked: Result<RESPValue, RedisError>? = nil
                reader.send(RedisCommand.xread("s", after: "$", count: 10, block: .seconds(5)), extraTime: .seconds(5)) {
                    blocked = $0
                }
                redis.kill()
                #expect(drive(loop) { changes == [false] && blocked != nil })
                #expect(blocked == .failure(.connectionLost))
                var refused: Result<RESPValue, RedisError>? = nil
                commands.send(RedisCommand.ping()) { refused = $0 }
                #expect(drive(loop) { refused != nil })
                #expect(refused == .failure(.notConnected))
                try redis.start()
                #expect(drive(loop) { commands.isConnected && reader.isConnected })
                #expect(changes == [false, true])
                commands.stop()
                reader.stop()
                redis.kill()
            }
        }

        /// Nobody listening: attempts follow the backoff (100, 200, 400 ms, ... capped), timed by the
        /// manual clock; each failure is reported.
        @Test func reconnectionBacksOff() throws {
            try expectNoFDLeak {
                let loop = try EventLoop(clock: .manual(ManualClock()))
                let port = try freeLoopbackPort()
                var configuration = RedisConnection.Configuration(
                    endpoint: RedisEndpoint(address: SocketAddress(ip: 0x7F00_0001, port: port)))
                configuration.maximumBackoff = .milliseconds(400)
                let client = RedisConnection(loop: loop, configuration: configuration)
                var failures = 0
                client.onConnectFailure = { _ in failures += 1 }
                client.start()
                #expect(drive(loop) { failures == 1 })
                for (index, delay) in [100, 200, 400, 400].enumerated() {
                    loop.advanceTime(by: .milliseconds(delay - 1))
                    loop.runOnce(maximumWait: .zero)
                    #expect(failures == index + 1, "no attempt before \(delay) ms")
                    loop.advanceTime(by: .milliseconds(1))
                    #expect(drive(loop) { failures == index + 2 }, "an attempt after \(delay) ms")
                }
                #expect(client.lastError != nil, "why the last attempt failed")
                client.stop()
                #expect(loop.scheduledTimers == 0)
            }
        }
    }
}

extension Loopback.RedisClientTests {
    /// A server that accepts and never answers (a stopped Redis): the command fails with `.timeout`
    /// once its time passes on the manual clock, the connection is closed as lost and a new one is
    /// attempted after the backoff.
    @Test func silentServerTimesOut() throws {
        final class Silent: ConnectionHandler {
            var accepted = 0
            func connectionDidOpen(_ connection: Connection) { accepted += 1 }
            func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
        }
        try expectNoFDLeak {
            let loop = try EventLoop(clock: .manual(ManualClock()))
            let silent = Silent()
            let listener = try loop.listen(on: loopback, handler: silent)
            var configuration = RedisConnection.Configuration(endpoint: RedisEndpoint(address: listener.address))
            configuration.commandTimeout = .seconds(3)
            let client = RedisConnection(loop: loop, configuration: configuration)
            var changes: [Bool] = []
            client.onStateChange = { changes.append($0) }
            client.start()
            #expect(drive(loop) { client.isConnected && silent.accepted == 1 })
            var reply: Result<RESPValue, RedisError>? = nil
            client.send(RedisCommand.ping()) { reply = $0 }
            loop.advanceTime(by: .milliseconds(2_900))
            loop.runOnce(maximumWait: .zero)
            #expect(reply == nil, "not before its timeout")
            loop.advanceTime(by: .milliseconds(400))
            #expect(drive(loop) { reply != nil })
            #expect(reply == .failure(.timeout))
            #expect(changes == [true, false])
            loop.advanceTime(by: .milliseconds(100))
            #expect(drive(loop) { silent.accepted == 2 && client.isConnected }, "reconnected after the backoff")
            client.stop()
            listener.close()
            loop.closeAll()
        }
    }
}
