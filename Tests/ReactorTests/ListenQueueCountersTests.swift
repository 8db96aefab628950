import Reactor
import Testing

@Suite struct ListenQueueCountersTests {
    /// The counters are found by name on the TcpExt lines, whatever their position; other lines
    /// (IpExt, MPTcpExt) are not read.
    @Test func parsesTcpExtByName() {
        let text = """
            TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops TCPTimeouts
            TcpExt: 0 0 17 42 9
            IpExt: InNoRoutes ListenOverflows
            IpExt: 0 99
            """
        let counters = ListenQueueCounters.parse(Array(text.utf8))
        #expect(counters == ListenQueueCounters(overflows: 17, drops: 42))
        #expect(counters?.since(ListenQueueCounters(overflows: 10, drops: 50)) == ListenQueueCounters(overflows: 7, drops: 0))
    }

    /// Text without both counters gives nil, not zeros.
    @Test func missingCountersAreNil() {
        #expect(ListenQueueCounters.parse(Array("TcpExt: ListenOverflows\nTcpExt: 3\n".utf8)) == nil)
        #expect(ListenQueueCounters.parse(Array("IpExt: A\nIpExt: 1\n".utf8)) == nil)
    }

    /// On Linux the file is there and holds both.
    @Test func readsThisMachine() {
        #expect(ListenQueueCounters.read() != nil)
    }
}
