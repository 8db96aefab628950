import Reactor
import Synchronization

/// Publishes into a loop-confined `Hub` from any thread, or from async code. A `Sendable` handle:
/// it holds the hub's loop `EventLoopRemote` and the hub itself, which it touches only in work it
/// posts to that loop.
///
/// Order: the remote's queue is FIFO, so the publications of one thread reach the hub, and every
/// subscriber, in the order in which its `publish` calls returned. Between threads the order is
/// whichever posted first. An event is validated on the caller's thread (a bad one fails without a
/// trip to the loop), then encoded once on the loop, where the hub gives it its id.
///
/// Cost on the loop per publication: the posted task (one closure context, allocated by the caller)
/// and the event's encoded bytes; nothing per subscriber.
public struct HubPublisher: Sendable {
    let remote: EventLoopRemote
    /// Touched only inside tasks run by `remote`'s loop, which owns it.
    nonisolated(unsafe) let hub: Hub

    /// A publisher for `hub`. On the hub's loop thread (or before that loop runs).
    public init(_ hub: Hub) {
        self.hub = hub
        remote = hub.loop.remote
    }

    /// Queues `event` for the hub's subscribers of `topic` and returns at once (fire and forget);
    /// the hub assigns the id if the event has none. Throws only what framing would refuse.
    public func publish(_ event: OutgoingEvent, topic: String) throws(EventEncodingError) {
        try EventEncoder.validate(event)
        remote.execute { _ in _ = try? self.hub.publish(event, topic: topic) }
    }

    /// Publishes `event` and resumes once the hub has queued it to the subscribers of `topic`, with
    /// its id and how many subscribers got it. Throws `EventEncodingError` for an event framing would
    /// refuse (before any trip to the loop), `HubPublisherError.loopStopped` if the loop was asked to
    /// stop before the call.
    ///
    /// A stop that races with the call (asked after it posted, before the loop ran it) leaves the call
    /// suspended until the loop's remote is released; stop a loop once its publishers are done.
    public func publish(_ event: OutgoingEvent, topic: String) async throws -> (id: String, subscribers: Int) {
        try EventEncoder.validate(event)
        guard !remote.isStopRequested else { throw HubPublisherError.loopStopped }
        return try await withCheckedThrowingContinuation { continuation in
            let completion = PublicationCompletion(continuation)
            remote.execute { _ in
                do {
                    completion.finish(.success(try self.hub.publish(event, topic: topic)))
                } catch {
                    completion.finish(.failure(error))
                }
            }
        }
    }
}

/// Why an async publication did not happen.
public enum HubPublisherError: Error, Equatable, Sendable {
    /// The hub's loop was asked to stop (or had stopped): nothing will run there any more.
    case loopStopped
}

/// A continuation that is resumed exactly once: by `finish`, or, if the task holding it is released
/// without running (its loop went away), with `loopStopped`.
final class PublicationCompletion: Sendable {
    typealias Outcome = Result<(id: String, subscribers: Int), any Error>
    private let continuation: Mutex<CheckedContinuation<(id: String, subscribers: Int), any Error>?>

    init(_ continuation: CheckedContinuation<(id: String, subscribers: Int), any Error>) {
        self.continuation = Mutex(continuation)
    }

    func finish(_ outcome: Outcome) {
        continuation.withLock { $0.take() }?.resume(with: outcome)
    }

    deinit { finish(.failure(HubPublisherError.loopStopped)) }
}

extension Hub {
    /// A `Sendable` handle that publishes into this hub from any thread (see `HubPublisher`).
    public var publisher: HubPublisher { HubPublisher(self) }
}
