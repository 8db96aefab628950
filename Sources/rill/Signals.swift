import Reactor
import RillServer
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
/// then stopped and drained), SIGHUP starts a rolling restart of the workers, SIGUSR2 returns from
/// the loop's run with `upgradeRequested` set (the caller re-executes the binary on disk).
func watchSupervisorSignals(_ loop: EventLoop, supervisor: ServeSupervisor) {
    do {
        try loop.watchSignals([SIGINT, SIGTERM, SIGHUP, SIGUSR2]) { [unowned loop, unowned supervisor] signal in
            switch signal {
            case SIGHUP: supervisor.roll()
            case SIGUSR2:
                supervisor.upgradeRequested = true
                loop.stop()
            default: loop.remote.stop()
            }
        }
    } catch {
        FileDescriptor.writeStandardError("rill: cannot watch SIGINT/SIGTERM/SIGHUP/SIGUSR2: \(error)\n")
        exit(1)
    }
}

/// A worker's signals (`rill serve --workers`): SIGINT/SIGTERM stop `loop` (the worker then drains),
/// SIGUSR1 stops accepting (a rolling restart's old worker, once its successors listen) while the
/// connections held are served on.
func watchWorkerSignals(_ loop: EventLoop, server: SSEServer) {
    do {
        try loop.watchSignals([SIGINT, SIGTERM, SIGUSR1]) { [unowned loop, unowned server] signal in
            switch signal {
            case SIGUSR1: server.http.stopAccepting()
            default: loop.remote.stop()
            }
        }
    } catch {
        FileDescriptor.writeStandardError("rill: cannot watch SIGINT/SIGTERM/SIGUSR1: \(error)\n")
        exit(1)
    }
}
