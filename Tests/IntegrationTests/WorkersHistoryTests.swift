import Reactor
import RillServer
import SSE
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback.WorkersTests {
    /// The events (id, data) a hub bounded by `byteLimit` keeps of events 1...n with these data: the
    /// longest run of the newest whose SSE frames (`id: base + N`, `data: …`, blank line) fit, at
    /// least one. (`base`: the epoch base the ids of this start of the server continue from.)
    static func kept(_ data: [String], byteLimit: Int, base: UInt64 = 0) -> ClosedRange<Int> {
        var total = 0
        var oldest = data.count
        for id in stride(from: data.count, through: 1, by: -1) {
            total += "id: \(base + UInt64(id))\ndata: \(data[id - 1])\n\n".utf8.count
            if total > byteLimit && id != data.count { break }
            oldest = id
        }
        return oldest...data.count
    }

    /// Opens streams with `lastEventID` until both workers have some (SO_REUSEPORT spreads them);
    /// returns them by worker.
    static func streamsOnBothWorkers(_ clients: Clients, lastEventID: String) throws -> [String: [Connection]] {
        var byWorker: [String: [Connection]] = [:]
        // A restarted worker listens only once it has its history: until then every new stream
        // lands on the other. So this goes on for a bounded time, not a number of tries, and a
        // stream beyond two on a worker is closed again (its descriptor is not needed).
        let deadline = MonotonicClock.nanoseconds() + 20_000_000_000
        while byWorker.count < 2 || byWorker.values.contains(where: { $0.count < 2 }),
            MonotonicClock.nanoseconds() < deadline
        {
            let stream = try clients.stream(lastEventID: lastEventID)
            _ = drive(clients.loop, for: .seconds(5)) {
                clients.clients.peer(stream).streaming || clients.clients.peer(stream).closed
            }
            let worker = clients.worker(stream)
            if byWorker[worker, default: []].count >= 2 {
                stream.close()
                _ = drive(clients.loop, for: .milliseconds(20)) { false }
            } else {
                byWorker[worker, default: []].append(stream)
            }
        }
        return byWorker
    }

    /// Waits (bounded) until `serve` has two workers again, none of them `gone`.
    static func awaitRestart(_ serve: ServeProcess, without gone: pid_t) -> Bool {
        eventually(timeout: .seconds(10)) {
            let now = children(of: serve.child.pid)
            return now.count == 2 && !now.contains(gone)
        }
    }

    /// Item 7: the supervisor bounds its history by the same measure as the workers' hubs (SSE
    /// frame bytes), so a restarted worker replays exactly what a surviving one does.
    @Test func restartedWorkerReplaysWhatItsPeerDoes() throws {
        let byteLimit = 3000
        let serve = try ServeProcess("--workers 2 --tick 0 --heartbeat 0 --history-bytes \(byteLimit)")
        let clients = try Clients(port: serve.port)
        let data = (1...120).map { "e\($0)-" + String(repeating: "x", count: ($0 * 37) % 90) }
        var firstID: UInt64? = nil
        for text in data {
            let response = try clients.publish(text)
            #expect(response.status == 204, "\(response)")
            if firstID == nil { firstID = response.header("X-Event-Id").flatMap { UInt64($0) } }
        }
        // Ids continue from this start's epoch base.
        let base = try #require(firstID) - 1
        let victim = try #require(Self.children(of: serve.child.pid).first)
        kill(victim, SIGKILL)
        #expect(Self.awaitRestart(serve, without: victim))

        let kept = Self.kept(data, byteLimit: byteLimit, base: base)
        let expected = (kept.lowerBound + 1...kept.upperBound).map { ("\(base + UInt64($0))", data[$0 - 1]) }
        let byWorker = try Self.streamsOnBothWorkers(clients, lastEventID: String(base + UInt64(kept.lowerBound)))
        #expect(byWorker.keys.sorted() == ["0", "1"], "\(byWorker.mapValues(\.count))")
        let streams = byWorker.values.flatMap { $0 }
        _ = drive(clients.loop, for: .seconds(5)) { streams.allSatisfy { clients.events($0).count >= expected.count } }
        for (worker, streams) in byWorker {
            for stream in streams {
                let got = clients.events(stream).map { ($0.lastEventID, String(decoding: $0.data, as: UTF8.self)) }
                #expect(
                    got.elementsEqual(expected, by: ==),
                    "worker \(worker): ids \(got.first?.0 ?? "-")…\(got.last?.0 ?? "-") (\(got.count)), expected \(expected.count)"
                )
            }
        }
        serve.child.signal(SIGTERM)
        #expect(serve.child.waitForExit() == 0)
        clients.loop.closeAll()
    }
}
