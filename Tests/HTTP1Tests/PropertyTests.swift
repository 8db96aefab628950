import HTTP1
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A small seeded generator, so a failing case can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A request as the generator built it, to compare with what the parser reports.
struct GeneratedRequest {
    var method: String
    var target: String
    var version: HTTPVersion
    var headers: [(String, String)]
    var body: [UInt8]
    var chunked: Bool

    var serialized: [UInt8] {
        var text = "\(method) \(target) \(version)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if chunked {
            text += "Transfer-Encoding: chunked\r\n\r\n"
            var bytes = Array(text.utf8)
            var offset = 0
            while offset < body.count {
                let size = min(7, body.count - offset)
                bytes += Array(String(size, radix: 16).utf8) + [13, 10] + body[offset..<offset + size] + [13, 10]
                offset += size
            }
            return bytes + Array("0\r\n\r\n".utf8)
        }
        if !body.isEmpty { text += "Content-Length: \(body.count)\r\n" }
        return Array((text + "\r\n").utf8) + body
    }

    static func random(using generator: inout SplitMix64) -> GeneratedRequest {
        let tchars = Array("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        let vchars = (0x21...0x7E).map { Character(UnicodeScalar(UInt8($0))) }
        func token(_ range: ClosedRange<Int>) -> String {
            String((0..<Int.random(in: range, using: &generator)).map { _ in tchars.randomElement(using: &generator)! })
        }
        let method = token(1...8)
        let target =
            "/"
            + String(
                (0..<Int.random(in: 0...60, using: &generator)).map { _ in vchars.randomElement(using: &generator)! })
        let version: HTTPVersion = Bool.random(using: &generator) ? .http1_1 : .http1_0
        var headers: [(String, String)] = [("Host", "h")]
        for _ in 0..<Int.random(in: 0...12, using: &generator) {
            var name = token(1...20)
            // Keep framing and Host under the generator's control.
            if ["host", "content-length", "transfer-encoding", "connection"].contains(name.lowercased()) {
                name = "X" + name
            }
            var value = String(
                (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                    Int.random(in: 0..<10, using: &generator) == 0 ? " " : vchars.randomElement(using: &generator)!
                })
            while value.first == " " { value.removeFirst() }
            while value.last == " " { value.removeLast() }
            headers.append((name, value))
        }
        let body = (0..<(Bool.random(using: &generator) ? Int.random(in: 1...50, using: &generator) : 0)).map { _ in
            UInt8.random(in: 0...255, using: &generator)
        }
        return GeneratedRequest(
            method: method, target: target, version: version, headers: headers,
            body: body, chunked: !body.isEmpty && Bool.random(using: &generator))
    }
}

@Suite struct PropertyTests {
    /// Random valid requests, serialized and parsed (whole and in random splits), give back exactly
    /// the generator's fields and body.
    @Test func randomValidRequestsRoundTrip() {
        var generator = SplitMix64(state: 0x5EED)
        for iteration in 0..<500 {
            let request = GeneratedRequest.random(using: &generator)
            let bytes = request.serialized
            var expected = "{\(request.method) \(request.target) \(request.version)"
            for (name, value) in request.headers { expected += " [\(name)=\(value)]" }
            if request.chunked {
                expected += " [Transfer-Encoding=chunked] chunked"
            } else if !request.body.isEmpty {
                expected += " [Content-Length=\(request.body.count)] length(\(request.body.count))"
            } else {
                expected += " none"
            }
            expected += request.version == .http1_1 ? " keep" : " close"
            expected += (request.body.isEmpty ? "" : " body=" + String(decoding: request.body, as: UTF8.self)) + "}"
            #expect(requestTranscript(bytes) == expected, "iteration \(iteration)")
            #expect(requestTranscript(bytes, chunks: randomSplits(bytes.count, using: &generator)) == expected)
        }
    }

    /// Random mutations (flips, insertions, deletions) of valid messages never crash or read past the
    /// end (inputs sit against an inaccessible page), and give the same result whole as byte by byte.
    @Test func mutationsNeverCrashAndDoNotDependOnSplits() {
        var generator = SplitMix64(state: 0xBAD5EED)
        let seeds = validRequests.map { crlf($0.0) } + invalidRequests.map { crlf($0.0) } + corpusFiles().map(\.1)
        let interesting: [UInt8] = Array(" \t\r\n:;,0123456789aAfF-\u{0}\u{7F}".utf8) + [0x80, 0xFF]
        for iteration in 0..<1_500 {
            var bytes = seeds[iteration % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &generator) where !bytes.isEmpty {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[index] = interesting.randomElement(using: &generator)!
                case 1: bytes.insert(interesting.randomElement(using: &generator)!, at: index)
                default: bytes.remove(at: index)
                }
            }
            let whole = requestTranscript(bytes)
            #expect(
                requestTranscript(bytes, chunks: byteByByte(bytes.count)) == whole, "iteration \(iteration): \(bytes)")
            #expect(requestTranscript(bytes, chunks: randomSplits(bytes.count, using: &generator)) == whole)
            let response = responseTranscript(bytes)
            #expect(responseTranscript(bytes, chunks: randomSplits(bytes.count, using: &generator)) == response)
        }
    }

    /// The corpus: each file is one valid request; 100 of them back to back are 100 requests.
    @Test func corpus() {
        #expect(corpusFiles().count == 5, "Tests/Fixtures/http holds the five corpus files")
        for (name, bytes) in corpusFiles() {
            let one = requestTranscript(bytes)
            #expect(!one.contains("!") && one.hasSuffix("}"), "\(name): \(one)")
            let pipelined = Array([[UInt8]](repeating: bytes, count: 100).joined())
            let many = requestTranscript(pipelined)
            #expect(many == String(repeating: one, count: 100), "\(name)")
            #expect(requestTranscript(bytes, chunks: byteByByte(bytes.count)) == one)
        }
    }
}

/// The request corpus in Tests/Fixtures/http (a copy of the project's shared corpus).
func corpusFiles() -> [(String, [UInt8])] {
    let packageRoot = String(
        #filePath.split(separator: "/", omittingEmptySubsequences: false).dropLast(3).joined(separator: "/"))
    let directory = packageRoot + "/Tests/Fixtures/http/"
    return ["browser.txt", "sse.txt", "wrk.txt", "post-cl.txt", "post-chunked.txt"].compactMap { name in
        guard let file = fopen(directory + name, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer.prefix(count)
        }
        return (name, bytes)
    }
}
