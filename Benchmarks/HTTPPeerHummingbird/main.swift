// The Hummingbird 2 peer of `rill serve` for the keep-alive HTTP benchmark (Scripts/bench-http.sh)
// and the idle-stream memory benchmark (Scripts/bench-idle-memory.sh): one NIO event loop, written
// the way Hummingbird's examples are.
//
//   GET /                  the bytes of --page FILE (text/html), built into a ByteBuffer once
//   GET /static/hello.txt  the bytes of --small FILE (text/plain), built once
//   GET /sse               text/event-stream: a `: heartbeat` comment every --heartbeat seconds
//
// Usage: http-peer-hummingbird --page FILE --small FILE [--host 127.0.0.1] [--port 8080] [--heartbeat 15]
import Hummingbird
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var host = "127.0.0.1"
    var port = 8080
    var page = ""
    var small = ""
    var heartbeat = 15.0

    init(_ arguments: [String]) {
        var index = 0
        while index + 1 < arguments.count {
            let value = arguments[index + 1]
            switch arguments[index] {
            case "--host": host = value
            case "--port": port = Int(value) ?? port
            case "--page": page = value
            case "--small": small = value
            case "--heartbeat": heartbeat = Double(value) ?? heartbeat
            default: fatalError("unknown option \(arguments[index])")
            }
            index += 2
        }
    }
}

/// A whole file's bytes, or an empty buffer when no path was given.
func contents(of path: String) -> ByteBuffer {
    guard !path.isEmpty, let file = fopen(path, "rb") else { return ByteBuffer() }
    defer { fclose(file) }
    var buffer = ByteBuffer()
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count <= 0 { break }
        buffer.writeBytes(chunk[0..<count])
    }
    return buffer
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
var limit = rlimit()
getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
limit.rlim_cur = limit.rlim_max
setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)

let page = contents(of: options.page)
let small = contents(of: options.small)
let heartbeat = ByteBuffer(string: ": heartbeat\n\n")
let interval = Duration.milliseconds(Int64(options.heartbeat * 1000))

let router = Router()
router.get("/") { _, _ in
    Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: page))
}
router.get("/static/hello.txt") { _, _ in
    Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: small))
}
router.get("/sse") { _, _ in
    Response(
        status: .ok,
        headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
        body: .init { writer in
            while true {
                try await writer.write(heartbeat)
                try await Task.sleep(for: interval)
            }
        })
}

let app = Application(
    router: router,
    configuration: .init(address: .hostname(options.host, port: options.port), serverName: nil, backlog: 4096),
    eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: 1)))
try await app.runService()
