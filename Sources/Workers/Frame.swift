/// One message between a supervisor and a worker. On the wire: `u32 length` (little-endian, counting
/// the type byte and the payload) `| u8 type | payload`.
public struct Frame: Equatable, Sendable {
    public var type: UInt8
    public var payload: [UInt8]

    public init(type: UInt8, payload: [UInt8]) {
        self.type = type
        self.payload = payload
    }

    /// Bytes before the payload: the length and the type.
    public static let headerSize = 5

    /// The frame as it goes on the wire.
    public var encoded: [UInt8] { Frame.encode(type: type) { $0 += payload } }

    /// A frame of `type` whose payload `write` appends to the buffer it is given (one allocation;
    /// the length is filled in afterwards).
    public static func encode(type: UInt8, _ write: (inout [UInt8]) -> Void) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 0, 0, type]
        write(&bytes)
        let length = UInt32(bytes.count - 4).littleEndian
        withUnsafeBytes(of: length) { for index in 0..<4 { bytes[index] = $0[index] } }
        return bytes
    }
}

/// Why a byte stream is not a sequence of frames. A decoder that has seen one refuses everything after.
public enum FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A length of 0: not even a type byte.
    case empty
    /// A frame longer than the decoder accepts (a corrupt prefix must not make it wait for gigabytes).
    case tooLong(Int, limit: Int)
    /// The frame was whole, but its payload does not decode as its type says (the receiver's verdict).
    case malformed(type: UInt8)

    public var description: String {
        switch self {
        case .empty: return "a frame of length 0"
        case .tooLong(let length, let limit): return "a frame of \(length) bytes (at most \(limit))"
        case .malformed(let type): return "a malformed frame of type \(type)"
        }
    }
}

/// Reassembles frames from a byte stream split anywhere. Bytes are copied only while a frame is
/// partial; whole frames in one read are handed over straight from the caller's buffer.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var failure: FrameError?
    public let maximumLength: Int

    public init(maximumLength: Int = 64 << 20) {
        self.maximumLength = maximumLength
    }

    /// Bytes of a partial frame held.
    public var pendingBytes: Int { buffer.count }

    /// The partial frame's bytes (to hand a channel over: fed to a new decoder, they resume it).
    public var pending: [UInt8] { buffer }

    /// Appends `bytes` and calls `handle` with each complete frame's type and payload (valid only
    /// during the call). Throws the first corruption, and again on every later call.
    public mutating func receive(
        _ bytes: UnsafeRawBufferPointer,
        _ handle: (UInt8, UnsafeRawBufferPointer) throws(FrameError) -> Void
    ) throws(FrameError) {
        if let failure { throw failure }
        do throws(FrameError) {
            if buffer.isEmpty {
                let used = try FrameDecoder.frames(in: bytes, limit: maximumLength, handle)
                if used < bytes.count { buffer += UnsafeRawBufferPointer(rebasing: bytes[used...]) }
            } else {
                buffer += bytes
                let limit = maximumLength
                // withUnsafeBytes rethrows untyped errors: carry the typed one out as a value.
                let outcome = buffer.withUnsafeBytes { all in
                    Result { () throws(FrameError) -> Int in try FrameDecoder.frames(in: all, limit: limit, handle) }
                }
                let used = try outcome.get()
                buffer.removeFirst(used)
                if buffer.isEmpty { buffer = [] }  // give a large frame's capacity back
            }
        } catch {
            failure = error
            buffer = []
            throw error
        }
    }

    /// Appends `bytes` and returns the complete frames (copied).
    public mutating func receive(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> [Frame] {
        var frames: [Frame] = []
        try receive(bytes) { type, payload in frames.append(Frame(type: type, payload: Array(payload))) }
        return frames
    }

    /// Hands over the whole frames at the start of `bytes`; how many bytes they took.
    private static func frames(
        in bytes: UnsafeRawBufferPointer, limit: Int,
        _ handle: (UInt8, UnsafeRawBufferPointer) throws(FrameError) -> Void
    ) throws(FrameError) -> Int {
        var start = 0
        while bytes.count - start >= 4 {
            let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
            guard length > 0 else { throw .empty }
            guard length <= limit else { throw .tooLong(length, limit: limit) }
            guard bytes.count - start - 4 >= length else { break }
            try handle(bytes[start + 4], UnsafeRawBufferPointer(rebasing: bytes[start + 5..<start + 4 + length]))
            start += 4 + length
        }
        return start
    }
}
