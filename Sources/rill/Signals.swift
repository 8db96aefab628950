import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// The loop that SIGINT/SIGTERM stop. `EventLoopRemote.stop()` is an atomic store and an eventfd
/// write, both async-signal-safe.
nonisolated(unsafe) private var stopOnSignal: EventLoopRemote?

/// Makes SIGINT and SIGTERM stop `remote`'s loop (set before the loop runs).
func stopOnInterrupt(_ remote: EventLoopRemote) {
    stopOnSignal = remote
    signal(SIGINT) { _ in stopOnSignal?.stop() }
    signal(SIGTERM) { _ in stopOnSignal?.stop() }
}
