#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Foundation
import Workers

/// The worker processes (`rill load … --worker-channel 0`), seen from the coordinator: one
/// `Supervisor` (no restarts: a dead worker is an error in the report), commands down as framed JSON,
/// statuses and the result back the same way.
final class RemoteWorkers: SupervisorDelegate {
    let arguments: [String]
    private(set) var workers: [RemoteWorker] = []
    private var supervisor: Supervisor!

    /// Starts `count` copies of `rill` with `arguments` (which must include `--worker-channel 0`).
    init(loop: EventLoop, count: Int, arguments: [String]) throws {
        self.arguments = arguments
        var policy = RestartPolicy()
        policy.restarts = false
        policy.grace = .seconds(2)
        supervisor = Supervisor(loop: loop, workers: count, policy: policy, delegate: self)
        workers = (0..<count).map { RemoteWorker(index: $0, supervisor: supervisor) }
        if let failure = supervisor.start() {
            supervisor.stopAndWait()  // the ones already started
            throw failure
        }
    }

    func supervisor(_ supervisor: Supervisor, argumentsFor index: Int) -> [String] { arguments }
    func supervisor(_ supervisor: Supervisor, started index: Int, channel: Connection) {}

    func supervisor(
        _ supervisor: Supervisor, received type: UInt8, payload: UnsafeRawBufferPointer,
        from index: Int
    ) throws(FrameError) {
        switch try WorkerMessage.decode(type, payload, as: WorkerReply.self) {
        case .status(let status): workers[index].status = status
        case .result(let result): workers[index].result = result
        }
    }

    func supervisor(_ supervisor: Supervisor, worker index: Int, sentCorruptFrames error: FrameError) {
        workers[index].died("sent a message that does not decode: \(error)")
    }

    func supervisor(
        _ supervisor: Supervisor, worker index: Int, exited status: ProcessExit, lived: Duration,
        restartIn: Duration?
    ) {
        workers[index].died("exited before its result (\(status))")
    }

    /// Ends the children: those with a result exit on their own, the others get SIGTERM, then SIGKILL.
    func stop() { supervisor.stopAndWait() }
}

/// One worker process, as the coordinator drives it.
final class RemoteWorker: LoadWorker {
    let index: Int
    unowned let supervisor: Supervisor
    fileprivate(set) var status: LoadCounts = {
        var counts = LoadCounts()
        counts.settled = false
        return counts
    }()
    fileprivate(set) var result: LoadRecorder?

    init(index: Int, supervisor: Supervisor) {
        self.index = index
        self.supervisor = supervisor
    }

    func send(_ command: WorkerCommand) {
        supervisor.send(WorkerMessage.encode(command), to: index)
    }

    fileprivate func died(_ why: String) {
        guard result == nil else { return }
        var recorder = LoadRecorder()
        recorder.error(.worker(index, why))
        result = recorder
        status.settled = true
    }
}

/// The child's side: runs a `LocalWorker` on its own loop, obeys the coordinator's commands and
/// reports its status every 100 ms, then its result; exits when the coordinator goes away.
final class WorkerAgent: ConnectionHandler {
    let loop: EventLoop
    let worker: LocalWorker
    private var decoder = FrameDecoder()
    private var channel: Connection?
    private var sentResult = false

    init(loop: EventLoop, worker: LocalWorker) {
        self.loop = loop
        self.worker = worker
    }

    /// Runs until the result has been sent or the coordinator has gone.
    func run(channel fd: Int32) throws {
        channel = try loop.adopt(connectedSocket: fd, handler: self)
        _ = loop.scheduleRepeating(every: .milliseconds(100)) { [unowned self] in self.report() }
        loop.run()
    }

    private func report() {
        guard let channel, !sentResult else { return }
        if let result = worker.result {
            channel.write(WorkerMessage.encode(WorkerReply.result(result)))
            sentResult = true
            channel.closeAfterFlush()
        } else {
            channel.write(WorkerMessage.encode(WorkerReply.status(worker.status)))
        }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        var commands: [WorkerCommand] = []
        do {
            try decoder.receive(bytes) { (type, payload) throws(FrameError) in
                commands.append(try WorkerMessage.decode(type, payload, as: WorkerCommand.self))
            }
        } catch {
            FileHandle.standardError.write(Data("rill load worker: a command that does not decode: \(error)\n".utf8))
            connection.close()
        }
        for command in commands { worker.send(command) }
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        channel = nil
        loop.stop()
    }
}
