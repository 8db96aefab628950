#if canImport(Glibc)
import Glibc
#endif
import Reactor
import RillServer

/// A worker process (`rill load … --worker-channel 0`), seen from the coordinator: commands go down
/// a socket pair as JSON lines, statuses and the result come back the same way.
final class RemoteWorker: LoadWorker, ConnectionHandler {
    let index: Int
    private let process: ChildProcess
    private var channel: Connection?
    private var lines = MessageLines()
    private(set) var status = WorkerStatus(settled: false)
    private(set) var result: WorkerResult?

    /// Starts `rill` with `arguments` (which must include `--worker-channel 0`).
    init(loop: EventLoop, index: Int, arguments: [String]) throws {
        self.index = index
        let (mine, theirs) = try EventLoop.makeSocketPair()
        let spawned = ChildProcess.spawn(arguments, channel: theirs)
        _ = Glibc.close(theirs)
        switch spawned {
        case .success(let process): self.process = process
        case .failure(let error):
            _ = Glibc.close(mine)
            throw error
        }
        channel = try loop.adopt(connectedSocket: mine, handler: self)
    }

    func send(_ command: WorkerCommand) {
        if let channel { MessageLines.send(command, on: channel) }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        do {
            for reply in try lines.receive(bytes, as: WorkerReply.self) {
                switch reply {
                case .status(let status): self.status = status
                case .result(let result): self.result = result
                }
            }
        } catch {
            connection.close()
            died("sent a message that does not decode: \(error)")
        }
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        channel = nil
        if result == nil { died("exited before its result") }
    }

    private func died(_ why: String) {
        guard result == nil else { return }
        var recorder = LoadRecorder()
        recorder.error("worker \(index) \(why)")
        result = WorkerResult(recorder: recorder, held: 0, gaps: 0)
        status.settled = true
    }

    /// Ends the child (if it still runs) and collects its exit status.
    func reap(force: Bool) -> Int32 {
        if force { process.signal(SIGKILL) }
        return process.wait()
    }
}

/// The child's side: runs a `LocalWorker` on its own loop, obeys the coordinator's commands and
/// reports its status every 100 ms, then its result; exits when the coordinator goes away.
final class WorkerAgent: ConnectionHandler {
    let loop: EventLoop
    let worker: LocalWorker
    private var lines = MessageLines()
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
            MessageLines.send(WorkerReply.result(result), on: channel)
            sentResult = true
            channel.closeAfterFlush()
        } else {
            MessageLines.send(WorkerReply.status(worker.status), on: channel)
        }
    }

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        do {
            for command in try lines.receive(bytes, as: WorkerCommand.self) { worker.send(command) }
        } catch {
            writeStandardError("rill load worker: a command that does not decode: \(error)")
            connection.close()
        }
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        channel = nil
        loop.stop()
    }
}
