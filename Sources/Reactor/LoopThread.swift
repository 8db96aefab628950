import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs an `EventLoop` on a thread of its own. The loop is created and `setup` runs on the calling
/// thread before the loop thread starts (so errors throw here, and the loop is not yet shared); then
/// the loop runs until `stop()`, closes everything it still holds, and is released on its thread.
public final class LoopThread: Sendable {
    public let remote: EventLoopRemote
    // Written once before the thread can observe it; joined once.
    nonisolated(unsafe) private var thread: pthread_t
    private let joined = Atomic<Bool>(false)

    /// Creates a loop, runs `setup` with it, then starts it on a new thread.
    /// Returns the thread and whatever `setup` returned (a listener's port, say).
    public static func start<Value: Sendable>(
        configuration: EventLoop.Configuration = .init(),
        clock: EventLoop.Clock = .monotonic,
        setup: (EventLoop) throws -> Value
    ) throws -> (LoopThread, Value) {
        let loop = try EventLoop(configuration: configuration, clock: clock)
        let value = try setup(loop)
        return (try LoopThread(loop), value)
    }

    /// Starts a loop with nothing set up yet; use `remote.execute` to give it work.
    public static func start(
        configuration: EventLoop.Configuration = .init(),
        clock: EventLoop.Clock = .monotonic
    ) throws -> LoopThread {
        try start(configuration: configuration, clock: clock) { _ in () }.0
    }

    private final class Box {
        let loop: EventLoop
        init(_ loop: EventLoop) { self.loop = loop }
    }

    private init(_ loop: EventLoop) throws(SystemError) {
        remote = loop.remote
        let box = Unmanaged.passRetained(Box(loop)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { context in
                let loop = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().loop
                loop.run()
                loop.closeAll()
                loop.runRemainingJobs()
                return nil
            }, box)
        guard result == 0 else {
            // EAGAIN: out of threads or memory. The loop was not handed over: release it here.
            Unmanaged<Box>.fromOpaque(box).release()
            throw SystemError(operation: "pthread_create", errno: result)
        }
        self.thread = thread
    }

    /// Asks the loop to stop (from any thread).
    public func stop() { remote.stop() }

    /// Waits until the loop thread has finished. Call once, from another thread.
    public func join() {
        guard !joined.exchange(true, ordering: .acquiringAndReleasing) else { return }
        pthread_join(thread, nil)
    }

    /// `stop()` then `join()`.
    public func stopAndJoin() {
        stop()
        join()
    }
}
