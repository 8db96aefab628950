import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The loop's queue of Swift concurrency jobs, beside (not inside) the remote's closure queue: an
/// `UnownedJob` is one word, so enqueueing one is an append under a mutex, with no closure allocated
/// per job. The loop swaps the whole queue out once per drain, as it does for posted closures.
///
/// It also knows which thread is turning the loop now (set at every `runOnce`), which is what
/// isolation checks compare against, and where the loop is, for code that has proved it is on
/// that thread (`EventLoopRemote.assumeLoop`).
final class LoopJobQueue: @unchecked Sendable {
    // @unchecked: `jobs` is behind its mutex; `count` and `owner` are atomics; `spare` and `loop`
    // are touched only by the thread turning the loop (`loop` is also written once before the
    // loop is shared, and cleared by its deinit).
    private let jobs = Mutex<[UnownedJob]>([])
    private let count = Atomic<Int>(0)
    /// The pthread turning the loop (0: none).
    private let owner = Atomic<UInt>(0)
    private var spare: [UnownedJob] = []
    var loop: Unmanaged<EventLoop>? = nil

    var hasPending: Bool { count.load(ordering: .acquiring) > 0 }

    /// Appends `job`; returns whether the loop needs a wake-up (it does unless the caller is the
    /// thread turning it, which looks at the queue before it next waits).
    func append(_ job: UnownedJob) -> Bool {
        jobs.withLock { $0.append(job) }
        count.add(1, ordering: .releasing)
        return !isOwnerThread
    }

    /// Takes every queued job (into the loop's spare array, so that draining allocates nothing).
    /// Loop thread only; give the array back with `recycle`.
    func takeAll() -> [UnownedJob] {
        var batch: [UnownedJob] = []
        swap(&batch, &spare)
        jobs.withLock { swap(&$0, &batch) }
        count.subtract(batch.count, ordering: .releasing)
        return batch
    }

    func recycle(_ batch: consuming [UnownedJob]) {
        var batch = batch
        batch.removeAll(keepingCapacity: true)
        spare = batch
    }

    /// The calling thread turns the loop from now on.
    func claim() { owner.store(UInt(pthread_self()), ordering: .releasing) }

    /// No thread turns the loop now.
    func release() { owner.store(0, ordering: .releasing) }

    var isOwnerThread: Bool { owner.load(ordering: .acquiring) == UInt(pthread_self()) }
}
