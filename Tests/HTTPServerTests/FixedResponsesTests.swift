import HTTP1
@testable import HTTPServer
import Testing

/// The head, headers and body a response parser reads from `bytes` (the body until the end).
private func parsed(_ bytes: [UInt8]) -> (status: Int, headers: [String: String], body: String)? {
    var parser = ResponseParser()
    var status = 0
    var headers: [String: String] = [:]
    var body: [UInt8] = []
    let complete = bytes.withUnsafeBytes { buffer -> Bool in
        var offset = 0
        while offset < buffer.count {
            let window = UnsafeRawBufferPointer(rebasing: buffer[offset...])
            let step = parser.parse(window)
            switch step.event {
            case .head:
                status = parser.head.status
                for field in parser.head.headers { headers[window.string(field.name)] = window.string(field.value) }
            case .body(let range):
                body += window.bytes(range)
            case .end, .needMore:
                break
            case .error:
                return false
            }
            offset += step.consumed
            if case .needMore = step.event { break }
        }
        return true
    }
    return complete ? (status, headers, String(decoding: body, as: UTF8.self)) : nil
}

@Suite struct FixedResponsesTests {
    /// The event-stream head is a 200 with the SSE headers and no length (the body runs until close).
    @Test func eventStreamHead() throws {
        let response = try #require(parsed(FixedResponses.eventStreamHead))
        #expect(response.status == 200)
        #expect(
            response.headers == [
                "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"
            ])
    }

    /// Each parse error's answer carries its status, closes, and has the reason as its body.
    @Test func parseErrorAnswers() throws {
        for error in [
            HTTPParseError.bareLF, .requestLineTooLong, .headerSectionTooLarge, .bodyTooLarge,
            .unsupportedTransferCoding, .unsupportedVersion
        ] {
            let response = try #require(parsed(FixedResponses.response(for: error)), "\(error)")
            #expect(response.status == error.status)
            #expect(response.headers["Connection"] == "close")
            #expect(response.body == error.reason + "\n")
        }
    }

    /// A plain-text answer carries its extra headers, its length and `Connection: close`.
    @Test func plainText() throws {
        let response = try #require(
            parsed(FixedResponses.plainText(status: 503, body: "busy", extraHeaders: "Retry-After: 1\r\n")))
        #expect(response.status == 503)
        #expect(response.headers["Retry-After"] == "1" && response.headers["Content-Length"] == "5")
        #expect(response.body == "busy\n")
    }
}
