import HTTP1
#if canImport(Glibc)
import Glibc
#endif

/// Bytes placed at the very end of a readable page, with an inaccessible page right after: any read
/// past the end crashes the test (picohttpparser's discipline).
final class PageEndBuffer {
    private let mapping: UnsafeMutableRawPointer
    private let mappedBytes: Int
    let bytes: UnsafeRawBufferPointer

    init(_ source: some Collection<UInt8>) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let count = source.count
        let dataPages = (count + page - 1) / page
        mappedBytes = (dataPages + 1) * page
        mapping = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        mprotect(mapping + dataPages * page, page, PROT_NONE)
        let start = mapping + dataPages * page - count
        UnsafeMutableRawBufferPointer(start: start, count: count).copyBytes(from: source)
        bytes = UnsafeRawBufferPointer(start: count == 0 ? nil : start, count: count)
    }

    deinit { munmap(mapping, mappedBytes) }
}

/// Feeds `input` to a parser in the given chunk sizes, as a server would (keeping unconsumed bytes,
/// appending new ones), and describes everything it reported in one comparable string:
/// one `{...}` per message (head, decoded body, keep-alive), then `!error` or `…` if incomplete.
func requestTranscript(_ input: [UInt8], chunks: [Int]? = nil, limits: HTTPLimits = HTTPLimits()) -> String {
    var parser = RequestParser(limits: limits)
    return transcript(
        input, chunks: chunks, parse: { parser.parse($0) }, head: { parser.head },
        idle: { parser.isIdle }, finish: nil)
}

func responseTranscript(_ input: [UInt8], chunks: [Int]? = nil, head: Bool = false, eof: Bool = true) -> String {
    var parser = ResponseParser()
    parser.respondingToHEAD = head
    return transcript(
        input, chunks: chunks, parse: { parser.parse($0) }, head: { parser.head },
        idle: { parser.isIdle }, finish: eof ? { parser.finish() } : nil)
}

private func transcript(
    _ input: [UInt8], chunks: [Int]?,
    parse: (UnsafeRawBufferPointer) -> HTTPParseStep,
    head: () -> MessageHead,
    idle: () -> Bool,
    finish: (() -> HTTPEvent)?
) -> String {
    var output = ""
    var window: [UInt8] = []
    var body: [UInt8] = []
    var fed = 0
    let sizes = chunks ?? [input.count]
    func describe(_ head: MessageHead, _ bytes: UnsafeRawBufferPointer) -> String {
        var text =
            head.status == 0
            ? "\(bytes.string(head.method)) \(bytes.string(head.target)) \(head.version)"
            : "\(head.version) \(head.status) \(bytes.string(head.reason))"
        for field in head.headers { text += " [\(bytes.string(field.name))=\(bytes.string(field.value))]" }
        text += " \(head.framing)"
        text += head.keepAlive ? " keep" : " close"
        return text
    }
    for size in sizes + [0] {
        let chunk = input[fed..<min(fed + size, input.count)]
        fed += chunk.count
        window += chunk
        while true {
            let buffer = PageEndBuffer(window)
            let step = parse(buffer.bytes)
            switch step.event {
            case .head: output += "{" + describe(head(), buffer.bytes)
            case .body(let range):
                precondition(
                    range.start <= range.end && Int(range.end) <= step.consumed,
                    "body \(range) consumed \(step.consumed) after \(output) window \(window.count)")
                body += buffer.bytes.bytes(range)
            case .end:
                output += (body.isEmpty ? "" : " body=" + String(decoding: body, as: UTF8.self)) + "}"
                body = []
            case .error(let error): return output + " !\(error)"
            case .needMore: break
            }
            precondition(
                step.consumed >= 0 && step.consumed <= window.count,
                "consumed \(step.consumed) of \(window.count) after \(output)")
            window.removeFirst(step.consumed)
            if step.event == .needMore { break }
        }
        if fed == input.count && size == 0 { break }
    }
    if let finish {
        switch finish() {
        case .end: output += (body.isEmpty ? "" : " body=" + String(decoding: body, as: UTF8.self)) + "}"
        case .error(let error): output += " !\(error)"
        default: break
        }
    } else if !idle() {
        output += " …"  // stopped inside a message
    }
    return output
}

/// The chunk sizes of `count` bytes fed one at a time.
func byteByByte(_ count: Int) -> [Int] { Array(repeating: 1, count: count) }

/// Random chunk sizes that add up to `count`.
func randomSplits(_ count: Int, using generator: inout some RandomNumberGenerator) -> [Int] {
    var sizes: [Int] = []
    var left = count
    while left > 0 {
        let size = Int.random(in: 1...max(1, min(left, 40)), using: &generator)
        sizes.append(size)
        left -= size
    }
    return sizes
}

/// `\r\n` written as `|` in test tables keeps each case on one readable line.
func crlf(_ text: String) -> [UInt8] {
    Array(text.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\r\n").utf8)
}
