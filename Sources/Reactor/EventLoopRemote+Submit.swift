/// Why work handed to a loop did not run.
public enum EventLoopError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The loop ended (it was released after `run()` returned) before it ran the work.
    case stopped

    public var description: String {
        switch self {
        case .stopped: "the event loop stopped before running the work"
        }
    }
}

extension EventLoopRemote {
    /// Runs `body` on the loop thread and returns its result to the awaiting caller (from any thread
    /// or task). On the loop thread itself, `body` runs at once. Cancellation does not stop `body`.
    /// - Throws: what `body` threw, or `EventLoopError.stopped` if the loop ended before running it.
    public func submit<Value: Sendable>(
        _ body: @escaping @Sendable (EventLoop) throws -> Value
    ) async throws -> Value {
        if jobQueue.isOwnerThread, let loop = jobQueue.loop {
            return try body(loop.takeUnretainedValue())
        }
        return try await withUnsafeThrowingContinuation { continuation in
            let submission = Submission(body, continuation)
            execute { loop in submission.run(loop) }
        }
    }
}

/// One `submit`: the continuation is resumed exactly once, by `run`, or by `deinit` when the loop
/// dropped the closure unrun (it ended first).
private final class Submission<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `continuation` is taken by `run` on the loop thread, or by `deinit` once nothing
    // else holds the submission; never both, never concurrently.
    private let body: @Sendable (EventLoop) throws -> Value
    private var continuation: UnsafeContinuation<Value, any Error>?

    init(_ body: @escaping @Sendable (EventLoop) throws -> Value, _ continuation: UnsafeContinuation<Value, any Error>) {
        self.body = body
        self.continuation = continuation
    }

    func run(_ loop: EventLoop) {
        guard let continuation = continuation.take() else { return }
        do {
            continuation.resume(returning: try body(loop))
        } catch {
            continuation.resume(throwing: error)
        }
    }

    deinit { continuation?.resume(throwing: EventLoopError.stopped) }
}
