/// A range of byte offsets into the buffer that was parsed: how the parsers report every field
/// without copying it. Eight bytes, so a head's header list stays compact.
public struct ByteRange: Hashable, Sendable, CustomStringConvertible {
    public var start: UInt32
    public var end: UInt32

    @inline(__always)
    public init(_ start: Int, _ end: Int) {
        self.start = UInt32(truncatingIfNeeded: start)
        self.end = UInt32(truncatingIfNeeded: end)
    }

    public var count: Int { Int(end) - Int(start) }
    public var isEmpty: Bool { start == end }
    public var range: Range<Int> { Int(start)..<Int(end) }
    public var description: String { "\(start)..<\(end)" }

}

/// One header line: its name and its value (without surrounding whitespace), as byte ranges.
public struct HeaderField: Hashable, Sendable {
    public var name: ByteRange
    public var value: ByteRange
    public init(name: ByteRange, value: ByteRange) {
        self.name = name
        self.value = value
    }
}

extension UnsafeRawBufferPointer {
    /// The bytes of `range` as a String (UTF-8, invalid sequences repaired): made only when asked.
    public func string(_ range: ByteRange) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: self[range.range]), as: UTF8.self)
    }

    /// The bytes of `range` as an array.
    public func bytes(_ range: ByteRange) -> [UInt8] { Array(self[range.range]) }

    /// Whether `range` holds `name`, ignoring ASCII case; `name` must be lowercase. No allocation.
    public func equalsIgnoringCase(_ range: ByteRange, _ name: StaticString) -> Bool {
        guard range.count == name.utf8CodeUnitCount, Int(range.end) <= count else { return false }
        let expected = name.utf8Start
        var index = 0
        while index < range.count {
            if asciiLowercase(self[Int(range.start) + index]) != asciiLowercase(expected[index]) { return false }
            index += 1
        }
        return true
    }
}

extension [HeaderField] {
    /// The value of the first header named `name` (lowercase), searched case-insensitively.
    public func value(of name: StaticString, in bytes: UnsafeRawBufferPointer) -> ByteRange? {
        first { bytes.equalsIgnoringCase($0.name, name) }?.value
    }
}

@inline(__always)
func asciiLowercase(_ byte: UInt8) -> UInt8 {
    byte &- 0x41 < 26 ? byte | 0x20 : byte
}
