import SSE
import Testing

/// Everything the parser reports for `text` fed in chunks of `chunk` bytes.
private func items(_ text: String, chunk: Int = .max) -> [EventStreamItem] {
    items(Array(text.utf8), chunk: chunk)
}

private func items(_ bytes: [UInt8], chunk: Int = .max) -> [EventStreamItem] {
    var parser = EventStreamParser()
    var result: [EventStreamItem] = []
    var offset = 0
    while offset < bytes.count {
        let end = min(bytes.count, offset + max(1, min(chunk, bytes.count)))
        bytes[offset..<end].withUnsafeBytes { parser.feed($0) { result.append($0) } }
        offset = end
    }
    return result
}

private func event(_ data: String, type: String = "message", id: String = "") -> EventStreamItem {
    .event(ReceivedEvent(type: type, data: Array(data.utf8), lastEventID: id))
}

@Suite struct EventEncoderTests {
    /// Fields in order, one data line per payload line, a blank line to dispatch.
    @Test func framesAllFields() throws {
        let bytes = try EventEncoder.encode(OutgoingEvent(data: "hello", id: "42", name: "greeting", retry: 3000))
        #expect(String(decoding: bytes, as: UTF8.self) == "id: 42\nevent: greeting\nretry: 3000\ndata: hello\n\n")
    }

    /// CR, LF and CRLF in a payload each start a new data line; empty data is one empty data line.
    @Test(arguments: [
        ("a\nb", "data: a\ndata: b\n\n"), ("a\rb", "data: a\ndata: b\n\n"), ("a\r\nb", "data: a\ndata: b\n\n"),
        ("a\n\nb", "data: a\ndata: \ndata: b\n\n"), ("", "data: \n\n"), ("x\n", "data: x\ndata: \n\n"),
        (" lead", "data:  lead\n\n")
    ])
    func splitsPayloadLines(payload: String, framed: String) throws {
        #expect(String(decoding: try EventEncoder.encode(OutgoingEvent(data: payload)), as: UTF8.self) == framed)
    }

    /// An id or event name with NUL, CR or LF is refused.
    @Test(arguments: ["a\nb", "a\rb", "a\u{0}b"])
    func refusesUnsafeIDsAndNames(value: String) {
        #expect(throws: EventEncodingError.invalidID) { try EventEncoder.encode(OutgoingEvent(data: "x", id: value)) }
        #expect(throws: EventEncodingError.invalidName) {
            try EventEncoder.encode(OutgoingEvent(data: "x", name: value))
        }
    }

    /// Comments (heartbeats) are colon lines, multi-line text included.
    @Test func comments() {
        #expect(String(decoding: EventEncoder.comment("hb"), as: UTF8.self) == ": hb\n\n")
        #expect(String(decoding: EventEncoder.comment("a\nb"), as: UTF8.self) == ": a\n: b\n\n")
    }

    /// Whatever the payload, the client gets it back exactly (line breaks normalised to LF), in any split.
    @Test func roundTripsThroughTheParser() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab :\r\n\u{0}é".utf8)
        for _ in 0..<300 {
            let payload = (0..<Int.random(in: 0...30, using: &generator)).map { _ in
                alphabet.randomElement(using: &generator)!
            }
            let id = String((0..<Int.random(in: 0...5, using: &generator)).map { _ in Character("x") })
            let framed = try EventEncoder.encode(OutgoingEvent(data: payload, id: id, name: "t"))
            var normalised: [UInt8] = []
            var index = 0
            while index < payload.count {
                if payload[index] == 13 {
                    normalised.append(10)
                    if index + 1 < payload.count && payload[index + 1] == 10 { index += 1 }
                } else {
                    normalised.append(payload[index])
                }
                index += 1
            }
            let expected = [EventStreamItem.event(ReceivedEvent(type: "t", data: normalised, lastEventID: id))]
            #expect(items(framed) == expected)
            #expect(items(framed, chunk: Int.random(in: 1...7, using: &generator)) == expected)
        }
    }
}

@Suite struct EventStreamParserTests {
    /// The spec's examples (WHATWG HTML 9.2.6).
    @Test func specExamples() {
        #expect(items("data: YHOO\ndata: +2\ndata: 10\n\n") == [event("YHOO\n+2\n10")])
        #expect(
            items(": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n") == [
                .comment(Array("test stream".utf8)), event("first event", id: "1"), event("second event"),
                event(" third event")
            ])
        #expect(items("data\n\ndata\ndata\n\ndata:") == [event(""), event("\n")])
        #expect(items("data:test\n\ndata: test\n\n") == [event("test"), event("test")])
    }

    /// CR alone, LF alone and CRLF all end lines, also when CR and LF arrive in separate reads.
    @Test func lineEndings() {
        let expected = [event("a", type: "x"), event("b")]
        for text in [
            "event: x\rdata: a\r\rdata: b\r\r", "event: x\ndata: a\n\ndata: b\n\n",
            "event: x\r\ndata: a\r\n\r\ndata: b\r\n\r\n"
        ] {
            for chunk in [1, 2, 3, 5, .max] {
                #expect(items(text, chunk: chunk) == expected, "\(text.debugDescription) by \(chunk)")
            }
        }
    }

    /// A leading BOM is skipped, even split across reads; one later in the stream is data.
    @Test func byteOrderMark() {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("data: a\n\n".utf8)
        for chunk in [1, 2, 4, .max] { #expect(items(bytes, chunk: chunk) == [event("a")]) }
        #expect(items([0xEF] + Array("data: a\n\n".utf8)) == [])  // not a BOM: "\u{FFFD}data" is an unknown field
    }

    /// Dispatch happens only at a blank line; a stream cut before it dispatches nothing.
    @Test func dispatchOnlyAtBlankLine() {
        #expect(items("data: a\n") == [])
        #expect(items("data: a\ndata: b") == [])
    }

    /// id persists across events; an id with NUL is ignored; an empty id resets it.
    @Test func lastEventID() {
        #expect(
            items("id: 7\ndata: a\n\ndata: b\n\nid: 8\u{0}\ndata: c\n\nid\ndata: d\n\n") == [
                event("a", id: "7"), event("b", id: "7"), event("c", id: "7"), event("d", id: "")
            ])
    }

    /// retry with digits only is reported; anything else is ignored.
    @Test func retry() {
        #expect(items("retry: 1500\n\nretry: 15x\n\nretry: -1\n\nretry:\n\n") == [.retry(1500)])
    }

    /// Unknown fields and event-less blank lines are ignored; event type resets after each event.
    @Test func unknownFieldsAndTypeReset() {
        #expect(items("foo: bar\nevent: e\ndata: 1\n\ndata: 2\n\n\n\n") == [event("1", type: "e"), event("2")])
        #expect(items("event: e\n\ndata: 2\n\n") == [event("2")])
    }
}
