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

/// The outcome of a non-blocking call: done, or "would block".
enum IOResult<Value> {
    case done(Value)
    case wouldBlock
}

/// The one place for errno policy, as SwiftNIO's `syscall(blocking:)`: EINTR is retried, EAGAIN is a
/// value, errnos that can only mean a bug in Rill (EBADF, EFAULT, EINVAL on an fd we own) trap.
func syscall(_ operation: @autoclosure () -> String, _ body: () -> Int) throws(SystemError) -> IOResult<Int> {
    while true {
        let result = body()
        if result >= 0 { return .done(result) }
        let code = errno
        switch code {
        case EINTR:
            continue
        case EAGAIN, EINPROGRESS:
            return .wouldBlock
        case EBADF, EFAULT:
            fatalError("\(operation()) failed with errno \(code): a bug in Rill's fd ownership")
        default:
            throw SystemError(operation: operation(), errno: code)
        }
    }
}

/// For calls that never block: EINTR retried, every failure thrown.
@discardableResult
func syscallChecked(_ operation: @autoclosure () -> String, _ body: () -> Int32) throws(SystemError) -> Int32 {
    while true {
        let result = body()
        if result >= 0 { return result }
        let code = errno
        if code == EINTR { continue }
        if code == EBADF || code == EFAULT {
            fatalError("\(operation()) failed with errno \(code): a bug in Rill's fd ownership")
        }
        throw SystemError(operation: operation(), errno: code)
    }
}
