/// Receives timer callbacks without a closure: one handler object can serve many timers, told apart
/// by `token`, so scheduling allocates nothing (the timing wheel reuses its nodes).
public protocol TimerHandler: AnyObject {
    func timerFired(_ timer: TimerID, token: UInt64)
}

/// What a timing-wheel entry does when it fires.
struct TimerTask {
    enum Action {
        case closure(() -> Void)
        case handler(any TimerHandler, UInt64)
        case connectTimeout(Connection)
        case resumeAccepting(Listener)
    }
    var action: Action
    /// Ticks between firings of a repeating timer; 0 for one-shot.
    var interval: UInt64
}

extension EventLoop {
    /// Runs `body` once, `delay` from now (1 ms resolution, never early).
    @discardableResult
    public func schedule(after delay: Duration, _ body: @escaping () -> Void) -> TimerID {
        scheduleTask(after: delay, TimerTask(action: .closure(body), interval: 0))
    }

    /// Runs `body` every `interval`, first after `initialDelay` (default: one interval).
    @discardableResult
    public func scheduleRepeating(
        every interval: Duration, initialDelay: Duration? = nil,
        _ body: @escaping () -> Void
    ) -> TimerID {
        let ticks = max(interval.millisecondsRoundedUp, 1)
        return scheduleTask(after: initialDelay ?? interval, TimerTask(action: .closure(body), interval: ticks))
    }

    /// Calls `handler.timerFired(_:token:)` after `delay`, and then every `repeating` if given.
    /// Allocation-free: the way to give every one of many connections its own timer.
    @discardableResult
    public func schedule(
        after delay: Duration, repeating: Duration? = nil,
        handler: any TimerHandler, token: UInt64
    ) -> TimerID {
        let interval = repeating.map { max($0.millisecondsRoundedUp, 1) } ?? 0
        return scheduleTask(after: delay, TimerTask(action: .handler(handler, token), interval: interval))
    }

    /// Moves a live timer to fire `delay` from now, keeping its ID (and its repeat interval).
    public func reschedule(_ timer: TimerID, after delay: Duration) {
        wheel.rearm(timer, deadline: deadline(after: delay))
    }

    /// Cancels a timer. Cancelling a fired or already cancelled timer does nothing.
    public func cancel(_ timer: TimerID) {
        wheel.cancel(timer)
    }

    /// Whether `timer` is still scheduled.
    public func isScheduled(_ timer: TimerID) -> Bool { wheel.isLive(timer) }

    /// How many timers are scheduled.
    public var scheduledTimers: Int { wheel.count }

    /// Moves a manual clock forward by `delta` and fires, in deadline order, every timer that falls
    /// due on the way (a repeating timer fires once per period passed, as it would in real time);
    /// then runs the closes that the timers deferred. Loop thread only; traps on a monotonic loop.
    /// From another thread: `remote.execute { loop in loop.advanceTime(by: ...) }`.
    public func advanceTime(by delta: Duration) {
        guard case .manual(let manual) = clock else {
            preconditionFailure("advanceTime(by:) needs a loop on a manual clock")
        }
        let target = manual.nanoseconds &+ delta.nanosecondsRoundedUp
        let targetTick = (target - clockOrigin) / 1_000_000
        // Step through the expiries one by one, so that a timer sees `now` at its own deadline
        // (nextExpiry may name an earlier tick where the wheel cascades; that step fires nothing).
        while let next = wheel.nextExpiry(), next <= targetTick {
            manual.advance(to: clockOrigin &+ next &* 1_000_000)
            fireTimers()
        }
        manual.advance(to: target)
        updateNow()
        fireTimers()
        runDeferred()
    }

    func scheduleTask(after delay: Duration, _ task: TimerTask) -> TimerID {
        wheel.schedule(at: deadline(after: delay), task)
    }

    private func deadline(after delay: Duration) -> UInt64 {
        // `now` is refreshed once per wake-up; refresh it here so a timer scheduled late in a long
        // iteration is measured from the real present.
        updateNow()
        return now.addingSaturating(delay.millisecondsRoundedUp)
    }

    func fireTimers() {
        guard wheel.count > 0 else { return }
        updateNow()
        while let (timer, task) = wheel.popExpired(now: now) {
            if task.interval > 0 {
                let scheduled = wheel.deadline(of: timer) ?? now
                // Keep the cadence, but after a stall start again from now rather than firing a burst.
                let next = scheduled.addingSaturating(task.interval)
                wheel.rearm(timer, deadline: next > now ? next : now.addingSaturating(task.interval))
            } else {
                wheel.release(timer)
            }
            statistics.timersFired += 1
            switch task.action {
            case .closure(let body): body()
            case .handler(let handler, let token): handler.timerFired(timer, token: token)
            case .connectTimeout(let connection): connectTimedOut(connection)
            case .resumeAccepting(let listener): listener.resumeAccepting()
            }
            runDeferred()
        }
    }
}

extension UInt64 {
    /// `self + other`, or `.max` where that would overflow: a timer a million years away is "never".
    func addingSaturating(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
