import CEpoll
#if canImport(Glibc)
import Glibc
#endif

/// Signals as events: a signalfd in the epoll set, read on the loop thread like any socket, instead
/// of an asynchronous handler that may touch nothing but `volatile sig_atomic_t`.
extension EventLoop {
    /// Delivers `signals` (SIGINT, SIGTERM, SIGHUP, ...) to `handler` on the loop thread, from the
    /// loop's dispatch. Once per loop. The loop keeps `handler`: capture the loop in it `unowned`.
    ///
    /// The signals are blocked in the calling thread, and must be blocked in **every** thread of the
    /// process: the kernel hands a process-directed signal to any thread that does not block it, and
    /// there its default action (termination, for these) runs instead. Threads inherit the mask of
    /// the thread that creates them, so call this (or `blockSignals`) on the main thread before any
    /// other thread starts — `LoopThread.start` runs its setup on the calling thread, so a
    /// `watchSignals` there covers the loop thread it then creates.
    ///
    /// The mask is also inherited across `posix_spawn`/`exec`: a child process that does not watch
    /// these signals itself must get them unblocked (`posix_spawnattr_setsigmask` with
    /// `POSIX_SPAWN_SETSIGMASK`), or it will never see them.
    public func watchSignals(_ signals: [Int32], handler: @escaping (Int32) -> Void) throws(SystemError) {
        precondition(signalHandler == nil, "watchSignals is called once per loop")
        try EventLoop.blockSignals(signals)
        let fd = OwnedFD(
            try syscallChecked("signalfd") {
                signals.withUnsafeBufferPointer { cepoll_signalfd($0.baseAddress, Int32($0.count)) }
            })
        _ = try register(fd, kind: .signal, events: CEPOLL_IN)
        signalHandler = handler
    }

    /// Blocks `signals` in the calling thread (and in the threads it creates from now on).
    public static func blockSignals(_ signals: [Int32]) throws(SystemError) {
        // pthread_sigmask returns its error instead of setting errno.
        let result = signals.withUnsafeBufferPointer { cepoll_block_signals($0.baseAddress, Int32($0.count)) }
        if result != 0 { throw SystemError(operation: "pthread_sigmask", errno: result) }
    }

    /// Unblocks `signals` in the calling thread (pending ones are then delivered the ordinary way).
    public static func unblockSignals(_ signals: [Int32]) throws(SystemError) {
        let result = signals.withUnsafeBufferPointer { cepoll_unblock_signals($0.baseAddress, Int32($0.count)) }
        if result != 0 { throw SystemError(operation: "pthread_sigmask", errno: result) }
    }

    /// The signalfd is readable: one handler call per pending signal.
    func signalsReady(_ fd: Int32) {
        withUnsafeTemporaryAllocation(byteCount: Int(CEPOLL_SIGNALFD_RECORD), alignment: 8) { record in
            while true {
                let result: IOResult<Int>
                do {
                    result = try syscall("read(signalfd)") { Glibc.read(fd, record.baseAddress, record.count) }
                } catch {
                    // No failure is known besides EAGAIN; should one come, stop watching rather
                    // than spin on a descriptor that stays readable.
                    releaseSlot(fd)
                    signalHandler = nil
                    return
                }
                guard case .done(let count) = result, count == record.count else { return }
                let signal = Int32(bitPattern: record.load(as: UInt32.self))  // ssi_signo: offset 0
                signalHandler?(signal)
            }
        }
    }
}
