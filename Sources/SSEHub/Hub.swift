@_exported import SSE
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Fans Server-Sent Events out to the connections of one `EventLoop`: topics, a history ring per topic
/// for Last-Event-ID replay, heartbeat comments, and a bound on what a slow subscriber may queue.
/// Loop-confined.
///
/// Memory per subscriber is one 24-byte `Membership` in a flat table indexed by fd, plus a 4-byte fd in
/// its topic's list and in its heartbeat slice: no object, no timer and no buffer per connection.
/// A membership keeps its connection's generation too, so the hub names a connection by identity
/// (`Connection.id`), never by a bare fd: a subscriber whose connection closed without `unsubscribe`
/// never reaches the next owner of that fd; it is dropped when the hub next comes across it.
///
/// Replay (Last-Event-ID) is incremental: a replaying member's cursor (the last sequence it was
/// written) sits in a side table, its topics' rings are merged by sequence from there, a slice per loop
/// turn while its socket takes them, paused while it pushes back. Live events skip a replaying member:
/// they are in the history, so its cursor reaches them in order. History has a per-topic bound and
/// a hub-wide one (`historyTotalBytes`, evicting the hub's oldest events first). A topic with no
/// subscriber and no history is reclaimed, its id reused.
///
/// Heartbeats: the interval H is cut into slices (one per second of H by default, at most 64); subscribers are dealt round-robin
/// into slices, and one repeating timer visits one slice every H / slices, writing the shared heartbeat
/// comment to those members that were not written to in the last three quarters of H. So a round of
/// heartbeats is spread evenly over H, an idle subscriber hears one every H, and one that got an event
/// less than 3H/4 ago is skipped: its slice comes round again H later, so its longest silence is
/// 7H/4, which leaves a client that checks for "silent two intervals" a quarter of H for late timers
/// (with a threshold just under H a stream could stay silent 2H less a slice: a late timer on a busy
/// machine made that a false alarm). A new subscriber is due at its slice's first visit, so its first
/// heartbeat comes within H of subscribing, not up to 2H.
public final class Hub {
    public struct Configuration: Sendable {
        /// Heartbeat interval; `.zero` turns heartbeats off.
        public var heartbeat: Duration = .seconds(15)
        /// Slices of the heartbeat interval: how evenly a round is spread (and how often the timer
        /// runs). nil: one per second of the interval, 1 to 64. Spreading keeps a large round from
        /// holding the loop for all its writes at once, but each slice should be a burst: the kernel
        /// delivers a burst of loopback writes more cheaply than the same writes in small batches
        /// (the README's connection benchmark has the figures).
        public var heartbeatSlices: Int? = nil
        /// Events kept per topic for Last-Event-ID replay, by count and by bytes.
        public var historyCount = 1000
        public var historyBytes = 1 << 20
        /// Bytes of history kept across all topics: past it the oldest events of the whole hub go
        /// first (a reconnection naming one of them is a replay miss). Default: an eighth of
        /// physical memory, at most 1 GiB.
        public var historyTotalBytes = Hub.defaultHistoryTotalBytes
        /// Unread output past which a subscriber is dropped (with a reset, freeing its kernel memory at
        /// once): it does not read, others go on. Counts the loop's queue and the kernel's unsent bytes
        /// (SIOCOUTQ, asked while the queue is not empty, and on every 16th event).
        public var maximumQueuedBytes = 1 << 20
        /// The kernel send buffer (SO_SNDBUF) given to each event stream as it subscribes; nil keeps the
        /// kernel's autotuning, which lets a socket whose peer never reads pin megabytes of kernel memory
        /// (and push the whole machine's TCP memory into pressure, throttling healthy streams too).
        public var streamSendBufferBytes: Int? = 64 * 1024
        /// TCP_NOTSENT_LOWAT for each event stream: how many unsent bytes the kernel may hold before
        /// the socket stops polling writable (nil: the system's, `net.ipv4.tcp_notsent_lowat`).
        /// Unsent bytes beyond it wait in the loop's queue, by reference to the shared event.
        public var streamNotSentLowWatermark: Int? = nil
        /// History entries a replay writes per slice: a subscriber's replay goes on, a slice per
        /// loop turn, until it has caught up (pausing while its socket pushes back, see
        /// `connectionWritabilityDidChange`), so a storm of reconnections never holds the loop.
        public var replayEntriesPerSlice = 256
        /// History bytes all replays together write per loop turn: a storm of reconnections with
        /// an old Last-Event-ID is served a bounded share each turn, in order, so new clients,
        /// events and heartbeats never wait for all of them.
        public var replayBytesPerTurn = 512 << 10
        /// The sequence before the first event: generated ids are `sequenceBase + 1`, `+ 2`, ...
        /// A server that starts it at a per-start value (`ServerConfiguration.epochBase`) gives every
        /// start ids of its own, so an id from an earlier start is never mistaken for one of now.
        public var sequenceBase: UInt64 = 0
        public init() {}
    }

    /// Counters for `/metrics`.
    public struct Statistics: Sendable {
        public var subscribers = 0
        public var subscriptionsTotal = 0
        public var events = 0
        public var eventWrites = 0
        public var heartbeats = 0
        public var bytesQueuedOrWritten = 0
        public var slowSubscribersDropped = 0
        public var replays = 0
        /// Reconnections whose Last-Event-ID was unknown or no longer in history (they get the live stream).
        public var replayMisses = 0
        /// History entries dropped to keep the hub within `historyTotalBytes`.
        public var historyEvictions = 0
        /// History kept now across all topics: bytes and entries.
        public var historyBytes = 0
        public var historyEntries = 0
    }

    /// Where one subscriber stands. `topic == -1`: the fd is not a subscriber.
    struct Membership {
        var topic: Int32 = -1  // first topic; others, if any, in `extraTopics`
        var indexInTopic: UInt32 = 0
        var indexInSlice: UInt32 = 0
        var lastWrite: UInt32 = 0  // loop ms, wrapping (intervals are far below 49 days)
        /// The subscribed connection's generation: with the fd (the index), its `Connection.id`.
        var generation: UInt32 = 0
        var slice: UInt16 = 0
        /// Replaying history (its cursor is in `replays`): live events wait, the cursor reaches them.
        var isReplaying = false
    }

    /// A replay in progress: where its cursor stands (the last sequence written) on which topics.
    /// Kept aside, only while replaying; positions in the rings are found again by bisection each
    /// slice, as trimming moves them.
    struct Replay {
        var topics: [Int32]
        var last: UInt64
    }

    public let configuration: Configuration
    public private(set) var statistics = Statistics()
    /// The id of the newest event this hub delivered, on any topic: where a stream that cannot
    /// resume is told the history stands now.
    public private(set) var lastDeliveredID: String?
    // Strong: the loop must outlive the timers this object cancels in deinit.
    let loop: EventLoop
    /// Topics by id. A topic with no subscriber and no history is reclaimed: its slot is emptied and
    /// its id goes to `freeTopicIDs` for the next new topic, so the ids memberships hold stay valid.
    var topics: [Topic] = []
    var topicIDs: [String: Int32] = [:]
    var freeTopicIDs: [Int32] = []
    var members = MappedArray<Membership>()
    /// The most subscribers since memory was last given back (see `releaseMemoryAfterDepartures`).
    var subscribersHigh = 0
    /// A release after departures has begun and not yet reached zero subscribers.
    var releasingDepartures = false
    /// Subscribers of more than one topic: their further topics (rare, so kept aside).
    var extraTopics: [Int32: [(topic: Int32, index: UInt32)]] = [:]
    var slices: [[Int32]]
    /// Replays in progress, by fd (the member's `isReplaying` says whether to look here).
    var replays: [Int32: Replay] = [:]
    /// Replaying connections (ids) to go on with at the end of this turn; others wait for writability.
    private var replaysReady: [UInt64] = []
    private var replaysRunning: [UInt64] = []
    private var replaysScheduled = false
    /// The loop turn (its wake-up count) whose replay bytes `replayTurnBytes` counts.
    private var replayTurn = -1
    private var replayTurnBytes = 0
    /// Small history entries of one replay slice, copied together so the slice costs one write
    /// (one syscall) rather than one per entry. Kept between slices (at most `coalescedBytes`).
    private var replayBatch: [UInt8] = []
    /// Entries up to this size are copied into `replayBatch`; larger ones are written by reference.
    static let coalescedEntryBytes = 4 << 10
    /// `replayBatch` is written once it holds this much.
    static let coalescedBytes = 64 << 10
    /// Every kept history entry as (topic, sequence), oldest first, from `historyOrderHead` on: the
    /// hub-wide order in which `historyTotalBytes` evicts. Entries a topic's own bounds dropped (or
    /// whose topic was reclaimed) stay until they reach the front or a compaction.
    private var historyOrder: [(topic: Int32, sequence: UInt64)] = []
    private var historyOrderHead = 0
    private var nextSlice = 0
    private var sliceCursor = 0
    private var sequence: UInt64 = 0
    private var heartbeatTimer: TimerID?
    /// Milliseconds without a write after which a member visited by its slice gets a heartbeat: the
    /// interval less an allowance, because a slice recurs exactly every interval and timer jitter
    /// would otherwise make a member skip a round and wait two intervals. The allowance is half a
    /// slice, but at most an eighth of the interval: with few slices half a slice is most of the
    /// interval, and a stream that got an event that recently needs no heartbeat yet.
    private let heartbeatIdleThreshold: UInt32
    /// The heartbeat comment: one buffer, shared by every write.
    public static let heartbeatBytes = SharedBytes(EventEncoder.comment("heartbeat"))

    public init(loop: EventLoop, configuration: Configuration = Configuration()) {
        self.loop = loop
        self.configuration = configuration
        sequence = configuration.sequenceBase
        let perSecond = Int(configuration.heartbeat.components.seconds)
        slices = Array(repeating: [], count: max(1, configuration.heartbeatSlices ?? min(64, perSecond)))
        let milliseconds = UInt32(clamping: configuration.heartbeat.millisecondsRoundedUp)
        heartbeatIdleThreshold = milliseconds - milliseconds / 4
        let interval = configuration.heartbeat
        if interval > .zero {
            let step = max(interval / slices.count, .milliseconds(1))
            heartbeatTimer = loop.scheduleRepeating(every: step) { [unowned self] in self.heartbeatSlice() }
        }
    }

    deinit {
        if let heartbeatTimer { loop.cancel(heartbeatTimer) }
    }

    // MARK: - Subscribing

    /// Adds `connection` to `topics` (at least one). With a `lastEventID` found in history, the events
    /// after it (on these topics, in order) are written first; an unknown one is counted.
    /// The caller has already written the response head, and calls `unsubscribe` when it closes.
    public func subscribe(_ connection: Connection, topics names: [String], lastEventID: String? = nil) {
        precondition(!names.isEmpty, "subscribe needs a topic")
        let fd = connection.fd
        // Whoever held this fd before (this connection, or a closed one never unsubscribed) goes.
        if Int(fd) < members.count && members[Int(fd)].topic >= 0 { removeMember(fd) }
        members.ensure(Int(fd), filling: Membership())
        var ids: [Int32] = []
        for name in names {
            let id = topicID(name)
            if !ids.contains(id) { ids.append(id) }
        }
        var membership = Membership()
        membership.topic = ids[0]
        membership.indexInTopic = UInt32(topics[Int(ids[0])].subscribers.count)
        topics[Int(ids[0])].subscribers.append(fd)
        if ids.count > 1 {
            extraTopics[fd] = ids.dropFirst().map { id in
                topics[Int(id)].subscribers.append(fd)
                return (id, UInt32(topics[Int(id)].subscribers.count - 1))
            }
        }
        membership.slice = UInt16(nextSlice)
        membership.indexInSlice = UInt32(slices[nextSlice].count)
        slices[nextSlice].append(fd)
        nextSlice = (nextSlice + 1) % slices.count
        membership.lastWrite = currentTime &- heartbeatIdleThreshold  // due at its slice's first visit
        membership.generation = UInt32(truncatingIfNeeded: connection.id >> 32)
        members[Int(fd)] = membership
        if let size = configuration.streamSendBufferBytes {
            // A refusal leaves the kernel's default: the stream still works.
            try? connection.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: Int32(clamping: size))
        }
        if let bytes = configuration.streamNotSentLowWatermark {
            try? connection.setOption(level: Int32(IPPROTO_TCP), name: TCP_NOTSENT_LOWAT, value: Int32(clamping: bytes))
        }
        statistics.subscribers += 1
        statistics.subscriptionsTotal += 1
        if let lastEventID { startReplay(to: connection, topics: ids, after: lastEventID) }
    }

    /// The server passes its connections' writability changes on: a replay paused because the
    /// socket pushed back goes on once it drains.
    public func connectionWritabilityDidChange(_ connection: Connection, isWritable: Bool) {
        guard isWritable, isSubscribed(connection), members[Int(connection.fd)].isReplaying else { return }
        scheduleReplay(connection)
    }

    /// Whether a subscription to `topics` with `lastEventID` would replay from it: the id is kept in
    /// one of those topics' histories (O(1) per topic for the ids the hub makes; see `HistoryRing`).
    /// False means the id is unknown here or older than the history holds: the caller should say
    /// so rather than open a stream that silently lacks what the client missed.
    public func canResume(after lastEventID: String, topics names: [String]) -> Bool {
        names.contains { name in
            topicIDs[name].map { topics[Int($0)].history.sequence(ofID: lastEventID) != nil } ?? false
        }
    }

    /// Subscribers whose replay is still in progress.
    public var replaysInProgress: Int { replays.count }

    /// Removes a subscriber (on close); does nothing for a connection that is not one (including a
    /// stale handle whose fd now belongs to another subscriber). O(1) per topic.
    public func unsubscribe(_ connection: Connection) {
        guard isSubscribed(connection) else { return }
        removeMember(connection.fd)
    }

    /// Whether `connection` is subscribed.
    public func isSubscribed(_ connection: Connection) -> Bool {
        let fd = Int(connection.fd)
        return fd < members.count && members[fd].topic >= 0
            && members[fd].generation == UInt32(truncatingIfNeeded: connection.id >> 32)
    }

    /// The open connection a membership names, or nil if it closed (its fd may have a new owner).
    @inline(__always)
    private func member(_ fd: Int32) -> Connection? {
        loop.connection(id: UInt64(members[Int(fd)].generation) << 32 | UInt64(UInt32(bitPattern: fd)))
    }

    /// Removes the membership on `fd` from its topics and its slice.
    private func removeMember(_ fd: Int32) {
        let membership = members[Int(fd)]
        removeFromTopic(membership.topic, at: membership.indexInTopic)
        if let extra = extraTopics.removeValue(forKey: fd) {
            for (topic, index) in extra { removeFromTopic(topic, at: index) }
        }
        removeFromSlice(Int(membership.slice), at: membership.indexInSlice)
        if membership.isReplaying { replays[fd] = nil }
        members[Int(fd)] = Membership()
        statistics.subscribers -= 1
    }

    /// Drops memberships whose connections closed without `unsubscribe` (found during a round).
    private func removeStale(_ stale: [Int32]) {
        for fd in stale where members[Int(fd)].topic >= 0 && member(fd) == nil { removeMember(fd) }
    }

    // MARK: - Publishing

    /// Encodes `event` once and writes the same bytes to every subscriber of `topic` (direct write;
    /// an unsent remainder is queued by reference). Assigns an id if it has none. Returns the id and
    /// how many subscribers it was queued to. Subscribers over the queue limit are dropped after the
    /// round, so no subscriber waits on another.
    @discardableResult
    public func publish(_ event: OutgoingEvent, topic name: String) throws(EventEncodingError) -> (
        id: String, subscribers: Int
    ) {
        var event = event
        let id = event.id ?? decimalString(sequence + 1)
        event.id = id
        let bytes = try EventEncoder.encodeShared(event)
        return (id, deliver(encoded: bytes, id: id, topic: name))
    }

    /// Writes an event encoded elsewhere (`bytes`, whose `id:` line says `id`) to every subscriber of
    /// `topic`, and keeps it in history under `id`: how a `HubGroup` shares one encoding between the
    /// hubs of several loops, each delivering the id the group's sequencer gave it. Returns how many
    /// subscribers it was queued to. The caller vouches that `bytes` is one well-formed event.
    @discardableResult
    public func deliver(encoded bytes: SharedBytes, id: String, topic name: String) -> Int {
        sequence += 1
        lastDeliveredID = id
        let topic = topicID(name)
        keepInHistory(HistoryEntry(sequence: sequence, id: id, bytes: bytes), topic: topic)
        statistics.events += 1
        let now = currentTime
        var slow: [Connection] = []
        var stale: [Int32] = []
        var delivered = 0
        // The kernel's share is asked for on every 16th event even when the loop's queue is empty:
        // one ioctl per subscriber then, amortized to a sixteenth of one per write.
        let checkKernel = sequence & 15 == 0
        for fd in topics[Int(topic)].subscribers {
            guard let connection = member(fd) else {
                stale.append(fd)
                continue
            }
            // Its replay cursor reaches this event in the history, after what came before it.
            if members[Int(fd)].isReplaying { continue }
            if connection.write(bytes) {
                delivered += 1
                members[Int(fd)].lastWrite = now
                if isSlow(connection, checkKernel: checkKernel) { slow.append(connection) }
            }
        }
        statistics.eventWrites += delivered
        statistics.bytesQueuedOrWritten += delivered * bytes.count
        for connection in slow {
            statistics.slowSubscribersDropped += 1
            connection.abort()
        }
        if !stale.isEmpty { removeStale(stale) }
        reclaimIfUnused(topic)  // no subscriber, and no history kept (historyCount 0)
        return delivered
    }

    /// Whether `connection` holds more unread output than allowed: the loop's queue, plus the
    /// kernel's unsent bytes when that queue is not empty (the kernel's buffer is full then) or
    /// when `checkKernel` says to look anyway.
    @inline(__always)
    private func isSlow(_ connection: Connection, checkKernel: Bool) -> Bool {
        let queued = connection.queuedBytes
        guard queued > 0 || checkKernel else { return false }
        return queued > configuration.maximumQueuedBytes
            || queued + connection.unsentBytes > configuration.maximumQueuedBytes
    }

    /// Wheel timers the hub holds (its heartbeat timer, if heartbeats are on).
    public var timerCount: Int { heartbeatTimer == nil ? 0 : 1 }

    /// Live topics: those with a subscriber or kept history (an unused topic is reclaimed, so
    /// subscribing to made-up names and leaving does not use the server's topic limit up).
    public var topicCount: Int { topics.count - freeTopicIDs.count }

    /// Whether `name` is a topic already.
    public func hasTopic(_ name: String) -> Bool { topicIDs[name] != nil }

    /// Subscribers of `topic` now.
    public func subscriberCount(topic name: String) -> Int {
        topicIDs[name].map { topics[Int($0)].subscribers.count } ?? 0
    }

    // MARK: - Internals

    private var currentTime: UInt32 { UInt32(truncatingIfNeeded: loop.now) }

    private func topicID(_ name: String) -> Int32 {
        if let id = topicIDs[name] { return id }
        let id: Int32
        if let free = freeTopicIDs.popLast() {
            id = free
            topics[Int(id)] = Topic(name: name)
        } else {
            id = Int32(topics.count)
            topics.append(Topic(name: name))
        }
        topicIDs[name] = id
        return id
    }

    /// Appends to the topic's ring, then evicts the hub's oldest entries while the total is over
    /// `historyTotalBytes` (never the one just added).
    private func keepInHistory(_ entry: HistoryEntry, topic: Int32) {
        let (bytesBefore, countBefore) = (topics[Int(topic)].history.byteCount, topics[Int(topic)].history.count)
        topics[Int(topic)].history.append(
            entry, countLimit: configuration.historyCount, byteLimit: configuration.historyBytes)
        statistics.historyBytes += topics[Int(topic)].history.byteCount - bytesBefore
        statistics.historyEntries += topics[Int(topic)].history.count - countBefore
        guard topics[Int(topic)].history.count > 0 else { return }
        historyOrder.append((topic, entry.sequence))
        while statistics.historyBytes > configuration.historyTotalBytes && historyOrderHead < historyOrder.count {
            let (oldTopic, oldSequence) = historyOrder[historyOrderHead]
            if oldSequence == entry.sequence { break }
            historyOrderHead += 1
            // Live only if still its topic's oldest kept entry (a topic drops oldest first, and
            // sequences are unique across topics, so a reused topic id never matches).
            guard topics[Int(oldTopic)].history.oldestSequence == oldSequence else { continue }
            statistics.historyBytes -= topics[Int(oldTopic)].history.removeOldest()
            statistics.historyEntries -= 1
            statistics.historyEvictions += 1
            reclaimIfUnused(oldTopic)
        }
        compactHistoryOrder()
    }

    /// Drops the consumed front, and entries no longer kept once they outnumber the kept ones:
    /// amortized O(1) per publication, and the order's size stays within twice what is kept.
    private func compactHistoryOrder() {
        let pending = historyOrder.count - historyOrderHead
        if pending > 2 * statistics.historyEntries + 64 {
            historyOrder = historyOrder[historyOrderHead...].filter { topic, sequence in
                guard topics[Int(topic)].isInUse, let oldest = topics[Int(topic)].history.oldestSequence else {
                    return false
                }
                return sequence >= oldest
            }
            historyOrderHead = 0
        } else if historyOrderHead >= 1024 && historyOrderHead * 2 >= historyOrder.count {
            historyOrder.removeFirst(historyOrderHead)
            historyOrderHead = 0
        }
    }

    /// Frees `topic` if nobody subscribes to it and it keeps no history.
    func reclaimIfUnused(_ topic: Int32) {
        let slot = Int(topic)
        guard topics[slot].isInUse, topics[slot].subscribers.isEmpty, topics[slot].history.count == 0 else { return }
        topicIDs[topics[slot].name] = nil
        topics[slot] = Topic.unused
        freeTopicIDs.append(topic)
    }

    /// Swap-remove from a topic's fd list, fixing the moved member's index; reclaims the topic if
    /// that was its last subscriber and it has no history.
    private func removeFromTopic(_ topic: Int32, at index: UInt32) {
        let last = topics[Int(topic)].subscribers.removeLast()
        guard Int(index) < topics[Int(topic)].subscribers.count else {
            reclaimIfUnused(topic)
            return
        }
        topics[Int(topic)].subscribers[Int(index)] = last
        if members[Int(last)].topic == topic {
            members[Int(last)].indexInTopic = index
        } else if var extra = extraTopics[last], let position = extra.firstIndex(where: { $0.topic == topic }) {
            extra[position].index = index
            extraTopics[last] = extra
        }
    }

    private func removeFromSlice(_ slice: Int, at index: UInt32) {
        let last = slices[slice].removeLast()
        guard Int(index) < slices[slice].count else { return }
        slices[slice][Int(index)] = last
        members[Int(last)].indexInSlice = index
    }

    /// Starts replaying the history entries after `lastEventID` on `topicIDs`, oldest first: the
    /// first slice now, the rest a slice per loop turn while the socket takes them.
    private func startReplay(to connection: Connection, topics topicIDs: [Int32], after lastEventID: String) {
        var after: UInt64? = nil
        for topic in topicIDs {
            if let sequence = topics[Int(topic)].history.sequence(ofID: lastEventID) {
                after = max(after ?? 0, sequence)
            }
        }
        guard let after else {
            statistics.replayMisses += 1
            return
        }
        statistics.replays += 1
        let fd = connection.fd
        replays[fd] = Replay(topics: topicIDs, last: after)
        members[Int(fd)].isReplaying = true
        // Its first slice now if this turn's replay budget allows, else it waits its turn in line.
        if replaysReady.isEmpty && replayBudgetLeft > 0 {
            spendReplayBudget(continueReplay(connection, byteBudget: replayBudgetLeft))
        } else {
            scheduleReplay(connection)
        }
    }

    /// What is left of this loop turn's `replayBytesPerTurn` (renewed when the loop has woken since).
    private var replayBudgetLeft: Int {
        let wakeups = loop.statistics.wakeups
        if wakeups != replayTurn {
            replayTurn = wakeups
            replayTurnBytes = 0
        }
        return max(1, configuration.replayBytesPerTurn) - replayTurnBytes
    }

    private func spendReplayBudget(_ bytes: Int) { replayTurnBytes += bytes }

    /// Writes the next slice of `connection`'s replay: a merge by sequence of its topics' rings from
    /// the cursor on (no sorting). Small entries are copied into one batch and written together;
    /// large ones go by reference. Stops at the slice's bounds (entries, and `byteBudget`), when the
    /// socket pushes back (writability resumes it), or when caught up, which ends the replay: from
    /// then on live events are written as they come. Returns the bytes it wrote or queued.
    @discardableResult
    private func continueReplay(_ connection: Connection, byteBudget: Int = .max) -> Int {
        let fd = connection.fd
        guard var replay = replays[fd] else { return 0 }
        let count = replay.topics.count
        var bytesWritten = 0
        var written = 0
        var closed = false
        replayBatch.removeAll(keepingCapacity: true)
        /// Writes the batch; false if the connection closed (its close removes the replay).
        func flush() -> Bool {
            guard !replayBatch.isEmpty else { return true }
            defer { replayBatch.removeAll(keepingCapacity: true) }
            return connection.write(replayBatch)
        }
        let finished = withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { positions -> Bool in
            for (slot, topic) in replay.topics.enumerated() {
                positions[slot] = topics[Int(topic)].history.firstIndex(after: replay.last)
            }
            while true {
                // The oldest next entry among the topics (at most a few: a linear scan).
                var best = -1
                var bestSequence = UInt64.max
                for slot in 0..<count {
                    let ring = topics[Int(replay.topics[slot])].history
                    guard positions[slot] < ring.count else { continue }
                    let sequence = ring[positions[slot]].sequence
                    if sequence < bestSequence { (best, bestSequence) = (slot, sequence) }
                }
                if best < 0 { return true }
                if written >= configuration.replayEntriesPerSlice || bytesWritten >= byteBudget { return false }
                let entry = topics[Int(replay.topics[best])].history[positions[best]]
                if entry.bytes.count <= Hub.coalescedEntryBytes {
                    replayBatch.append(contentsOf: entry.bytes.bytes)
                } else if !flush() || !connection.write(entry.bytes) {
                    closed = true
                    return true
                }
                positions[best] += 1
                replay.last = bestSequence
                written += 1
                bytesWritten += entry.bytes.count
                if replayBatch.count >= Hub.coalescedBytes && !flush() {
                    closed = true
                    return true
                }
                if !connection.isWritable { return false }
            }
        }
        if !closed && !flush() { closed = true }
        statistics.eventWrites += written
        statistics.bytesQueuedOrWritten += bytesWritten
        guard !closed else { return bytesWritten }
        members[Int(fd)].lastWrite = currentTime
        if finished {
            replays[fd] = nil
            members[Int(fd)].isReplaying = false
        } else {
            replays[fd] = replay
            // Pushed back: the writability change resumes it. Else the next turn goes on.
            if connection.isWritable { scheduleReplay(connection) }
        }
        return bytesWritten
    }

    private func scheduleReplay(_ connection: Connection) {
        replaysReady.append(connection.id)
        postReplays()
    }

    private func postReplays() {
        guard !replaysScheduled else { return }
        replaysScheduled = true
        loop.runSoon { [unowned self] in self.runReadyReplays() }
    }

    /// A slice of each ready replay, in order, while the turn's byte budget lasts; the rest wait,
    /// first in line, for the next turn (those that still need more schedule themselves again).
    private func runReadyReplays() {
        replaysScheduled = false
        swap(&replaysReady, &replaysRunning)
        var index = 0
        while index < replaysRunning.count && replayBudgetLeft > 0 {
            let id = replaysRunning[index]
            index += 1
            guard let connection = loop.connection(id: id), isSubscribed(connection),
                members[Int(connection.fd)].isReplaying
            else { continue }
            spendReplayBudget(continueReplay(connection, byteBudget: replayBudgetLeft))
        }
        if index < replaysRunning.count {
            replaysReady.insert(contentsOf: replaysRunning[index...], at: 0)
            postReplays()
        }
        replaysRunning.removeAll(keepingCapacity: true)
        if replayBatch.capacity > Hub.coalescedBytes * 2 { replayBatch = [] }
    }

    /// One heartbeat slice: members not written to for a whole interval get the shared comment.
    private func heartbeatSlice() {
        let now = currentTime
        sliceCursor = (sliceCursor + 1) % slices.count
        if sliceCursor == 0 { releaseMemoryAfterDepartures() }
        var slow: [Connection] = []
        var stale: [Int32] = []
        for fd in slices[sliceCursor] where now &- members[Int(fd)].lastWrite >= heartbeatIdleThreshold {
            guard let connection = member(fd) else {
                stale.append(fd)
                continue
            }
            if connection.write(Hub.heartbeatBytes) {
                statistics.heartbeats += 1
                statistics.bytesQueuedOrWritten += Hub.heartbeatBytes.count
                members[Int(fd)].lastWrite = now
                if isSlow(connection, checkKernel: false) { slow.append(connection) }
            }
        }
        for connection in slow {
            statistics.slowSubscribersDropped += 1
            connection.abort()
        }
        if !stale.isEmpty { removeStale(stale) }
    }
}

extension Hub {
    /// An eighth of physical memory, at most 1 GiB (1 GiB if /proc/meminfo cannot be read).
    public static let defaultHistoryTotalBytes = min((SystemMemory.physicalBytes() ?? .max) / 8, 1 << 30)
}

/// A topic: its subscribers' fds and its recent events.
struct Topic {
    let name: String
    var subscribers: [Int32] = []
    var history = HistoryRing()
    /// False for a reclaimed slot (its id is on the free list).
    let isInUse: Bool

    init(name: String) {
        self.name = name
        isInUse = true
    }

    private init() {
        name = ""
        isInUse = false
    }

    static var unused: Topic { Topic() }
}

/// `value` in decimal, built on the stack: up to 15 digits this is a small string, so generated
/// event ids cost no allocation (`String(value)` allocates a scratch buffer).
func decimalString(_ value: UInt64) -> String {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        var start = 20
        var rest = value
        repeat {
            start -= 1
            digits[start] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        } while rest > 0
        return String(decoding: UnsafeBufferPointer(rebasing: digits[start...]), as: UTF8.self)
    }
}

