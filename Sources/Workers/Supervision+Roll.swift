#if canImport(Glibc)
import Glibc
#endif

extension Supervision {
    /// A rolling restart in progress, in two steps:
    /// 1. every slot gets a successor in its free seat, all started together; the old workers go
    ///    on serving meanwhile. Once *all* successors are ready (the caller says so: for `rill serve`,
    ///    each listens and has the history), they become the active workers and the old ones get
    ///    the policy's `quiesceSignal` (stop accepting, keep serving what they hold);
    /// 2. the old workers retire one at a time: SIGTERM (they drain), and the next once it has exited.
    ///
    /// Why not replace the slots one after another: with SO_REUSEPORT the kernel spreads a draining
    /// worker's reconnecting clients over every listener, so the workers not yet replaced would take
    /// a share of each drain and the last of them end up with about (1 + 1/N)^(N-1) times its share
    /// (2.2 times for N = 6), past its connection limit in a full server. With the old ones no
    /// longer accepting, each drain spreads over the N successors alone, which end with one share
    /// each; and still only one worker's clients are moving at a time.
    public struct Roll: Equatable, Sendable {
        public enum Step: Equatable, Sendable {
            /// The successors in `seats` were spawned; those not ready by `until` are killed and the
            /// roll is abandoned. `ready`: those that are.
            case starting(seats: [Int], ready: [Int], until: UInt64)
            /// The old worker in `seat` was told to stop; it gets SIGKILL if still running at `until`.
            case retiring(seat: Int, until: UInt64)
        }

        /// The old workers' seats still to retire, in order (filled once the successors are ready).
        public internal(set) var retiring: [Int]
        public internal(set) var step: Step
        /// The retiring worker was sent SIGKILL already, or the late successors were killed.
        var forced = false

        /// When `tick` must look again (the current step's limit).
        var deadline: UInt64? {
            if forced { return nil }
            switch step {
            case .starting(_, _, let until), .retiring(_, let until): return until
            }
        }
    }

    /// The other seat of `seat`'s slot.
    public func partner(of seat: Int) -> Int { seat < workers ? seat + workers : seat - workers }

    /// Starts a rolling restart (SIGHUP): spawns every running slot's successor. Nothing if a roll is
    /// under way, the workers are stopping, or none is running.
    public mutating func roll(now: UInt64) -> [Action] {
        guard !stopping, rolling == nil else { return [] }
        // A slot whose worker is down is restarted by the usual path, from the binary on disk.
        let seats = active.filter { isRunning($0) && !isRunning(partner(of: $0)) }.map(partner(of:))
        guard !seats.isEmpty else { return [] }
        for seat in seats { phases[seat] = .idle }
        let until = now + Supervision.nanoseconds(policy.readyTimeout)
        rolling = Roll(retiring: [], step: .starting(seats: seats, ready: [], until: until))
        return seats.map { .spawn($0) }
    }

    /// The worker in `seat` is ready. Once every successor of a roll is, they become their slots'
    /// active workers, the old ones are told to stop accepting, and the first of them to stop.
    public mutating func ready(_ seat: Int, now: UInt64) -> [Action] {
        guard var roll = rolling, case .starting(let seats, var ready, let until) = roll.step, seats.contains(seat),
            !ready.contains(seat), isRunning(seat)
        else { return [] }
        ready.append(seat)
        roll.step = .starting(seats: seats, ready: ready, until: until)
        guard ready.count == seats.count else {
            rolling = roll
            return []
        }
        var actions: [Action] = []
        for successor in seats {
            let slot = slot(of: successor)
            let old = active[slot]
            active[slot] = successor
            if isRunning(old) {
                roll.retiring.append(old)
                if let quiesce = policy.quiesceSignal { actions.append(.signal(old, quiesce)) }
            } else {
                phases[old] = .idle  // it died meanwhile: its successor is its restart
            }
        }
        return actions + retireNext(roll, now: now)
    }

    /// A worker that exits from a seat that is not its slot's active one is not restarted: it was
    /// retired by a roll, or it was a successor that never became ready.
    func retires(_ seat: Int, now: UInt64) -> Bool { active[slot(of: seat)] != seat }

    /// Tells the next old worker of `roll` to stop, or ends the roll if none is left.
    private mutating func retireNext(_ roll: Roll, now: UInt64) -> [Action] {
        var roll = roll
        guard let next = roll.retiring.first else {
            rolling = nil
            return [.rollEnded(abandoned: false)]
        }
        roll.retiring.removeFirst()
        roll.step = .retiring(seat: next, until: now + Supervision.nanoseconds(policy.grace))
        roll.forced = false
        rolling = roll
        return [.signal(next, SIGTERM)]
    }

    /// Moves the roll on as far as it can go at `now`.
    mutating func advanceRoll(now: UInt64) -> [Action] {
        guard var roll = rolling else { return [] }
        switch roll.step {
        case .starting(let seats, _, let until):
            if seats.contains(where: { if case .exited = phases[$0] { true } else { false } }) {
                // One died (or could not start) before all were ready: the others are stopped, the
                // old workers keep serving.
                rolling = nil
                var actions: [Action] = []
                for seat in seats {
                    if isRunning(seat) { actions.append(.signal(seat, SIGTERM)) } else { phases[seat] = .idle }
                }
                return actions + [.rollEnded(abandoned: true)]
            }
            guard now >= until && !roll.forced else { return [] }
            roll.forced = true
            rolling = roll
            return seats.filter { isRunning($0) }.map { seat in
                stalled[seat] = true
                return .kill(seat, .notReady(policy.readyTimeout))
            }
        case .retiring(let seat, let until):
            if isRunning(seat) {
                guard now >= until && !roll.forced else { return [] }
                roll.forced = true
                rolling = roll
                return [.signal(seat, SIGKILL)]
            }
            phases[seat] = .idle
            return retireNext(roll, now: now)
        }
    }
}
