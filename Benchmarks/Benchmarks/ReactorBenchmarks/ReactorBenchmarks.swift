import Benchmark
import Reactor

/// Counts timer firings; never fires in these benchmarks (deadlines are far away).
final class TimerSink: TimerHandler {
    var fired = 0
    func timerFired(_ timer: TimerID, token: UInt64) { fired += 1 }
}

/// Ping-pong client: sends a fixed message and counts complete echoes.
final class PingClient: ConnectionHandler {
    let message: SharedBytes
    var pending = 0
    var roundTrips = 0
    var connection: Connection?

    init(size: Int) { message = SharedBytes((0..<size).map { UInt8(truncatingIfNeeded: $0) }) }

    func connectionDidOpen(_ connection: Connection) { self.connection = connection }

    func send() {
        pending = message.count
        connection!.write(message)
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        pending -= bytes.count
        if pending == 0 { roundTrips += 1 }
    }
}

final class Echo: ConnectionHandler {
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) { connection.write(bytes) }
}

/// A loop whose wheel already holds `count` timers spread over a minute, as a busy server's would.
func loopWithLiveTimers(_ count: Int) -> (EventLoop, TimerSink) {
    let loop = try! EventLoop()
    let sink = TimerSink()
    for token in 0..<count {
        loop.schedule(after: .seconds(60 + Int64(token % 60)), handler: sink, token: UInt64(token))
    }
    return (loop, sink)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .throughput, .mallocCountTotal],
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 100
    )

    // One timer scheduled and cancelled, with 100k others in the wheel: the cost a connection pays
    // to arm and disarm its heartbeat or idle timeout.
    Benchmark("Timer schedule+cancel (100k live)") { benchmark in
        let (loop, sink) = loopWithLiveTimers(100_000)
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            let timer = loop.schedule(after: .seconds(15), handler: sink, token: UInt64(iteration))
            loop.cancel(timer)
        }
        benchmark.stopMeasurement()
        blackHole(sink.fired)
    }

    // The same with a closure timer: one context allocation per schedule. Also shows that the
    // malloc counter counts (the handler variant above reports 0).
    Benchmark("Timer schedule+cancel, closure (100k live)") { benchmark in
        let (loop, sink) = loopWithLiveTimers(100_000)
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            let timer = loop.schedule(after: .seconds(15)) { sink.fired += iteration }
            loop.cancel(timer)
        }
        benchmark.stopMeasurement()
        blackHole(sink.fired)
    }

    // One client and one server connection in the same loop on loopback: write, epoll, read, echo,
    // epoll, read. Both ends' syscalls are in the figure.
    Benchmark("Echo round trip, 64 B, 1 connection") { benchmark in
        let loop = try! EventLoop()
        let listener = try! loop.listen(on: SocketAddress(ip: 0x7F00_0001, port: 0), handler: Echo())
        let client = PingClient(size: 64)
        _ = try! loop.connect(to: listener.address, handler: client)
        while client.connection == nil || listener.accepted == 0 { loop.runOnce(maximumWait: .milliseconds(10)) }
        // Warm the path (first queue, first epoll registration changes) before measuring.
        for _ in 0..<100 {
            client.send()
            while client.pending > 0 { loop.runOnce() }
        }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            client.send()
            while client.pending > 0 { loop.runOnce() }
        }
        benchmark.stopMeasurement()
        blackHole(client.roundTrips)
        loop.closeAll()
    }
}
