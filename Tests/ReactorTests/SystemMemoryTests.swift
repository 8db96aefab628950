@testable import Reactor
import Testing

/// Reading /proc's memory figures: the field parser, and this machine's own values.
struct SystemMemoryTests {
    @Test func fieldsByLineAndKey() {
        let sockstat = Array(
            "sockets: used 2451\nTCP: inuse 2404 orphan 0 tw 1219 alloc 2404 mem 529\nUDP: inuse 2 mem 0\n".utf8)
        #expect(SystemMemory.field(in: sockstat, line: "TCP:", after: "mem") == 529)
        #expect(SystemMemory.field(in: sockstat, line: "UDP:", after: "inuse") == 2)
        #expect(SystemMemory.field(in: sockstat, line: "RAW:", after: "inuse") == nil)
        let meminfo = Array("MemTotal:       24683584 kB\nMemFree:        21702988 kB\n".utf8)
        #expect(SystemMemory.field(in: meminfo, line: "MemTotal:", after: nil) == 24_683_584)
    }

    @Test func thisMachine() {
        #expect((SystemMemory.physicalBytes() ?? 0) > 1 << 20)
        #expect(SystemMemory.tcpSocketBytes() != nil)
    }
}
