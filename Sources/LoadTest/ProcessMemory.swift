import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Reads from /proc: small text files, each read whole in one `read`.
enum ProcFile {
    /// The file's whitespace-separated fields, or nil if it cannot be read.
    static func fields(_ path: String, bytes: Int = 256) -> [Substring]? {
        guard let fd = try? FileDescriptor.open(path, flags: O_RDONLY) else { return nil }
        defer { FileDescriptor.close(fd) }
        var buffer = [UInt8](repeating: 0, count: bytes)
        guard
            case .done(let count)? = try? buffer.withUnsafeMutableBytes({ buffer throws(SystemError) in
                try FileDescriptor.read(fd, into: buffer)
            }), count > 0
        else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self).split { $0 == " " || $0 == "\t" || $0 == "\n" }
    }
}

/// This process's resident memory (RSS), from /proc/self/statm.
enum ProcessMemory {
    static func residentBytes() -> Int {
        // "size resident shared text lib data dt", in pages.
        guard let fields = ProcFile.fields("/proc/self/statm"), fields.count > 1, let pages = Int(fields[1]) else {
            return 0
        }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
