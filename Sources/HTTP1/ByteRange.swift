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

    /// Whether the bytes in `range` are exactly `literal`. No allocation.
    public func equals(_ range: ByteRange, _ literal: StaticString) -> Bool {
        range.count == literal.utf8CodeUnitCount && matches(at: range, literal, foldingCase: false)
    }

    /// Whether the bytes in `range` start with `literal`. No allocation.
    public func hasPrefix(_ range: ByteRange, _ literal: StaticString) -> Bool {
        range.count >= literal.utf8CodeUnitCount && matches(at: range, literal, foldingCase: false)
    }

    /// Whether `range` holds `name`, ignoring ASCII case; `name` must be lowercase. No allocation.
    public func equalsIgnoringCase(_ range: ByteRange, _ name: StaticString) -> Bool {
        range.count == name.utf8CodeUnitCount && matches(at: range, name, foldingCase: true)
    }

    /// The one byte compare behind the three above: whether `literal` is at the start of `range`
    /// (which must be at least as long), byte for byte or ASCII-case-insensitively.
    @inline(__always)
    private func matches(at range: ByteRange, _ literal: StaticString, foldingCase: Bool) -> Bool {
        let count = literal.utf8CodeUnitCount
        let start = Int(range.start)
        guard start + count <= self.count else { return false }
        let expected = literal.utf8Start
        var index = 0
        while index < count {
            let byte = self[start + index]
            if foldingCase ? asciiLowercase(byte) != asciiLowercase(expected[index]) : byte != expected[index] {
                return false
            }
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
