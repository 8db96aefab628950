import ArgumentParser
import Reactor

/// `rill echo`: a TCP echo server on one reactor thread, the smallest demo of the reactor.
struct Echo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a TCP echo server on one event-loop thread.",
        discussion: "Prints one line when listening and one summary line when stopped (SIGINT/SIGTERM)."
    )

    @Option(help: "Address to listen on (IPv4, numeric).")
    var host = "127.0.0.1"

    @Option(
        parsing: .unconditional, help: "Port to listen on; 0 picks a free one (printed at start). (default: 7000)",
        transform: Parse.port)
    var port: UInt16 = 7000

    @Option(
        parsing: .unconditional, help: "Listen backlog (capped by net.core.somaxconn). (default: 4096)",
        transform: { Int32(try Parse.count($0, minimum: 1, meaning: " (capped by net.core.somaxconn)")) })
    var backlog: Int32 = 4096

    func run() throws {
        guard let address = SocketAddress(host, port: port) else {
            throw ValidationError("--host must be a numeric IPv4 address, got \(host)")
        }
        let limits = ResourceLimits.raiseOpenFilesToHardLimit()
        let loop = try EventLoop()
        let listener = try loop.listen(on: address, backlog: backlog, handler: EchoHandler())
        stopOnInterrupt(loop)
        print(
            "rill echo listening on \(listener.address), open-file limit \(limits.soft) (about \(limits.soft - 16) connections)"
        )
        flushStandardOutput()
        loop.run()
        let open = loop.openConnections
        listener.close()
        loop.closeAll()
        print(
            "rill echo stopped: accepted \(listener.accepted), open at stop \(open), accept errors \(listener.acceptErrors), fd-exhaustion pauses \(listener.exhaustionPauses)"
        )
    }
}
