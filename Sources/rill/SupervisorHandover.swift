import Reactor
import RillServer
import SSE
import Workers
#if canImport(Glibc)
import Glibc
#endif

/// What `rill serve --workers` hands its re-executed self on SIGUSR2 (an upgrade: the binary on disk
/// replaces the running one, same pid): the ids' epoch and the last id given, the kernel counters'
/// baseline, the history (as the relay messages a new worker is sent) and the running workers (their
/// pids and channels, which stay open across the exec). Written to a file whose
/// descriptor (an unlinked temporary file) the new image finds in `--supervisor-state FD`; frames as on the relay:
/// 1 = header (u64 epoch base, sequence, overflows, drops, has-baseline), 2 = a worker (u64 seat,
/// pid, fd, started; then its channel's partial frame), 3 = a history entry (u64 sequence; then
/// the relay message).
struct SupervisorHandover {
    var epochBase: UInt64
    var sequence: UInt64
    var listenQueueBaseline: ListenQueueCounters?
    var workers: [Supervisor.Inherited]
    var history: [(sequence: UInt64, message: [UInt8])]

    private enum Kind: UInt8 { case header = 1, worker, entry }

    var encoded: [UInt8] {
        func put(_ value: UInt64, _ body: inout [UInt8]) { withUnsafeBytes(of: value.littleEndian) { body += $0 } }
        var bytes = Frame.encode(type: Kind.header.rawValue) { body in
            for value in [
                epochBase, sequence, UInt64(listenQueueBaseline?.overflows ?? 0),
                UInt64(listenQueueBaseline?.drops ?? 0), listenQueueBaseline == nil ? 0 : 1,
            ] { put(value, &body) }
        }
        for worker in workers {
            bytes += Frame.encode(type: Kind.worker.rawValue) { body in
                for value in [UInt64(worker.seat), UInt64(worker.pid), UInt64(worker.channel), worker.startedAt] {
                    put(value, &body)
                }
                body += worker.pending
            }
        }
        for entry in history {
            bytes += Frame.encode(type: Kind.entry.rawValue) { body in
                put(entry.sequence, &body)
                body += entry.message
            }
        }
        return bytes
    }

    init(
        epochBase: UInt64, sequence: UInt64, listenQueueBaseline: ListenQueueCounters?,
        workers: [Supervisor.Inherited], history: [(sequence: UInt64, message: [UInt8])]
    ) {
        self.epochBase = epochBase
        self.sequence = sequence
        self.listenQueueBaseline = listenQueueBaseline
        self.workers = workers
        self.history = history
    }

    /// Decodes what `encoded` wrote; nil if it is not that.
    init?(_ bytes: [UInt8]) {
        var decoder = FrameDecoder()
        var header: [UInt64]?
        var workers: [Supervisor.Inherited] = []
        var history: [(sequence: UInt64, message: [UInt8])] = []
        func words(_ payload: UnsafeRawBufferPointer, _ count: Int) -> [UInt64]? {
            guard payload.count >= count * 8 else { return nil }
            return (0..<count).map { UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        }
        let complete: Bool? = try? bytes.withUnsafeBytes { all throws(FrameError) in
            try decoder.receive(all) { (type, payload) throws(FrameError) in
                switch Kind(rawValue: type) {
                case .header?:
                    guard let values = words(payload, 5) else { throw .malformed(type: type) }
                    header = values
                case .worker?:
                    guard let values = words(payload, 4) else { throw .malformed(type: type) }
                    workers.append(
                        Supervisor.Inherited(
                            seat: Int(values[0]), pid: pid_t(values[1]), channel: Int32(values[2]),
                            startedAt: values[3], pending: Array(payload[32...])))
                case .entry?:
                    guard let values = words(payload, 1) else { throw .malformed(type: type) }
                    history.append((values[0], Array(payload[8...])))
                case nil:
                    throw .malformed(type: type)
                }
            }
            return decoder.pendingBytes == 0
        }
        guard complete == true, let header else { return nil }
        epochBase = header[0]
        sequence = header[1]
        listenQueueBaseline =
            header[4] == 1 ? ListenQueueCounters(overflows: Int(header[2]), drops: Int(header[3])) : nil
        self.workers = workers
        self.history = history
    }

    /// Writes the handover to a temporary file, unlinked at once and left open across the exec
    /// (mkstemp does not set close-on-exec); its descriptor.
    func store() -> Int32? {
        var template = Array("/tmp/rill-supervisor-state-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return nil }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        let bytes = encoded
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                close(fd)
                return nil
            }
            written += count
        }
        return fd
    }

    /// Reads the handover from `fd` (from the start) and closes it.
    static func load(_ fd: Int32) -> SupervisorHandover? {
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var offset: off_t = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
            offset += off_t(count)
        }
        return SupervisorHandover(bytes)
    }
}
