#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: which operation, and the errno it left.
public struct SystemError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The call that failed, e.g. `"connect"`.
    public var operation: String
    /// The errno value, e.g. `ECONNREFUSED`.
    public var errno: Int32

    public init(operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// `connect: Connection refused (errno 111)`.
    public var description: String {
        let reason = strerror(errno).map { String(cString: $0) } ?? "unknown error"
        return "\(operation): \(reason) (errno \(errno))"
    }

    /// The peer reset the connection, or it vanished under a write.
    public var isReset: Bool { errno == ECONNRESET || errno == EPIPE || errno == ECONNABORTED }
}

/// The outcome of a call that may block: done, or "would block" (EAGAIN, or EINPROGRESS for connect).
public enum IOResult<Value> {
    case done(Value)
    case wouldBlock
}

extension IOResult: Sendable where Value: Sendable {}
extension IOResult: Equatable where Value: Equatable {}

// MARK: - The one errno policy

// Every system call in Reactor goes through one of these three functions, as every one in SwiftNIO
// goes through `syscall(blocking:)`: EINTR is retried, EAGAIN is a value (where the call can block),
// errnos that can only mean a bug in Rill (EBADF, EFAULT: an fd it does not own, a bad pointer) trap,
// and everything else is thrown as a typed `SystemError` for the caller to handle.

/// Errnos that can only mean a bug in the caller, never a condition of the system or the peer.
@inline(__always)
func isUnacceptableErrno(_ code: Int32) -> Bool {
    code == EBADF || code == EFAULT
}

@inline(never)
func unacceptableErrno(_ code: Int32, _ operation: String) -> Never {
    fatalError(
        "\(operation) failed with errno \(code) (\(SystemError(operation: operation, errno: code))): a bug in descriptor ownership"
    )
}

/// For calls that may block (read, send, accept, connect, ...): `.wouldBlock` on EAGAIN/EWOULDBLOCK
/// (and EINPROGRESS), EINTR retried, bug errnos trap, other failures thrown.
@inline(__always)
func syscall<Result: FixedWidthInteger>(
    _ operation: @autoclosure () -> String, _ body: () -> Result
) throws(SystemError) -> IOResult<Result> {
    while true {
        let result = body()
        if result >= 0 { return .done(result) }
        let code = errno
        switch code {
        case EINTR:
            continue
        case EAGAIN, EWOULDBLOCK, EINPROGRESS:
            return .wouldBlock
        default:
            if isUnacceptableErrno(code) { unacceptableErrno(code, operation()) }
            throw SystemError(operation: operation(), errno: code)
        }
    }
}

/// For calls that never block (socket, bind, epoll_ctl, fcntl, ...): EINTR retried, bug errnos
/// trap, every other failure (EAGAIN included) thrown.
@discardableResult
@inline(__always)
func syscallChecked<Result: FixedWidthInteger>(
    _ operation: @autoclosure () -> String, _ body: () -> Result
) throws(SystemError) -> Result {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = errno
        if code == EINTR { continue }
        if isUnacceptableErrno(code) { unacceptableErrno(code, operation()) }
        throw SystemError(operation: operation(), errno: code)
    }
}

/// close(2): never retried (Linux frees the descriptor even when close reports EINTR or EIO, and a
/// retry could close a descriptor another thread just opened); EBADF traps, as a double close is a bug.
/// Other failures are ignored: the data path (write, fsync) is where they belong.
@inline(__always)
func closeDescriptor(_ fd: Int32) {
    if Glibc.close(fd) != 0, errno == EBADF { unacceptableErrno(EBADF, "close(\(fd))") }
}
