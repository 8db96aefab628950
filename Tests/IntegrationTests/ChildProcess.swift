import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// A child process with its stdout piped back (posix_spawn; no Foundation needed).
final class ChildProcess {
    let pid: pid_t
    private let output: Int32
    private var buffered: [UInt8] = []
    private(set) var exitStatus: Int32?

    /// Built binaries sit beside the test bundle in the build folder.
    static func builtProduct(_ name: String) -> String {
        var path = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &path, path.count - 1)
        let executable = String(decoding: path.prefix(max(length, 0)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(
            separator: "/")
        return directory + "/" + name
    }

    /// A bash command line run with only stdin, stdout and stderr open: the test process may hold
    /// descriptors without close-on-exec, which would otherwise count against a child's fd limit.
    convenience init(cleanShell command: String) throws {
        let closeInherited =
            #"for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done 2>/dev/null; "#
        try self.init(["/bin/bash", "-c", closeInherited + command])
    }

    init(_ arguments: [String]) throws {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw SystemError(operation: "pipe", errno: errno) }
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var environment: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        defer { for pointer in environment { free(pointer) } }
        // The test thread blocks most signals; a child must start with none blocked (SIGTERM!).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        var pid = pid_t()
        let result = posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, &environment)
        Glibc.close(pipeFDs[1])
        guard result == 0 else {
            Glibc.close(pipeFDs[0])
            throw SystemError(operation: "posix_spawn", errno: result)
        }
        self.pid = pid
        output = pipeFDs[0]
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            _ = waitForExit()
        }
        Glibc.close(output)
    }

    /// The next line of the child's stdout, or nil at EOF or after `timeout`.
    func readLine(timeout: Duration = .seconds(10)) -> String? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let newline = buffered.firstIndex(of: 10) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return line
            }
            let remaining = deadline - clock.now
            guard remaining > .zero else { return nil }
            var poller = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(remaining.components.seconds * 1000 + 1))
            guard ready > 0 else { return nil }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, 4096) }
            guard count > 0 else { return nil }
            buffered += chunk.prefix(count)
        }
    }

    func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits for the child; returns its exit code (or 128 + signal).
    func waitForExit() -> Int32 {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        exitStatus = code
        return code
    }
}
