import HTTP1

/// An origin-form request target (`/path?query`) split into its path and query, as ranges of the
/// request's bytes; decoding happens only for the parts a route needs.
struct RequestTarget {
    let path: ByteRange
    let query: ByteRange?

    init(_ target: ByteRange, in bytes: UnsafeRawBufferPointer) {
        var end = Int(target.start)
        while end < Int(target.end) && bytes[end] != UInt8(ascii: "?") { end += 1 }
        path = ByteRange(Int(target.start), end)
        query = end < Int(target.end) ? ByteRange(end + 1, Int(target.end)) : nil
    }

    /// The query's name=value pairs, percent-decoded (`+` as space, as HTML forms send it); nil if an
    /// escape is malformed or a part is not UTF-8.
    func parameters(in bytes: UnsafeRawBufferPointer) -> [(name: String, value: String)]? {
        guard let query else { return [] }
        var result: [(name: String, value: String)] = []
        var start = Int(query.start)
        let end = Int(query.end)
        while start <= end {
            var stop = start
            while stop < end && bytes[stop] != UInt8(ascii: "&") { stop += 1 }
            if stop > start {
                var equals = start
                while equals < stop && bytes[equals] != UInt8(ascii: "=") { equals += 1 }
                let name = UnsafeRawBufferPointer(rebasing: bytes[start..<equals])
                let value = UnsafeRawBufferPointer(rebasing: bytes[min(equals + 1, stop)..<stop])
                guard let name = percentDecodedString(name, plusIsSpace: true),
                      let value = percentDecodedString(value, plusIsSpace: true) else { return nil }
                result.append((name, value))
            }
            start = stop + 1
        }
        return result
    }
}

/// Percent-decodes `bytes` (RFC 3986 2.1); nil on a `%` not followed by two hex digits.
func percentDecoded(_ bytes: UnsafeRawBufferPointer, plusIsSpace: Bool) -> [UInt8]? {
    var output: [UInt8] = []
    output.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
        let byte = bytes[index]
        if byte == UInt8(ascii: "%") {
            guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                return nil
            }
            output.append(high << 4 | low)
            index += 3
        } else {
            output.append(plusIsSpace && byte == UInt8(ascii: "+") ? 32 : byte)
            index += 1
        }
    }
    return output
}

/// Percent-decodes into a String; nil if malformed or not valid UTF-8.
func percentDecodedString(_ bytes: UnsafeRawBufferPointer, plusIsSpace: Bool) -> String? {
    guard let decoded = percentDecoded(bytes, plusIsSpace: plusIsSpace) else { return nil }
    return String(validating: decoded, as: UTF8.self)
}
