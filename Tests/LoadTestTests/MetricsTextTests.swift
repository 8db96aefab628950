@testable import LoadTest
import Testing

@Suite struct MetricsTextTests {
    /// The live counters in Prometheus text format: HELP and TYPE for each, errors by class as a
    /// label whose quotes and backslashes are escaped.
    @Test func countersAreExposedInTextFormat() {
        let responder = MetricsResponder()
        responder.status.open = 42
        responder.status.churned = 7
        responder.status.error(.connectRefused)
        responder.status.error(.socketError("a \"quoted\" \\ reason"))
        responder.published = 3
        let lines = responder.text.split(separator: "\n").map(String.init)
        #expect(lines.contains("# TYPE rill_load_streams_open gauge"))
        #expect(lines.contains("rill_load_streams_open 42"))
        #expect(lines.contains("rill_load_churned_total 7"))
        #expect(lines.contains("rill_load_published_total 3"))
        #expect(lines.contains("rill_load_errors_total{class=\"connect refused\"} 1"))
        #expect(lines.contains("rill_load_errors_total{class=\"socket error: a \\\"quoted\\\" \\\\ reason\"} 1"))
        // Every sample line is NAME[{labels}] VALUE, with an integer value.
        for line in lines where !line.hasPrefix("#") {
            #expect(line.hasPrefix("rill_load_") && Int(line.split(separator: " ").last!) != nil, "\(line)")
        }
    }
}
