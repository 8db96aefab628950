// The SwiftNIO peer of `rill serve` for the connection benchmark: the same bench contract
// (../shared/DESIGN.md: GET /sse, POST /publish, heartbeat comments, GET /, GET /metrics), written the
// way NIO is meant to be used: NIOHTTP1's decoder and encoder in each channel's pipeline, one event
// loop thread, every event framed once into a ByteBuffer and `writeAndFlush`ed to each subscriber's
// channel, heartbeats from one `scheduleRepeatedTask`.
//
// A stream's response head is written by the encoder-free path: once a GET /sse has been decoded the
// HTTP handlers leave the pipeline (as NIO's own upgraders do), so events go out as raw ByteBuffers
// (no chunk framing, no per-write HTTPServerResponsePart box) — byte for byte what `rill serve` sends.
//
// Usage: nio-sse [--host 127.0.0.1] [--port 8080] [--heartbeat 15]
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var host = "127.0.0.1"
    var port = 8080
    var heartbeat = 15.0

    init(_ arguments: [String]) {
        var index = 0
        while index + 1 < arguments.count {
            let value = arguments[index + 1]
            switch arguments[index] {
            case "--host": host = value
            case "--port": port = Int(value) ?? port
            case "--heartbeat": heartbeat = Double(value) ?? heartbeat
            default: fatalError("unknown option \(arguments[index]); usage: nio-sse [--host H] [--port P] [--heartbeat S]")
            }
            index += 2
        }
    }
}

/// Topics and their subscribers. Used on the one event loop only (NIO's closures must be Sendable,
/// hence the unchecked conformance).
final class Hub: @unchecked Sendable {
    private var topics: [String: [ObjectIdentifier: Channel]] = [:]
    private var everyone: [ObjectIdentifier: Channel] = [:]
    private let heartbeat: ByteBuffer
    private(set) var nextID = 0
    var events = 0
    var eventWrites = 0
    var heartbeatWrites = 0
    var dropped = 0
    var connections = 0

    init(allocator: ByteBufferAllocator) {
        heartbeat = allocator.buffer(string: ": heartbeat\n\n")
    }

    var subscribers: Int { everyone.count }

    func subscribe(_ channel: Channel, to names: [String]) {
        let key = ObjectIdentifier(channel)
        everyone[key] = channel
        for name in names { topics[name, default: [:]][key] = channel }
    }

    func unsubscribe(_ channel: Channel, from names: [String]) {
        let key = ObjectIdentifier(channel)
        everyone[key] = nil
        for name in names {
            topics[name]?[key] = nil
            if topics[name]?.isEmpty == true { topics[name] = nil }
        }
    }

    /// Frames the event once and writes the same buffer to every subscriber of `topic`; a subscriber
    /// whose channel is past its high watermark is dropped (slow consumer). Returns the id and count.
    func publish(_ data: ByteBuffer, topic: String, allocator: ByteBufferAllocator) -> (id: Int, subscribers: Int) {
        nextID += 1
        events += 1
        var frame = allocator.buffer(capacity: data.readableBytes + 32)
        frame.writeString("id: \(nextID)\n")
        for line in data.readableBytesView.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            frame.writeStaticString("data: ")
            frame.writeBytes(line)
            frame.writeStaticString("\n")
        }
        frame.writeStaticString("\n")
        let channels = topics[topic] ?? [:]
        for channel in channels.values {
            guard channel.isWritable else {
                dropped += 1
                channel.close(promise: nil)
                continue
            }
            channel.writeAndFlush(frame, promise: nil)
        }
        eventWrites += channels.count
        return (nextID, channels.count)
    }

    func beat() {
        for channel in everyone.values { channel.writeAndFlush(heartbeat, promise: nil) }
        heartbeatWrites += everyone.count
    }
}

/// One connection's HTTP requests; after GET /sse, the stream.
final class SSEHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let streamHead = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                                + "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\n")
    private static let page = """
        <!doctype html><meta charset="utf-8"><title>nio-sse</title><p>Server time: <span id="t">…</span>
        <script>new EventSource('/sse?topic=time').onmessage = e => document.getElementById('t').textContent = e.data</script>
        """

    private let hub: Hub
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    /// Set once the connection is an event stream: later reads (raw bytes) are ignored.
    private var streamTopics: [String]?

    init(hub: Hub) { self.hub = hub }

    func channelActive(context: ChannelHandlerContext) {
        hub.connections += 1
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        hub.connections -= 1
        if let streamTopics { hub.unsubscribe(context.channel, from: streamTopics) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard streamTopics == nil else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
        case .body(var chunk):
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            guard let head else { return }
            route(context: context, head: head)
        }
    }

    private func route(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let (path, query) = split(head.uri)
        switch (head.method, path) {
        case (.GET, "/sse"):
            let topics = query.filter { $0.0 == "topic" }.map(\.1)
            startStream(context: context, topics: topics.isEmpty ? ["default"] : topics)
        case (.POST, "/publish"):
            let topic = query.first { $0.0 == "topic" }?.1 ?? "default"
            let (id, count) = hub.publish(body ?? ByteBuffer(), topic: topic, allocator: context.channel.allocator)
            respond(context: context, status: .noContent, headers: [("X-Event-Id", "\(id)"), ("X-Subscribers", "\(count)")], body: nil)
        case (.GET, "/metrics"):
            let text = """
                nio_sse_connections \(hub.connections)
                nio_sse_subscribers \(hub.subscribers)
                nio_sse_events_total \(hub.events)
                nio_sse_event_writes_total \(hub.eventWrites)
                nio_sse_heartbeats_total \(hub.heartbeatWrites)
                nio_sse_slow_subscribers_dropped_total \(hub.dropped)

                """
            respond(context: context, status: .ok, headers: [("Content-Type", "text/plain; version=0.0.4")], body: text)
        case (.GET, "/"):
            respond(context: context, status: .ok, headers: [("Content-Type", "text/html; charset=utf-8")], body: Self.page)
        default:
            respond(context: context, status: .notFound, headers: [], body: "not found\n")
        }
    }

    /// The HTTP handlers leave the pipeline, then the stream head goes out raw and the channel joins the hub.
    private func startStream(context: ChannelHandlerContext, topics: [String]) {
        streamTopics = topics
        let channel = context.channel
        let hub = self.hub
        let pipeline = context.pipeline
        pipeline.removeHandler(name: "encoder").and(pipeline.removeHandler(name: "decoder")).whenComplete { result in
            guard case .success = result, channel.isActive else {
                channel.close(promise: nil)
                return
            }
            channel.writeAndFlush(Self.streamHead, promise: nil)
            hub.subscribe(channel, to: topics)
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, headers: [(String, String)], body: String?) {
        var fields = HTTPHeaders(headers)
        fields.add(name: "Content-Length", value: "\(body?.utf8.count ?? 0)")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: fields))), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        self.body = nil
    }

    private func split(_ uri: String) -> (String, [(String, String)]) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let query = parts.count > 1 ? parts[1].split(separator: "&").map { pair -> (String, String) in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(kv[0]), kv.count > 1 ? String(kv[1]) : "")
        } : []
        return (String(parts[0]), query)
    }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
// The same fd budget as rill serve: the soft open-file limit raised to the hard one.
var limit = rlimit()
getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
limit.rlim_cur = limit.rlim_max
setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
signal(SIGPIPE, SIG_IGN)

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()
let hub = Hub(allocator: ByteBufferAllocator())
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()), name: "decoder")
            try channel.pipeline.syncOperations.addHandler(HTTPResponseEncoder(), name: "encoder")
            try channel.pipeline.syncOperations.addHandler(SSEHandler(hub: hub))
        }
    }
let server = try bootstrap.bind(host: options.host, port: options.port).wait()
if options.heartbeat > 0 {
    let interval = TimeAmount.nanoseconds(Int64(options.heartbeat * 1e9))
    loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in hub.beat() }
}
print("nio-sse listening on http://\(options.host):\(server.localAddress?.port ?? options.port)/ (open-file limit \(limit.rlim_cur))")
fflush(nil)
try server.closeFuture.wait()
