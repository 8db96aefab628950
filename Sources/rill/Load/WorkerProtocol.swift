import Foundation
import Reactor
import Workers

/// What a load worker reports about itself, a few times a second: the coordinator sums these for
/// the progress line, the per-second series and its decisions (ramp settled, probe delivered).
struct WorkerStatus: Codable {
    /// Connections started.
    var attempted = 0
    /// SSE streams whose response head arrived and that are still open; HTTP connections open.
    var open = 0
    /// Connections that did not open.
    var failed = 0
    /// Errors by class so far.
    var errors: [String: Int] = [:]
    var events = 0
    var heartbeats = 0
    var requests = 0
    /// The published count that `gaps` was computed against (the last one the coordinator announced).
    var published = 0
    /// Open streams that got fewer than `published` events.
    var gaps = 0
    /// Every connection asked for has opened or ended.
    var settled = true

    mutating func add(_ other: WorkerStatus) {
        attempted += other.attempted
        open += other.open
        failed += other.failed
        errors.merge(other.errors, uniquingKeysWith: +)
        events += other.events
        heartbeats += other.heartbeats
        requests += other.requests
        gaps += other.gaps
        settled = settled && other.settled
    }

    var errorCount: Int { errors.values.reduce(0, +) }
}

/// A worker's final figures.
struct WorkerResult: Codable {
    var recorder: LoadRecorder
    /// Streams (or connections) still open at the end.
    var held: Int
    var gaps: Int
    /// http: seconds between the first connect and the stop (each worker's own, for its rate).
    var activeSeconds = 0.0
    /// The worker's RSS before its first connection, and with all of them open (at the finish).
    var baselineBytes = 0
    var residentBytes = 0
}

/// Coordinator → worker.
enum WorkerCommand: Codable {
    /// sse: open streams until `connections` have been started, `rate` per second (0: at once);
    /// http: start `connections` clients at `rate` requests per second in total (0: closed loop).
    /// `sourceOffset` keeps the round-robin over source addresses global across workers.
    case grow(connections: Int, rate: Double, sourceOffset: Int)
    /// So many events have been published (gaps are counted against it).
    case published(Int)
    /// Stop, let the last `published` events arrive (at most 2 s), and send the result.
    case finish(published: Int)
}

/// Worker → coordinator.
enum WorkerReply: Codable {
    case status(WorkerStatus)
    case result(WorkerResult)
}

/// Coordinator and worker messages as frames (Workers) whose payload is JSON.
enum WorkerMessage {
    /// The frame type of a JSON message.
    static let json: UInt8 = 1

    /// `message` as one frame.
    static func encode<Message: Encodable>(_ message: Message) -> [UInt8] {
        guard let json = try? JSONEncoder().encode(message) else { return [] }
        return Frame.encode(type: WorkerMessage.json) { $0 += json }
    }

    /// Decodes one frame's payload; `FrameError.malformed` if it is not a `Message`.
    static func decode<Message: Decodable>(_ type: UInt8, _ payload: UnsafeRawBufferPointer,
                                           as message: Message.Type) throws(FrameError) -> Message {
        guard type == WorkerMessage.json,
              let message = try? JSONDecoder().decode(Message.self, from: Data(payload)) else { throw .malformed(type: type) }
        return message
    }
}
