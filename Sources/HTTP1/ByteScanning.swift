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
        var index = start
        let space = SIMD16<UInt8>(repeating: 0x20)
        let delete = SIMD16<UInt8>(repeating: 0x7F)
        while index + 16 <= end {
            let vector = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD16<UInt8>.self)
            let stops = (vector .< space) .| (vector .== delete)
            if any(stops) { return index + firstLane(stops) }
            index += 16
        }
        while index < end {
            let byte = base[index]
            if byte < 0x20 || byte == 0x7F { return index }
            index += 1
        }
        return end
    }

    /// The first index whose byte is not visible ASCII (<= 0x20 or >= 0x7F), or `end`: where a
    /// request target stops (at its SP, or at a byte it may not contain).
    @inline(__always)
    static func nonVisibleByte(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        var index = start
        let space = SIMD16<UInt8>(repeating: 0x21)
        let delete = SIMD16<UInt8>(repeating: 0x7E)
        while index + 16 <= end {
            let vector = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD16<UInt8>.self)
            let stops = (vector .< space) .| (vector .> delete)
            if any(stops) { return index + firstLane(stops) }
            index += 16
        }
        while index < end {
            let byte = base[index]
            if byte <= 0x20 || byte >= 0x7F { return index }
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
