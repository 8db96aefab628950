import HTTPServer
import Reactor
import SSE
#if canImport(Glibc)
import Glibc
#endif

/// A worker's link to its supervisor under `rill serve --workers` (see `RelayMessage`, carried in
/// Workers frames over the socket pair the supervisor's `Supervisor` handed over as fd 0): publications
/// go up to be sequenced, events come back down and are delivered by this worker's hub (framed once
/// here for all its subscribers), metrics go up every second and the sums come back.
///
/// A publishing request waits (a `DeferredResponse`, its connection's reading paused) until its
/// event returns with its id; then it gets the 204 like a single-process server's.
public final class WorkerRelay: ConnectionHandler, PublicationSequencer {
    unowned let server: SSEServer
    private(set) var channel: Connection?
    private var reader = RelayReader()
    /// The sums over all workers, as of the supervisor's last report.
    public private(set) var totals: (values: [Int], workers: Int)?
    /// Publications sent up and not yet back, by their request's connection id (the token).
    var waiting: [UInt64: DeferredResponse] = [:]
    private var reportTimer: TimerID?
    /// Called when the supervisor is gone (the worker should drain and exit).
    public var onSupervisorGone: (() -> Void)?

    /// The messages a worker reads, blocking, from its channel before it may listen: the history as
    /// events, then `start` (and whatever came in the same reads after it). Nil if the channel ends
    /// or is corrupt first.
    public static func awaitStart(channel fd: Int32) -> [RelayMessage]? {
        var reader = RelayReader()
        var messages: [RelayMessage] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !messages.contains(.start) {
            // The channel is still blocking here: the loop has not adopted it yet.
            guard
                case .done(let count)? = try? buffer.withUnsafeMutableBytes({ buffer throws(SystemError) in
                    try FileDescriptor.read(fd, into: buffer)
                }), count > 0
            else { return nil }
            guard
                let received = buffer.withUnsafeBytes({
                    reader.receive(UnsafeRawBufferPointer(rebasing: $0[0..<count]))
                })
            else {
                return nil
            }
            messages += received
        }
        return messages
    }

    /// Takes over `fd` (the supervisor's socket pair end), delivers `startup` (from `awaitStart`)
    /// and starts reporting metrics.
    public init(server: SSEServer, channel fd: Int32, startup: [RelayMessage]) throws(SystemError) {
        self.server = server
        channel = try server.loop.adopt(connectedSocket: fd, handler: self)
        for message in startup { handle(message) }
        // A first report at once: the supervisor counts a worker's liveness from its start.
        report()
        reportTimer = server.loop.scheduleRepeating(every: .seconds(1)) { [unowned self] in self.report() }
    }

    deinit {
        if let reportTimer { server.loop.cancel(reportTimer) }
    }

    /// Sends a publication up; the request waits for its event.
    public func sequence(_ event: RelayMessage.RelayedEvent, topic: String, response: DeferredResponse) {
        guard let channel else {
            response.respond(status: 503, body: "no supervisor\n".utf8)
            return
        }
        waiting[response.id] = response
        channel.write(RelayMessage.publish(token: response.id, topic: topic, event: event).encoded)
    }

    private func report() {
        channel?.write(RelayMessage.statistics(server.metricsSamples().map(\.value)).encoded)
    }

    private func handle(_ message: RelayMessage) {
        switch message {
        case .event(let token, let topic, let event):
            server.deliverRelayed(token: token, topic: topic, event: event)
        case .totals(let values, let workers):
            totals = (values, workers)
        case .publish, .statistics, .start:
            break
        }
    }

    public func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer) {
        guard let messages = reader.receive(bytes) else {
            connection.close()
            return
        }
        for message in messages { handle(message) }
    }

    public func connectionDidClose(_ connection: Connection, reason: CloseReason) {
        channel = nil
        if let reportTimer { server.loop.cancel(reportTimer) }
        reportTimer = nil
        onSupervisorGone?()
    }
}
