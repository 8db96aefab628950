import Reactor
import Testing
import Workers
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// `rill load --agent`: agents (`rill load agent`) on other loopback addresses, as child processes.
    @Suite struct AgentTests {
        private var rill: String { ChildProcess.builtProduct("rill") }

        /// `rill load agent` on `host`, on a port it picks; its address from its first line.
        final class Agent {
            let child: ChildProcess
            let address: String

            init(_ rill: String, host: String, token: String = "s3cret") throws {
                child = try ChildProcess(cleanShell: "exec '\(rill)' load agent --listen \(host):0 --token \(token)")
                let banner = try #require(child.readLine(), "rill load agent printed no startup line")
                let words = banner.split(separator: " ")
                let on = try #require(words.firstIndex(of: "on"), "\(banner)")
                address = String(words[on + 1].dropLast())  // "127.0.0.3:41234,"
            }

            /// Stops the agent (SIGTERM); its exit status.
            func stop() -> Int32 {
                child.signal(SIGTERM)
                return child.waitForExit()
            }
        }

        /// Two agents and this host share 300 streams (100 each): one report, every event to every
        /// stream, three processes, the timeline merged into the HTML report; each agent ran one worker.
        @Test func agentsShareARunAndMergeIntoOneReport() throws {
            let serve = try ServeProcess("--tick 0 --heartbeat 0.5")
            let agents = try [Agent(rill, host: "127.0.0.3"), Agent(rill, host: "127.0.0.4")]
            let json = "/tmp/rill-agents-test-\(getpid()).json"
            let html = "/tmp/rill-agents-test-\(getpid()).html"
            defer { unlink(json); unlink(html) }
            let (output, status) = try shell(
                "'\(rill)' load '\(serve.url)/sse?topic=agents' -c 300 --rate 3000 -d 2s --publish-rate 10 "
                    + "--publish-path '/publish?topic=agents' --agent \(agents[0].address) --agent \(agents[1].address) "
                    + "--agent-token s3cret --json '\(json)' --html '\(html)'", timeout: .seconds(60))
            #expect(status == 0, "\(output)")
            let lines = output.split(separator: "\n").map(String.init)
            let streams = try #require(lines.first { $0.hasPrefix("  Streams") }, "\(output)")
            #expect(streams.contains("300 opened") && streams.contains("300 held") && streams.contains("3 worker processes"))
            let events = try #require(lines.first { $0.hasPrefix("  Events") })
            let numbers = events.split(separator: " ").compactMap { Int($0) }
            #expect(numbers.count >= 3 && numbers[0] >= 15 && numbers[1] == numbers[0] * 300 && numbers[2] == 0, "\(events)")
            #expect(try shell("cat '\(json)'").output.contains("\"workers\" : 3"))
            let page = try shell("cat '\(html)'").output
            #expect(page.contains("<polyline") && !page.contains("data-points=\"0\""))
            // The merged timeline reached 300 streams open.
            #expect(page.contains(">300<"), "held count in the tables")
            for agent in agents {
                let accepted = try #require(agent.child.readLine(), "agent \(agent.address) logged no run")
                #expect(accepted.contains("accepted a run from 127.0.0.1:") && accepted.contains("-c 300"), "\(accepted)")
                #expect(!accepted.contains("s3cret") && !accepted.contains("--html"), "\(accepted)")
                #expect(agent.stop() == 0)
            }
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// A wrong token, an agent nobody runs and an agent too small for its part are refused
        /// before any stream opens, by name.
        @Test func wrongTokenAndMissingAgentAreNamed() throws {
            let serve = try ServeProcess("--tick 0")
            let agent = try Agent(rill, host: "127.0.0.3")
            let refused = try shell(
                "'\(rill)' load '\(serve.url)/sse' -c 10 -d 1s --agent \(agent.address) --agent-token wrong 2>&1")
            #expect(refused.status == 64, "\(refused.output)")
            #expect(refused.output.contains("agent \(agent.address) refused the token"), "\(refused.output)")
            let refusal = try #require(agent.child.readLine())
            #expect(refusal.contains("refused a run") && refusal.contains("token"), "\(refusal)")
            // 300 streams over this host and one agent is 150 for the agent; --fd-limit 100 leaves its worker 68.
            let small = try shell(
                "'\(rill)' load '\(serve.url)/sse' -c 300 -d 1s --fd-limit 100 --agent \(agent.address) --agent-token s3cret 2>&1")
            #expect(small.status == 64, "\(small.output)")
            #expect(small.output.contains("agent \(agent.address) would hold 150 connections but its worker may open 68"), "\(small.output)")
            #expect(agent.stop() == 0)

            let nobody = "127.0.0.6:\(try freeLoopbackPort())"
            let missing = try shell("'\(rill)' load '\(serve.url)/sse' -c 10 -d 1s --agent \(nobody) --agent-token t 2>&1")
            #expect(missing.status == 64, "\(missing.output)")
            #expect(missing.output.contains("agent \(nobody) is unreachable"), "\(missing.output)")
            #expect(serve.metric("rill_connections_total") <= 1, "no stream opened")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }

        /// Another protocol version is refused both ways: the agent answers a hello of version 99
        /// with a version refusal, and the coordinator names an agent that welcomes it as version 99.
        @Test func otherVersionsAreRefusedBothWays() throws {
            let agent = try Agent(rill, host: "127.0.0.4")
            let parts = agent.address.split(separator: ":")
            let client = try BlockingClient(connectingTo: SocketAddress(String(parts[0]), port: UInt16(parts[1])!)!)
            let hello = #"{"protocolVersion":99,"token":"s3cret","future":true}"#
            client.send(Frame.encode(type: 2) { $0 += Array(hello.utf8) })
            var decoder = FrameDecoder()
            let frames = try decoder.receive(client.receiveAll().withUnsafeBytes { $0 })
            let welcome = String(decoding: try #require(frames.first).payload, as: UTF8.self)
            #expect(welcome.contains(#""version":{"theirs":99}"#) && welcome.contains(#""protocolVersion":1"#), "\(welcome)")
            #expect(agent.stop() == 0)

            // A fake agent of version 99, on this test's loop, while `rill load` runs as a child.
            final class FutureAgent: ConnectionHandler {
                var answered = false
                var closed = false
                func connectionDidClose(_ connection: Connection, reason: CloseReason) { closed = true }
                func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
                    let welcome = #"{"protocolVersion":99,"rillVersion":"9.9.9","capacity":1000}"#
                    connection.write(Frame.encode(type: 2) { $0 += Array(welcome.utf8) })
                    connection.closeAfterFlush()
                    answered = true
                }
            }
            try expectNoFDLeak {
                let loop = try EventLoop()
                let future = FutureAgent()
                let listener = try loop.listen(on: SocketAddress("127.0.0.5", port: 0)!, handler: future)
                let coordinator = try ChildProcess(
                    cleanShell: "exec '\(rill)' load http://127.0.0.1:1/sse -c 1 --agent \(listener.address) --agent-token t 2>&1")
                #expect(drive(loop) { future.answered && future.closed })
                let line = try #require(coordinator.readLine(timeout: .seconds(20)))
                #expect(
                    line == "rill load: agent \(listener.address) speaks agent protocol 99 (rill 9.9.9), this rill speaks 1: "
                        + "run the same rill version on every host", "\(line)")
                #expect(coordinator.waitForExit() == 64)
                listener.close()
                loop.closeAll()
            }
        }
    }
}
