/// One step of a fuzz input, decoded from its bytes. Client slots outnumber the server's
/// connection limit so that the limit is reached.
enum Step {
    case open(slot: Int)
    /// Bytes to send on a slot (opened first if it is not open); `piece` > 0 sends them in pieces of
    /// that size with a loop turn between pieces.
    case write(slot: Int, bytes: UnsafeRawBufferPointer, piece: Int)
    case shutdownWrite(slot: Int)
    case close(slot: Int)
    case reset(slot: Int)
    case drain(slot: Int)
    case toggleReading(slot: Int)
    case advance(milliseconds: Int)
    case turn
    /// An event published through the hub (not over HTTP): topic index, data, optional id and name.
    case publish(topic: Int, data: UnsafeRawBufferPointer, id: UnsafeRawBufferPointer?, named: Bool)
    case beginShutdown
}

/// Decodes an input into steps. Format, one step after another (a missing byte reads as 0):
///
///     op = byte % 16
///     0, 1      open      slot
///     2, 3, 4   write     slot, length (2 bytes, little endian), bytes
///     5         write     slot, piece (byte % 16 + 1), length (2 bytes), bytes — in pieces
///     6         half-close slot     7  close slot     8  reset slot
///     9         drain slot         10  stop or start reading on slot
///     11        advance   d: d < 100 → d ms; < 200 → (d − 99) × 100 ms; else (d − 199) s
///     12, 13    turn the loop once
///     14        publish   topic, flags (1: id, 2: name), data length (byte), data, [id length, id]
///     15        begin shutdown if the next byte is 0, else turn the loop once
///
/// Scripts/fuzz/make-server-seeds.py writes seeds in this format.
struct Program: IteratorProtocol {
    static let slots = 10
    static let maximumWrite = 4096
    private let input: UnsafeRawBufferPointer
    private var offset = 0

    init(_ input: UnsafeRawBufferPointer) { self.input = input }

    private mutating func byte() -> Int {
        guard offset < input.count else { return 0 }
        defer { offset += 1 }
        return Int(input[offset])
    }

    private mutating func bytes(_ count: Int) -> UnsafeRawBufferPointer {
        let end = min(input.count, offset + count)
        defer { offset = end }
        return UnsafeRawBufferPointer(rebasing: input[offset..<end])
    }

    private mutating func slot() -> Int { byte() % Program.slots }

    private mutating func length() -> Int { min(Program.maximumWrite, byte() | byte() << 8) }

    mutating func next() -> Step? {
        guard offset < input.count else { return nil }
        switch byte() % 16 {
        case 0, 1: return .open(slot: slot())
        case 2, 3, 4:
            let slot = slot()
            return .write(slot: slot, bytes: bytes(length()), piece: 0)
        case 5:
            let slot = slot()
            let piece = byte() % 16 + 1
            return .write(slot: slot, bytes: bytes(length()), piece: piece)
        case 6: return .shutdownWrite(slot: slot())
        case 7: return .close(slot: slot())
        case 8: return .reset(slot: slot())
        case 9: return .drain(slot: slot())
        case 10: return .toggleReading(slot: slot())
        case 11:
            let d = byte()
            return .advance(milliseconds: d < 100 ? d : d < 200 ? (d - 99) * 100 : (d - 199) * 1000)
        case 12, 13: return .turn
        case 14:
            let topic = byte()
            let flags = byte()
            let data = bytes(byte())
            let id = flags & 1 != 0 ? bytes(byte() % 32) : nil
            return .publish(topic: topic, data: data, id: id, named: flags & 2 != 0)
        default: return byte() == 0 ? .beginShutdown : .turn
        }
    }
}
