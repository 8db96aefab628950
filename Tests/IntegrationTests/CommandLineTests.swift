import Reactor
import RillServer
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension Loopback {
    /// What a new user meets first: the version, mistyped commands and flags, and the messages.
    @Suite struct CommandLineTests {
        private var rill: String { ChildProcess.builtProduct("rill") }

        /// One version everywhere: `rill --version`, the startup line, `/metrics`.
        @Test(.enabled(if: commandExists("curl"))) func oneVersionEverywhere() throws {
            let (version, status) = try shell("'\(rill)' --version")
            #expect(status == 0 && version == RillVersion.current, "\(version)")
            let serve = try ServeProcess("--tick 0")
            #expect(serve.banner.contains("version \(RillVersion.current)"), "\(serve.banner)")
            let (metrics, _) = try shell("curl -s '\(serve.url)/metrics'")
            #expect(metrics.contains("rill_build_info{version=\"\(RillVersion.current)\"} 1"), "\(metrics)")
            serve.child.signal(SIGTERM)
            #expect(serve.child.waitForExit() == 0)
        }
    }
}
