// The parser benchmark's loop (Benchmarks/Benchmarks/ParserBenchmarks) without package-benchmark, for
// Scripts/parser-instructions.sh: one corpus file repeated into ~1 MiB of pipelined requests, parsed
// PASSES times with one reused parser. Prints the median (and fastest) time per request.
import Glibc
import HTTP1

func load(_ path: String) -> [UInt8] {
    guard let file = fopen(path, "rb") else { fatalError("cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while case let count = fread(&chunk, 1, chunk.count, file), count > 0 { bytes += chunk.prefix(count) }
    return bytes
}

/// Parses the whole buffer with a reused parser; returns the number of requests completed.
func parseAll(_ parser: inout RequestParser, _ buffer: UnsafeRawBufferPointer) -> Int {
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
    if parser.parse(UnsafeRawBufferPointer(rebasing: buffer[buffer.count...])).event == .end { requests += 1 }
    return requests
}

func nanoseconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) * 1e9 + Double(now.tv_nsec)
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else { fatalError("usage: parser-harness FILE [PASSES]") }
let passes = arguments.count > 2 ? Int(arguments[2])! : 50
let one = load(arguments[1])
let requests = (1 << 20) / one.count
let buffer = Array([[UInt8]](repeating: one, count: requests).joined())
var parser = RequestParser()
var times: [Double] = []
buffer.withUnsafeBytes { bytes in
    precondition(parseAll(&parser, bytes) == requests)
    for _ in 0..<passes {
        let start = nanoseconds()
        precondition(parseAll(&parser, bytes) == requests)
        times.append(nanoseconds() - start)
    }
}
times.sort()
let median = times[passes / 2] / Double(requests)
print("\(arguments[1].split(separator: "/").last!) \(Int(median)) ns (\(Int(times[0] / Double(requests)))) per request")
