import CEpoll
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The thread-safe side of an `EventLoop`: post work to it and stop it from any thread. Work is queued
/// under a mutex and the loop is woken through an eventfd, at most one write per batch of posts.
public final class EventLoopRemote: Sendable {
    /// Work to run on the loop thread; it gets the loop, which it may use freely there.
    public typealias Task = @Sendable (EventLoop) -> Void

    let wakeFD: Int32
    private let tasks = Mutex<[Task]>([])
    /// Set between a wake-up write and the loop reading it: later posts need not write again.
    private let wakePending = Atomic<Bool>(false)
    private let stopFlag = Atomic<Bool>(false)
    private let taskCount = Atomic<Int>(0)
    /// Set when the loop is gone: posts are dropped from then on (see `loopDidEnd`).
    private let ended = Atomic<Bool>(false)
    /// Swift concurrency jobs for the loop (see LoopExecutor.swift).
    let jobQueue = LoopJobQueue()

    init() throws(SystemError) {
        wakeFD = try syscallChecked("eventfd") { CEpoll.eventfd(0, Int32(CEPOLL_EFD_NONBLOCK | CEPOLL_EFD_CLOEXEC)) }
    }

    deinit { closeDescriptor(wakeFD) }

    /// Runs `task` on the loop thread, soon. Tasks run in the order they were posted. Once the loop
    /// is gone, `task` is dropped (released, unrun) instead.
    public func execute(_ task: @escaping Task) {
        let accepted = tasks.withLock { queue in
            guard !ended.load(ordering: .acquiring) else { return false }
            queue.append(task)
            return true
        }
        guard accepted else { return }
        taskCount.add(1, ordering: .releasing)
        wake()
    }

    /// The loop is being released: drop what is queued (outside the lock: releasing a closure may
    /// run code, such as a `submit` resuming its caller with `EventLoopError.stopped`).
    func loopDidEnd() {
        var dropped: [Task] = []
        tasks.withLock { queue in
            ended.store(true, ordering: .releasing)
            swap(&queue, &dropped)
        }
        taskCount.subtract(dropped.count, ordering: .releasing)
        jobQueue.loop = nil
        jobQueue.release()
        dropped.removeAll()
    }

    /// Makes the loop's `run()` return after its current iteration.
    public func stop() {
        stopFlag.store(true, ordering: .releasing)
        wake()
    }

    public var isStopRequested: Bool { stopFlag.load(ordering: .acquiring) }
    var hasPendingTasks: Bool { taskCount.load(ordering: .acquiring) > 0 }

    func wake() {
        guard !wakePending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        do {
            // EAGAIN (the counter is full) is a value: the loop has a wake-up pending anyway.
            _ = try syscall("write(eventfd)") { Glibc.write(wakeFD, &one, 8) }
        } catch {
            fatalError("\(error)")  // an 8-byte write to an eventfd has no other failure
        }
    }

    /// Loop thread: the eventfd was readable.
    func acknowledgeWakeup() {
        var value: UInt64 = 0
        do {
            // EAGAIN: another reader (none, today) or a spurious report; nothing to acknowledge.
            _ = try syscall("read(eventfd)") { Glibc.read(wakeFD, &value, 8) }
        } catch {
            fatalError("\(error)")  // an 8-byte read from an eventfd has no other failure
        }
        // Cleared before the queue is drained, so a post racing with the drain wakes the loop again.
        wakePending.store(false, ordering: .releasing)
    }

    /// Loop thread: runs the queued tasks; returns how many ran. The queue is swapped with `spare`
    /// (the loop's own, emptied array) so that draining allocates nothing.
    func drain(into loop: EventLoop, using spare: inout [Task]) -> Int {
        guard hasPendingTasks else { return 0 }
        tasks.withLock { swap(&$0, &spare) }
        let count = spare.count
        taskCount.subtract(count, ordering: .releasing)
        for task in spare { task(loop) }
        spare.removeAll(keepingCapacity: true)
        return count
    }
}
