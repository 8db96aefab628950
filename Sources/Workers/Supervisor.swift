import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// What a `Supervisor` tells its owner about the workers, on the loop's thread.
public protocol SupervisorDelegate: AnyObject {
    /// Worker `index`'s command line, without the program name.
    func supervisor(_ supervisor: Supervisor, argumentsFor index: Int) -> [String]
    /// Worker `index` started; `channel` is the supervisor's end of its socket pair.
    func supervisor(_ supervisor: Supervisor, started index: Int, channel: Connection)
    /// Worker `index` sent a frame (the payload is valid during the call). Throwing
    /// `FrameError.malformed` kills the worker, as a corrupt frame does.
    func supervisor(
        _ supervisor: Supervisor, received type: UInt8, payload: UnsafeRawBufferPointer,
        from index: Int) throws(FrameError)
    /// Worker `index` sent bytes that are not frames; it is killed (and restarted per the policy).
    func supervisor(_ supervisor: Supervisor, worker index: Int, sentCorruptFrames error: FrameError)
    /// Worker `index` could not be started.
    func supervisor(_ supervisor: Supervisor, worker index: Int, failedToStart error: SpawnError, restartIn: Duration?)
    /// Worker `index` stalled (see `Supervision.Stall`) and is being killed; its exit follows.
    func supervisor(_ supervisor: Supervisor, worker index: Int, stalled reason: Supervision.Stall)
    /// Worker `index` exited after `lived`; it is restarted after `restartIn` (nil: it stays down).
    func supervisor(
        _ supervisor: Supervisor, worker index: Int, exited status: ProcessExit, lived: Duration,
        restartIn: Duration?)
    /// A rolling restart (`roll()`) is over; `abandoned`: a successor could not be started.
    func supervisor(_ supervisor: Supervisor, rollEnded abandoned: Bool)
}

extension SupervisorDelegate {
    public func supervisor(_ supervisor: Supervisor, worker index: Int, sentCorruptFrames error: FrameError) {}
    public func supervisor(
        _ supervisor: Supervisor, worker index: Int, failedToStart error: SpawnError, restartIn: Duration?
    ) {}
    public func supervisor(_ supervisor: Supervisor, worker index: Int, stalled reason: Supervision.Stall) {}
    public func supervisor(
        _ supervisor: Supervisor, worker index: Int, exited status: ProcessExit, lived: Duration,
        restartIn: Duration?
    ) {}
    public func supervisor(_ supervisor: Supervisor, rollEnded abandoned: Bool) {}
}

/// Runs N copies of a program (by default this one), each with a socket pair as its fd 0, on a
/// reactor: framed messages both ways, reaping, restarts with backoff (`Supervision` decides), stop
/// signals passed on and a SIGKILL after the grace, and rolling restarts (`roll()`).
///
/// Workers are named by seat (see `Supervision`): seats 0..<N at start, a slot's second seat
/// (`i + N`) for its successor during a roll. `Supervision.slot(of:)` maps a seat to its slot.
public final class Supervisor: ConnectionHandler {
    struct Slot {
        var process: ChildProcess?
        var channel: Connection?
        var decoder = FrameDecoder()
        var startedAt: UInt64 = 0
        /// Reaped, but its channel still had bytes to read: reported once they are in.
        var exit: (status: ProcessExit, at: UInt64)?
        /// Bytes queued to the channel when the worker started (its history): not held against it.
        var startBacklog = 0
    }

    public let loop: EventLoop
    public let path: String
    public weak var delegate: (any SupervisorDelegate)?
    public private(set) var supervision: Supervision
    private var slots: [Slot]
    private var housekeeping: TimerID?

    /// How often exits are collected (waitpid with WNOHANG) and restarts are checked.
    static let reapInterval: Duration = .milliseconds(20)

    public init(
        loop: EventLoop, workers: Int, policy: RestartPolicy = RestartPolicy(),
        path: String = ChildProcess.executablePath, delegate: any SupervisorDelegate
    ) {
        self.loop = loop
        self.path = path
        self.delegate = delegate
        supervision = Supervision(workers: workers, policy: policy)
        slots = Array(repeating: Slot(), count: 2 * workers)
    }

    /// Seats: twice the workers (each slot has a second seat for its successor in a roll).
    public var seats: Range<Int> { slots.indices }

    /// Replaces the workers one at a time (see `Supervision.roll`); false if a roll is under way
    /// or the workers are stopping.
    @discardableResult
    public func roll() -> Bool {
        guard supervision.rolling == nil, !supervision.stopping else { return false }
        perform(supervision.roll(now: MonotonicClock.nanoseconds()))
        return true
    }

    /// The worker in `seat` is ready to serve (its owner's protocol says when): a roll's successor
    /// takes over and the worker it replaces is told to stop.
    public func ready(_ seat: Int) {
        perform(supervision.ready(seat, now: MonotonicClock.nanoseconds()))
    }

    /// Starts every worker; the first that cannot be started, with why.
    public func start() -> StartFailure? {
        housekeeping = loop.scheduleRepeating(every: Supervisor.reapInterval) { [unowned self] in self.collect() }
        for case .spawn(let index) in supervision.start() {
            if let error = spawn(index) { return StartFailure(index: index, error: error) }
        }
        return nil
    }

    /// Takes over workers an earlier image of this process started (see `Inherited`): their
    /// channels join the loop, each as its slot's active worker; no history or start message is
    /// sent (they have theirs). Then supervises as `start` does.
    public func adopt(_ inherited: [Inherited]) {
        housekeeping = loop.scheduleRepeating(every: Supervisor.reapInterval) { [unowned self] in self.collect() }
        let now = MonotonicClock.nanoseconds()
        for worker in inherited where slots.indices.contains(worker.seat) {
            slots[worker.seat] = Slot(process: ChildProcess(inherited: worker.pid), startedAt: worker.startedAt)
            supervision.adopted(worker.seat, now: now)
            do {
                let channel = try loop.adopt(
                    connectedSocket: worker.channel, handler: self, userData: UInt64(worker.seat))
                slots[worker.seat].channel = channel
                Supervisor.setCloseOnExec(worker.channel, true)
                if !worker.pending.isEmpty {
                    worker.pending.withUnsafeBytes { connection(channel, didRead: $0) }
                }
            } catch {
                ChildProcess(inherited: worker.pid).signal(SIGKILL)  // reaped by `collect`, and restarted
            }
        }
        // A slot whose worker was down at the handover (waiting for its restart) starts now.
        for seat in supervision.active where !supervision.isRunning(seat) { _ = spawn(seat) }
    }

    /// When the worker in `seat` started (CLOCK_MONOTONIC nanoseconds).
    public func startedAt(_ seat: Int) -> UInt64 { slots[seat].startedAt }

    /// The partial frame read so far from `seat`'s channel.
    public func pendingFrame(_ seat: Int) -> [UInt8] { slots[seat].decoder.pending }

    /// A worker that could not be started.
    public struct StartFailure: Error, Equatable, CustomStringConvertible {
        public let index: Int
        public let error: SpawnError
        public var description: String { "could not start worker \(index): \(error)" }
    }

    /// The supervisor's end of worker `index`'s channel, while it is open.
    public func channel(_ index: Int) -> Connection? { slots[index].channel }

    public func process(_ index: Int) -> ChildProcess? { slots[index].process }

    /// Sends `bytes` (one or more encoded frames) to worker `index`, if its channel is open.
    public func send(_ bytes: [UInt8], to index: Int) {
        guard let channel = slots[index].channel else { return }
        channel.write(bytes)
        checkBacklog(index, channel)
    }

    /// Sends shared `bytes` (one or more encoded frames) to worker `index`, if its channel is open.
    public func send(_ bytes: SharedBytes, to index: Int) {
        guard let channel = slots[index].channel else { return }
        channel.write(bytes)
        checkBacklog(index, channel)
    }

    /// Sends the same `bytes` to every worker whose channel is open.
    public func broadcast(_ bytes: SharedBytes) {
        for index in slots.indices { send(bytes, to: index) }
    }

    /// A worker that does not read must not make its queue grow without bound (`Supervision.queued`).
    private func checkBacklog(_ index: Int, _ channel: Connection) {
        let queued = channel.queuedBytes - slots[index].startBacklog
        if queued > 0 { perform(supervision.queued(index, bytes: queued)) }
    }

    /// Sends `signal` to every running worker (restarts go on unless stopping).
    public func forward(_ signal: Int32) {
        for slot in slots { slot.process?.signal(signal) }
    }

    /// Passes the stop on (SIGTERM, SIGKILL after the policy's grace); returns at once.
    public func stop() {
        guard !supervision.stopping else { return }
        perform(supervision.stop(now: MonotonicClock.nanoseconds()))
    }

    /// Every worker has exited for good.
    public var finished: Bool { supervision.finished }

    /// Stops the workers and runs the loop until every one is reaped; closes the channels.
    public func stopAndWait() {
        stop()
        while !finished { loop.runOnce(maximumWait: Supervisor.reapInterval) }
        if let housekeeping { loop.cancel(housekeeping) }
        housekeeping = nil
        for slot in slots { slot.channel?.close() }
    }

    // MARK: - Actions

    private func perform(_ actions: [Supervision.Action]) {
        for action in actions {
            switch action {
            case .spawn(let index):
                _ = spawn(index)
            case .signal(let index, let signal):
                slots[index].process?.signal(signal)
            case .kill(let index, let reason):
                delegate?.supervisor(self, worker: index, stalled: reason)
                slots[index].process?.signal(SIGKILL)  // reaped by `collect`, and restarted per the policy
            case .rollEnded(let abandoned):
                delegate?.supervisor(self, rollEnded: abandoned)
            }
        }
    }

    private func spawn(_ index: Int) -> SpawnError? {
        let now = MonotonicClock.nanoseconds()
        let pair: (Int32, Int32)
        do { pair = try EventLoop.makeSocketPair() } catch {
            failed(index, SpawnError(code: error.errno), now: now)
            return SpawnError(code: error.errno)
        }
        let arguments = delegate?.supervisor(self, argumentsFor: index) ?? []
        let spawned = ChildProcess.spawn(arguments, channel: pair.1, path: path)
        FileDescriptor.close(pair.1)
        let process: ChildProcess
        switch spawned {
        case .failure(let error):
            FileDescriptor.close(pair.0)
            failed(index, error, now: now)
            return error
        case .success(let started):
            process = started
        }
        slots[index] = Slot(process: process, startedAt: now)
        supervision.spawned(index, now: now)
        do {
            let channel = try loop.adopt(connectedSocket: pair.0, handler: self, userData: UInt64(index))
            slots[index].channel = channel
            delegate?.supervisor(self, started: index, channel: channel)
            slots[index].startBacklog = channel.queuedBytes
        } catch {
            process.signal(SIGKILL)  // reaped by `collect`, and restarted per the policy
        }
        return nil
    }

    private func failed(_ index: Int, _ error: SpawnError, now: UInt64) {
        let delay = supervision.spawnFailed(index, now: now)
        delegate?.supervisor(self, worker: index, failedToStart: error, restartIn: delay)
    }

    /// How long a reaped worker's channel may stay open (a grandchild holding it) before it is closed.
    static let lingerAfterExit: UInt64 = 1_000_000_000

    /// Reaps the workers that exited, then starts or kills what is due. An exit is reported once the
    /// worker's channel has closed, so every frame it sent before exiting has been delivered.
    private func collect() {
        let now = MonotonicClock.nanoseconds()
        for index in slots.indices {
            if let process = slots[index].process, let status = process.poll() {
                slots[index].process = nil
                slots[index].exit = (status, now)
            }
            guard let (status, exitedAt) = slots[index].exit else { continue }
            if let channel = slots[index].channel {
                guard now - exitedAt >= Supervisor.lingerAfterExit else { continue }
                channel.close()
                slots[index].channel = nil
            }
            slots[index].exit = nil
            let lived = Duration.nanoseconds(Int64(exitedAt - slots[index].startedAt))
            let delay = supervision.exited(index, now: exitedAt)
            delegate?.supervisor(self, worker: index, exited: status, lived: lived, restartIn: delay)
        }
        perform(supervision.tick(now: now))
    }

    // MARK: - Channels

    public func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        let index = Int(connection.userData)
        guard slots[index].channel == connection else { return }
        supervision.heard(index, now: MonotonicClock.nanoseconds())
        // Out of the array while it decodes: the delegate may send to this worker.
        var decoder = slots[index].decoder
        defer { if slots[index].channel == connection { slots[index].decoder = decoder } }
        do {
            try decoder.receive(bytes) { (type, payload) throws(FrameError) in
                guard let delegate = self.delegate else { return }
                try delegate.supervisor(self, received: type, payload: payload, from: index)
            }
        } catch {
            delegate?.supervisor(self, worker: index, sentCorruptFrames: error)
            slots[index].process?.signal(SIGKILL)
            slots[index].channel = nil
            connection.close()
        }
    }

    public func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        let index = Int(connection.userData)
        if slots[index].channel == connection { slots[index].channel = nil }
    }
}
