import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// The programs of Examples/, built beside the tests, run as child processes.
    @Suite struct ExamplesTests {
        /// SSEService refuses SSEClient without a token (401, its body printed, exit 1) and with a
        /// wrong one (403); with the token the client prints the welcome and the ticks the service's
        /// task publishes each second, then exits 0 after the count; resuming with `lastEventId`
        /// replays the tick after it.
        @Test func sseServiceAndClient() throws {
            try expectNoFDLeak {
                let port = try freeLoopbackPort()
                let service = try ChildProcess(cleanShell: "exec '\(ChildProcess.builtProduct("SSEService"))' \(port) 30")
                defer {
                    service.signal(SIGTERM)
                    _ = service.waitForExit()
                }
                #expect(eventually(timeout: .seconds(10)) { (try? BlockingClient(connectingTo: .loopback(port: port))) != nil })
                let client = ChildProcess.builtProduct("SSEClient")
                let url = "http://127.0.0.1:\(port)/events"

                let missing = try shell("exec '\(client)' '\(url)' 1")
                #expect(missing.status == 1)
                #expect(missing.output.hasPrefix("HTTP 401: send a token"))
                let wrong = try shell("exec '\(client)' '\(url)?token=nope' 1")
                #expect(wrong.status == 1 && wrong.output == "HTTP 403: wrong token")

                let subscribed = try shell("exec '\(client)' '\(url)?token=s3cret' 3")
                #expect(subscribed.status == 0)
                let lines = subscribed.output.split(separator: "\n").map(String.init)
                try #require(lines.count == 3, "\(lines)")
                #expect(lines[0] == "hello [] welcome")
                // "message [7] tick 7": the hub's id is the tick's number.
                let ticks = lines[1...].map { $0.split(separator: " ") }
                #expect(ticks.allSatisfy { $0.count == 4 && $0[0] == "message" && $0[1] == "[\($0[3])]" })
                let second = try #require(Int(ticks[1][3]))
                #expect(Int(ticks[0][3]) == second - 1)

                let resumed = try shell("exec '\(client)' '\(url)?token=s3cret&lastEventId=\(second - 1)' 2")
                #expect(resumed.status == 0)
                #expect(resumed.output.split(separator: "\n").first == "message [\(second)] tick \(second)")
            }
        }

        /// The README's "Embedding" section shows Examples/SSEService/main.swift whole, as it is.
        @Test func readmeShowsTheSSEServiceWhole() throws {
            let root = Loopback.packageRoot
            let service = try shell("cat '\(root)/Examples/SSEService/main.swift'")
            let readme = try shell("cat '\(root)/README.md'")
            #expect(service.status == 0 && service.output.count > 500)
            #expect(readme.output.contains("```swift\n" + service.output + "\n```"))
        }

        /// EchoServer sends back what it gets, on each of two connections, and closes one on EOF.
        @Test func echoServer() throws {
            try expectNoFDLeak {
                let port = try freeLoopbackPort()
                let server = try ChildProcess(cleanShell: "exec '\(ChildProcess.builtProduct("EchoServer"))' \(port) 30")
                defer {
                    server.signal(SIGTERM)
                    _ = server.waitForExit()
                }
                #expect(eventually(timeout: .seconds(10)) { (try? BlockingClient(connectingTo: .loopback(port: port))) != nil })
                let first = try BlockingClient(connectingTo: .loopback(port: port))
                let second = try BlockingClient(connectingTo: .loopback(port: port))
                let message = (0..<3000).map(patternByte)
                first.send(message)
                second.send(Array("ping\n".utf8))
                var echoed: [UInt8] = []
                while echoed.count < message.count, let chunk = first.receive() { echoed += chunk }
                #expect(echoed == message)
                #expect(second.receive() == Array("ping\n".utf8))
                first.shutdownWrite()
                #expect(first.receive() == nil, "EOF ends the handler, which closes the connection")
            }
        }
    }
}
