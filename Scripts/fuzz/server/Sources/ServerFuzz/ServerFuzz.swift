// libFuzzer target for the whole server (`SSEServer` on a manual-clock `EventLoop`), built and run
// by Scripts/fuzz-server.sh. Each input is a little program (see `Program`): clients connect, send
// bytes split anywhere, half-close, close, reset, stop reading; the clock moves (header, body, idle
// and linger timeouts, heartbeats, ticks); events are published; the loop turns. After each input
// every client is closed and every timeout passed, and the server must hold nothing and the
// process's open descriptors be back to their count before the input. A trap is a finding.

@_cdecl("LLVMFuzzerTestOneInput")
public func serverFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = StaticDirectory.path
    let before = openDescriptorCount()
    do {
        var session = Session()
        var program = Program(UnsafeRawBufferPointer(start: data, count: size))
        while let step = program.next() { session.perform(step) }
        session.finish()
    }
    let after = openDescriptorCount()
    check(after == before, "descriptors leaked: \(before) before the input, \(after) after")
    return 0
}

/// libFuzzer's driver, run by hand: SwiftPM links an executable with `main` aliased to
/// `<module>_main` (so that its tests can link the module), which hides libFuzzer's own `main`.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("ServerFuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return runDriver(&argc, &argv, serverFuzz)
}

/// A finding: `precondition` drops its message in release builds, `fatalError` prints it.
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}
