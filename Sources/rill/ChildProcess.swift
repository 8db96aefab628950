#if canImport(Glibc)
import Glibc
#endif

/// A copy of this program started as a worker (`rill load` and `rill serve` scale past one process's
/// fd limit this way). posix_spawn, not fork: the parent may hold thousands of sockets, and
/// close-on-exec keeps every one of them out of the child; only `channel` is handed over, as fd 0.
struct ChildProcess {
    let pid: pid_t

    /// The running executable, so workers are the same build as their parent.
    static var executablePath: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts `arguments` (without the program name) with `channel` as its standard input; stdout and
    /// stderr are inherited.
    static func spawn(_ arguments: [String], channel: Int32) -> Result<ChildProcess, SpawnError> {
        let path = executablePath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, channel, 0)

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard code == 0 else { return .failure(SpawnError(code: code)) }
        return .success(ChildProcess(pid: pid))
    }

    /// Waits for the child to exit; its exit status, or 128 + the signal that ended it.
    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return Self.exitCode(status)
    }

    /// Collects the child if it has exited; nil while it runs.
    func poll() -> Int32? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return Self.exitCode(status)
    }

    func signal(_ number: Int32) { _ = kill(pid, number) }

    private static func exitCode(_ status: Int32) -> Int32 {
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}

/// posix_spawn's error number.
struct SpawnError: Error, CustomStringConvertible {
    let code: Int32
    var description: String { String(cString: strerror(code)) }
}
