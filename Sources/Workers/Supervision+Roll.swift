#if canImport(Glibc)
import Glibc
#endif

extension Supervision {
    /// A rolling restart in progress: the slots go one at a time. Each gets a successor in its free
    /// seat; once the successor is ready (the caller says so: for `rill serve`, it listens and has
    /// the history) it becomes the slot's active worker and the old one gets SIGTERM (it drains);
    /// once the old one has exited, the next slot goes. So there is never a moment without N ready
    /// workers, and only one worker's clients are moving at a time.
    public struct Roll: Equatable, Sendable {
        public enum Step: Equatable, Sendable {
            /// The successor in `seat` was spawned; it is killed (and the roll abandoned) if not ready by `until`.
            case starting(seat: Int, until: UInt64)
            /// The old worker in `seat` was told to stop; it gets SIGKILL if still running at `until`.
            case retiring(seat: Int, until: UInt64)
        }

        /// The slots still to be replaced; the first is being replaced now.
        public internal(set) var slots: [Int]
        public internal(set) var step: Step?
        /// The retiring worker was sent SIGKILL already, or the successor was killed as not ready.
        var forced = false

        /// When `tick` must look again (the current step's limit).
        var deadline: UInt64? {
            switch step {
            case .starting(_, let until)?, .retiring(_, let until)?: return forced ? nil : until
            case nil: return nil
            }
        }
    }

    /// The other seat of `seat`'s slot.
    public func partner(of seat: Int) -> Int { seat < workers ? seat + workers : seat - workers }

    /// Starts a rolling restart (SIGHUP); nothing if one is under way or the workers are stopping.
    public mutating func roll(now: UInt64) -> [Action] {
        guard !stopping, rolling == nil else { return [] }
        rolling = Roll(slots: Array(0..<workers), step: nil)
        return advanceRoll(now: now)
    }

    /// The worker in `seat` is ready. For a roll's successor: it becomes its slot's active worker
    /// and the one it replaces is told to stop (it drains and exits; `grace` later it is killed).
    public mutating func ready(_ seat: Int, now: UInt64) -> [Action] {
        guard var roll = rolling, case .starting(seat, _)? = roll.step, isRunning(seat) else { return [] }
        let slot = slot(of: seat)
        let old = active[slot]
        active[slot] = seat
        roll.step = .retiring(seat: old, until: now + Supervision.nanoseconds(policy.grace))
        roll.forced = false
        rolling = roll
        guard isRunning(old) else {
            phases[old] = .idle  // it died meanwhile: its successor is its restart
            return []
        }
        return [.signal(old, SIGTERM)]
    }

    /// A worker that exits from a seat that is not its slot's active one is not restarted: it was
    /// retired by a roll, or it was a successor that never became ready.
    func retires(_ seat: Int, now: UInt64) -> Bool { active[slot(of: seat)] != seat }

    /// Moves the roll on as far as it can go at `now`.
    mutating func advanceRoll(now: UInt64) -> [Action] {
        guard var roll = rolling else { return [] }
        var actions: [Action] = []
        defer { rolling = roll.slots.isEmpty ? nil : roll }
        while let slot = roll.slots.first {
            switch roll.step {
            case nil:
                let old = active[slot]
                // A slot whose worker is down is restarted by the usual path, from the binary on disk.
                guard isRunning(old) else {
                    roll.slots.removeFirst()
                    continue
                }
                let seat = partner(of: old)
                guard !isRunning(seat) else {  // cannot happen: a seat is freed when its worker is reaped
                    roll.slots.removeFirst()
                    continue
                }
                phases[seat] = .idle
                roll.step = .starting(seat: seat, until: now + Supervision.nanoseconds(policy.readyTimeout))
                roll.forced = false
                actions.append(.spawn(seat))
                return actions
            case .starting(let seat, let until)?:
                if case .exited = phases[seat] {  // died (or could not start) before it was ready
                    phases[seat] = .idle
                    roll.slots = []
                    actions.append(.rollEnded(abandoned: true))
                    return actions
                }
                if now >= until && !roll.forced {
                    roll.forced = true
                    stalled[seat] = true
                    actions.append(.kill(seat, .notReady(policy.readyTimeout)))
                }
                return actions
            case .retiring(let seat, let until)?:
                if isRunning(seat) {
                    if now >= until && !roll.forced {
                        roll.forced = true
                        actions.append(.signal(seat, SIGKILL))
                    }
                    return actions
                }
                phases[seat] = .idle
                roll.slots.removeFirst()
                roll.step = nil
                if roll.slots.isEmpty { actions.append(.rollEnded(abandoned: false)) }
            }
        }
        return actions
    }
}
