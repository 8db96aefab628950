import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// Under `--workers` a worker at its connection limit leaves the port's SO_REUSEPORT group
    /// instead of answering 503 (which ends an EventSource for good).
    @Suite struct ListenerSheddingTests {
        /// Two workers of 10 connections each; 20 streams opened one after another all get their
        /// stream, whatever way the kernel's hash would have split them: the first worker to fill up
        /// closes its listener and the rest go to the other. Two streams leave the first: it listens
        /// again, and the next two streams reach it.
        @Test func fullWorkerStepsOutOfTheGroupAndBackIn() throws {
            let serve = try ServeProcess("--workers 2 --max-connections 10 --tick 0 --heartbeat 0.5")
            let clients = try WorkersTests.Clients(port: serve.port)
            var streams: [Connection] = []
            for _ in 0..<20 {
                let stream = try clients.stream()
                #expect(drive(clients.loop) { clients.clients.peer(stream).streaming || clients.clients.peer(stream).closed })
                streams.append(stream)
            }
            #expect(streams.allSatisfy { clients.clients.peer($0).streaming }, "no 503")
            let spread = Dictionary(grouping: streams, by: clients.worker).mapValues(\.count)
            #expect(spread == ["0": 10, "1": 10], "\(spread)")

            let leaving = streams.filter { clients.worker($0) == "0" }.prefix(2)
            for stream in leaving { stream.close() }
            var more: [Connection] = []
            // The worker sees the closes a moment later: until then nothing listens and a connect
            // is refused, so try until one gets through (bounded).
            #expect(
                drive(clients.loop, for: .seconds(10)) {
                    if more.count < 2, more.allSatisfy({ clients.clients.peer($0).streaming }),
                        let stream = try? clients.stream()
                    {
                        more.append(stream)
                    }
                    more.removeAll { clients.clients.peer($0).closed }
                    return more.count == 2 && more.allSatisfy { clients.clients.peer($0).streaming }
                })
            #expect(more.allSatisfy { clients.worker($0) == "0" }, "back in the group: \(more.map(clients.worker))")
            for stream in streams + more { stream.close() }
            // Worker 0 stepped out at least twice (once more if a close and a new stream crossed),
            // worker 1 once; the sums reach /metrics within a second.
            var sheds = -1
            #expect(
                eventually(timeout: .seconds(10)) {
                    sheds = serve.metric("rill_listener_sheds_total")
                    return sheds >= 3
                }, "\(sheds) sheds")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }
    }
}
