import HTTP1
import Testing

/// Heads the straight-line path (a whole head in one buffer) parses, hands over to the resumable
/// machine part-way, or leaves to it: the same transcript whatever the split.
@Suite struct WholeHeadTests {
    /// Long values (32-byte scans) with UTF-8, HTAB and trailing whitespace, a long target, a
    /// second request pipelined behind the first.
    static let browserLike = crlf(
        "GET /articles/2024/05/incremental-http-parsing?ref=homepage&utm_source=newsletter HTTP/1.1|"
            + "Host: www.example.com|Connection: keep-alive|"
            + "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124|"
            + "X-Name: caf\u{E9} cr\u{E8}me br\u{FB}l\u{E9}e, na\u{EF}ve \u{2014} a UTF-8 value past 32 bytes \t |"
            + "X-Tabbed: one\ttwo\tthree\tfour\tfive\tsix\tseven\teight\tnine\tten|"
            + "Cookie: session_id=3f9a1c2e7b8d4f6a9e0b1c2d3e4f5a6b; theme=dark||"
            + "POST /upload HTTP/1.1|Host: a|Transfer-Encoding: chunked||5|hello|0||")

    /// Fed in two reads, split at every byte: the result is the one the whole buffer gives.
    @Test func everyTwoReadSplit() {
        let bytes = WholeHeadTests.browserLike
        let whole = requestTranscript(bytes)
        #expect(whole.contains("[X-Name=café crème brûlée, naïve — a UTF-8 value past 32 bytes]"), "\(whole)")
        #expect(whole.contains("[X-Tabbed=one\ttwo"), "\(whole)")
        #expect(whole.hasSuffix("body=hello}"), "\(whole)")
        for split in 0...bytes.count {
            #expect(requestTranscript(bytes, chunks: [split, bytes.count - split]) == whole, "split at \(split)")
        }
        #expect(requestTranscript(bytes, chunks: byteByByte(bytes.count)) == whole)
    }

    /// A control byte or DEL after a run of UTF-8 bytes in a long value (where the 32-byte scan's
    /// candidates include every byte from 0x80) is still refused, at the same byte whatever the split.
    @Test(arguments: [0x00, 0x01, 0x0A, 0x1F, 0x7F] as [UInt8])
    func controlAfterUTF8(_ control: UInt8) {
        for offset in [0, 5, 31, 32, 33, 47, 64] {
            var bytes = crlf("GET / HTTP/1.1|Host: a|X: ")
            bytes += Array(repeating: 0xC3, count: offset) + [control] + Array(repeating: 0x61, count: 40)
            bytes += crlf("||")
            let whole = requestTranscript(bytes)
            let expected = "!\(control == 0x0A ? HTTPParseError.bareLF : .invalidHeaderValue)"
            #expect(whole.hasSuffix(expected), "offset \(offset): \(whole)")
            #expect(requestTranscript(bytes, chunks: byteByByte(bytes.count)) == whole)
        }
    }

    /// Targets stop at SP and refuse controls, DEL and bytes from 0x80, in the 32-byte scan too.
    @Test(arguments: [0x00, 0x09, 0x7F, 0x80, 0xFF] as [UInt8])
    func targetBytes(_ byte: UInt8) {
        for offset in [0, 20, 31, 32, 40] {
            var bytes = Array("GET /".utf8) + Array(repeating: 0x61, count: offset) + [byte]
            bytes += Array(repeating: 0x62, count: 40) + crlf(" HTTP/1.1|Host: a||")
            let whole = requestTranscript(bytes)
            #expect(whole.hasSuffix("!\(HTTPParseError.invalidTarget)"), "offset \(offset): \(whole)")
            #expect(requestTranscript(bytes, chunks: byteByByte(bytes.count)) == whole)
        }
    }

    /// Heads of up to and past the field limit (100), across the 32-field batches the straight-line
    /// path gathers fields in, whole, handed over after them (a bad name), or refused: the same
    /// transcript as a byte at a time.
    @Test(arguments: [0, 1, 4, 5, 31, 32, 33, 64, 65, 99, 100, 101])
    func manyFields(_ count: Int) {
        var lines = ["GET /many HTTP/1.1", "Host: a"]
        for index in 0..<count { lines.append(index % 3 == 0 ? "X-\(index): v\(index)" : "Content-Length: 0") }
        for tail in ["", "Bad : x|"] {
            let bytes = crlf(lines.joined(separator: "|") + "|" + tail + "|")
            let whole = requestTranscript(bytes)
            #expect(count < 100 || whole.hasSuffix("!\(HTTPParseError.tooManyHeaders)"), "\(count): \(whole)")
            #expect(requestTranscript(bytes, chunks: byteByByte(bytes.count)) == whole, "\(count) \(tail)")
        }
    }

    /// The line's CR is looked for from the line's start, across the name: odd bytes in the name or
    /// before the value (UTF-8, controls, HTAB, DEL) give the transcript a byte at a time gives.
    @Test(arguments: [0x09, 0x00, 0x0D, 0x7F, 0x80, 0xC3] as [UInt8])
    func oddBytesBeforeTheValue(_ byte: UInt8) {
        for prefix in ["X-Long-Name-Past-Sixteen", "X"] {
            for place in 0..<3 {
                var line = Array(prefix.utf8)
                switch place {
                case 0: line.insert(byte, at: 1)  // in the name
                case 1: line += [UInt8(ascii: ":"), byte, 0x20]  // before the value
                default: line += Array(": ".utf8) + [byte]  // first in the value
                }
                if place == 0 { line += Array(": ".utf8) }
                line += Array("value that runs past thirty-two bytes".utf8)
                let bytes = crlf("GET / HTTP/1.1|Host: a|") + line + crlf("|Next: b||")
                let whole = requestTranscript(bytes)
                #expect(requestTranscript(bytes, chunks: byteByByte(bytes.count)) == whole, "\(byte) \(place): \(whole)")
            }
        }
    }
}
