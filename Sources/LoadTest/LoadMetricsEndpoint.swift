import Reactor

/// `rill load --metrics-port P`: the run's live counters in Prometheus text format at `GET /metrics`
/// (any other path: 404), served from the coordinator's loop, so a long run can be watched from
/// Grafana as the server is. One request per connection (`Connection: close`); the counters are the
/// workers' statuses summed, as fresh as the coordinator last looked (a few times a second).
public final class LoadMetricsEndpoint {
    private let responder = MetricsResponder()
    private let listener: Listener

    public init(loop: EventLoop, address: SocketAddress) throws(SystemError) {
        listener = try loop.listen(on: address, backlog: 64, handler: responder)
    }

    /// Where it listens (the port is chosen by the kernel when 0 was asked for).
    public var address: SocketAddress { listener.address }

    /// The workers' summed status and the events published, set by the coordinator each turn.
    var status: LoadCounts {
        get { responder.status }
        set { responder.status = newValue }
    }
    var published: Int {
        get { responder.published }
        set { responder.published = newValue }
    }

    public func close() { listener.close() }
}

/// The endpoint's connections: reads a request head, answers it, closes.
final class MetricsResponder: ConnectionHandler {
    var status = LoadCounts()
    var published = 0
    /// Request bytes of connections whose head is not complete yet, by connection id.
    private var pending: [UInt64: [UInt8]] = [:]

    /// A request head larger than this is refused (the endpoint only answers GETs).
    static let maximumHead = 8 * 1024

    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        var head = pending.removeValue(forKey: connection.id) ?? []
        head += bytes
        guard let end = head.firstRange(of: [13, 10, 13, 10]) else {
            if head.count > MetricsResponder.maximumHead {
                respond(connection, status: "431 Request Header Fields Too Large", body: "")
            } else {
                pending[connection.id] = head
            }
            return
        }
        let requestLine = String(decoding: head[..<end.lowerBound].prefix { $0 != 13 }, as: UTF8.self)
        let parts = requestLine.split(separator: " ")
        if parts.count >= 2 && parts[0] == "GET" && (parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?")) {
            respond(connection, status: "200 OK", body: text)
        } else {
            respond(connection, status: "404 Not Found", body: "rill load serves GET /metrics only\n")
        }
    }

    func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        pending[connection.id] = nil
    }

    private func respond(_ connection: Connection, status: String, body: String) {
        let response =
            "HTTP/1.1 \(status)\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        connection.write(Array(response.utf8))
        connection.closeAfterFlush()
    }

    /// The exposition text.
    var text: String {
        var lines: [String] = []
        func metric(_ name: String, _ type: String, _ help: String, _ value: Int) {
            lines.append("# HELP rill_load_\(name) \(help)")
            lines.append("# TYPE rill_load_\(name) \(type)")
            lines.append("rill_load_\(name) \(value)")
        }
        let counts = status
        metric("connections_attempted_total", "counter", "Connections started.", counts.attempted)
        metric("connections_opened_total", "counter", "Connections whose connect completed.", counts.opened)
        metric("connections_failed_total", "counter", "Connections that did not open.", counts.failed)
        metric("streams_open", "gauge", "SSE streams open now (HTTP runs: connections open).", counts.open)
        metric("events_total", "counter", "SSE events received over all streams.", counts.events)
        metric("heartbeats_total", "counter", "SSE comments (heartbeats) received.", counts.heartbeats)
        metric("published_total", "counter", "Events published by this run.", published)
        metric("requests_total", "counter", "HTTP responses received.", counts.requests)
        metric("bytes_read_total", "counter", "Bytes read from the server.", counts.bytesRead)
        metric("reconnects_total", "counter", "Streams reconnected after the server ended them.", counts.reconnects)
        metric("churned_total", "counter", "Streams closed and reopened by --churn.", counts.churned)
        metric("streams_with_gaps", "gauge", "Open streams behind the events published.", counts.gaps)
        lines.append("# HELP rill_load_errors_total Errors by class.")
        lines.append("# TYPE rill_load_errors_total counter")
        for (kind, count) in counts.errors.sorted(by: { $0.key.description < $1.key.description }) {
            lines.append("rill_load_errors_total{class=\"\(MetricsResponder.escape(kind.description))\"} \(count)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A label value with `\`, `"` and newlines escaped, as the text format wants.
    static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
