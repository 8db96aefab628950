import Reactor
#if canImport(Glibc)
import Glibc
#endif

extension Supervisor {
    /// A running worker as one image of the supervisor hands it to the next across an exec: its
    /// process stays this process's child, its channel's descriptor stays open (close-on-exec
    /// cleared), and the partial frame read from it so far goes along.
    public struct Inherited: Equatable, Sendable {
        public var seat: Int
        public var pid: pid_t
        public var channel: Int32
        /// When it started (CLOCK_MONOTONIC, which an exec does not reset).
        public var startedAt: UInt64
        /// A frame begun on the channel and not yet whole.
        public var pending: [UInt8]

        public init(seat: Int, pid: pid_t, channel: Int32, startedAt: UInt64, pending: [UInt8]) {
            self.seat = seat
            self.pid = pid
            self.channel = channel
            self.startedAt = startedAt
            self.pending = pending
        }
    }

    /// Gets the workers ready to outlive this image: waits (at most `timeout`) until everything
    /// queued to them is written, then clears close-on-exec on their channels. Nil while a roll or
    /// a stop is under way, or if a channel could not be flushed (the workers go on as before).
    /// After a nil, or if the exec fails, `resumeAfterFailedHandover()` puts close-on-exec back.
    public func prepareHandover(timeout: Duration = .seconds(2)) -> [Inherited]? {
        guard supervision.rolling == nil, !supervision.stopping else { return nil }
        let deadline = MonotonicClock.nanoseconds() + Supervision.nanoseconds(timeout)
        while seats.contains(where: { (channel($0)?.queuedBytes ?? 0) > 0 }) {
            guard MonotonicClock.nanoseconds() < deadline else { return nil }
            loop.runOnce(maximumWait: .milliseconds(10))
        }
        var inherited: [Inherited] = []
        for seat in supervision.active {
            guard let process = process(seat), let channel = channel(seat) else { continue }
            inherited.append(
                Inherited(
                    seat: seat, pid: process.pid, channel: channel.fd, startedAt: startedAt(seat),
                    pending: pendingFrame(seat)))
        }
        for worker in inherited { Supervisor.setCloseOnExec(worker.channel, false) }
        return inherited
    }

    /// The exec did not happen: the channels are this image's alone again.
    public func resumeAfterFailedHandover(_ inherited: [Inherited]) {
        for worker in inherited { Supervisor.setCloseOnExec(worker.channel, true) }
    }

    static func setCloseOnExec(_ fd: Int32, _ on: Bool) {
        let flags = fcntl(fd, F_GETFD)
        guard flags >= 0 else { return }
        _ = fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC)
    }
}
