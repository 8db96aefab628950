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

        // Header lines, after the request line's CRLF.
        return withUnsafeTemporaryAllocation(of: HeaderField.self, capacity: MessageParser.fieldBatch) { fields in
            parseHeaderLines(base, count, versionStart &+ 10, fields.baseAddress!)
        }
    }

    /// Fields gathered on the stack before they go into `head.headers`: 512 bytes, within what
    /// `withUnsafeTemporaryAllocation` keeps on the stack (no allocation).
    static var fieldBatch: Int { 32 }

    /// The header lines of a whole head, up to the empty line, within the header-section limit
    /// (from offset 0: no empty lines were skipped before this request line). Each field is stored
    /// in `fields`, and noted (framing facts) and appended to `head.headers` in one go
    /// (`appendFields`, in arrival order) when the head ends, is handed over, fails, or the batch is
    /// full: an append per field cost a uniqueness check (a runtime call) and, since a call clobbers
    /// every vector register, a reload of the scans' constants, for every line. So the loop makes
    /// no call unless a value holds an HTAB or a byte from 0x80.
    private mutating func parseHeaderLines(
        _ base: UnsafePointer<UInt8>, _ count: Int, _ first: Int, _ fields: UnsafeMutablePointer<HeaderField>
    ) -> HTTPParseStep? {
        let end = min(count, limits.headerSection)
        var line = first
        var stored = head.headers.count
        var pending = 0
        // Bit i set: pending field i may be a framing header (by its name's length).
        var framing: UInt64 = 0
        while true {
            guard line < end else {
                appendFields(fields, pending, framing, base)
                return resume(at: line)
            }
            if base[line] == 13 {
                appendFields(fields, pending, framing, base)
                guard line &+ 1 < count, base[line &+ 1] == 10 else { return resume(at: line) }
                position = line &+ 2
                lineStart = position
                return headComplete()
            }
            // The line's end is looked for from the line's start, not from the value's: a name that
            // passes holds no candidate byte (tchars and the colon are none), so the first candidate
            // is the same, and the two scans no longer wait for each other (from the value's start,
            // each line was one chain of loads and bit scans: name, then value).
            var stop = ByteScanning.firstCandidate(base, line, end, minus: 0x20)
            let nameEnd = ByteScanning.tokenEnd(table, base, line, end)
            guard nameEnd > line, nameEnd < end, base[nameEnd] == UInt8(ascii: ":") else {
                appendFields(fields, pending, framing, base)
                return resume(at: line)
            }
            var valueStart = nameEnd &+ 1
            // Usually one SP and then not whitespace (> 0x20); the loop for anything else.
            if valueStart &+ 1 < end && base[valueStart] == 32 && base[valueStart &+ 1] > 32 {
                valueStart &+= 1
            } else {
                while valueStart < end && (base[valueStart] == 32 || base[valueStart] == 9) { valueStart &+= 1 }
            }
            // The candidate scan is inline (its constants stay in registers from line to line); when
            // the first candidate is not the CR (an HTAB, here or before the value, a UTF-8 byte, fewer
            // than 32 bytes left), the exact scan goes on from there, out of line: the bytes before a
            // candidate are field text, and it steps over HTAB.
            if stop >= end || base[stop] != 13 {
                stop = ByteScanning.fieldTextEnd(base, stop, end)
                guard stop < end, base[stop] == 13 else {
                    appendFields(fields, pending, framing, base)
                    return resume(at: line)
                }
            }
            guard stop &+ 1 < count, base[stop &+ 1] == 10 else {
                appendFields(fields, pending, framing, base)
                return resume(at: line)
            }
            var valueEnd = stop
            // Trailing whitespace is rare: one test of the byte before CR (in bounds: at worst the
            // colon) before the loop.
            if base[valueEnd &- 1] == 32 || base[valueEnd &- 1] == 9 {
                while valueEnd > valueStart && (base[valueEnd &- 1] == 32 || base[valueEnd &- 1] == 9) { valueEnd &-= 1 }
            }
            guard stored &+ pending < limits.headerCount else {
                appendFields(fields, pending, framing, base)
                return failed(.tooManyHeaders)
            }
            let field = HeaderField(name: ByteRange(line, nameEnd), value: ByteRange(valueStart, valueEnd))
            fields[pending] = field
            framing |= ((MessageHead.framingLengths &>> UInt64(truncatingIfNeeded: nameEnd &- line)) & 1) &<< pending
            pending &+= 1
            if pending == MessageParser.fieldBatch {
                appendFields(fields, pending, framing, base)
                stored &+= pending
                pending = 0
                framing = 0
            }
            line = stop &+ 2
        }
    }

    /// Notes the framing facts of the first `count` of `fields` (those whose bit is set in `framing`,
    /// in arrival order) and appends them to the head: one by one for a few (the bulk append's
    /// generic path costs about as much as five single appends), else at once.
    @inline(never)
    private mutating func appendFields(
        _ fields: UnsafeMutablePointer<HeaderField>, _ count: Int, _ framing: UInt64, _ base: UnsafePointer<UInt8>
    ) {
        var candidates = framing
        while candidates != 0 {
            head.noteFraming(fields[candidates.trailingZeroBitCount], base)
            candidates &= candidates &- 1
        }
        if count <= 4 {
            var index = 0
            while index < count {
                head.headers.append(fields[index])
                index &+= 1
            }
        } else {
            head.headers.append(contentsOf: UnsafeBufferPointer(start: fields, count: count))
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
