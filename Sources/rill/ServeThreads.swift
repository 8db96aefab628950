import Reactor
import RillServer
import SSEHub
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A loop's server, handed between threads only while its loop does not run it (setup, after join)
/// or inside a task that its own loop runs.
private struct LoopServer: @unchecked Sendable {
    let server: SSEServer
}

/// What the loops report while they drain: streams open before, loops with no connection left.
private final class DrainCount: Sendable {
    let state = Mutex((streams: 0, loopsDrained: 0))
}

extension Serve {
    /// `--threads N`: an `EventLoopGroup` of N loops, each with an `SSEServer` listening on the same
    /// port (SO_REUSEPORT) over its hub from one `HubGroup`, which sequences every publication (from
    /// any loop's `/publish`, or the ticker) so all loops' subscribers get it in one order with one id.
    /// The main thread only watches the signals and ticks. Each loop's connection limit is the
    /// process's (--max-connections applies per loop): the open-file limit is the shared bound.
    func runThreads(address: SocketAddress, limits: (soft: UInt64, hard: UInt64)) throws {
        let control = try EventLoop()
        stopOnInterrupt(control)  // before any other thread starts
        var configuration = configuration(address: address, limits: limits)
        configuration.reusePort = true
        let tick = configuration.tick
        configuration.tick = nil  // one ticker, publishing through the group
        // The memory engine's epoch: one base for the group, which numbers every loop's events.
        let base = epochBase ?? ServerConfiguration.epochBase(nanoseconds: WallClock.nanoseconds())
        configuration.epochBase = base
        let hubs = HubGroup(count: threads, sequenceBase: base)
        var bound = address
        let (group, servers) = try EventLoopGroup.start(count: threads) { index, loop in
            var own = configuration
            own.address = bound  // port 0: the first loop's choice, shared by the others
            own.threadIndex = index
            let hub = hubs.makeHub(at: index, loop: loop, configuration: own.hub)
            let server = try SSEServer(loop: loop, configuration: own, hub: hub)
            server.publications = .sequencer(HubGroupSequencer(hubs: hubs, origin: index, server: server))
            bound = server.listener.address
            return LoopServer(server: server)
        }
        if let tick, tick > .zero {
            _ = control.scheduleRepeating(every: tick) {
                _ = try? hubs.publish(SSEServer.tickEvent(), topic: ServerConfiguration.tickTopic)
            }
        }
        print(
            "rill serve listening on http://\(bound)/ (demo page; streams at /sse), version \(RillVersion.current), "
                + "\(threads) threads (SO_REUSEPORT), open-file limit \(limits.soft), up to \(servers[0].server.maximumConnections) "
                + "connections per thread; " + settings)
        flushStandardOutput()
        control.run()
        let streams = drain(group, servers)
        var connections = 0
        var turnedAway = 0
        for each in servers {
            connections += each.server.statistics.connectionsTotal
            turnedAway += each.server.statistics.connectionsRejected
        }
        print(
            "rill serve stopped: \(threads) threads, \(connections) connections, \(streams) streams open at stop, "
                + "\(turnedAway) turned away")
        flushStandardOutput()
    }

    /// Every loop stops accepting and drains its streams over `--drain-window` (`beginDrain`); after
    /// at most the window and 1.5 s (or once every loop has no connection left) the loops stop and
    /// close the rest. Returns the streams open before.
    private func drain(_ group: EventLoopGroup, _ servers: [LoopServer]) -> Int {
        let open = DrainCount()
        for (index, each) in servers.enumerated() {
            group.remote(at: index).execute { loop in
                let server = each.server
                open.state.withLock { $0.streams += server.hub.statistics.subscribers }
                server.beginDrain(window: .milliseconds(Int64(drainWindow * 1_000)))
                var counted = false
                _ = loop.scheduleRepeating(every: .milliseconds(20)) { [unowned loop] in
                    guard !counted && loop.openConnections == 0 else { return }
                    counted = true
                    open.state.withLock { $0.loopsDrained += 1 }
                }
            }
        }
        let deadline = MonotonicClock.nanoseconds() + UInt64(drainWindow * 1e9) + 1_500_000_000
        while open.state.withLock({ $0.loopsDrained }) < servers.count && MonotonicClock.nanoseconds() < deadline {
            usleep(20_000)
        }
        group.stopAndJoin()
        return open.state.withLock { $0.streams }
    }
}
