// Subscribes to an event stream and prints its events: a connection on a loop thread, read as an
// async sequence, through the HTTP/1.1 response parser and the SSE parser.
//   SSEClient URL [COUNT]      e.g. SSEClient 'http://127.0.0.1:8081/events?token=s3cret' 3
// Exits 0 after COUNT events (default: never), 1 on a refusal, an error or an early end.
import HTTP1
import Reactor
import SSE
#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count > 1, arguments[1].hasPrefix("http://") else {
    print("usage: SSEClient http://HOST:PORT/PATH [COUNT]")
    exit(2)
}
let limit = arguments.count > 2 ? Int(arguments[2]) ?? .max : .max
// http://host:port/path?query → the address (numeric IPv4 or localhost) and the request target.
let rest = arguments[1].dropFirst("http://".count)
let slash = rest.firstIndex(of: "/") ?? rest.endIndex
let authority = rest[..<slash].split(separator: ":")
let target = slash == rest.endIndex ? "/" : String(rest[slash...])
guard let host = authority.first, let address = SocketAddress(String(host), port: authority.count > 1 ? UInt16(authority[1]) ?? 0 : 80)
else {
    print("SSEClient: \(arguments[1]): not a numeric IPv4 address")
    exit(2)
}

let thread = try LoopThread.start()
let connection = try await thread.remote.connect(to: address)
try await connection.write(Array("GET \(target) HTTP/1.1\r\nHost: \(address)\r\nAccept: text/event-stream\r\n\r\n".utf8))

var response = ResponseParser()
var events = EventStreamParser()
var pending: [UInt8] = []
var status = 0
var refusal: [UInt8] = []
var received = 0
var ended = false
reading: for try await chunk in connection.inbound {
    pending += chunk
    var consumed = 0
    pending.withUnsafeBytes { all in
        while !ended && received < limit {
            let window = UnsafeRawBufferPointer(rebasing: all[consumed...])
            let step = response.parse(window)
            consumed += step.consumed
            switch step.event {
            case .head:
                status = response.head.status
            case .body(let range) where status == 200:
                events.feed(UnsafeRawBufferPointer(rebasing: window[range.range])) { item in
                    guard case .event(let event) = item, received < limit else { return }
                    received += 1
                    print("\(event.type) [\(event.lastEventID)] \(event.dataString)")
                }
            case .body(let range):
                refusal += window[range.range]
            case .end, .error:
                ended = true  // a whole response (a refusal), or bytes that are not one
            case .needMore:
                return
            }
        }
    }
    pending.removeFirst(consumed)
    if ended || received >= limit { break reading }
}
await connection.close()
thread.stopAndJoin()
if status != 200 { print("HTTP \(status): \(String(decoding: refusal, as: UTF8.self))", terminator: "") }
exit(received >= limit ? 0 : 1)
