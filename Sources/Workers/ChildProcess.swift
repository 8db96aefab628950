#if canImport(Glibc)
import Glibc
#endif

/// A child process started with a socket as its fd 0 (`rill load` and `rill serve` scale past one
/// process's fd limit this way). posix_spawn, not fork: the parent may hold thousands of sockets, and
/// close-on-exec keeps every one of them out of the child; only `channel` is handed over, as fd 0.
public struct ChildProcess: Sendable {
    public let pid: pid_t

    /// A child this process did not spawn itself: one it inherited across an exec (its pid stays
    /// this process's child, so waitpid still works).
    public init(inherited pid: pid_t) { self.pid = pid }

    init(pid: pid_t) { self.pid = pid }

    /// The running executable, so workers are the same build as their parent.
    public static var executablePath: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts `path` (default: this executable) with `arguments` (without the program name) and
    /// `channel` as its standard input; stdout and stderr are inherited, no signal is blocked.
    public static func spawn(_ arguments: [String], channel: Int32, path: String = ChildProcess.executablePath)
        -> Result<ChildProcess, SpawnError>
    {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, channel, 0)
        // A thread that blocks signals (a test runner does) would pass its mask on: SIGTERM must work.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard code == 0 else { return .failure(SpawnError(code: code)) }
        return .success(ChildProcess(pid: pid))
    }

    /// Waits for the child to exit.
    public func wait() -> ProcessExit {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return ProcessExit(waitStatus: -1) }
        }
        return ProcessExit(waitStatus: status)
    }

    /// Collects the child if it has exited; nil while it runs.
    public func poll() -> ProcessExit? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return ProcessExit(waitStatus: status)
    }

    public func signal(_ number: Int32) { _ = kill(pid, number) }
}

/// How a child ended: its exit status, or the signal that ended it.
public enum ProcessExit: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    /// From waitpid's status (WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import).
    init(waitStatus status: Int32) {
        if status == -1 {
            self = .exited(-1)
            return
        }
        let signal = status & 0x7f
        self = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }

    /// The shell's convention: the status, or 128 + the signal.
    public var code: Int32 {
        switch self {
        case .exited(let status): return status
        case .signaled(let signal): return 128 + signal
        }
    }

    public var description: String {
        switch self {
        case .exited(let status): return "exited with status \(status)"
        case .signaled(let signal): return "was killed by signal \(signal)"
        }
    }
}

/// posix_spawn's error number.
public struct SpawnError: Error, Equatable, CustomStringConvertible, Sendable {
    public let code: Int32
    public var description: String { String(cString: strerror(code)) }
}
