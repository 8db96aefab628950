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
            #expect(supervision.nextDeadline == now + UInt64(delay.components.seconds) * SupervisionTests.second
                    + UInt64(delay.components.attoseconds / 1_000_000_000))
            now = supervision.nextDeadline!
            #expect(supervision.tick(now: now) == [.spawn(0)])
        }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                           .milliseconds(1600), .milliseconds(3200), .seconds(5), .seconds(5)])
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
