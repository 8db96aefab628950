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

@Suite struct RollTests {
    static let ms: UInt64 = 1_000_000
    static let second: UInt64 = 1_000_000_000

    static func running(_ workers: Int, grace: Duration = .seconds(3)) -> Supervision {
        var policy = RestartPolicy()
        policy.grace = grace
        policy.readyTimeout = .seconds(10)
        policy.quiesceSignal = SIGUSR1
        var supervision = Supervision(workers: workers, policy: policy)
        for case .spawn(let seat) in supervision.start() { supervision.spawned(seat, now: 0) }
        return supervision
    }

    static func runningCount(_ supervision: Supervision) -> Int {
        supervision.phases.filter { if case .running = $0 { true } else { false } }.count
    }

    /// Every slot's successor starts in the slot's second seat; the old workers serve until all
    /// are ready, then stop accepting (the quiesce signal) and retire one at a time: SIGTERM, and the
    /// next once the previous one has exited.
    @Test func successorsFirstThenOldOnesRetireOneAtATime() {
        var supervision = Self.running(3)
        var now = Self.second
        #expect(supervision.roll(now: now) == [.spawn(3), .spawn(4), .spawn(5)])
        #expect(supervision.roll(now: now) == [], "one roll at a time")
        for seat in 3...5 { supervision.spawned(seat, now: now) }
        now += 200 * Self.ms
        #expect(supervision.ready(3, now: now) == [])
        #expect(supervision.ready(5, now: now) == [])
        #expect(supervision.ready(5, now: now) == [], "ready once")
        #expect(supervision.active == [0, 1, 2], "the old ones serve until every successor is ready")
        #expect(
            supervision.ready(4, now: now) == [
                .signal(0, SIGUSR1), .signal(1, SIGUSR1), .signal(2, SIGUSR1), .signal(0, SIGTERM)
            ])
        #expect(supervision.active == [3, 4, 5])
        for old in 0..<3 {
            #expect(Self.runningCount(supervision) == 6 - old)
            #expect(supervision.tick(now: now + 100 * Self.ms) == [], "the next waits for this one's exit")
            now += Self.second
            #expect(supervision.exited(old, now: now) == nil, "a retired worker is not restarted")
            #expect(supervision.tick(now: now) == (old == 2 ? [.rollEnded(abandoned: false)] : [.signal(old + 1, SIGTERM)]))
        }
        #expect(supervision.rolling == nil)
        #expect(supervision.tick(now: now + 60 * Self.second) == [])
    }

    /// Two rolls, driven as the Supervisor drives them: the seats alternate between a slot's two,
    /// and each ends with every slot active and nothing else running.
    @Test func twoRollsAlternateSeats() {
        var supervision = Self.running(2)
        var now = Self.second
        for round in 0..<2 {
            var pending = supervision.roll(now: now)
            var ended = false
            var steps = 0
            while !ended && steps < 50 {
                steps += 1
                var next: [Supervision.Action] = []
                for action in pending {
                    switch action {
                    case .spawn(let seat):
                        supervision.spawned(seat, now: now)
                        next += supervision.ready(seat, now: now + 50 * Self.ms)
                    case .signal(_, SIGUSR1):
                        break
                    case .signal(let seat, SIGTERM):
                        #expect(supervision.exited(seat, now: now + 500 * Self.ms) == nil)
                    case .rollEnded(let abandoned):
                        #expect(!abandoned)
                        ended = true
                    default:
                        Issue.record("unexpected \(action)")
                    }
                }
                now += Self.second
                pending = next.isEmpty ? supervision.tick(now: now) : next
            }
            #expect(ended)
            #expect(supervision.rolling == nil)
            let expected = round == 0 ? [2, 3] : [0, 1]
            #expect(supervision.active == expected)
            for seat in 0..<4 { #expect(supervision.isRunning(seat) == expected.contains(seat)) }
        }
    }

    /// A successor that dies before all are ready abandons the roll: it is not restarted, the other
    /// successors are stopped, and the old workers keep serving (never told to stop accepting).
    @Test func successorThatDiesAbandonsTheRoll() {
        var supervision = Self.running(2)
        #expect(supervision.roll(now: Self.second) == [.spawn(2), .spawn(3)])
        supervision.spawned(2, now: Self.second)
        supervision.spawned(3, now: Self.second)
        #expect(supervision.ready(3, now: Self.second) == [])
        #expect(supervision.exited(2, now: 2 * Self.second) == nil)
        #expect(supervision.tick(now: 2 * Self.second) == [.signal(3, SIGTERM), .rollEnded(abandoned: true)])
        #expect(supervision.rolling == nil)
        #expect(supervision.active == [0, 1])
        #expect(supervision.exited(3, now: 3 * Self.second) == nil, "a stopped successor is not restarted")
        #expect(supervision.tick(now: 60 * Self.second) == [], "nothing restarted, nothing signalled")
        #expect(supervision.roll(now: 61 * Self.second) == [.spawn(2), .spawn(3)], "a later roll may try again")
    }

    /// Successors not ready within the ready timeout are killed; their exit abandons the roll.
    @Test func successorNotReadyIsKilled() {
        var supervision = Self.running(1)
        let start = Self.second
        #expect(supervision.roll(now: start) == [.spawn(1)])
        supervision.spawned(1, now: start)
        #expect(supervision.nextDeadline == start + 10 * Self.second)
        #expect(supervision.tick(now: start + 9 * Self.second) == [])
        #expect(supervision.tick(now: start + 10 * Self.second) == [.kill(1, .notReady(.seconds(10)))])
        #expect(supervision.tick(now: start + 11 * Self.second) == [], "killed once")
        _ = supervision.exited(1, now: start + 11 * Self.second)
        #expect(supervision.tick(now: start + 11 * Self.second) == [.rollEnded(abandoned: true)])
        #expect(supervision.active == [0])
    }

    /// A retiring worker still running after the grace gets SIGKILL, once; the roll goes on at its exit.
    @Test func retiringWorkerIsKilledAfterGrace() {
        var supervision = Self.running(1, grace: .seconds(3))
        #expect(supervision.roll(now: 0) == [.spawn(1)])
        supervision.spawned(1, now: 0)
        #expect(supervision.ready(1, now: Self.second) == [.signal(0, SIGUSR1), .signal(0, SIGTERM)])
        #expect(supervision.nextDeadline == 4 * Self.second)
        #expect(supervision.tick(now: 4 * Self.second) == [.signal(0, SIGKILL)])
        #expect(supervision.tick(now: 5 * Self.second) == [])
        #expect(supervision.exited(0, now: 5 * Self.second) == nil)
        #expect(supervision.tick(now: 5 * Self.second) == [.rollEnded(abandoned: false)])
        #expect(supervision.active == [1])
    }

    /// An old worker that dies while its successor starts is restarted as usual until the
    /// successors are ready; then the successor is its restart (the pending one is cancelled).
    /// Stopping in the middle of a roll signals every running worker and ends the roll.
    @Test func deathsAndStopsDuringARoll() {
        var supervision = Self.running(2)
        #expect(supervision.roll(now: 0) == [.spawn(2), .spawn(3)])
        supervision.spawned(2, now: 0)
        supervision.spawned(3, now: 0)
        #expect(supervision.exited(0, now: 3 * Self.second) == .milliseconds(100), "still active: restarted")
        #expect(supervision.ready(2, now: 3 * Self.second) == [])
        #expect(supervision.ready(3, now: 3 * Self.second) == [.signal(1, SIGUSR1), .signal(1, SIGTERM)])
        #expect(supervision.tick(now: 4 * Self.second) == [], "no restart of seat 0")
        #expect(supervision.stop(now: 5 * Self.second) == [.signal(1, SIGTERM), .signal(2, SIGTERM), .signal(3, SIGTERM)])
        #expect(supervision.rolling == nil)
        for seat in 1...3 { _ = supervision.exited(seat, now: 6 * Self.second) }
        #expect(supervision.finished)
    }
}
