import Benchmark
import Reactor
import SSEHub

/// Server and clients on one loop over loopback: every accepted connection subscribes to the hub;
/// the client ends count the bytes they read.
final class FanOutRig {
    let loop: EventLoop
    let hub: Hub
    let listener: Listener
    let clients = ByteCounter()
    let subscribers: Int

    final class Subscribe: ConnectionHandler {
        unowned let hub: Hub
        init(_ hub: Hub) { self.hub = hub }
        func connectionDidOpen(_ connection: Connection) { hub.subscribe(connection, topics: ["bench"]) }
        func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {}
        func connectionDidClose(_ connection: Connection, reason: CloseReason) { hub.unsubscribe(connection) }
    }

    final class ByteCounter: ConnectionHandler {
        var bytes = 0
        func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) { self.bytes += bytes.count }
    }

    let accept: Subscribe

    /// With `heartbeat`, the loop runs on a manual clock and `heartbeatRound` moves it.
    init(subscribers: Int, heartbeat: Duration = .zero) {
        self.subscribers = subscribers
        loop = try! EventLoop(clock: heartbeat > .zero ? .manual(ManualClock()) : .monotonic)
        var configuration = Hub.Configuration()
        configuration.heartbeat = heartbeat
        configuration.heartbeatSlices = 1
        hub = Hub(loop: loop, configuration: configuration)
        accept = Subscribe(hub)
        listener = try! loop.listen(on: SocketAddress(ip: 0x7F00_0001, port: 0), handler: accept)
        for index in 0..<subscribers {
            let source = SocketAddress(ip: 0x7F00_0002 + UInt32(index / 20_000), port: 0)
            _ = try! loop.connect(to: listener.address, from: source, handler: clients)
        }
        while hub.statistics.subscribers < subscribers { loop.runOnce(maximumWait: .milliseconds(10)) }
    }

    /// The client byte count once the next event has reached everyone (computed outside the measurement).
    func nextTarget() -> Int {
        let size = try! EventEncoder.encode(event.with(id: String(hub.statistics.events + 1))).count
        return clients.bytes + size * subscribers
    }

    /// Publishes one event (about 20 bytes of data) and turns the loop until every client has read it.
    func broadcast(until target: Int) {
        _ = try! hub.publish(event, topic: "bench")
        while clients.bytes < target { loop.runOnce() }
    }

    let event = OutgoingEvent(data: "t=1763712000000000000")

    /// One whole heartbeat round (the manual clock moved by one interval: one slice, N writes of the
    /// shared comment), and the loop turned until every client has read its heartbeat.
    func heartbeatRound(every interval: Duration) {
        let target = clients.bytes + Hub.heartbeatBytes.count * subscribers
        loop.advanceTime(by: interval)
        while clients.bytes < target { loop.runOnce() }
    }

    func close() {
        listener.close()
        loop.closeAll()
    }
}

extension OutgoingEvent {
    func with(id: String) -> OutgoingEvent {
        var copy = self
        copy.id = id
        return copy
    }
}

nonisolated(unsafe) var rigs: [Int: FanOutRig] = [:]
nonisolated(unsafe) var heartbeatRigs: [Int: FanOutRig] = [:]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal],
        warmupIterations: 5,
        scalingFactor: .one,
        maxDuration: .seconds(5),
        maxIterations: 200
    )

    // Control: what starting and stopping a measurement costs by itself (package-benchmark's own
    // allocations), to subtract from the per-broadcast figures below.
    Benchmark("Control: empty measurement") { benchmark in
        benchmark.startMeasurement()
        blackHole(benchmark)
        benchmark.stopMeasurement()
    }

    // One event to N subscribers: encode once, N direct writes, and the N client reads that take it
    // (both ends are in this loop, so the figure is the whole in-process fan-out). Mallocs per
    // broadcast must not grow with N.
    for subscribers in [100, 1_000, 5_000] {
        Benchmark("Broadcast 20 B to \(subscribers) subscribers, until all have read it") { benchmark in
            let rig = rigs[subscribers]!
            let target = rig.nextTarget()
            benchmark.startMeasurement()
            rig.broadcast(until: target)
            benchmark.stopMeasurement()
        } setup: {
            rigs[subscribers] = FanOutRig(subscribers: subscribers)
        } teardown: {
            rigs[subscribers]?.close()
            rigs[subscribers] = nil
        }
    }

    // A heartbeat round on a manual clock: no waiting for the timer, so the figure is the round's
    // CPU alone. Mallocs per round must not grow with N (zero from the hub itself).
    for subscribers in [1_000, 5_000] {
        Benchmark("Heartbeat round to \(subscribers) idle subscribers, until all have read it") { benchmark in
            let rig = heartbeatRigs[subscribers]!
            benchmark.startMeasurement()
            rig.heartbeatRound(every: .seconds(1))
            benchmark.stopMeasurement()
        } setup: {
            heartbeatRigs[subscribers] = FanOutRig(subscribers: subscribers, heartbeat: .seconds(1))
        } teardown: {
            heartbeatRigs[subscribers]?.close()
            heartbeatRigs[subscribers] = nil
        }
    }
}
