import RedisClient
import Testing

/// RESP2 decoding: whole replies, every split, and bad or oversized input as values.
@Suite struct RESPDecoderTests {
    static let cases: [(bytes: String, value: RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("-ERR unknown command\r\n", .error("ERR unknown command")),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(.max)),
        ("$5\r\nhello\r\n", .bulk(Array("hello".utf8))),
        ("$0\r\n\r\n", .bulk([])),
        ("$-1\r\n", .bulk(nil)),
        ("$4\r\na\r\nb\r\n", .bulk(Array("a\r\nb".utf8))),
        ("*-1\r\n", .array(nil)),
        ("*0\r\n", .array([])),
        (
            "*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nt\r\n$1\r\nx\r\n:7\r\n",
            .array([.array([.bulk(Array("1-0".utf8)), .array([.bulk([116]), .bulk([120])])]), .integer(7)])
        ),
    ]

    /// Each case whole, then split at every byte: every proper prefix needs more, the rest completes it.
    @Test func everySplit() {
        for (text, expected) in Self.cases {
            let bytes = Array(text.utf8)
            var whole = RESPDecoder()
            whole.append(bytes)
            #expect(whole.next() == .value(expected), "\(text.debugDescription)")
            #expect(whole.next() == .needMore)
            for split in 0..<bytes.count {
                var decoder = RESPDecoder()
                decoder.append(Array(bytes[..<split]))
                #expect(decoder.next() == .needMore, "\(text.debugDescription) cut at \(split)")
                decoder.append(Array(bytes[split...]))
                #expect(decoder.next() == .value(expected), "\(text.debugDescription) cut at \(split)")
            }
        }
    }

    /// All cases back to back, fed one byte at a time, come out in order.
    @Test func byteByBytePipeline() {
        var decoder = RESPDecoder()
        var found: [RESPValue] = []
        for byte in Self.cases.flatMap({ Array($0.bytes.utf8) }) {
            decoder.append([byte])
            while case .value(let value) = decoder.next() { found.append(value) }
        }
        #expect(found == Self.cases.map(\.value))
        #expect(decoder.bufferedBytes == 0)
    }

    /// Malformed input is a failure value, and the decoder stays failed.
    @Test func malformedInput() {
        let bad = ["?x\r\n", ":12a\r\n", "$-2\r\n", "$3\r\nabcd\r\n", "*-5\r\n", "+OK\n", "+O\rK\r\n",
                   ":99999999999999999999\r\n", ":\r\n"]
        for text in bad {
            var decoder = RESPDecoder()
            decoder.append(Array(text.utf8))
            guard case .failure = decoder.next() else {
                Issue.record("accepted \(text.debugDescription)")
                continue
            }
            decoder.append(Array("+OK\r\n".utf8))
            if case .value = decoder.next() { Issue.record("decoded after failing on \(text.debugDescription)") }
        }
    }

    /// Sizes past the limits fail before anything that large is buffered or reserved.
    @Test func limits() {
        var limits = RESPDecoder.Limits()
        limits.bulkBytes = 10
        limits.arrayElements = 3
        limits.depth = 2
        limits.lineBytes = 8
        limits.replyBytes = 30
        for text in ["$11\r\n", "*4\r\n", "*1\r\n*1\r\n*1\r\n*0\r\n", "+123456789012\r\n", "+1234567890", "*3\r\n$10\r\n0123456789\r\n$10\r\n012345"] {
            var decoder = RESPDecoder(limits: limits)
            decoder.append(Array(text.utf8))
            guard case .failure = decoder.next() else {
                Issue.record("no failure for \(text.debugDescription)")
                continue
            }
        }
    }

    /// The encoder writes a command as an array of bulk strings, binary-safe.
    @Test func encoding() {
        #expect(String(decoding: RESPEncoder.encode(["SET", "k", "a b"]), as: UTF8.self) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na b\r\n")
        var buffer: [UInt8] = []
        RESPEncoder.append(command: [Array("ECHO".utf8), [0, 13, 10]], to: &buffer)
        var decoder = RESPDecoder()
        decoder.append(buffer)
        #expect(decoder.next() == .value(.array([.bulk(Array("ECHO".utf8)), .bulk([0, 13, 10])])))
    }

    /// Redis URLs: host, port and database; malformed ones are refused.
    @Test func endpoints() {
        #expect(RedisEndpoint(url: "redis://127.0.0.1:6380/2")?.description == "redis://127.0.0.1:6380/2")
        #expect(RedisEndpoint(url: "redis://localhost")?.description == "redis://127.0.0.1:6379")
        #expect(RedisEndpoint(url: "redis://127.0.0.9:7000/")?.database == 0)
        for bad in ["http://1.2.3.4", "redis://host.example:1", "redis://1.2.3.4:0", "redis://1.2.3.4:6379/x", "redis://"] {
            #expect(RedisEndpoint(url: bad) == nil, "\(bad)")
        }
    }
}
