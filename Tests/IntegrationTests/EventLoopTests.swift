import Reactor
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Counts on the loop thread what other threads posted.
private final class Tally {
    var total = 0
    var lastPerThread: [Int: Int] = [:]
    var outOfOrder = 0
}

/// A flag shared between threads.
final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

/// Spawns `count` threads running `body(index)` and joins them.
private func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Job {
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) {
            self.body = body
            self.index = index
        }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        var thread = pthread_t()
        let job = Unmanaged.passRetained(Job(body, index)).toOpaque()
        pthread_create(
            &thread, nil,
            { context in
                let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
                job.body(job.index)
                return nil
            }, job)
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}

extension Loopback {
    @Suite struct EventLoopTests {
        /// Tasks posted from several threads all run on the loop, each thread's in posting order.
        @Test func executeFromSeveralThreads() throws {
            try expectNoFDLeak {
                let loop = try EventLoop()
                let tally = Tally()
                let threads = 4, perThread = 10_000
                nonisolated(unsafe) let unsafeTally = tally  // touched only on the loop thread (this one)
                let remote = loop.remote
                onThreads(threads) { thread in
                    for sequence in 1...perThread {
                        remote.execute { _ in
                            unsafeTally.total += 1
                            if unsafeTally.lastPerThread[thread, default: 0] != sequence - 1 {
                                unsafeTally.outOfOrder += 1
                            }
                            unsafeTally.lastPerThread[thread] = sequence
                        }
                    }
                }
                #expect(drive(loop) { tally.total == threads * perThread })
                #expect(tally.outOfOrder == 0)
                #expect(loop.statistics.tasksRun == threads * perThread)
            }
        }

        /// `stop()` from another thread wakes a loop blocked in epoll_wait with no timers, promptly.
        @Test func stopFromAnotherThread() throws {
            try expectNoFDLeak {
                let thread = try LoopThread.start()
                let ran = Semaphore()
                thread.remote.execute { _ in ran.signal() }
                // The task ran: the loop is going back to (or already in) an epoll_wait without timeout.
                #expect(ran.wait())
                let clock = ContinuousClock()
                let started = clock.now
                thread.stopAndJoin()
                #expect(clock.now - started < .seconds(2))
            }
        }

        /// One-shot, repeating, cancelled and self-cancelling timers, on a manual clock: each fires
        /// at its deadline exactly, never before.
        @Test func timersOnTheLoop() throws {
            try expectNoFDLeak {
                let loop = try EventLoop(clock: .manual(ManualClock()))
                var onceAt: UInt64? = nil
                var repeatTimes: [UInt64] = []
                var cancelledFired = false
                loop.schedule(after: .milliseconds(30)) { onceAt = loop.now }
                let cancelled = loop.schedule(after: .milliseconds(10)) { cancelledFired = true }
                loop.cancel(cancelled)
                var repeating: TimerID? = nil
                repeating = loop.scheduleRepeating(every: .milliseconds(5)) {
                    repeatTimes.append(loop.now)
                    if repeatTimes.count == 5 { loop.cancel(repeating!) }
                }
                loop.advanceTime(by: .milliseconds(24))
                #expect(repeatTimes == [5, 10, 15, 20])
                loop.advanceTime(by: .milliseconds(5))
                #expect(repeatTimes == [5, 10, 15, 20, 25])
                #expect(onceAt == nil)
                loop.advanceTime(by: .milliseconds(1))
                #expect(onceAt == 30)
                loop.advanceTime(by: .seconds(1))
                #expect(repeatTimes.count == 5)
                #expect(!cancelledFired)
                #expect(!loop.isScheduled(repeating!))
                #expect(loop.scheduledTimers == 0)
            }
        }

        /// On a manual clock `runOnce` does not wait for a timer, and real time passing fires nothing.
        /// `runSoon` work runs at the end of the turn, on a manual clock without advancing it; work
        /// it adds waits for the next turn, so a job cut into slices gives I/O a turn between slices.
        @Test func runSoonRunsOncePerTurn() throws {
            try expectNoFDLeak {
                let loop = try EventLoop(clock: .manual(ManualClock()))
                var slices = 0
                func slice() {
                    slices += 1
                    if slices < 5 { loop.runSoon(slice) }
                }
                loop.runSoon(slice)
                for turn in 1...5 {
                    loop.runOnce(maximumWait: .seconds(5))  // never waits: work is pending
                    #expect(slices == turn)
                }
                loop.runOnce(maximumWait: .zero)
                #expect(slices == 5)
            }
        }

        @Test func manualClockStandsStill() throws {
            try expectNoFDLeak {
                let clock = ManualClock()
                let loop = try EventLoop(clock: .manual(clock))
                var fired = false
                loop.schedule(after: .milliseconds(1)) { fired = true }
                loop.runOnce(maximumWait: .milliseconds(20))
                #expect(!fired)
                #expect(loop.now == 0)
                // Moving the clock itself is seen at the next wake-up.
                clock.advance(by: .milliseconds(1))
                loop.runOnce(maximumWait: .milliseconds(20))
                #expect(fired)
                #expect(loop.now == 1)
            }
        }

        /// A test thread drives the timers of a loop running on its own thread.
        @Test func advanceTimeFromAnotherThread() throws {
            try expectNoFDLeak {
                final class Counter: Sendable { let value = Atomic<Int>(0) }
                let counter = Counter()
                let fired = Flag()
                let thread = try LoopThread.start(clock: .manual(ManualClock()))
                let remote = thread.remote
                func count() -> Int { counter.value.load(ordering: .acquiring) }
                remote.sync { loop in
                    loop.scheduleRepeating(every: .seconds(1)) { counter.value.add(1, ordering: .releasing) }
                    loop.schedule(after: .seconds(10)) { fired.value.store(true, ordering: .releasing) }
                }
                remote.advanceTime(by: .milliseconds(999))
                #expect(count() == 0)
                remote.advanceTime(by: .milliseconds(1))
                #expect(count() == 1)
                remote.advanceTime(by: .seconds(9))
                #expect(count() == 10)
                let didFire = fired.value.load(ordering: .acquiring)
                #expect(didFire)
                thread.stopAndJoin()
            }
        }

        /// Signals sent to the loop's thread reach the handler on that thread, through the signalfd.
        @Test func signalsThroughASignalfd() throws {
            final class Seen: @unchecked Sendable {
                // @unchecked: written on the loop thread before each semaphore signal, read after the wait.
                var signals: [Int32] = []
                var offLoopThread = 0
            }
            try expectNoFDLeak {
                let arrived = Semaphore()
                let seen = Seen()
                // Setup runs here: the signals are blocked in this thread, and in the loop thread it starts.
                let (thread, _) = try LoopThread.start { loop in
                    try loop.watchSignals([SIGUSR1, SIGUSR2]) { [unowned loop] signal in
                        seen.signals.append(signal)
                        if !loop.inLoopThread { seen.offLoopThread += 1 }
                        arrived.signal()
                    }
                }
                let loopThread = thread.remote.sync { _ in pthread_self() }
                #expect(pthread_kill(loopThread, SIGUSR1) == 0)
                #expect(arrived.wait())
                #expect(pthread_kill(loopThread, SIGUSR2) == 0)
                #expect(arrived.wait())
                thread.stopAndJoin()
                #expect(seen.signals == [SIGUSR1, SIGUSR2])
                #expect(seen.offLoopThread == 0)
                // Nothing is pending for this thread: unblocking delivers nothing.
                try EventLoop.unblockSignals([SIGUSR1, SIGUSR2])
            }
        }

        /// Allocation-free handler timers carry their token, and fire in deadline order.
        @Test func handlerTimers() throws {
            final class Sink: TimerHandler {
                var tokens: [UInt64] = []
                func timerFired(_ timer: TimerID, token: UInt64) { tokens.append(token) }
            }
            try expectNoFDLeak {
                let loop = try EventLoop(clock: .manual(ManualClock()))
                let sink = Sink()
                for token in [3, 1, 2] as [UInt64] {
                    loop.schedule(after: .milliseconds(Int64(token) * 5), handler: sink, token: token)
                }
                loop.advanceTime(by: .milliseconds(14))
                #expect(sink.tokens == [1, 2])
                loop.advanceTime(by: .milliseconds(1))
                #expect(sink.tokens == [1, 2, 3])
            }
        }

        /// An event for an fd closed and reused earlier in the same epoll batch is dropped, not
        /// delivered to the fd's new owner.
        @Test func staleEventInOneBatch() throws {
            try expectNoFDLeak {
                let loop = try EventLoop()
                let server = Recorder()
                let listener = try loop.listen(on: loopback, handler: server)
                let first = try BlockingClient(connectingTo: listener.address)
                let second = try BlockingClient(connectingTo: listener.address)
                #expect(drive(loop) { server.opened.count == 2 })
                let newcomer = Recorder()
                var reused: Connection? = nil
                server.onRead = { connection, _ in
                    // Whichever event comes first: close the other connection, and open a socket
                    // that takes its fd number, all before the other's queued event is dispatched.
                    guard reused == nil, let other = server.opened.first(where: { $0 != connection }) else { return }
                    other.close()
                    reused = try? loop.connect(to: listener.address, handler: newcomer)
                }
                // Both readable before the loop next waits: one epoll_wait returns both events.
                first.send([1])
                second.send([2])
                for connection in server.opened {
                    // Wait (bounded) for the bytes to land, by readiness rather than by sleeping.
                    var entry = pollfd(fd: connection.fd, events: Int16(POLLIN), revents: 0)
                    #expect(poll(&entry, 1, 5_000) == 1)
                }
                let staleBefore = loop.statistics.staleEvents
                loop.runOnce(maximumWait: .seconds(1))
                #expect(reused != nil)
                #expect(reused?.fd == server.closes.first?.0.fd, "the new socket did not reuse the fd")
                #expect(loop.statistics.staleEvents == staleBefore + 1)
                #expect(newcomer.received.isEmpty)
                #expect(server.received.count == 1)
                #expect(drive(loop) { newcomer.opened.count == 1 })
                listener.close()
                loop.closeAll()
                server.onRead = nil  // the closure captures the loop and the recorder: break the cycle
            }
        }
    }
}
