/// What this machine can hold, read up front so a run beyond it is refused with the arithmetic
/// instead of thrashing: memory (MemAvailable) and the system-wide open-file limit (fs.file-max).
public struct MachineCapacity: Equatable, Sendable {
    /// Kernel memory of one idle loopback connection, both ends (socket, inode, file, epoll item and
    /// TCP control block, twice): both ends of a loopback connection live on this machine.
    public static let kernelBytesPerLoopbackPair = 10_000
    /// One end only, for a target on another machine.
    public static let kernelBytesPerRemoteEnd = 5_000
    /// The generator's own memory per stream (its slot, stream state and parser).
    public static let generatorBytesPerStream = 300

    /// MemAvailable, in bytes.
    public var availableBytes: Int
    /// fs.file-max, and the files open now (fs.file-nr's first field).
    public var fileLimit: Int
    public var filesInUse: Int

    public init(availableBytes: Int, fileLimit: Int, filesInUse: Int) {
        self.availableBytes = availableBytes
        self.fileLimit = fileLimit
        self.filesInUse = filesInUse
    }

    /// This machine, from /proc; nil where a figure cannot be read (that check is then skipped).
    public static func current() -> MachineCapacity {
        var available = Int.max
        if let fields = ProcFile.fields("/proc/meminfo", bytes: 4096),
            let index = fields.firstIndex(of: "MemAvailable:"), index + 1 < fields.count,
            let kB = Int(fields[index + 1])
        {
            available = kB * 1024
        }
        let fileMax = ProcFile.fields("/proc/sys/fs/file-max")?.first.flatMap { Int($0) } ?? Int.max
        let inUse = ProcFile.fields("/proc/sys/fs/file-nr")?.first.flatMap { Int($0) } ?? 0
        return MachineCapacity(availableBytes: available, fileLimit: fileMax, filesInUse: inUse)
    }

    /// Bytes one connection costs this machine.
    public static func bytesPerConnection(loopback: Bool) -> Int {
        (loopback ? kernelBytesPerLoopbackPair : kernelBytesPerRemoteEnd) + generatorBytesPerStream
    }

    /// Throws if `connections` do not fit in this machine's memory or open-file limit.
    public func check(connections: Int, loopback: Bool) throws(LoadError) {
        let each = MachineCapacity.bytesPerConnection(loopback: loopback)
        let (needed, overflow) = connections.multipliedReportingOverflow(by: each)
        if overflow || needed > availableBytes {
            throw .notEnoughMemory(
                connections: connections, loopback: loopback, perConnection: each,
                available: availableBytes, fits: availableBytes / each)
        }
        let filesEach = loopback ? 2 : 1
        let free = fileLimit - filesInUse
        if connections.multipliedReportingOverflow(by: filesEach).partialValue > free {
            throw .systemFileLimit(
                connections: connections, loopback: loopback, limit: fileLimit, inUse: filesInUse,
                fits: max(0, free / filesEach))
        }
    }
}

/// `bytes` as "10.3 GB" (decimal, as `free -h --si` shows).
func gigabytes(_ bytes: Int) -> String {
    let value = Double(bytes) / 1e9
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) GB"
}
