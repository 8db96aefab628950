#if canImport(Glibc)
import Glibc
#endif

/// File calls for code beside the reactor (static files, a worker's channel read before its loop
/// starts), under the reactor's one errno policy: EINTR is retried, EAGAIN is `.wouldBlock`, EBADF
/// and EFAULT trap (they mean a bug), and every other failure is thrown as a `SystemError` whose
/// `errno` says what happened (ENOENT, EMFILE, ...). Descriptors are raw `Int32`s owned by the
/// caller, who closes each exactly once.
public enum FileDescriptor {
    /// open(2); close-on-exec is always added. Returns the new descriptor.
    public static func open(_ path: String, flags: Int32, mode: mode_t = 0) throws(SystemError) -> Int32 {
        try syscallChecked("open(\(path))") { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    /// read(2) into `buffer`: `.done(0)` at end of file, `.wouldBlock` if a non-blocking descriptor
    /// has nothing yet.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<
        Int
    > {
        try syscall("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// write(2) of `bytes`: how many were written (maybe fewer), or `.wouldBlock`.
    public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try syscall("write") { Glibc.write(fd, bytes.baseAddress, bytes.count) }
    }

    /// Writes all of `bytes` to a blocking descriptor (standard error, a log file); stops early, and
    /// returns false, only if the descriptor refuses (EPIPE, a full disk, or non-blocking and full).
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            guard case .done(let written)? = try? write(fd, UnsafeRawBufferPointer(rebasing: bytes[offset...])),
                written > 0
            else { return false }
            offset += written
        }
        return true
    }

    /// `text` and nothing else to standard error, unbuffered (stdio's `stderr` is a global that
    /// Swift 6 will not touch).
    public static func writeStandardError(_ text: String) {
        var text = text
        _ = text.withUTF8 { writeAll(2, UnsafeRawBufferPointer($0)) }
    }

    /// fstat(2): size, type (`st_mode & S_IFMT`), and the rest.
    public static func status(_ fd: Int32) throws(SystemError) -> stat {
        var info = stat()
        try syscallChecked("fstat") { Glibc.fstat(fd, &info) }
        return info
    }

    /// close(2), once per descriptor: never retried (Linux frees the descriptor even when close
    /// fails), EBADF traps (a double close), other failures are ignored.
    public static func close(_ fd: Int32) {
        closeDescriptor(fd)
    }
}
