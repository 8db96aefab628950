// The SwiftNIO peer of `rill serve` for the keep-alive HTTP benchmark (Scripts/bench-http.sh):
// NIOHTTP1's decoder and encoder in each channel's pipeline, one event loop, each response's head
// fields and body built once and written as .head / .body / .end.
//
//   GET /                  the bytes of --page FILE (text/html)
//   GET /static/hello.txt  the bytes of --small FILE (text/plain)
//
// Usage: http-peer-nio --page FILE --small FILE [--host 127.0.0.1] [--port 8080]
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A response's head and body, built once.
struct Fixed: Sendable {
    let head: HTTPResponseHead
    let body: ByteBuffer

    init(path: String, contentType: String) {
        var body = ByteBuffer()
        if let file = fopen(path, "rb") {
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = fread(&chunk, 1, chunk.count, file)
                if count <= 0 { break }
                body.writeBytes(chunk[0..<count])
            }
            fclose(file)
        }
        self.body = body
        head = HTTPResponseHead(
            version: .http1_1, status: .ok,
            headers: ["Content-Type": contentType, "Content-Length": String(body.readableBytes)])
    }
}

final class FixedHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let page: Fixed
    let small: Fixed
    let notFound = HTTPResponseHead(version: .http1_1, status: .notFound, headers: ["Content-Length": "0"])
    private var uri = ""

    init(page: Fixed, small: Fixed) {
        self.page = page
        self.small = small
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): uri = head.uri
        case .body: break
        case .end:
            let response: Fixed? = uri == "/" ? page : uri == "/static/hello.txt" ? small : nil
            if let response {
                context.write(wrapOutboundOut(.head(response.head)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
            } else {
                context.write(wrapOutboundOut(.head(notFound)), promise: nil)
            }
            context.write(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

var host = "127.0.0.1", port = 8080, pagePath = "", smallPath = ""
var arguments = Array(CommandLine.arguments.dropFirst())
while arguments.count >= 2 {
    let (name, value) = (arguments.removeFirst(), arguments.removeFirst())
    switch name {
    case "--host": host = value
    case "--port": port = Int(value) ?? port
    case "--page": pagePath = value
    case "--small": smallPath = value
    default: fatalError("unknown option \(name)")
    }
}
signal(SIGPIPE, SIG_IGN)
let page = Fixed(path: pagePath, contentType: "text/html; charset=utf-8")
let small = Fixed(path: smallPath, contentType: "text/plain; charset=utf-8")
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
            try channel.pipeline.syncOperations.addHandler(FixedHandler(page: page, small: small))
        }
    }
    .bind(host: host, port: port).wait()
print("http-peer-nio listening on http://\(host):\(port)/")
fflush(nil)
try server.closeFuture.wait()
