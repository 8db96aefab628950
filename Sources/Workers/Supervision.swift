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

    public init() {}
}

/// The supervision of N workers as a state machine on a caller-given clock (nanoseconds): it decides,
/// the caller (`Supervisor`, or a test) performs the actions and reports what happened.
public struct Supervision: Sendable {
    public enum Action: Equatable, Sendable {
        /// Start worker `index` (and report `spawned` or `spawnFailed`).
        case spawn(Int)
        /// Send `signal` to worker `index`.
        case signal(Int, Int32)
    }

    public enum Phase: Equatable, Sendable {
        /// Never started.
        case idle
        case running(since: UInt64)
        /// Exited; restarted at `restartAt` (nil: not to be restarted).
        case exited(restartAt: UInt64?)
    }

    public let policy: RestartPolicy
    public private(set) var phases: [Phase]
    /// Each worker's next restart delay.
    private var backoff: [Duration]
    public private(set) var restarts = 0
    public private(set) var stopping = false
    /// Once stopping: when the workers still running get SIGKILL.
    public private(set) var killAt: UInt64?
    private var killed = false

    public init(workers: Int, policy: RestartPolicy = RestartPolicy()) {
        self.policy = policy
        phases = Array(repeating: .idle, count: workers)
        backoff = Array(repeating: policy.initialBackoff, count: workers)
    }

    /// Starts every worker.
    public func start() -> [Action] { phases.indices.map { .spawn($0) } }

    /// Worker `index` is running as of `now`.
    public mutating func spawned(_ index: Int, now: UInt64) {
        phases[index] = .running(since: now)
    }

    /// Worker `index` exited at `now` (or could not be started: `spawnFailed`). Returns the delay
    /// before its restart, nil if it stays down.
    @discardableResult
    public mutating func exited(_ index: Int, now: UInt64) -> Duration? {
        var lived: Duration = .zero
        if case .running(let since) = phases[index] { lived = .nanoseconds(Int64(now - since)) }
        guard policy.restarts && !stopping else {
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

    /// What is due at `now`: restarts, or the SIGKILL after the grace.
    public mutating func tick(now: UInt64) -> [Action] {
        var actions: [Action] = []
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
        return actions
    }

    /// The next moment `tick` has something to do, if any.
    public var nextDeadline: UInt64? {
        var deadline: UInt64? = killed ? nil : killAt
        for case .exited(let restartAt?) in phases where !stopping {
            deadline = min(deadline ?? restartAt, restartAt)
        }
        return deadline
    }

    public func isRunning(_ index: Int) -> Bool {
        if case .running = phases[index] { return true }
        return false
    }

    /// Every worker has exited for good (after a stop, or without restarts).
    public var finished: Bool {
        phases.allSatisfy { if case .exited(nil) = $0 { return true } else { return false } }
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}
