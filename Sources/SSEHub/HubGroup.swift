import Reactor
import Synchronization

/// One `Hub` per loop of an `EventLoopGroup`, fed by one sequencer, so that a publication reaches the
/// subscribers of every loop in one order, with one id. What `rill serve --workers` does between
/// processes (the supervisor sequences, each worker's hub delivers ids it did not choose), inside one
/// process: under one lock a publication takes the next sequence number (its id, unless the event
/// names one) and is posted to every loop's remote, so every loop's FIFO queue holds the group's
/// publications in the same order. It is framed once, by the publisher's thread (`SharedBytes` are
/// immutable and shared by every loop's subscribers), and each loop's hub writes and keeps those
/// bytes (`Hub.deliver(encoded:id:topic:)`). Every hub keeps the whole history, so a client resuming
/// with Last-Event-ID gets the same events whichever loop it reaches.
///
/// Build it before the loops run: `HubGroup(count:)`, then, in each loop's setup (or on its thread),
/// `makeHub(at:loop:)`. Publish only once every hub is made. Publishing directly into one of the
/// hubs (`Hub.publish`) bypasses the sequencer: its ids and history are that loop's alone.
///
/// Cost per publication: one encoding, one posted task per loop; nothing per subscriber.
public final class HubGroup: Sendable {
    /// A loop's hub and its remote. The hub is touched only in tasks its loop runs.
    struct Member: @unchecked Sendable {
        let hub: Hub
        let remote: EventLoopRemote
    }

    struct Sequencer {
        var last: UInt64 = 0
        var members: [Member?]
        var made = 0
    }

    private let sequencer: Mutex<Sequencer>
    /// How many loops (and hubs).
    public let count: Int

    /// A group for `count` loops; each loop's hub comes from `makeHub(at:loop:)`. Generated ids are
    /// `sequenceBase + 1`, `+ 2`, ... (see `Hub.Configuration.sequenceBase`: a per-start base keeps an
    /// id of an earlier start from being taken for one of now).
    public init(count: Int, sequenceBase: UInt64 = 0) {
        precondition(count > 0, "a hub group needs at least one loop")
        self.count = count
        sequencer = Mutex(Sequencer(last: sequenceBase, members: Array(repeating: nil, count: count)))
    }

    /// Creates loop `index`'s hub on `loop`: in that loop's setup, before it runs, or on its thread.
    @discardableResult
    public func makeHub(at index: Int, loop: EventLoop, configuration: Hub.Configuration = .init()) -> Hub {
        let hub = Hub(loop: loop, configuration: configuration)
        let member = Member(hub: hub, remote: loop.remote)
        sequencer.withLock { state in
            precondition(state.members[index] == nil, "hub \(index) made twice")
            state.members[index] = member
            state.made += 1
        }
        return hub
    }

    /// Loop `index`'s hub, for subscribing there. Loop-confined: use it on that loop's thread only.
    public func hub(at index: Int) -> Hub {
        guard let member = sequencer.withLock({ $0.members[index] }) else {
            preconditionFailure("hub \(index) was not made")
        }
        return member.hub
    }

    // MARK: - Publishing

    /// Sequences `event` and posts it to every loop; returns its id at once (fire and forget).
    /// Throws only what framing would refuse (before anything is posted).
    @discardableResult
    public func publish(_ event: OutgoingEvent, topic: String) throws(EventEncodingError) -> String {
        try post(event) { _, member, bytes, id in
            { _ in member.hub.deliver(encoded: bytes, id: id, topic: topic) }
        }
    }

    /// For a publication that arrived on loop `origin` (an HTTP `/publish`, say): sequences `event`
    /// and posts it to every loop; `completion` runs on loop `origin`'s thread once that loop's hub has
    /// queued it, with its id and how many of that loop's subscribers got it (other loops deliver
    /// on their own time). Call it on loop `origin`'s thread: `completion` may touch what that loop
    /// owns. Throws, before anything is posted and without calling `completion`, what framing would
    /// refuse. If loop `origin` stops first, `completion` never runs.
    @discardableResult
    public func publish(
        _ event: OutgoingEvent, topic: String, from origin: Int,
        completion: @escaping (_ id: String, _ subscribers: Int) -> Void
    ) throws(EventEncodingError) -> String {
        precondition(origin >= 0 && origin < count, "no loop \(origin) in the group")
        let completion = LoopConfined(completion)
        return try post(event) { index, member, bytes, id in
            guard index == origin else { return { _ in member.hub.deliver(encoded: bytes, id: id, topic: topic) } }
            return { _ in completion.value(id, member.hub.deliver(encoded: bytes, id: id, topic: topic)) }
        }
    }

    /// Publishes `event` and resumes once every loop's hub has queued it, with its id and the number
    /// of subscribers over all loops. Throws `EventEncodingError` before any loop trip for an event
    /// framing would refuse, and `HubPublisherError.loopStopped` if a loop was asked to stop before
    /// the call (see `HubPublisher` on a stop that races with the call).
    public func publish(_ event: OutgoingEvent, topic: String) async throws -> (id: String, subscribers: Int) {
        try EventEncoder.validate(event)
        let stopped = sequencer.withLock { state in state.members.contains { $0?.remote.isStopRequested ?? false } }
        guard !stopped else { throw HubPublisherError.loopStopped }
        return try await withCheckedThrowingContinuation { continuation in
            let countdown = GroupPublication(continuation, loops: count)
            do {
                _ = try post(event) { _, member, bytes, id in
                    { _ in countdown.delivered(id: id, subscribers: member.hub.deliver(encoded: bytes, id: id, topic: topic)) }
                }
            } catch {
                countdown.fail(error)
            }
        }
    }

    /// The sequencer: validates, then under the lock takes the next number, frames the event with its
    /// id (outside the lock when the event names its own), and posts `task(index, member, bytes, id)` to
    /// every loop in index order. Framing a generated id under the lock keeps the order of ids and of
    /// posts one and the same.
    private func post(
        _ event: OutgoingEvent,
        task: (Int, Member, SharedBytes, String) -> EventLoopRemote.Task
    ) throws(EventEncodingError) -> String {
        try EventEncoder.validate(event)
        var named: SharedBytes? = nil
        if event.id != nil { named = try EventEncoder.encodeShared(event) }
        return sequencer.withLock { state in
            precondition(state.made == count, "publish before every hub of the group was made")
            state.last += 1
            let id: String
            let bytes: SharedBytes
            if let named, let given = event.id {
                (id, bytes) = (given, named)
            } else {
                var numbered = event
                id = decimalString(state.last)
                numbered.id = id
                // Validated above, and a decimal id is always valid.
                bytes = try! EventEncoder.encodeShared(numbered)
            }
            for (index, member) in state.members.enumerated() {
                let member = member!
                member.remote.execute(task(index, member, bytes, id))
            }
            return id
        }
    }
}

/// A value used only on one loop's thread, carried there inside a `Sendable` task.
struct LoopConfined<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// An async group publication waiting for every loop: the last loop to deliver resumes it with the
/// total of subscribers; released unfinished (a loop went away with the task), it throws `loopStopped`.
final class GroupPublication: Sendable {
    private struct State {
        var continuation: CheckedContinuation<(id: String, subscribers: Int), any Error>?
        var remaining: Int
        var subscribers = 0
    }
    private let state: Mutex<State>

    init(_ continuation: CheckedContinuation<(id: String, subscribers: Int), any Error>, loops: Int) {
        state = Mutex(State(continuation: continuation, remaining: loops))
    }

    func delivered(id: String, subscribers: Int) {
        let (continuation, total) = state.withLock { state in
            state.subscribers += subscribers
            state.remaining -= 1
            return state.remaining == 0 ? (state.continuation.take(), state.subscribers) : (nil, 0)
        }
        continuation?.resume(returning: (id, total))
    }

    func fail(_ error: any Error) {
        state.withLock { $0.continuation.take() }?.resume(throwing: error)
    }

    deinit { fail(HubPublisherError.loopStopped) }
}
