import Reactor
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Whether Debian's `redis-server` is installed (the Redis tests are skipped, saying so, if not).
let redisServerInstalled: Bool = {
    let found = commandExists("redis-server")
    if !found { print("redis-server is not installed: the Redis tests are skipped (apt-get install redis-server)") }
    return found
}()

/// A real `redis-server` on a free loopback port, in memory only (no RDB, no AOF), killed when
/// released or by `kill()`; `restart()` starts a new, empty one on the same port.
final class RedisServerProcess {
    let port: UInt16
    private(set) var child: ChildProcess?

    init() throws {
        port = try freeLoopbackPort()
        try start()
    }

    deinit { kill() }

    var url: String { "redis://127.0.0.1:\(port)" }
    var address: SocketAddress { SocketAddress(ip: 0x7F00_0001, port: port) }

    /// Starts it and waits (up to 10 s) until it answers PING.
    func start() throws {
        child = try ChildProcess(
            cleanShell: "exec redis-server --port \(port) --bind 127.0.0.1 --save '' --appendonly no "
                + "--loglevel warning --protected-mode no")
        try #require(eventually(timeout: .seconds(10)) { ping() }, "redis-server answered PING on port \(port)")
    }

    /// SIGKILL and wait: its data is gone.
    func kill() {
        guard let child else { return }
        child.signal(SIGKILL)
        _ = child.waitForExit()
        self.child = nil
    }

    func restart() throws {
        kill()
        try start()
    }

    /// One PING on a fresh blocking connection: whether +PONG came back.
    func ping() -> Bool { command("*1\r\n$4\r\nPING\r\n").hasPrefix("+PONG") }

    /// Sends one raw RESP command on a fresh connection and returns the first read of its reply.
    func command(_ resp: String) -> String {
        guard let client = try? BlockingClient(connectingTo: address) else { return "" }
        client.send(Array(resp.utf8))
        return client.receive().map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}
