import CEpoll

/// The process's open-file limit (RLIMIT_NOFILE): how many sockets one process can hold.
public enum ResourceLimits {
    /// The soft (enforced) and hard (ceiling) limits on open files.
    public static func openFiles() -> (soft: UInt64, hard: UInt64) {
        var soft: UInt64 = 0
        var hard: UInt64 = 0
        do {
            try syscallChecked("getrlimit(RLIMIT_NOFILE)") { cepoll_nofile_limits(&soft, &hard) }
        } catch {
            return (1024, 1024)  // getrlimit has no failure for this resource; the Linux default
        }
        return (soft, hard)
    }

    /// Raises the soft limit to the hard one (servers and load generators call this at start);
    /// returns the limits in force afterwards.
    @discardableResult
    public static func raiseOpenFilesToHardLimit() -> (soft: UInt64, hard: UInt64) {
        let limits = openFiles()
        if limits.soft < limits.hard { setSoftLimit(limits.hard) }
        return openFiles()
    }

    /// Sets the soft limit (at most the hard one), e.g. to try worker processes with a small limit;
    /// returns the limits in force afterwards.
    @discardableResult
    public static func setOpenFilesSoftLimit(_ soft: UInt64) -> (soft: UInt64, hard: UInt64) {
        setSoftLimit(min(soft, openFiles().hard))
        return openFiles()
    }

    /// setrlimit within the hard limit: a refusal leaves the limit as it was, which the callers
    /// report by returning the limits in force.
    private static func setSoftLimit(_ soft: UInt64) {
        do {
            try syscallChecked("setrlimit(RLIMIT_NOFILE)") { cepoll_set_nofile_soft(soft) }
        } catch {
            // Reported through the limits returned, as documented above.
        }
    }
}
