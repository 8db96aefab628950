import CEpoll

/// The process's open-file limit (RLIMIT_NOFILE): how many sockets one process can hold.
public enum ResourceLimits {
    /// The soft (enforced) and hard (ceiling) limits on open files.
    public static func openFiles() -> (soft: UInt64, hard: UInt64) {
        var soft: UInt64 = 0
        var hard: UInt64 = 0
        guard cepoll_nofile_limits(&soft, &hard) == 0 else { return (1024, 1024) }
        return (soft, hard)
    }

    /// Raises the soft limit to the hard one (servers and load generators call this at start);
    /// returns the limits in force afterwards.
    @discardableResult
    public static func raiseOpenFilesToHardLimit() -> (soft: UInt64, hard: UInt64) {
        let limits = openFiles()
        if limits.soft < limits.hard { _ = cepoll_set_nofile_soft(limits.hard) }
        return openFiles()
    }

    /// Sets the soft limit (at most the hard one), e.g. to try worker processes with a small limit;
    /// returns the limits in force afterwards.
    @discardableResult
    public static func setOpenFilesSoftLimit(_ soft: UInt64) -> (soft: UInt64, hard: UInt64) {
        _ = cepoll_set_nofile_soft(min(soft, openFiles().hard))
        return openFiles()
    }
}
