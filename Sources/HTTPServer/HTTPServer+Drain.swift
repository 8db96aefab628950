import Reactor
import RillBytes

extension HTTPServer {
    /// Slices a drain window is cut into: each slice's timer ends a random share of the streams left.
    static let drainSlices = 100

    /// Idle keep-alive connections stay this long into a drain (at most the window): see
    /// `ConnectionStateMachine.drainIdle`. Long enough for a client publishing every second.
    static let drainIdleGrace = 1_000

    /// A graceful drain over `window`: stops accepting, closes idle keep-alive connections once they
    /// have been idle a little longer (`drainIdleGrace`; the others close after their current
    /// response: keep-alive is off while draining), writes every
    /// event stream a `retry:` line with a random delay (see `DrainRetries`), then ends the streams
    /// spread uniformly at random over the window, so their reconnections arrive as a ramp.
    ///
    /// Why no per-stream schedule: each slice walks the connections once and ends every stream
    /// still open with probability 1 / (slices left). That gives each stream an end slice uniform
    /// over the window with nothing stored per stream, and the last slice ends all that remain
    /// (streams opened during the drain by requests already in progress included).
    /// A zero window is `beginShutdown`.
    public func beginDrain(window: Duration) {
        guard !isDraining else { return }
        let windowMilliseconds = Int(window.millisecondsRoundedUp)
        guard windowMilliseconds > 0 else { return beginShutdown() }
        isDraining = true
        listener.close()
        let retries = DrainRetries(windowMilliseconds: windowMilliseconds)
        var generator = SystemRandomNumberGenerator()
        let now = self.now
        loop.forEachConnection(handledBy: self) { connection in
            var state = ConnectionStateMachine(connection.userData)
            switch state.phase {
            case .stream: connection.write(retries.any(using: &generator))
            case .idle:
                state.drainIdle(now: now, grace: UInt32(min(HTTPServer.drainIdleGrace, windowMilliseconds)))
                store(connection, &state)
            default: break
            }
        }
        let slices = min(HTTPServer.drainSlices, windowMilliseconds)
        var left = slices
        drainTimer = loop.scheduleRepeating(every: .milliseconds(Int64(windowMilliseconds / slices))) { [unowned self] in
            self.endStreams(oneIn: left, using: &generator)
            left -= 1
            if left == 0, let timer = self.drainTimer {
                self.loop.cancel(timer)
                self.drainTimer = nil
            }
        }
    }

    /// Event streams still open (a drain is over when this is 0).
    public var openStreams: Int {
        var count = 0
        loop.forEachConnection(handledBy: self) { connection in
            if ConnectionStateMachine(connection.userData).phase == .stream { count += 1 }
        }
        return count
    }

    /// Ends each open stream with probability 1 / `share` (all of them when `share` is 1).
    private func endStreams(oneIn share: Int, using generator: inout SystemRandomNumberGenerator) {
        let now = self.now
        loop.forEachConnection(handledBy: self) { connection in
            var state = ConnectionStateMachine(connection.userData)
            guard state.phase == .stream, share <= 1 || Int.random(in: 0..<share, using: &generator) == 0 else {
                return
            }
            if state.drain(now: now, timeouts: timeouts) == .endStream { endStream(connection, &state) }
        }
    }
}

/// The `retry:` lines a drain writes: 32 prepared delays between 1 s and 1 s + the window, one
/// picked at random per stream, so no stream costs an allocation and reconnections after a restart
/// spread over about as long as the drain did (a client adds its own jitter on top).
struct DrainRetries {
    let lines: [SharedBytes]

    init(windowMilliseconds: Int) {
        lines = (0..<32).map { step in
            SharedBytes(Array("retry: \(1_000 + windowMilliseconds * step / 31)\n\n".utf8))
        }
    }

    func any(using generator: inout SystemRandomNumberGenerator) -> SharedBytes {
        lines[Int.random(in: 0..<lines.count, using: &generator)]
    }
}
