/// Byte classes and the scanning loops of the parsers. The long runs of a head (target, header
/// values) are scanned 16 bytes at a time with SIMD compares; short tokens (method, header names)
/// by a 256-entry table. Vector loads happen only while 16 bytes remain: the parser never reads past
/// the end of the caller's buffer.
enum ByteScanning {
    static let tokenBit: UInt8 = 1
    static let hexBit: UInt8 = 2

    /// RFC 9110 tchar: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA (token bit), and HEXDIG (hex bit).
    // nonisolated(unsafe): written once by its initializer, read-only ever after.
    nonisolated(unsafe) static let table: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        table.initialize(repeating: 0, count: 256)
        for byte in UInt8(ascii: "0")...UInt8(ascii: "9") { table[Int(byte)] = tokenBit | hexBit }
        for byte in UInt8(ascii: "a")...UInt8(ascii: "z") { table[Int(byte)] = tokenBit }
        for byte in UInt8(ascii: "A")...UInt8(ascii: "Z") { table[Int(byte)] = tokenBit }
        for byte in UInt8(ascii: "a")...UInt8(ascii: "f") { table[Int(byte)] |= hexBit }
        for byte in UInt8(ascii: "A")...UInt8(ascii: "F") { table[Int(byte)] |= hexBit }
        for byte in "!#$%&'*+-.^_`|~".utf8 { table[Int(byte)] = tokenBit }
        return UnsafePointer(table)
    }()

    /// The first index in `start..<end` whose byte is not a tchar, or `end`.
    @inline(__always)
    static func tokenEnd(_ table: UnsafePointer<UInt8>, _ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        var index = start
        while index < end && table[Int(base[index])] & tokenBit != 0 { index += 1 }
        return index
    }

    /// The first index whose byte is a control (< 0x20, which includes CR, LF and HTAB) or DEL, or
    /// `end`: where a header value, reason phrase or chunk extension may stop.
    @inline(__always)
    static func controlByte(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        firstByte(base, start, end, below: 0x20, orFrom: 0x7F, through: 0x7F)
    }

    /// Like `controlByte`, but steps over HTAB, which field text may contain.
    @inline(__always)
    static func fieldTextEnd(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        var index = controlByte(base, start, end)
        while index < end && base[index] == 9 { index = controlByte(base, index + 1, end) }
        return index
    }

    /// The first index whose byte is not visible ASCII (<= 0x20 or >= 0x7F), or `end`: where a
    /// request target stops (at its SP, or at a byte it may not contain).
    @inline(__always)
    static func nonVisibleByte(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        firstByte(base, start, end, below: 0x21, orFrom: 0x7F, through: 0xFF)
    }

    /// The first index in `start..<end` whose byte is below `low` or within `high...highest`, 16 bytes
    /// at a time while 16 remain. (Both sides of every compare are vectors: a scalar operand made
    /// the compiler emit a lane-by-lane loop.)
    @inline(__always)
    static func firstByte(
        _ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int,
        below low: UInt8, orFrom high: UInt8, through highest: UInt8
    ) -> Int {
        var index = start
        let lows = SIMD16<UInt8>(repeating: low)
        let highs = SIMD16<UInt8>(repeating: high)
        let highests = SIMD16<UInt8>(repeating: highest)
        while index + 16 <= end {
            let vector = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD16<UInt8>.self)
            let stops = (vector .< lows) .| ((vector .>= highs) .& (vector .<= highests))
            if any(stops) { return index + firstLane(stops) }
            index += 16
        }
        while index < end {
            let byte = base[index]
            if byte < low || (byte >= high && byte <= highest) { return index }
            index += 1
        }
        return end
    }

    /// Index of the first true lane: the mask as bytes (0 or 0xFF), read as two words.
    @inline(__always)
    static func firstLane(_ mask: SIMDMask<SIMD16<Int8>>) -> Int {
        let bytes = SIMD16<UInt8>(repeating: 0).replacing(with: 0xFF, where: mask)
        let words = unsafeBitCast(bytes, to: SIMD2<UInt64>.self)
        return words[0] != 0 ? words[0].trailingZeroBitCount >> 3 : 8 + words[1].trailingZeroBitCount >> 3
    }
}

/// The value of an ASCII hex digit (RFC 3986 HEXDIG, either case), or nil for any other byte.
@inline(__always)
public func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- UInt8(ascii: "a") &+ 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte &- UInt8(ascii: "A") &+ 10
    default: nil
    }
}
