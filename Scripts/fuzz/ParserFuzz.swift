// libFuzzer target for the HTTP1 parsers, built by Scripts/fuzz-parser.sh with
// -sanitize=fuzzer,address. Besides crashes and out-of-bounds reads (ASan: every buffer handed to a
// parser is a fresh allocation of exactly its size), it checks a property: the events are the same
// whether the input is parsed whole or fed in pieces whose size the input itself chooses.

/// Everything a parser reported, as bytes, so two runs can be compared.
private func run(_ input: UnsafeRawBufferPointer, piece: Int, response: Bool) -> [UInt8] {
    var request = RequestParser()
    var reply = ResponseParser()
    var log: [UInt8] = []
    var window: [UInt8] = []
    var fed = 0
    while true {
        let next = min(input.count, fed + piece)
        window += input[fed..<next]
        fed = next
        while true {
            // A fresh, exactly sized allocation: ASan flags any read past the end.
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: window.count, alignment: 1)
            defer { buffer.deallocate() }
            buffer.copyBytes(from: window)
            let bytes = UnsafeRawBufferPointer(buffer)
            let step = response ? reply.parse(bytes) : request.parse(bytes)
            let head = response ? reply.head : request.head
            switch step.event {
            case .head:
                log += Array("{".utf8) + bytes.bytes(head.method) + bytes.bytes(head.target) + bytes.bytes(head.reason)
                log.append(UInt8(truncatingIfNeeded: head.status))
                for field in head.headers { log += [0] + bytes.bytes(field.name) + [1] + bytes.bytes(field.value) }
                log.append(head.keepAlive ? 2 : 3)
            case .body(let range):
                precondition(range.start <= range.end && Int(range.end) <= step.consumed)
                log += bytes.bytes(range)
            case .end: log += Array("}".utf8)
            case .error(let error): return log + Array("!\(error)".utf8)
            case .needMore: break
            }
            precondition(step.consumed >= 0 && step.consumed <= window.count)
            window.removeFirst(step.consumed)
            if step.event == .needMore { break }
        }
        if fed == input.count { break }
    }
    if response, case .error(let error) = reply.finish() { log += Array("!\(error)".utf8) }
    return log
}

@_cdecl("LLVMFuzzerTestOneInput")
public func parserFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    let piece = size == 0 ? 1 : Int(input[0] % 13) + 1
    for response in [false, true] {
        let whole = run(input, piece: max(size, 1), response: response)
        let split = run(input, piece: piece, response: response)
        precondition(whole == split, "events depend on how the bytes were split (piece \(piece))")
    }
    return 0
}
