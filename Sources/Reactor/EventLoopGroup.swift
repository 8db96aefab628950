/// N event loops, each on a thread of its own (`LoopThread`): one process using several cores. Each
/// loop is set up on the calling thread before its thread starts (so setup may create loop-confined
/// things, such as a listener or a hub, and throw), then runs until `stop()`.
///
/// Loops share nothing: to spread connections, each loop listens on the same address with
/// `reusePort: true` and the kernel deals incoming connections out among them; cross-loop work goes
/// through `remotes`.
public final class EventLoopGroup: Sendable {
    private let threads: [LoopThread]

    /// Each loop's thread-safe side, by index.
    public var remotes: [EventLoopRemote] { threads.map(\.remote) }

    /// How many loops.
    public var count: Int { threads.count }

    /// The remote of loop `index`.
    public func remote(at index: Int) -> EventLoopRemote { threads[index].remote }

    /// Starts `count` loops. `setup(index, loop)` runs on the calling thread for each, in index order,
    /// before that loop's thread starts; what it returns comes back by index. If a setup or a thread
    /// start fails, the loops already started are stopped and joined, and the error is thrown.
    public static func start<Value: Sendable>(
        count: Int,
        configuration: EventLoop.Configuration = .init(),
        clock: EventLoop.Clock = .monotonic,
        setup: (Int, EventLoop) throws -> Value
    ) throws -> (EventLoopGroup, [Value]) {
        precondition(count > 0, "a loop group needs at least one loop")
        var threads: [LoopThread] = []
        var values: [Value] = []
        do {
            for index in 0..<count {
                let (thread, value) = try LoopThread.start(configuration: configuration, clock: clock) { loop in
                    try setup(index, loop)
                }
                threads.append(thread)
                values.append(value)
            }
        } catch {
            for thread in threads { thread.stop() }
            for thread in threads { thread.join() }
            throw error
        }
        return (EventLoopGroup(threads: threads), values)
    }

    /// Starts `count` loops with `setup(index, loop)` run for each (see the other `start`).
    public static func start(
        count: Int,
        configuration: EventLoop.Configuration = .init(),
        clock: EventLoop.Clock = .monotonic,
        setup: (Int, EventLoop) throws -> Void = { _, _ in }
    ) throws -> EventLoopGroup {
        try start(count: count, configuration: configuration, clock: clock) { index, loop -> Bool in
            try setup(index, loop)
            return true
        }.0
    }

    private init(threads: [LoopThread]) {
        self.threads = threads
    }

    /// Asks every loop to stop (from any thread).
    public func stop() {
        for thread in threads { thread.stop() }
    }

    /// Waits until every loop thread has finished. From a thread that is not one of the group's.
    public func join() {
        for thread in threads { thread.join() }
    }

    /// `stop()` then `join()`: all loops are asked at once, so they wind down together.
    public func stopAndJoin() {
        stop()
        join()
    }
}
