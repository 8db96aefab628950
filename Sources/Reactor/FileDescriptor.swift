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
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try syscall("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// write(2) of `bytes`: how many were written (maybe fewer), or `.wouldBlock`.
    public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try syscall("write") { Glibc.write(fd, bytes.baseAddress, bytes.count) }
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
