import Reactor
import Testing
import Workers
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// Real children (`/bin/sh`), on a real loop, each run bounded by a deadline.
    @Suite struct SupervisorTests {
        final class Recorder: SupervisorDelegate {
            let command: String
            var started: [Int] = []
            var received: [Frame] = []
            var exits: [(Int, ProcessExit, Duration?)] = []

            init(_ command: String) { self.command = command }

            func supervisor(_ supervisor: Supervisor, argumentsFor index: Int) -> [String] { ["-c", command] }
            func supervisor(_ supervisor: Supervisor, started index: Int, channel: Connection) { started.append(index) }
            func supervisor(
                _ supervisor: Supervisor, received type: UInt8, payload: UnsafeRawBufferPointer,
                from index: Int
            ) throws(FrameError) {
                received.append(Frame(type: type, payload: Array(payload)))
            }
            func supervisor(
                _ supervisor: Supervisor, worker index: Int, exited status: ProcessExit, lived: Duration,
                restartIn: Duration?
            ) {
                exits.append((index, status, restartIn))
            }
        }

        static func drive(_ loop: EventLoop, seconds: Double = 10, until done: () -> Bool) {
            let deadline = MonotonicClock.nanoseconds() + UInt64(seconds * 1e9)
            while !done() && MonotonicClock.nanoseconds() < deadline { loop.runOnce(maximumWait: .milliseconds(10)) }
        }

        /// A worker that exits at once is reaped with its status and restarted with a growing delay.
        @Test func restartsAWorkerThatDies() throws {
            let loop = try EventLoop()
            let recorder = Recorder("exit 3")
            var policy = RestartPolicy()
            policy.initialBackoff = .milliseconds(10)
            let supervisor = Supervisor(loop: loop, workers: 1, policy: policy, path: "/bin/sh", delegate: recorder)
            #expect(supervisor.start() == nil)
            SupervisorTests.drive(loop) { recorder.exits.count >= 3 }
            #expect(recorder.exits.count >= 3)
            #expect(recorder.exits.allSatisfy { $0.0 == 0 && $0.1 == .exited(3) })
            #expect(recorder.exits.prefix(3).map(\.2) == [.milliseconds(10), .milliseconds(20), .milliseconds(40)])
            #expect(recorder.started.count >= 3)
            supervisor.stopAndWait()
            #expect(supervisor.finished)
            loop.closeAll()
        }

        /// Frames written to the channel reach the child (here `cat`, which echoes them back on it), and
        /// a stop ends it with SIGTERM.
        @Test func framesBothWaysAndStop() throws {
            let loop = try EventLoop()
            let recorder = Recorder("exec cat >&0")
            let supervisor = Supervisor(loop: loop, workers: 2, path: "/bin/sh", delegate: recorder)
            #expect(supervisor.start() == nil)
            let frames = [Frame(type: 1, payload: Array("one".utf8)), Frame(type: 2, payload: [])]
            for index in 0..<2 { supervisor.send(frames.flatMap(\.encoded), to: index) }
            SupervisorTests.drive(loop) { recorder.received.count >= 4 }
            #expect(recorder.received.count == 4)
            #expect(recorder.received.filter { $0 == frames[0] }.count == 2)
            supervisor.stopAndWait()
            #expect(recorder.exits.count == 2)
            #expect(recorder.exits.allSatisfy { $0.1 == .signaled(SIGTERM) && $0.2 == nil })
            loop.closeAll()
        }

        /// A child that ignores SIGTERM is killed once the grace has passed.
        @Test func killsAfterTheGrace() throws {
            let loop = try EventLoop()
            let recorder = Recorder("trap '' TERM; while :; do sleep 1; done")
            var policy = RestartPolicy()
            policy.grace = .milliseconds(200)
            let supervisor = Supervisor(loop: loop, workers: 1, policy: policy, path: "/bin/sh", delegate: recorder)
            #expect(supervisor.start() == nil)
            SupervisorTests.drive(loop, seconds: 0.2) { false }  // let the shell install its trap
            supervisor.stopAndWait()
            #expect(recorder.exits.map(\.1) == [.signaled(SIGKILL)])
            loop.closeAll()
        }

        /// Bytes that are not frames get the worker killed.
        @Test func corruptFramesKillTheWorker() throws {
            let loop = try EventLoop()
            var policy = RestartPolicy()
            policy.restarts = false
            let recorder = Recorder("printf '\\000\\000\\000\\000' >&0; exec sleep 30")
            let supervisor = Supervisor(loop: loop, workers: 1, policy: policy, path: "/bin/sh", delegate: recorder)
            #expect(supervisor.start() == nil)
            SupervisorTests.drive(loop) { supervisor.finished }
            #expect(recorder.exits.map(\.1) == [.signaled(SIGKILL)])
            loop.closeAll()
        }
    }
}
