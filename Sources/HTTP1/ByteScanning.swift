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

    /// The first index in `start..<end` whose byte is not a tchar, or `end`. Sixteen bytes at a time
    /// while 16 remain: letters, digits and `-` (what header names and methods are made of) pass in
    /// one vector test; the table is consulted only for the first byte outside them, which is either
    /// a rarer tchar (step over it and go on) or the end of the token.
    @inline(__always)
    static func tokenEnd(_ table: UnsafePointer<UInt8>, _ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        var index = start
        let caseBit = SIMD16<UInt8>(repeating: 0x20)
        let lowerA = SIMD16<UInt8>(repeating: 0x61)
        let letterCount = SIMD16<UInt8>(repeating: 26)
        let zero = SIMD16<UInt8>(repeating: 0x30)
        let digitCount = SIMD16<UInt8>(repeating: 10)
        let dash = SIMD16<UInt8>(repeating: 0x2D)
        // Wrapping arithmetic: offsets are within the caller's buffer, so no overflow checks.
        while index &+ 16 <= end {
            let vector = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD16<UInt8>.self)
            // OR 0x20 lowercases letters and maps no other byte into a...z.
            let letters: SIMDMask<SIMD16<Int8>> = ((vector | caseBit) &- lowerA) .< letterCount
            let digits: SIMDMask<SIMD16<Int8>> = (vector &- zero) .< digitCount
            // Each mask read as words and combined there: combining the masks themselves made the
            // compiler widen the result again (four more instructions per 16 bytes).
            let odd = ~(laneWords(letters) | laneWords(digits) | laneWords(vector .== dash))
            guard odd != .zero else {
                index &+= 16
                continue
            }
            index &+= firstLane(odd)
            guard table[Int(base[index])] & tokenBit != 0 else { return index }
            index &+= 1
        }
        while index < end && table[Int(base[index])] & tokenBit != 0 { index &+= 1 }
        return index
    }

    /// The first index whose byte is a control (< 0x20, which includes CR, LF and HTAB) or DEL, or
    /// `end`: where a header value, reason phrase or chunk extension may stop.
    @inline(__always)
    static func controlByte(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        // Candidates: every control byte and DEL, and (rarely, in UTF-8 text) bytes >= 0x80, which
        // the exact scan sorts out from there.
        let index = firstCandidate(base, start, end, minus: 0x20)
        if index < end {
            let byte = base[index]
            if byte < 0x20 || byte == 0x7F { return index }
        }
        return firstByte(base, index, end, below: 0x20, orFrom: 0x7F, through: 0x7F)
    }

    /// Like `controlByte`, but steps over HTAB, which field text may contain.
    @inline(__always)
    static func fieldTextEnd(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        // One call site of the scan (not one before the loop and one in it): small enough to inline.
        var index = start
        while true {
            index = controlByte(base, index, end)
            guard index < end && base[index] == 9 else { return index }
            index &+= 1
        }
    }

    /// The first index whose byte is not visible ASCII (<= 0x20 or >= 0x7F), or `end`: where a
    /// request target stops (at its SP, or at a byte it may not contain).
    @inline(__always)
    static func nonVisibleByte(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        // The candidates are exactly the stops here; the exact scan does the last 32 bytes.
        let index = firstCandidate(base, start, end, minus: 0x21)
        if index < end && (base[index] <= 0x20 || base[index] >= 0x7F) { return index }
        return firstByte(base, index, end, below: 0x21, orFrom: 0x7F, through: 0xFF)
    }

    /// The first index, 32 bytes at a time while 32 remain, whose byte `b` is below `minus` or from
    /// 0x7F up; or where fewer than 32 bytes remain. One signed compare per 16 bytes: `b + 1`
    /// (wrapping) as a signed byte is below `minus + 1` exactly then (0x7F and up wrap to negative
    /// values, 0xFF to 0). The compare's mask is read as words, never combined as a mask: that
    /// made the compiler widen it with three more instructions per 16 bytes before testing it.
    @inline(__always)
    static func firstCandidate(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int, minus: UInt8) -> Int {
        var index = start
        let limits = SIMD16<Int8>(repeating: Int8(bitPattern: minus &+ 1))
        let ones = SIMD16<UInt8>(repeating: 1)
        while index &+ 32 <= end {
            let first = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD16<UInt8>.self)
            let second = UnsafeRawPointer(base + index).loadUnaligned(fromByteOffset: 16, as: SIMD16<UInt8>.self)
            let low = laneWords(unsafeBitCast(first &+ ones, to: SIMD16<Int8>.self) .< limits)
            let high = laneWords(unsafeBitCast(second &+ ones, to: SIMD16<Int8>.self) .< limits)
            let any = low | high
            guard any[0] | any[1] != 0 else {
                index &+= 32
                continue
            }
            if low != .zero { return index &+ firstLane(low) }
            return index &+ 16 &+ firstLane(high)
        }
        return index
    }

    /// The first index in `start..<end` whose byte is below `low` or within `high...highest`: 32 bytes
    /// at a time while 32 remain (header values and targets are long), then 16, then byte by byte.
    /// (Both sides of every compare are vectors: a scalar operand made the compiler emit a
    /// lane-by-lane loop.)
    @inline(__always)
    static func firstByte(
        _ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int,
        below low: UInt8, orFrom high: UInt8, through highest: UInt8
    ) -> Int {
        var index = start
        let lows = SIMD32<UInt8>(repeating: low)
        let highs = SIMD32<UInt8>(repeating: high)
        let highests = SIMD32<UInt8>(repeating: highest)
        while index &+ 32 <= end {
            let vector = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD32<UInt8>.self)
            let mask = (vector .< lows) .| ((vector .>= highs) .& (vector .<= highests))
            let stops = unsafeBitCast(mask, to: SIMD4<UInt64>.self)
            if stops != .zero {
                let low = SIMD2(stops[0], stops[1])
                return index &+ (low != .zero ? firstLane(low) : 16 &+ firstLane(SIMD2(stops[2], stops[3])))
            }
            index &+= 32
        }
        if index &+ 16 <= end {
            let vector = UnsafeRawPointer(base + index).loadUnaligned(as: SIMD16<UInt8>.self)
            let stops = laneWords((vector .< lows.lowHalf) .| ((vector .>= highs.lowHalf) .& (vector .<= highests.lowHalf)))
            if stops != .zero { return index &+ firstLane(stops) }
            index &+= 16
        }
        while index < end {
            let byte = base[index]
            if byte < low || (byte >= high && byte <= highest) { return index }
            index &+= 1
        }
        return end
    }

    /// A mask's lanes (0 or 0xFF bytes) as two words. Testing the words is one OR; `any(mask)` became
    /// an out-of-line call to a horizontal `min()`.
    @inline(__always)
    static func laneWords(_ mask: SIMDMask<SIMD16<Int8>>) -> SIMD2<UInt64> {
        unsafeBitCast(mask, to: SIMD2<UInt64>.self)
    }

    /// Index of the first true lane of a mask read by `laneWords` (not all false).
    @inline(__always)
    static func firstLane(_ words: SIMD2<UInt64>) -> Int {
        words[0] != 0 ? words[0].trailingZeroBitCount &>> 3 : 8 &+ words[1].trailingZeroBitCount &>> 3
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
