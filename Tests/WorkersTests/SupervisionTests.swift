import Testing
import Workers
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SupervisionTests {
    static let ms: UInt64 = 1_000_000
    static let second: UInt64 = 1_000_000_000

    /// Start spawns every worker once.
    @Test func startSpawnsAll() {
        let supervision = Supervision(workers: 3)
        #expect(supervision.start() == [.spawn(0), .spawn(1), .spawn(2)])
    }

    /// A worker that keeps dying young is restarted after 100 ms, 200 ms, 400 ms … up to 5 s; one that
    /// lived past the young age starts over at 100 ms.
    @Test func backoffDoublesWhileDyingYoung() {
        var supervision = Supervision(workers: 1)
        var now: UInt64 = 1_000 * SupervisionTests.second
        var delays: [Duration] = []
        for _ in 0..<8 {
            supervision.spawned(0, now: now)
            now += 10 * SupervisionTests.ms
            let delay = supervision.exited(0, now: now)!
            delays.append(delay)
            #expect(supervision.tick(now: now) == [], "nothing before the delay")
            #expect(
                supervision.nextDeadline == now + UInt64(delay.components.seconds) * SupervisionTests.second
                    + UInt64(delay.components.attoseconds / 1_000_000_000))
            now = supervision.nextDeadline!
            #expect(supervision.tick(now: now) == [.spawn(0)])
        }
        #expect(
            delays == [
                .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                .milliseconds(1600), .milliseconds(3200), .seconds(5), .seconds(5)
            ])
        #expect(supervision.restarts == 8)
        supervision.spawned(0, now: now)
        now += 3 * SupervisionTests.second
        #expect(supervision.exited(0, now: now) == .milliseconds(100))
    }

    /// Stop signals the running workers, restarts nothing, and kills those still running after the grace.
    @Test func stopSignalsThenKillsAfterGrace() {
        var policy = RestartPolicy()
        policy.grace = .seconds(2)
        var supervision = Supervision(workers: 3, policy: policy)
        let now: UInt64 = 50 * SupervisionTests.second
        for index in 0..<3 { supervision.spawned(index, now: now) }
        _ = supervision.exited(2, now: now + SupervisionTests.ms)  // waiting for its restart
        #expect(supervision.stop(now: now + 2 * SupervisionTests.ms) == [.signal(0, SIGTERM), .signal(1, SIGTERM)])
        #expect(supervision.exited(0, now: now + SupervisionTests.second) == nil, "no restart while stopping")
        #expect(supervision.tick(now: now + SupervisionTests.second) == [])
        #expect(!supervision.finished)
        #expect(supervision.nextDeadline == now + 2 * SupervisionTests.ms + 2 * SupervisionTests.second)
        #expect(supervision.tick(now: supervision.nextDeadline!) == [.signal(1, SIGKILL)])
        #expect(supervision.tick(now: now + 10 * SupervisionTests.second) == [], "killed once")
        _ = supervision.exited(1, now: now + 3 * SupervisionTests.second)
        #expect(supervision.finished)
    }

    /// Without restarts (load workers) an exit is final.
    @Test func noRestartPolicy() {
        var policy = RestartPolicy()
        policy.restarts = false
        var supervision = Supervision(workers: 2, policy: policy)
        supervision.spawned(0, now: 0)
        supervision.spawned(1, now: 0)
        #expect(supervision.exited(0, now: SupervisionTests.second) == nil)
        #expect(supervision.tick(now: 100 * SupervisionTests.second) == [])
        #expect(!supervision.finished)
        #expect(supervision.spawnFailed(1, now: SupervisionTests.second) == nil)
        #expect(supervision.finished)
    }
}

@Suite struct StallTests {
    static let ms: UInt64 = 1_000_000
    static let second: UInt64 = 1_000_000_000

    static func supervision(liveness: Duration? = .seconds(5), queue: Int? = nil) -> Supervision {
        var policy = RestartPolicy()
        policy.liveness = liveness
        policy.maximumQueuedBytes = queue
        return Supervision(workers: 2, policy: policy)
    }

    /// A worker silent for the liveness deadline is killed once; one that keeps talking is not; the
    /// killed one's exit restarts it like any death, and the new instance gets a fresh deadline.
    @Test func silentWorkerIsKilledOnceThenRestarted() {
        var supervision = Self.supervision()
        var now: UInt64 = 100 * Self.second
        supervision.spawned(0, now: now)
        supervision.spawned(1, now: now)
        #expect(supervision.nextDeadline == now + 5 * Self.second)
        var killed: [Supervision.Action] = []
        for _ in 0..<300 {  // 6 s in 20 ms steps; worker 1 reports every second, worker 0 never
            now += 20 * Self.ms
            if now % Self.second < 20 * Self.ms { supervision.heard(1, now: now) }
            killed += supervision.tick(now: now)
        }
        #expect(killed == [.kill(0, .silent(.seconds(5)))])
        #expect(supervision.isRunning(0), "running until reaped")
        let delay = supervision.exited(0, now: now)
        #expect(delay == .milliseconds(100))
        now += 100 * Self.ms
        #expect(supervision.tick(now: now) == [.spawn(0)])
        supervision.spawned(0, now: now)
        #expect(supervision.tick(now: now + 4 * Self.second) == [])
    }

    /// A long gap between ticks is the supervisor's own stall (it was stopped): nobody is killed for it.
    @Test func supervisorsOwnGapIsForgiven() {
        var supervision = Self.supervision()
        let start: UInt64 = 100 * Self.second
        supervision.spawned(0, now: start)
        supervision.spawned(1, now: start)
        #expect(supervision.tick(now: start + Self.second) == [])
        #expect(supervision.tick(now: start + 30 * Self.second) == [], "a 29 s gap: its own")
        for second in 31...33 { #expect(supervision.tick(now: start + UInt64(second) * Self.second) == []) }
        #expect(
            supervision.tick(now: start + 34 * Self.second) == [
                .kill(0, .silent(.seconds(5))), .kill(1, .silent(.seconds(5)))
            ],
            "5 s of the workers' silence on its own clock (1 s before the gap, 4 after)")
    }

    /// Past the queue bound a worker is killed once; below it, or without a bound, never.
    @Test func backlogPastTheBoundKills() {
        var supervision = Self.supervision(liveness: nil, queue: 1000)
        supervision.spawned(0, now: 0)
        #expect(supervision.queued(0, bytes: 1000) == [])
        #expect(supervision.queued(0, bytes: 1001) == [.kill(0, .backlog(1001))])
        #expect(supervision.queued(0, bytes: 5000) == [], "already being killed")
        #expect(supervision.queued(1, bytes: 5000) == [], "not running")
        var unbounded = Self.supervision(liveness: nil)
        unbounded.spawned(0, now: 0)
        #expect(unbounded.queued(0, bytes: 1 << 40) == [])
        #expect(unbounded.tick(now: 1 << 50) == [])
    }
}
