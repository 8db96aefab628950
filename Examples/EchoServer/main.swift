// A TCP echo server on the reactor: each connection is served by a task of its own, on the loop thread.
//   EchoServer [PORT] [SECONDS]        (defaults: 7007, forever)
import Reactor

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let port = UInt16(arguments.first ?? 7007)

let loop = try EventLoop()
let listener = try loop.listen(on: .loopback(port: port)) { connection in
    // `connection` is an AsyncConnection: reads pause while `bytes` wait, writes resume when flushed.
    for try await bytes in connection.inbound {
        try await connection.write(bytes)
    }
}  // the connection closes when this returns (the client sent EOF) or throws
if let seconds = arguments.dropFirst().first {
    loop.schedule(after: .seconds(seconds)) { loop.stop() }
}
print("echoing on \(listener.address)")
loop.run()
