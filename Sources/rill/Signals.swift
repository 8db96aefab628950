import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// The loop that SIGINT/SIGTERM stop. `EventLoopRemote.stop()` is an atomic store and an eventfd
/// write, both async-signal-safe.
nonisolated(unsafe) private var stopOnSignal: EventLoopRemote?
/// Whether a second interrupt ends the process at once (`_exit`, async-signal-safe), for commands
/// whose stop takes a while (rill load collecting its workers' results).
nonisolated(unsafe) private var secondInterruptExits = false

/// Makes SIGINT and SIGTERM stop `remote`'s loop (set before the loop runs); with
/// `secondExits`, another one after that exits with 130 at once.
func stopOnInterrupt(_ remote: EventLoopRemote, secondExits: Bool = false) {
    stopOnSignal = remote
    secondInterruptExits = secondExits
    let handler: @convention(c) (Int32) -> Void = { _ in
        if secondInterruptExits && stopOnSignal?.isStopRequested == true { _exit(130) }
        stopOnSignal?.stop()
    }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
}
