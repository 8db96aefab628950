import SSE
import Testing

@Suite struct EventStreamParserSplitTests {
    /// Everything the parser makes of `bytes` cut at `cuts`.
    static func items(_ bytes: [UInt8], cuts: [Int] = []) -> [EventStreamItem] {
        var parser = EventStreamParser()
        var items: [EventStreamItem] = []
        var start = 0
        for end in cuts + [bytes.count] {
            bytes[start..<end].withUnsafeBytes { parser.feed($0) { items.append($0) } }
            start = end
        }
        return items
    }

    static let stream = Array(
        """
        \u{FEFF}: hello\r\nretry: 2500\r\nid: 7\r\nevent: tick\r\ndata: one\r\ndata:two\r\n\r\n\
        data: t=123 xx\n\n: heartbeat\rid: 8\rdata:\r\r\
        event: x\nid: bad\u{0}id\nretry: 1e3\ndata: long line with many bytes to cross words\n\n
        """.utf8)

    static let expected: [EventStreamItem] = [
        .comment(Array("hello".utf8)),
        .retry(2500),
        .event(ReceivedEvent(type: "tick", data: Array("one\ntwo".utf8), lastEventID: "7")),
        .event(ReceivedEvent(data: Array("t=123 xx".utf8), lastEventID: "7")),
        .comment(Array("heartbeat".utf8)),
        .event(ReceivedEvent(data: [], lastEventID: "8")),
        .event(ReceivedEvent(type: "x", data: Array("long line with many bytes to cross words".utf8), lastEventID: "8"))
    ]

    /// CRLF, LF and CR line ends, comments, retry, ids that persist (and one with NUL ignored), an
    /// empty data line, a leading BOM: the events an EventSource would dispatch.
    @Test func wholeStream() {
        #expect(
            EventStreamParserSplitTests.items(EventStreamParserSplitTests.stream)
                == EventStreamParserSplitTests.expected)
    }

    /// The same items whatever the split: every single cut, every pair of cuts, byte by byte.
    @Test func anySplitGivesTheSameItems() {
        let bytes = EventStreamParserSplitTests.stream
        let expected = EventStreamParserSplitTests.expected
        for cut in 0...bytes.count {
            #expect(EventStreamParserSplitTests.items(bytes, cuts: [cut]) == expected, "cut at \(cut)")
        }
        for first in stride(from: 0, through: bytes.count, by: 3) {
            for second in stride(from: first, through: bytes.count, by: 5) {
                #expect(
                    EventStreamParserSplitTests.items(bytes, cuts: [first, second]) == expected,
                    "cuts \(first), \(second)")
            }
        }
        #expect(EventStreamParserSplitTests.items(bytes, cuts: Array(1..<bytes.count)) == expected, "byte by byte")
    }

    /// A CR at the end of one read and the LF at the start of the next are one line end.
    @Test func crlfSplitAcrossReads() {
        let items = EventStreamParserSplitTests.items(Array("data: a\r\n\r\ndata: b\r\n\r\n".utf8), cuts: [8, 10, 20])
        #expect(items == [.event(ReceivedEvent(data: Array("a".utf8))), .event(ReceivedEvent(data: Array("b".utf8)))])
    }

    /// Unknown fields and a field without a colon are ignored; a blank line without data dispatches nothing.
    @Test func ignoredLines() {
        let items = EventStreamParserSplitTests.items(Array("foo: bar\ndata\n\nevent: only\n\nretry: x\n\n".utf8))
        #expect(items == [.event(ReceivedEvent(data: []))])
    }

    /// scan's views: an event that arrives whole points into the caller's bytes (no copy); only
    /// the stream's first read (checked for a BOM) is copied.
    @Test func scanViewsPointIntoTheInput() {
        var parser = EventStreamParser()
        Array(": start\n".utf8).withUnsafeBytes { parser.scan($0) { _ in } }
        let bytes = Array(": x\nid: 42\ndata: t=99\n\n".utf8)
        var seen: [(data: String, id: String, type: String, inInput: Bool)] = []
        bytes.withUnsafeBytes { input in
            parser.scan(input) { view in
                guard case .event(let event) = view else { return }
                let inside =
                    event.data.baseAddress.map { $0 >= input.baseAddress! && $0 < input.baseAddress! + input.count }
                    ?? false
                seen.append(
                    (
                        String(decoding: event.data, as: UTF8.self), String(decoding: event.lastEventID, as: UTF8.self),
                        event.typeName, inside
                    ))
            }
        }
        #expect(seen.count == 1)
        #expect(seen.first?.data == "t=99" && seen.first?.id == "42" && seen.first?.type == "message")
        #expect(seen.first?.inInput == true)
    }
}
