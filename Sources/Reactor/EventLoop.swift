import CEpoll
#if canImport(Glibc)
import Glibc
#endif

/// A single-threaded epoll reactor: one thread calls `run()`, which waits for readiness, dispatches it
/// to connection handlers and listeners, fires due timers and runs work posted from other threads
/// through `remote`. Everything else about a loop (its connections, listeners, timers) must be used
/// on that thread only, which is why `EventLoop` is not `Sendable`; `EventLoopRemote` is the one
/// cross-thread entry point.
///
/// Time is a parameter (`Clock`): real monotonic time, or a `ManualClock` that a test moves with
/// `advanceTime(by:)`, so that every timer-driven behaviour is tested without sleeping. Signals can
/// be events too (`watchSignals`). Callbacks never re-enter a handler's own call (see `ConnectionHandler`).
///
/// Readiness is level-triggered. With edge triggering every read must continue until EAGAIN (a
/// second syscall per message) and a per-wake-up read bound needs a list of starved fds; with level
/// triggering one `read` that returns less than the buffer means "drained for now", and anything
/// left is reported again. EPOLLOUT is in the interest set only while a connection has queued bytes,
/// so idle and keeping-up connections cost no epoll_ctl calls at all.
public final class EventLoop {
    /// Tunables; the defaults suit a server with many mostly idle connections.
    public struct Configuration: Sendable {
        /// Events taken from one `epoll_wait`. Large enough that a fan-out round over 20k sockets
        /// needs few calls, small enough (6 KiB of 12-byte events) to stay in L1 cache.
        public var eventBatch = 512
        /// The loop-wide read buffer shared by all connections.
        public var readBufferSize = 64 * 1024
        /// Reads of one connection per wake-up while each fills the whole buffer: fairness bound.
        public var readsPerWakeup = 4
        /// Bytes read from all connections together per wake-up past which each ready socket gets
        /// one small read (`overBudgetReadBytes`): a thousand clients uploading or pipelining at once
        /// cannot make one turn copy hundreds of megabytes, nor make a new client's request wait
        /// until all of theirs are read (level triggering reports the rest at the next wake-up).
        /// It bounds a turn's cost, not throughput: a wake-up is cheap beside copying and parsing
        /// what it reads, and every byte left is read at the next one.
        public var readBytesPerWakeup = 512 << 10
        /// Queued bytes flushed (on EPOLLOUT) to all connections together per wake-up; past it, the
        /// other writable sockets wait for the next wake-up (level triggering reports them again,
        /// in turn). Direct writes (an answer, a published event) are not counted: only the backlog
        /// of clients that had fallen behind, which a thousand slow readers could make huge.
        public var flushBytesPerWakeup = 512 << 10
        /// Queued bytes above which a connection reports not writable ...
        public var writeHighWatermark = 256 * 1024
        /// ... and below which it reports writable again.
        public var writeLowWatermark = 64 * 1024

        public init() {}
    }

    /// Counters for diagnostics and tests.
    public struct Statistics: Sendable {
        public var wakeups = 0
        public var events = 0
        /// Events dropped because their fd was closed (and maybe reused) earlier in the same batch.
        public var staleEvents = 0
        public var connectionsOpened = 0
        public var connectionsClosed = 0
        public var bytesRead = 0
        public var bytesWritten = 0
        public var timersFired = 0
        public var tasksRun = 0
        /// The longest a turn has kept the loop busy (from the wake-up to the end of its work, on
        /// the monotonic clock whatever the loop's clock): how long any client may have waited.
        public var longestTurnNanoseconds: UInt64 = 0
        /// Swift concurrency jobs run on this loop as its executor.
        public var jobsRun = 0
    }

    public let configuration: Configuration
    /// Thread-safe handle for posting work and stopping this loop from other threads.
    public let remote: EventLoopRemote
    public internal(set) var statistics = Statistics()

    let epollFD: Int32
    var slots = MappedArray<FdSlot>()
    /// The generation new slots start at: above every generation of a slot given back by
    /// `releaseUnusedSlots`.
    var generationFloor: UInt32 = 0
    /// Listeners by fd: few, so kept out of the fd table's slots.
    var listeners: [Int32: Listener] = [:]
    var wheel: TimerWheel<TimerTask>
    /// Current time in loop ticks (milliseconds since the loop was created), updated once per wake-up.
    public internal(set) var now: UInt64 = 0
    /// Where time comes from (`.monotonic`, or a test's `.manual` clock).
    public let clock: Clock
    /// The clock's reading, in nanoseconds, when the loop was created: tick 0.
    let clockOrigin: UInt64
    let readBuffer: UnsafeMutableRawBufferPointer
    /// A read past the wake-up's budget: enough for a whole ordinary request.
    static let overBudgetReadBytes = 4 << 10
    /// `statistics.bytesRead` when the current wake-up began (for `readBytesPerWakeup`).
    var wakeupStartBytesRead = 0
    /// Bytes flushed from write queues since the current wake-up began (for `flushBytesPerWakeup`).
    var wakeupFlushedBytes = 0
    let iovecs: UnsafeMutableBufferPointer<iovec>
    private let events: UnsafeMutablePointer<epoll_event>
    /// Connections that failed under a write; closed at the next safe point so that a handler
    /// iterating its subscribers never sees a close callback in the middle of its own loop.
    var deferredCloses: [(Connection, CloseReason)] = []
    /// Writability changes, delivered in order at the next safe point (never from inside `write`).
    var deferredWritability: [(Connection, Bool)] = []
    var runningDeferred = false
    /// Work for the end of the next turn (`runSoon`): swapped out before it runs, so work it adds
    /// waits one more turn and I/O gets its chance in between.
    var soon: [() -> Void] = []
    var spareSoon: [() -> Void] = []
    /// The connection whose `connectionDidClose` is running, and its userData, which stays readable.
    var closingConnection: (Connection, UInt64)? = nil
    private var stopRequested = false
    private var spareTasks: [EventLoopRemote.Task] = []
    private var runningThread: pthread_t? = nil
    /// Receives the signals read from the loop's signalfd (see `watchSignals`).
    var signalHandler: ((Int32) -> Void)? = nil

    /// Creates a loop (an epoll instance and an eventfd) on the calling thread. SIGPIPE is ignored
    /// process-wide from here on; writes also pass MSG_NOSIGNAL.
    /// - Parameter clock: `.monotonic` (real time), or `.manual(clock)` for tests, whose time moves
    ///   only through `advanceTime(by:)` (or `ManualClock.advance(by:)`).
    public init(configuration: Configuration = Configuration(), clock: Clock = .monotonic) throws(SystemError) {
        cepoll_ignore_sigpipe()
        self.configuration = configuration
        self.clock = clock
        let epoll = OwnedFD(try syscallChecked("epoll_create1") { epoll_create1(Int32(CEPOLL_CLOEXEC)) })
        let remote = try EventLoopRemote()
        try syscallChecked("epoll_ctl(eventfd)") {
            cepoll_ctl(
                epoll.raw, EPOLL_CTL_ADD, remote.wakeFD, CEPOLL_IN,
                FdSlot.token(fd: remote.wakeFD, generation: 0))
        }
        self.remote = remote
        epollFD = epoll.release()
        clockOrigin = EventLoop.read(clock)
        wheel = TimerWheel(now: 0)
        readBuffer = .allocate(byteCount: configuration.readBufferSize, alignment: 16)
        iovecs = .allocate(capacity: WriteQueue.maximumIOVectors)
        events = cepoll_events_allocate(Int32(configuration.eventBatch))
        ensureSlot(remote.wakeFD)
        slots[Int(remote.wakeFD)].kind = .wakeup
        remote.jobQueue.loop = Unmanaged.passUnretained(self)
        remote.jobQueue.claim()
    }

    deinit {
        remote.loopDidEnd()
        // Whatever is still open goes without callbacks: handlers may already be gone.
        for fd in slots.indices where slots[fd].kind != .free && slots[fd].kind != .wakeup {
            closeDescriptor(Int32(fd))
        }
        closeDescriptor(epollFD)
        readBuffer.deallocate()
        iovecs.deallocate()
        free(events)
    }

    // MARK: - Running

    /// Runs until `stop()` (here, or through `remote` from any thread).
    public func run() {
        runningThread = pthread_self()
        stopRequested = false
        while !stopRequested && !remote.isStopRequested {
            runOnce()
        }
        runningThread = nil
    }

    /// Waits once for events (at most until the next timer is due, or `maximumWait`), dispatches
    /// them, fires due timers and runs posted tasks. For embedding the loop in another run loop.
    public func runOnce(maximumWait: Duration? = nil) {
        remote.jobQueue.claim()
        var timeout = waitTimeout()
        if let maximumWait {
            let cap = Int32(clamping: maximumWait.millisecondsRoundedUp)
            timeout = timeout < 0 ? cap : min(timeout, cap)
        }
        let count: Int32
        do {
            // EINTR counts as a wake-up with no events (not retried: timers may be due by now).
            count = try syscallChecked("epoll_wait") {
                let result = epoll_wait(epollFD, events, Int32(configuration.eventBatch), timeout)
                return result < 0 && errno == EINTR ? 0 : result
            }
        } catch {
            // EINVAL is all that is left: a bad epoll fd or batch size, i.e. a bug.
            fatalError("\(error)")
        }
        let turnStart = MonotonicClock.nanoseconds()
        updateNow()
        statistics.wakeups += 1
        wakeupStartBytesRead = statistics.bytesRead
        wakeupFlushedBytes = 0
        if count > 0 {
            statistics.events += Int(count)
            // New clients first: accepting (and reading a new client's first request, see
            // `Listener`) must not wait behind the reads and flushes of every busy connection.
            let acceptFirst = !listeners.isEmpty
            if acceptFirst {
                for index in 0..<Int(count) where isListener(token: cepoll_event_data(events, Int32(index))) {
                    dispatch(
                        mask: cepoll_event_mask(events, Int32(index)), token: cepoll_event_data(events, Int32(index)))
                    runDeferred()
                }
            }
            for index in 0..<Int(count) {
                let token = cepoll_event_data(events, Int32(index))
                if acceptFirst && isListener(token: token) { continue }
                dispatch(mask: cepoll_event_mask(events, Int32(index)), token: token)
                runDeferred()
            }
        }
        fireTimers()
        runTasks()
        runSoonWork()
        statistics.longestTurnNanoseconds = max(
            statistics.longestTurnNanoseconds, MonotonicClock.nanoseconds() &- turnStart)
    }

    /// Runs `body` on this loop at the end of the current turn (after its I/O, timers and posted
    /// tasks; from such work itself, at the end of the next turn), without waiting for the clock: work cut into slices, one per turn, so that no
    /// single turn holds the loop for long. Loop thread only; a manual clock needs no advancing.
    public func runSoon(_ body: @escaping () -> Void) {
        soon.append(body)
    }

    private func runSoonWork() {
        guard !soon.isEmpty else { return }
        swap(&soon, &spareSoon)
        for body in spareSoon {
            body()
            runDeferred()
        }
        spareSoon.removeAll(keepingCapacity: true)
    }

    /// Makes `run()` return after the current iteration. Loop thread only; see `remote.stop()`.
    public func stop() { stopRequested = true }

    /// Whether the caller is on the thread currently inside `run()`.
    public var inLoopThread: Bool {
        guard let runningThread else { return false }
        return pthread_equal(runningThread, pthread_self()) != 0
    }

    /// Closes every listener and connection (connections get `connectionDidClose(.local)`), and
    /// cancels nothing else. `LoopThread` calls it when `run()` returns.
    public func closeAll() {
        for fd in slots.indices {
            switch slots[fd].kind {
            case .listener: listeners[Int32(fd)]?.close()
            case .connection, .connecting:
                close(Connection(loop: self, fd: Int32(fd), generation: slots[fd].generation), reason: .local)
            case .free, .wakeup, .signal: break
            }
        }
        runDeferred()
    }

    /// The open connection on `fd`, whoever owns it now. Internal: outside the reactor a connection is
    /// named by its `id` (fd and generation), so that a table never reaches the fd's next owner.
    func connection(onFD fd: Int32) -> Connection? {
        guard fd >= 0, Int(fd) < slots.count, slots[Int(fd)].kind == .connection else { return nil }
        return Connection(loop: self, fd: fd, generation: slots[Int(fd)].generation)
    }

    /// The connection an `id` named, if it is still open (nil once it closed, even if its fd was reused).
    public func connection(id: UInt64) -> Connection? {
        let fd = Int32(truncatingIfNeeded: id)
        guard let connection = connection(onFD: fd), connection.generation == UInt32(truncatingIfNeeded: id >> 32)
        else { return nil }
        return connection
    }

    /// Calls `body` with every open (connected) connection, in fd order. `body` may close them.
    public func forEachConnection(_ body: (Connection) -> Void) {
        for fd in slots.indices where slots[fd].kind == .connection {
            body(Connection(loop: self, fd: Int32(fd), generation: slots[fd].generation))
        }
        runDeferred()
    }

    /// How many connections (including connecting ones) are open.
    public var openConnections: Int { statistics.connectionsOpened - statistics.connectionsClosed }

    // MARK: - Dispatch

    private func dispatch(mask: UInt32, token: UInt64) {
        let fd = Int32(truncatingIfNeeded: token)
        let generation = UInt32(truncatingIfNeeded: token >> 32)
        guard Int(fd) < slots.count, slots[Int(fd)].generation == generation else {
            statistics.staleEvents += 1
            return
        }
        let connection = Connection(loop: self, fd: fd, generation: generation)
        switch slots[Int(fd)].kind {
        case .connection:
            connectionReady(connection, mask: mask)
        case .connecting:
            connectReady(connection, mask: mask)
        case .listener:
            listeners[fd]?.acceptReady()
        case .wakeup:
            remote.acknowledgeWakeup()
        case .signal:
            signalsReady(fd)
        case .free:
            statistics.staleEvents += 1
        }
    }

    /// Whether an event's token names a listener (these are dispatched first).
    private func isListener(token: UInt64) -> Bool {
        let fd = Int(Int32(truncatingIfNeeded: token))
        return fd < slots.count && slots[fd].kind == .listener
    }

    /// The epoll_wait timeout: 0 if work is waiting, else until the next timer tick, else forever.
    /// On a manual clock a timer not yet due is never waited for: time moves only when a test says.
    private func waitTimeout() -> Int32 {
        if hasDeferredWork || remote.hasPendingTasks || remote.jobQueue.hasPending || !soon.isEmpty { return 0 }
        guard let next = wheel.nextExpiry() else { return -1 }
        updateNow()
        if next <= now { return 0 }
        if case .manual = clock { return -1 }
        return Int32(clamping: next - now)
    }

    func updateNow() {
        now = (EventLoop.read(clock) - clockOrigin) / 1_000_000
    }

    /// The clock's reading in nanoseconds: a switch, no existential, no allocation.
    @inline(__always)
    private static func read(_ clock: Clock) -> UInt64 {
        switch clock {
        case .monotonic: MonotonicClock.nanoseconds()
        case .manual(let manual): manual.nanoseconds
        }
    }

    private func runTasks() {
        let ran = remote.drain(into: self, using: &spareTasks)
        statistics.tasksRun += ran
        runDeferred()
        runJobs()
    }

    // MARK: - The fd table

    /// Gives `fd` a slot: the table grows with the highest fd actually seen (see `MappedArray`), so a
    /// huge RLIMIT_NOFILE (2^30 on some hosts) costs nothing until fds are used.
    func ensureSlot(_ fd: Int32) {
        guard Int(fd) >= slots.count else { return }
        var free = FdSlot()
        free.generation = generationFloor
        slots.ensure(Int(fd), filling: free)
    }

    /// Gives back the fd table's pages above the highest descriptor in use, once at least
    /// `minimumEntries` free slots lie there (after many connections have left). A slot made again
    /// later starts at a generation above any its fd had, so a stale handle never names its next
    /// owner. O(free slots at the top); for an owner that notices departures (the SSE hub does).
    public func releaseUnusedSlots(minimumEntries: Int = 1024) {
        var top = slots.count
        var newest: UInt32 = 0
        while top > 0 && slots[top - 1].kind == .free {
            newest = max(newest, slots[top - 1].generation)
            top -= 1
        }
        guard slots.count - top >= minimumEntries else { return }
        generationFloor = max(generationFloor, newest &+ 1)
        slots.shrink(to: top)
    }

    /// Whether `connection` still names the open connection on its fd.
    func isCurrent(_ connection: Connection) -> Bool {
        let fd = Int(connection.fd)
        return fd < slots.count && slots[fd].generation == connection.generation
            && (slots[fd].kind == .connection || slots[fd].kind == .connecting)
    }

    /// Adds `fd` to the epoll set with `events`, owned by a fresh slot of `kind`.
    func register(_ fd: consuming OwnedFD, kind: FdSlot.Kind, events: UInt32) throws(SystemError) -> (Int32, UInt32) {
        let raw = fd.raw
        ensureSlot(raw)
        var entry = slots[Int(raw)]
        precondition(entry.kind == .free, "fd \(raw) registered twice")
        try syscallChecked("epoll_ctl(add)") {
            cepoll_ctl(epollFD, EPOLL_CTL_ADD, raw, events, FdSlot.token(fd: raw, generation: entry.generation))
        }
        entry.kind = kind
        entry.flags = []
        if events & CEPOLL_IN != 0 { entry.flags.insert(.registeredIn) }
        if events & CEPOLL_OUT != 0 { entry.flags.insert(.registeredOut) }
        slots[Int(raw)] = entry
        _ = fd.release()
        return (raw, entry.generation)
    }

    /// Makes the epoll interest of `fd` match `events` (one epoll_ctl, only if it changed).
    /// Throws what the kernel refused (ENOMEM, ENOSPC); the interest is unchanged then.
    func setInterest(_ fd: Int32, events: UInt32) throws(SystemError) {
        let index = Int(fd)
        var flags = slots[index].flags
        let current =
            (flags.contains(.registeredIn) ? CEPOLL_IN : 0) | (flags.contains(.registeredOut) ? CEPOLL_OUT : 0)
        guard current != events else { return }
        let token = FdSlot.token(fd: fd, generation: slots[index].generation)
        try syscallChecked("epoll_ctl(mod)") { cepoll_ctl(epollFD, EPOLL_CTL_MOD, fd, events, token) }
        flags.remove([.registeredIn, .registeredOut])
        if events & CEPOLL_IN != 0 { flags.insert(.registeredIn) }
        if events & CEPOLL_OUT != 0 { flags.insert(.registeredOut) }
        slots[index].flags = flags
    }

    /// Closes `fd` and frees its slot: the only place a registered descriptor is closed. Closing
    /// also removes it from the epoll set (Rill's fds are never duplicated or inherited).
    func releaseSlot(_ fd: Int32) {
        let index = Int(fd)
        precondition(slots[index].kind != .free, "fd \(fd) closed twice")
        if slots[index].kind == .listener { listeners[fd] = nil }
        let generation = slots[index].generation &+ 1
        slots[index] = FdSlot()
        slots[index].generation = generation
        closeDescriptor(fd)
    }
}
