import HTTP1

/// A request target split into its path and query, as ranges of the request's bytes; decoding
/// happens only for the parts a route needs. Origin form (`/path?query`) and absolute form
/// (`http://host/path?query`, which a server MUST accept, RFC 9112 3.2.2: the path and query are
/// routed as in origin form; the authority is not checked against `Host`, which routing ignores).
struct RequestTarget {
    /// Empty for an absolute form without a path (`http://host`, or `http://host?q`): the root.
    let path: ByteRange
    let query: ByteRange?

    init(_ target: ByteRange, in bytes: UnsafeRawBufferPointer) {
        var start = Int(target.start)
        if bytes[start] != UInt8(ascii: "/"), let authority = RequestTarget.authorityStart(target, bytes) {
            start = authority
            while start < Int(target.end) && bytes[start] != UInt8(ascii: "/") && bytes[start] != UInt8(ascii: "?") {
                start += 1
            }
        }
        var end = start
        while end < Int(target.end) && bytes[end] != UInt8(ascii: "?") { end += 1 }
        path = ByteRange(start, end)
        query = end < Int(target.end) ? ByteRange(end + 1, Int(target.end)) : nil
    }

    /// Whether the path is `/` (or absent, in absolute form).
    func isRoot(in bytes: UnsafeRawBufferPointer) -> Bool { path.isEmpty || bytes.equals(path, "/") }

    /// Where the authority begins after an `http://` or `https://` prefix (scheme in any case).
    private static func authorityStart(_ target: ByteRange, _ bytes: UnsafeRawBufferPointer) -> Int? {
        let start = Int(target.start)
        let http = ByteRange(start, min(Int(target.end), start + 7))
        if bytes.equalsIgnoringCase(http, "http://") { return Int(http.end) }
        let https = ByteRange(start, min(Int(target.end), start + 8))
        return bytes.equalsIgnoringCase(https, "https://") ? Int(https.end) : nil
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
                    let value = percentDecodedString(value, plusIsSpace: true)
                else { return nil }
                result.append((name, value))
            }
            start = stop + 1
        }
        return result
    }
}

/// Percent-decodes `bytes` (RFC 3986 2.1); nil on a `%` not followed by two hex digits.
public func percentDecoded(_ bytes: UnsafeRawBufferPointer, plusIsSpace: Bool) -> [UInt8]? {
    var output: [UInt8] = []
    output.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
        let byte = bytes[index]
        if byte == UInt8(ascii: "%") {
            guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2])
            else {
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
public func percentDecodedString(_ bytes: UnsafeRawBufferPointer, plusIsSpace: Bool) -> String? {
    guard let decoded = percentDecoded(bytes, plusIsSpace: plusIsSpace) else { return nil }
    return String(validating: decoded, as: UTF8.self)
}
