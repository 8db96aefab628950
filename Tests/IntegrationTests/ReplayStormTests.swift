import Reactor
import SSE
import SSEHub
import Testing

/// Server side: each accepted connection subscribes to every topic with Last-Event-ID 1.
private final class ReplayOnAccept: ConnectionHandler {
    let hub: Hub
    let topics: [String]
    init(hub: Hub, topics: [String]) {
        self.hub = hub
        self.topics = topics
    }
    func connectionDidOpen(_ connection: Connection) { hub.subscribe(connection, topics: topics, lastEventID: "1") }
    func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
        hub.connectionWritabilityDidChange(connection, isWritable: isWritable)
    }
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
    func connectionDidClose(_ connection: Connection, reason: CloseReason) { hub.unsubscribe(connection) }
}

/// Client side: the ids each stream received, in order.
private final class IDRecorder: ConnectionHandler {
    var parsers: [Int32: EventStreamParser] = [:]
    var ids: [Int32: [Int]] = [:]
    func connectionDidOpen(_ connection: Connection) { parsers[connection.fd] = EventStreamParser() }
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        parsers[connection.fd]!.feed(bytes) { item in
            if case .event(let event) = item { ids[connection.fd, default: []].append(Int(event.lastEventID) ?? -1) }
        }
    }
}

extension Loopback {
    @Suite struct ReplayStormTests {
        /// Many reconnections with an old Last-Event-ID at once (issue 19, attack 2): all replays
        /// together write at most `replayBytesPerTurn` (plus one entry each) per loop turn, so the
        /// loop stays responsive, and every client still gets the whole history once, in order.
        @Test func replaysShareABudgetPerTurn() throws {
            var configuration = Hub.Configuration()
            configuration.heartbeat = .zero
            configuration.historyBytes = .max
            configuration.maximumQueuedBytes = .max
            configuration.replayBytesPerTurn = 16 << 10
            let topics = (0..<4).map { "t\($0)" }
            let events = 4 * 250
            let clientCount = 40
            try expectNoFDLeak {
                let loop = try EventLoop()
                let hub = Hub(loop: loop, configuration: configuration)
                for index in 0..<events {
                    try hub.publish(OutgoingEvent(data: String(repeating: "r", count: 90)), topic: topics[index % 4])
                }
                let entryBytes = try EventEncoder.encode(
                    OutgoingEvent(data: String(repeating: "r", count: 90), id: "1000")
                ).count
                let listener = try loop.listen(on: loopback, handler: ReplayOnAccept(hub: hub, topics: topics))
                let clients = IDRecorder()
                for _ in 0..<clientCount { _ = try loop.connect(to: listener.address, handler: clients) }
                var worstTurn = 0
                var turns = 0
                var before = hub.statistics.bytesQueuedOrWritten
                // `drive` turns the loop once between calls: each call sees one turn's writes.
                let done = drive(loop) {
                    worstTurn = max(worstTurn, hub.statistics.bytesQueuedOrWritten - before)
                    before = hub.statistics.bytesQueuedOrWritten
                    turns += 1
                    return clients.ids.count == clientCount && clients.ids.values.allSatisfy { $0.count == events - 1 }
                }
                #expect(done, "replays did not finish")
                // Subscriptions of one turn and the ready replays of a turn share the budget, which
                // the last slice of a turn may pass by less than one entry.
                #expect(worstTurn < configuration.replayBytesPerTurn + entryBytes, "\(worstTurn) B in a turn")
                #expect(turns > (clientCount * (events - 1) * entryBytes) / (2 * configuration.replayBytesPerTurn))
                for ids in clients.ids.values { #expect(ids == Array(2...events), "once each, in order") }
                #expect(hub.replaysInProgress == 0)
                listener.close()
                loop.closeAll()
            }
        }
    }
}
