import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Makes SIGINT and SIGTERM stop `loop`; with `secondExits`, another one after that exits with 130
/// at once (for commands whose stop takes a while: rill load collecting its workers' results).
///
/// The signals are blocked and read from a signalfd in the loop's epoll set, so the reaction is
/// ordinary loop code: no handler runs inside an interrupted thread, and no global is touched from
/// one. Call it on the main thread before the loop runs and before any other thread starts (a thread
/// started earlier would still receive them the old way).
func stopOnInterrupt(_ loop: EventLoop, secondExits: Bool = false) {
    do {
        try loop.watchSignals([SIGINT, SIGTERM]) { [unowned loop] _ in
            if secondExits && loop.remote.isStopRequested { exit(130) }
            loop.remote.stop()
        }
    } catch {
        FileDescriptor.writeStandardError("rill: cannot watch SIGINT/SIGTERM: \(error)\n")
        exit(1)
    }
}

/// The supervisor's signals (`rill serve --workers`): SIGINT/SIGTERM stop `loop` (the workers are
/// then stopped and drained), SIGHUP starts a rolling restart of the workers.
func watchSupervisorSignals(_ loop: EventLoop, supervisor: ServeSupervisor) {
    do {
        try loop.watchSignals([SIGINT, SIGTERM, SIGHUP]) { [unowned loop, unowned supervisor] signal in
            switch signal {
            case SIGHUP: supervisor.roll()
            default: loop.remote.stop()
            }
        }
    } catch {
        FileDescriptor.writeStandardError("rill: cannot watch SIGINT/SIGTERM/SIGHUP: \(error)\n")
        exit(1)
    }
}
