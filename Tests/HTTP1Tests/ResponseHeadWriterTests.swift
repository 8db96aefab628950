import HTTP1
import Testing

@Suite struct ResponseHeadWriterTests {
    /// A written head parses back to what was written.
    @Test func writesAParsableHead() {
        var writer = ResponseHeadWriter()
        writer.start(status: 503)
        writer.header("Retry-After", 5)
        writer.header("Content-Type", "text/plain")
        writer.header("Content-Length", 0)
        let head = writer.finish()
        #expect(
            String(decoding: head, as: UTF8.self)
                == "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
        )
        #expect(
            responseTranscript(head)
                == "{HTTP/1.1 503 Service Unavailable [Retry-After=5] [Content-Type=text/plain] [Content-Length=0] none keep}"
        )
    }

    /// Values with CR or LF are refused (no response splitting).
    @Test func refusesLineBreaksInValues() {
        var writer = ResponseHeadWriter()
        writer.start(status: 200)
        let accepted = writer.header("Location", "/a\r\nSet-Cookie: x=1")
        #expect(!accepted)
        #expect(String(decoding: writer.finish(), as: UTF8.self) == "HTTP/1.1 200 OK\r\n\r\n")
    }
}
