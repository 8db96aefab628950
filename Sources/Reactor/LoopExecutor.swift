/// The loop as a Swift concurrency executor. `EventLoopRemote` (the loop's one `Sendable` handle)
/// is both a `SerialExecutor` — an actor whose `unownedExecutor` is the loop's runs every job on the
/// loop thread, so it may hold and touch loop-confined values (`Connection`, `EventLoop`) without
/// hopping — and a `TaskExecutor`, so `Task(executorPreference: loop.executor)` runs its
/// nonisolated code on the loop thread too. As in SwiftNIO, the loop is its own executor:
/// `remote.executor === remote`.
///
/// Jobs run at the end of each loop turn, after posted closures (the two queues are not ordered
/// with each other). Jobs they enqueue run in the same turn, up to `jobsPerTurn` in all, so a chain
/// of resumptions completes at once; the rest wait for the next turn, which does not block in
/// epoll, so I/O gets a look in between. Each job is followed by the loop's safe point.
/// Isolation is by thread: code is isolated to this executor when it runs on the loop's thread —
/// the one that last turned it (`run()`, `runOnce`), or created it, until the loop is released.
///
/// A job enqueued after the loop is gone never runs (its task stays suspended); `LoopThread` runs
/// the jobs still queued when the loop stops, after it has closed every connection.
extension EventLoopRemote: SerialExecutor, TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        if jobQueue.append(UnownedJob(job)) { wake() }
    }

    /// Traps unless the caller is on the thread turning the loop (what `assumeIsolated` asks).
    public func checkIsolated() {
        precondition(jobQueue.isOwnerThread, "not on the event loop's thread")
    }

    public func isIsolatingCurrentContext() -> Bool? { jobQueue.isOwnerThread }

    /// The loop as an executor: this remote (see above).
    public var executor: EventLoopRemote { self }

    /// Whether the caller runs on the thread turning this loop (and so is isolated to its executor).
    public var isOnLoopThread: Bool { jobQueue.isOwnerThread }

    /// Runs `body` with the loop, from code isolated to the loop's executor (an actor of the loop,
    /// a task preferring it) or any other code on the loop thread. Traps on any other thread.
    public func assumeLoop<Value>(_ body: (EventLoop) throws -> Value) rethrows -> Value {
        checkIsolated()
        guard let loop = jobQueue.loop else { preconditionFailure("the event loop is gone") }
        return try body(loop.takeUnretainedValue())
    }
}

extension EventLoop {
    /// This loop's serial and task executor (its `remote`; see `EventLoopRemote`'s conformance).
    public var executor: EventLoopRemote { remote }

    /// Jobs run per loop turn at most, in batches: enough for any burst of resumed tasks, few
    /// enough that a task that keeps re-enqueueing itself cannot starve I/O.
    static let jobsPerTurn = 4096

    /// Runs the queued jobs (and what they enqueue, up to `jobsPerTurn`), each followed by a safe point.
    func runJobs() {
        let serial = remote.asUnownedSerialExecutor()
        let task = remote.asUnownedTaskExecutor()
        var ran = 0
        while ran < EventLoop.jobsPerTurn && remote.jobQueue.hasPending {
            let batch = remote.jobQueue.takeAll()
            for job in batch {
                job.runSynchronously(isolatedTo: serial, taskExecutor: task)
                runDeferred()
            }
            ran += batch.count
            remote.jobQueue.recycle(batch)
        }
        statistics.jobsRun += ran
    }

    /// Runs the jobs left after `run()` returned (and after `closeAll`, so that tasks waiting on a
    /// connection see it closed and can end), on the loop's thread, until none is left or `rounds`.
    public func runRemainingJobs(rounds: Int = 64) {
        remote.jobQueue.claim()
        for _ in 0..<rounds where remote.jobQueue.hasPending {
            runJobs()
        }
    }
}
