// The echo benchmark's servers (Scripts/bench-echo.sh), one process per run, one thread of I/O each:
//
//   EchoServer callback   Reactor: one EventLoop, the public `EchoHandler` (a write per read)
//   EchoServer async      Reactor: one EventLoop, an `AsyncConnection` per connection, one Task each
//                         on the loop's executor, `for try await chunk in inbound { write(chunk) }`
//   EchoServer nio        SwiftNIO: one event loop, an NIOAsyncChannel per connection, one child task
//                         each in a discarding task group (the usual NIOAsyncChannel server; NIO
//                         2.101's loop is not a TaskExecutor, so those tasks run on the global pool)
//
// Listens on 127.0.0.1, port 0 unless `--port P`; prints "listening on PORT" once it accepts.
import NIOCore
import NIOPosix
import Reactor
#if canImport(Glibc)
import Glibc
#endif

let arguments = Array(CommandLine.arguments.dropFirst())
guard let kind = arguments.first else { fatalError("usage: EchoServer callback|async|nio [--port P]") }
var port: UInt16 = 0
if let index = arguments.firstIndex(of: "--port"), index + 1 < arguments.count { port = UInt16(arguments[index + 1])! }

func announce(_ port: Int) {
    print("listening on \(port)")
    fflush(nil)  // every stream: the banner must not wait in a buffer
}

func serveNIO(port: Int) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let server = try await ServerBootstrap(group: group)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .serverChannelOption(.backlog, value: 256)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .bind(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    announce(server.channel.localAddress!.port!)
    try await withThrowingDiscardingTaskGroup { tasks in
        try await server.executeThenClose { clients in
            for try await client in clients {
                tasks.addTask {
                    try? await client.executeThenClose { inbound, outbound in
                        for try await buffer in inbound { try await outbound.write(buffer) }
                    }
                }
            }
        }
    }
}

let address = SocketAddress(ip: 0x7F00_0001, port: port)
switch kind {
case "callback":
    let loop = try EventLoop()
    let listener = try loop.listen(on: address, handler: EchoHandler())
    announce(Int(listener.address.port))
    loop.run()
case "async":
    let loop = try EventLoop()
    let listener = try loop.listen(on: address) { connection in
        for try await chunk in connection.inbound { try await connection.write(chunk) }
    }
    announce(Int(listener.address.port))
    loop.run()
case "nio":
    let port = Int(port)
    Task.detached {
        do { try await serveNIO(port: port) } catch { fatalError("nio echo: \(error)") }
    }
    while true { pause() }
default:
    fatalError("unknown server \(kind): callback, async or nio")
}
