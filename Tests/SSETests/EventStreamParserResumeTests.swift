import SSE
import Testing

/// A client holding many streams keeps only each one's last event ID between reads, and a parser
/// made again around it (`init(lastEventID:)`) must go on exactly as one parser kept throughout.
@Suite struct EventStreamParserResumeTests {
    /// Parses `bytes` cut at every position in `cuts`, dropping the parser whenever it is between
    /// events (keeping only its ID, as `rill load` does) and counting how often it could be dropped.
    static func itemsDroppingParser(_ bytes: [UInt8], cuts: [Int]) -> (items: [EventStreamItem], drops: Int) {
        var kept: EventStreamParser? = nil
        var id: [UInt8] = []
        var started = false
        var items: [EventStreamItem] = []
        var drops = 0
        var start = 0
        for end in cuts + [bytes.count] {
            var parser = kept ?? (started ? EventStreamParser(lastEventID: id) : EventStreamParser())
            if kept == nil && started { id = [] }
            kept = nil
            started = true
            bytes[start..<end].withUnsafeBytes { parser.feed($0) { items.append($0) } }
            if parser.isBetweenEvents {
                id = parser.takeLastEventID()
                drops += 1
            } else {
                kept = parser
            }
            start = end
        }
        return (items, drops)
    }

    /// Every split of the stream into two and into lines gives the items of one parser, and the
    /// parser could be dropped at the line ends (where nothing is pending).
    @Test func resumedParserMatchesOneParser() {
        let stream = EventStreamParserSplitTests.stream
        for cut in 0...stream.count {
            let (items, _) = EventStreamParserResumeTests.itemsDroppingParser(stream, cuts: [cut])
            #expect(items == EventStreamParserSplitTests.expected, "cut at \(cut)")
        }
        let lineEnds = stream.indices.filter { stream[$0] == 10 }.map { $0 + 1 }
        let (items, drops) = EventStreamParserResumeTests.itemsDroppingParser(stream, cuts: lineEnds)
        #expect(items == EventStreamParserSplitTests.expected)
        #expect(drops >= 3, "the parser is between events after a blank line or a comment")
    }

    /// Mid-line, mid-event, right after a CR and before the stream's first bytes, a parser is not
    /// between events; after a dispatched event or a heartbeat it is, and its ID is handed over.
    @Test func betweenEvents() {
        func fed(_ text: String, _ parser: EventStreamParser = EventStreamParser(lastEventID: [])) -> EventStreamParser {
            var parser = parser
            Array(text.utf8).withUnsafeBytes { parser.feed($0) { _ in } }
            return parser
        }
        #expect(!EventStreamParser().isBetweenEvents)
        #expect(EventStreamParser(lastEventID: []).isBetweenEvents)
        #expect(!fed("data: x").isBetweenEvents)
        #expect(!fed("data: x\n").isBetweenEvents)
        #expect(!fed("event: y\n").isBetweenEvents)
        #expect(!fed(": hb\r").isBetweenEvents)
        #expect(fed(": hb\n").isBetweenEvents)
        var parser = fed("id: 42\ndata: x\n\n")
        #expect(parser.isBetweenEvents)
        #expect(parser.takeLastEventID() == Array("42".utf8))
        #expect(parser.takeLastEventID().isEmpty)
    }

    /// An `id:` line is the last event ID only once its event is dispatched: a stream cut after
    /// the line (or mid-event) resumes from the event before, as `EventSource` does.
    @Test func idInForceOnlyAtDispatch() {
        var parser = EventStreamParser(lastEventID: Array("41".utf8))
        Array("id: 42\n".utf8).withUnsafeBytes { parser.feed($0) { _ in } }
        #expect(!parser.isBetweenEvents)
        #expect(parser.takeLastEventID() == Array("41".utf8))
        parser = EventStreamParser(lastEventID: Array("41".utf8))
        var ids: [String] = []
        Array("id: 42\ndata: x\n".utf8).withUnsafeBytes { parser.feed($0) { _ in } }
        Array("\nid: 43\n\n".utf8).withUnsafeBytes {
            parser.feed($0) { if case .event(let event) = $0 { ids.append(event.lastEventID) } }
        }
        #expect(ids == ["42"])
        // A blank line after an ID alone dispatches nothing but puts the ID in force.
        #expect(parser.isBetweenEvents)
        #expect(parser.takeLastEventID() == Array("43".utf8))
    }
}
