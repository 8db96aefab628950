import Benchmark
import HTTP1
import NIOCore
import NIOEmbedded
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// One file of Tests/Fixtures/http (the request corpus) repeated back to back into about 1 MiB (pipelined requests).
struct Corpus {
    let name: String
    let buffer: [UInt8]
    let requests: Int

    init?(_ name: String) {
        let root = String(#filePath.split(separator: "/", omittingEmptySubsequences: false).dropLast(4).joined(separator: "/"))
        guard let file = fopen(root + "/Tests/Fixtures/http/" + name, "rb") else { return nil }
        defer { fclose(file) }
        var one: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while case let count = fread(&chunk, 1, chunk.count, file), count > 0 { one += chunk.prefix(count) }
        requests = (1 << 20) / one.count
        buffer = Array([[UInt8]](repeating: one, count: requests).joined())
        self.name = name
    }
}

/// Parses the whole buffer with a reused parser; returns the number of requests completed.
func parseWithRill(_ parser: inout RequestParser, _ buffer: UnsafeRawBufferPointer) -> Int {
    var offset = 0
    var requests = 0
    while offset < buffer.count {
        let step = parser.parse(UnsafeRawBufferPointer(rebasing: buffer[offset...]))
        switch step.event {
        case .end: requests += 1
        case .error(let error): fatalError("rill refused the corpus: \(error)")
        case .needMore: return requests
        case .head, .body: break
        }
        offset += step.consumed
    }
    // The last message's .end comes with no bytes left.
    if parser.parse(UnsafeRawBufferPointer(rebasing: buffer[buffer.count...])).event == .end { requests += 1 }
    return requests
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 2,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 200
    )

    for name in ["browser.txt", "sse.txt", "wrk.txt", "post-cl.txt", "post-chunked.txt"] {
        guard let corpus = Corpus(name) else {
            print("skipping \(name): Tests/Fixtures/http not found")
            continue
        }

        // Each iteration parses the ~1 MiB buffer once: divide by the request count for per-request figures.
        Benchmark("rill \(name) ×\(corpus.requests)") { benchmark in
            var parser = RequestParser()
            corpus.buffer.withUnsafeBytes { buffer in
                precondition(parseWithRill(&parser, buffer) == corpus.requests)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    blackHole(parseWithRill(&parser, buffer))
                }
                benchmark.stopMeasurement()
            }
        }

        // What a SwiftNIO user gets: HTTPRequestDecoder behind ByteToMessageHandler, parts read out.
        Benchmark("nio \(name) ×\(corpus.requests)") { benchmark in
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
            let bytes = channel.allocator.buffer(bytes: corpus.buffer)
            func parseOnce() throws -> Int {
                var requests = 0
                try channel.writeInbound(bytes)
                while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
                    if case .end = part { requests += 1 }
                }
                return requests
            }
            let first = try parseOnce()
            precondition(first == corpus.requests)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(try parseOnce())
            }
            benchmark.stopMeasurement()
            _ = try? channel.finish()
        }
    }
}
