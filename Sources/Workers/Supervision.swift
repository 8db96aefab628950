#if canImport(Glibc)
import Glibc
#endif

/// When to restart a worker that died, and how long a stopping one gets.
public struct RestartPolicy: Sendable {
    /// Restart workers that exit (serve); off, a worker's exit is final (load).
    public var restarts = true
    /// The first restart's delay, and the delay again once a worker has lived past `youngAge`.
    public var initialBackoff: Duration = .milliseconds(100)
    /// The delay doubles with each young death, up to this.
    public var maximumBackoff: Duration = .seconds(5)
    /// A worker that exits sooner than this after it started died young.
    public var youngAge: Duration = .seconds(2)
    /// How long workers have to exit after the stop signal before they are killed.
    public var grace: Duration = .seconds(5)
    /// A running worker not heard from (no frame from it) for this long has stalled (stopped, hung):
    /// it is killed and restarted like one that died. nil: silence is never held against a worker.
    public var liveness: Duration? = nil
    /// Bytes queued to a worker's channel (beyond what was queued when it started, its history)
    /// past which it has stalled: it does not read, and its queue must not grow without bound.
    /// nil: no bound.
    public var maximumQueuedBytes: Int? = nil
    /// In a rolling restart, how long a successor has to become ready (listening, with the
    /// history) before it is killed and the roll abandoned.
    public var readyTimeout: Duration = .seconds(15)
    /// In a rolling restart, sent to the old workers once all successors are ready: stop accepting
    /// new connections, keep serving the ones held (see `Supervision.Roll` for why). nil: not sent.
    public var quiesceSignal: Int32? = nil

    public init() {}
}

/// The supervision of N workers as a state machine on a caller-given clock (nanoseconds): it decides,
/// the caller (`Supervisor`, or a test) performs the actions and reports what happened.
///
/// Workers are numbered by *seat*: slot `i` (0..<N) owns seats `i` and `i + N`, one of which is its
/// active worker; the other is free except during a rolling restart (`roll`), when it holds the
/// slot's successor while the old worker drains. Actions and reports name seats; `slot(of:)` maps back.
public struct Supervision: Sendable {
    public enum Action: Equatable, Sendable {
        /// Start worker `index` (and report `spawned` or `spawnFailed`).
        case spawn(Int)
        /// Send `signal` to worker `index`.
        case signal(Int, Int32)
        /// Worker `index` has stalled: SIGKILL it (its exit is reported, and it is restarted, as
        /// for any death).
        case kill(Int, Stall)
        /// The rolling restart is over: every slot got its successor, or (`abandoned`) one could
        /// not be started and the old workers go on serving.
        case rollEnded(abandoned: Bool)
    }

    /// Why a running worker is taken as stalled.
    public enum Stall: Equatable, Sendable, CustomStringConvertible {
        /// Nothing came from it for this long (the policy's `liveness`).
        case silent(Duration)
        /// This many bytes were queued to it (past the policy's `maximumQueuedBytes`).
        case backlog(Int)
        /// A rolling restart's successor did not become ready within the policy's `readyTimeout`.
        case notReady(Duration)

        public var description: String {
            switch self {
            case .silent(let duration): return "sent nothing for \(duration)"
            case .backlog(let bytes): return "left \(bytes) bytes unread"
            case .notReady(let duration): return "was not ready after \(duration)"
            }
        }
    }

    public enum Phase: Equatable, Sendable {
        /// Never started.
        case idle
        case running(since: UInt64)
        /// Exited; restarted at `restartAt` (nil: not to be restarted).
        case exited(restartAt: UInt64?)
    }

    public let policy: RestartPolicy
    /// Every seat's phase: the N slots' first seats, then their second ones.
    public internal(set) var phases: [Phase]
    /// The seat each slot's active worker sits in.
    public internal(set) var active: [Int]
    /// The rolling restart under way, if any (see `roll(now:)`).
    public internal(set) var rolling: Roll?
    /// Each worker's next restart delay.
    private var backoff: [Duration]
    public private(set) var restarts = 0
    public private(set) var stopping = false
    /// Once stopping: when the workers still running get SIGKILL.
    public private(set) var killAt: UInt64?
    private var killed = false
    /// When each worker was last heard from (or started), for `liveness`.
    var lastHeard: [UInt64]
    /// Workers killed as stalled, not yet reaped: not killed twice.
    var stalled: [Bool]
    /// When `tick` last ran: a long gap is the supervisor's own stall, not the workers'.
    private var lastTick: UInt64?

    public init(workers: Int, policy: RestartPolicy = RestartPolicy()) {
        self.policy = policy
        phases = Array(repeating: .idle, count: 2 * workers)
        active = Array(0..<workers)
        backoff = Array(repeating: policy.initialBackoff, count: 2 * workers)
        lastHeard = Array(repeating: 0, count: 2 * workers)
        stalled = Array(repeating: false, count: 2 * workers)
    }

    /// How many workers (slots) run at once outside a rolling restart.
    public var workers: Int { active.count }

    /// The slot a seat belongs to (what the worker is told its index is).
    public func slot(of seat: Int) -> Int { seat % workers }

    /// Starts every worker.
    public func start() -> [Action] { active.map { .spawn($0) } }

    /// Worker `index` is running as of `now`.
    public mutating func spawned(_ index: Int, now: UInt64) {
        phases[index] = .running(since: now)
        lastHeard[index] = now
        stalled[index] = false
    }

    /// Worker `seat`, started by an earlier image of this process (before an exec), is running as
    /// of `now` as its slot's active worker.
    public mutating func adopted(_ seat: Int, now: UInt64) {
        spawned(seat, now: now)
        active[slot(of: seat)] = seat
    }

    /// Something (a frame) came from worker `index` at `now`: it is alive.
    public mutating func heard(_ index: Int, now: UInt64) {
        lastHeard[index] = max(lastHeard[index], now)
    }

    /// `bytes` are queued, unread, to worker `index` (beyond its start's): past the policy's bound,
    /// the worker has stalled.
    public mutating func queued(_ index: Int, bytes: Int) -> [Action] {
        guard let limit = policy.maximumQueuedBytes, bytes > limit, isRunning(index), !stalled[index], !stopping else {
            return []
        }
        stalled[index] = true
        return [.kill(index, .backlog(bytes))]
    }

    /// Worker `index` exited at `now` (or could not be started: `spawnFailed`). Returns the delay
    /// before its restart, nil if it stays down.
    @discardableResult
    public mutating func exited(_ index: Int, now: UInt64) -> Duration? {
        var lived: Duration = .zero
        if case .running(let since) = phases[index] { lived = .nanoseconds(Int64(now - since)) }
        guard policy.restarts && !stopping && !retires(index, now: now) else {
            phases[index] = .exited(restartAt: nil)
            return nil
        }
        // Dying young backs off, doubling up to the maximum; a worker that lived starts over.
        if lived >= policy.youngAge { backoff[index] = policy.initialBackoff }
        let delay = backoff[index]
        backoff[index] = min(delay * 2, policy.maximumBackoff)
        phases[index] = .exited(restartAt: now + Supervision.nanoseconds(delay))
        return delay
    }

    /// Worker `index` could not be started at `now`: like a death at birth.
    @discardableResult
    public mutating func spawnFailed(_ index: Int, now: UInt64) -> Duration? {
        phases[index] = .running(since: now)
        return exited(index, now: now)
    }

    /// Stops every worker: SIGTERM (or `signal`) now, SIGKILL for those still running after the grace.
    public mutating func stop(now: UInt64, signal: Int32 = SIGTERM) -> [Action] {
        stopping = true
        rolling = nil
        killAt = now + Supervision.nanoseconds(policy.grace)
        var actions: [Action] = []
        for index in phases.indices {
            switch phases[index] {
            case .running: actions.append(.signal(index, signal))
            case .exited, .idle: phases[index] = .exited(restartAt: nil)
            }
        }
        return actions
    }

    /// What is due at `now`: restarts, stalled workers' kills, or the SIGKILL after the grace.
    /// Meant to be called often (every few milliseconds): a gap of more than half the liveness
    /// since the last call means the supervisor itself was stopped or starved, and the workers'
    /// silence over that gap is not held against them.
    public mutating func tick(now: UInt64) -> [Action] {
        var actions: [Action] = []
        if let liveness = policy.liveness.map(Supervision.nanoseconds) {
            if let lastTick, now > lastTick, now - lastTick > liveness / 2 {
                for index in lastHeard.indices { lastHeard[index] += now - lastTick }
            }
            lastTick = now
            for index in phases.indices where isRunning(index) && !stalled[index] && !stopping {
                guard now >= lastHeard[index], now - lastHeard[index] >= liveness else { continue }
                stalled[index] = true
                actions.append(.kill(index, .silent(.nanoseconds(Int64(now - lastHeard[index])))))
            }
        }
        for index in phases.indices {
            guard case .exited(let restartAt?) = phases[index], restartAt <= now, !stopping else { continue }
            phases[index] = .idle
            restarts += 1
            actions.append(.spawn(index))
        }
        if let killAt, now >= killAt, !killed {
            killed = true
            for index in phases.indices where isRunning(index) { actions.append(.signal(index, SIGKILL)) }
        }
        if !stopping { actions += advanceRoll(now: now) }
        return actions
    }

    /// The next moment `tick` has something to do, if any.
    public var nextDeadline: UInt64? {
        var deadline: UInt64? = killed ? nil : killAt
        if let due = rolling?.deadline, !stopping { deadline = min(deadline ?? due, due) }
        for case .exited(let restartAt?) in phases where !stopping {
            deadline = min(deadline ?? restartAt, restartAt)
        }
        if let liveness = policy.liveness.map(Supervision.nanoseconds), !stopping {
            for index in phases.indices where isRunning(index) && !stalled[index] {
                deadline = min(deadline ?? .max, lastHeard[index] + liveness)
            }
        }
        return deadline
    }

    public func isRunning(_ index: Int) -> Bool {
        if case .running = phases[index] { return true }
        return false
    }

    /// Every worker has exited for good (after a stop, or without restarts); free seats count as gone.
    public var finished: Bool {
        rolling == nil
            && phases.allSatisfy {
                switch $0 {
                case .exited(nil), .idle: return true
                case .running, .exited: return false
                }
            }
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}
