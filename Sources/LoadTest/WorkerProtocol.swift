import Foundation
import Reactor
import Workers

/// Coordinator → worker.
enum WorkerCommand: Codable {
    /// sse: open streams until `connections` have been started, `rate` per second (0: at once);
    /// http: start `connections` clients at `rate` requests per second in total (0: closed loop).
    /// `sourceOffset` keeps the round-robin over source addresses global across workers; `pending`
    /// is this worker's share of the streams that may wait for their response head at once.
    case grow(connections: Int, rate: Double, sourceOffset: Int, pending: Int)
    /// So many events have been published (gaps are counted against it).
    case published(Int)
    /// Starts group `group` of a scenario (stages): its definition, this worker's share of its
    /// connections (http), its place in the source round-robin and its share of the pending streams.
    /// Nothing opens until its first `stage`.
    case startGroup(group: Int, definition: LoadGroup, connections: Int, sourceOffset: Int, pending: Int)
    /// Group `group` moves linearly from its level now to `target` (this worker's share: streams, or
    /// requests per second) over `seconds`.
    case stage(group: Int, target: Double, seconds: Double)
    /// sse: close and reopen this many streams per second (this worker's share) of group `group`, or
    /// of the plan's streams when nil.
    case churn(group: Int?, perSecond: Double)
    /// Stop, let the last `published` events arrive (at most 2 s), and send the result.
    case finish(published: Int)
}

/// Worker → coordinator: its counts a few times a second, then everything it recorded.
enum WorkerReply: Codable {
    case status(LoadCounts)
    case result(LoadRecorder)
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
    static func decode<Message: Decodable>(
        _ type: UInt8, _ payload: UnsafeRawBufferPointer,
        as message: Message.Type
    ) throws(FrameError) -> Message {
        guard type == WorkerMessage.json,
            let message = try? JSONDecoder().decode(Message.self, from: Data(payload))
        else { throw .malformed(type: type) }
        return message
    }
}
