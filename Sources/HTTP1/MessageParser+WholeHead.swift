extension MessageParser {
    /// A request head that arrives whole in one buffer (nearly every one does), parsed straight
    /// through: positions live in registers, and the resumable machine's bookkeeping (its state,
    /// position and field starts written back for every element, the dispatch per element) is done
    /// once at the end, not per byte run.
    ///
    /// The same rules as `scanHead`, checked in the same order. Anything it does not take on, it
    /// leaves to the resumable machine at a point that machine itself passes through, so errors,
    /// limits and incomplete input are decided in one place:
    /// - a request line that is not `token SP visible SP HTTP/1.x CRLF` in full (or any oddity in
    ///   it: leading empty lines, HTTP/1.2, a bare LF, a limit): nothing is kept, and the machine
    ///   starts the message from its first byte;
    /// - a header line that is incomplete or not plain: the machine goes on at that line's start,
    ///   with the lines before it recorded exactly as it would have recorded them.
    ///
    /// Called only at the start of a request (state `.method`, nothing scanned), so a client that
    /// sends its head a byte at a time costs one extra scan of what it sent at first, not one per byte.
    /// Returns the `.head` step, or nil when the resumable machine takes over.
    mutating func parseWholeHead(_ base: UnsafePointer<UInt8>, _ count: Int) -> HTTPParseStep? {
        // Request line: method SP target SP HTTP/1.x CR LF, all within the request-line limit.
        let lineEnd = min(count, limits.requestLine)
        let methodEnd = ByteScanning.tokenEnd(table, base, 0, lineEnd)
        guard methodEnd > 0, methodEnd < lineEnd, base[methodEnd] == 32 else { return nil }
        let targetStart = methodEnd &+ 1
        let targetEnd = ByteScanning.nonVisibleByte(base, targetStart, lineEnd)
        guard targetEnd > targetStart, targetEnd < lineEnd, base[targetEnd] == 32 else { return nil }
        let versionStart = targetEnd &+ 1
        guard versionStart &+ 10 <= lineEnd else { return nil }
        let word = UnsafeRawPointer(base + versionStart).loadUnaligned(as: UInt64.self)
        let version: HTTPVersion
        if word == MessageParser.http11 {
            version = .http1_1
        } else if word == MessageParser.http10 {
            version = .http1_0
        } else {
            return nil
        }
        guard base[versionStart &+ 8] == 13, base[versionStart &+ 9] == 10 else { return nil }
        head.method = ByteRange(0, methodEnd)
        head.target = ByteRange(targetStart, targetEnd)
        head.version = version

        // Header lines, up to the empty line, within the header-section limit (from offset 0: no
        // empty lines were skipped before this request line).
        let end = min(count, limits.headerSection)
        var line = versionStart &+ 10
        while true {
            guard line < end else { return resume(at: line) }
            if base[line] == 13 {
                guard line &+ 1 < count, base[line &+ 1] == 10 else { return resume(at: line) }
                position = line &+ 2
                lineStart = position
                return headComplete()
            }
            let nameEnd = ByteScanning.tokenEnd(table, base, line, end)
            guard nameEnd > line, nameEnd < end, base[nameEnd] == UInt8(ascii: ":") else { return resume(at: line) }
            var valueStart = nameEnd &+ 1
            while valueStart < end && (base[valueStart] == 32 || base[valueStart] == 9) { valueStart &+= 1 }
            // The scan inlined here (its SIMD constants stay in registers across lines); a value
            // with an HTAB in it goes on out of line.
            var stop = ByteScanning.controlByte(base, valueStart, end)
            if stop < end && base[stop] == 9 { stop = ByteScanning.fieldTextEnd(base, stop &+ 1, end) }
            guard stop < end, base[stop] == 13, stop &+ 1 < count, base[stop &+ 1] == 10 else {
                return resume(at: line)
            }
            var valueEnd = stop
            while valueEnd > valueStart && (base[valueEnd &- 1] == 32 || base[valueEnd &- 1] == 9) { valueEnd &-= 1 }
            guard head.headers.count < limits.headerCount else { return failed(.tooManyHeaders) }
            // One append per field: batching them on the stack saved its uniqueness checks on an
            // 11-field head, but its bulk append cost more than that on the usual 1 to 4 fields.
            let field = HeaderField(name: ByteRange(line, nameEnd), value: ByteRange(valueStart, valueEnd))
            if let error = head.record(field, base) { return failed(error) }
            line = stop &+ 2
        }
    }

    /// Hands a head over to the resumable machine at the start of header line `line`: where it
    /// would stand after the lines before it.
    private mutating func resume(at line: Int) -> HTTPParseStep? {
        state = .lineStart
        position = line
        lineStart = line
        return nil
    }
}
