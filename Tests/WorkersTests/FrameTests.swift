import Testing
import Workers

@Suite struct FrameTests {
    static let frames = [
        Frame(type: 1, payload: []),
        Frame(type: 2, payload: Array("hello".utf8)),
        Frame(type: 200, payload: (0..<1_000).map { UInt8(truncatingIfNeeded: $0 * 7) }),
        Frame(type: 3, payload: [0, 0, 0, 0])
    ]
    static let stream = frames.flatMap(\.encoded)

    static func decode(_ bytes: [UInt8], cuts: [Int]) throws -> [Frame] {
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        var start = 0
        for end in cuts + [bytes.count] {
            try bytes[start..<end].withUnsafeBytes { frames += try decoder.receive($0) }
            start = end
        }
        #expect(decoder.pendingBytes == 0)
        return frames
    }

    /// The wire format is the length (type + payload, little-endian), the type, the payload.
    @Test func wireFormat() {
        #expect(Frame(type: 9, payload: [0xAA, 0xBB]).encoded == [3, 0, 0, 0, 9, 0xAA, 0xBB])
        #expect(Frame.encode(type: 4) { $0 += [1, 2, 3] } == [4, 0, 0, 0, 4, 1, 2, 3])
    }

    /// Frames come back whole, in order, whether the stream arrives in one read or split at any byte.
    @Test func roundTripsInAnySplit() throws {
        let bytes = FrameTests.stream
        #expect(try FrameTests.decode(bytes, cuts: []) == FrameTests.frames)
        for cut in 0...bytes.count {
            #expect(try FrameTests.decode(bytes, cuts: [cut]) == FrameTests.frames, "cut at \(cut)")
        }
        #expect(try FrameTests.decode(bytes, cuts: Array(1..<bytes.count)) == FrameTests.frames, "byte by byte")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let cuts = (0..<5).map { _ in Int.random(in: 0...bytes.count, using: &generator) }.sorted()
            #expect(try FrameTests.decode(bytes, cuts: cuts) == FrameTests.frames, "cuts \(cuts)")
        }
    }

    /// A zero length or one past the limit is refused, even split, and the decoder refuses what follows.
    @Test func refusesCorruptFrames() throws {
        var decoder = FrameDecoder(maximumLength: 100)
        let tooLong: [UInt8] = [101, 0, 0, 0, 1]
        #expect(throws: FrameError.tooLong(101, limit: 100)) {
            _ = try tooLong.prefix(2).withUnsafeBytes { try decoder.receive($0) }
            _ = try tooLong.dropFirst(2).withUnsafeBytes { try decoder.receive($0) }
        }
        #expect(throws: FrameError.tooLong(101, limit: 100)) {
            _ = try Frame(type: 1, payload: []).encoded.withUnsafeBytes { try decoder.receive($0) }
        }
        var fresh = FrameDecoder()
        let empty: [UInt8] = Frame(type: 1, payload: [7]).encoded + [0, 0, 0, 0]
        var seen: [Frame] = []
        #expect(throws: FrameError.empty) {
            try empty.withUnsafeBytes { try fresh.receive($0) { seen.append(Frame(type: $0, payload: Array($1))) } }
        }
        #expect(seen == [Frame(type: 1, payload: [7])], "frames before the corrupt one are delivered")
    }

    /// A receiver's verdict on a payload stops decoding and sticks like any corruption.
    @Test func receiverRefusesAPayload() throws {
        var decoder = FrameDecoder()
        let bytes = FrameTests.stream
        #expect(throws: FrameError.malformed(type: 2)) {
            try bytes.withUnsafeBytes {
                try decoder.receive($0) { (type, _) throws(FrameError) in
                    if type == 2 { throw .malformed(type: 2) }
                }
            }
        }
        #expect(throws: FrameError.malformed(type: 2)) { _ = try [UInt8]().withUnsafeBytes { try decoder.receive($0) } }
    }
}
