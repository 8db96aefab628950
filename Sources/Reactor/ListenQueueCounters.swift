#if canImport(Glibc)
import Glibc
#endif

/// The kernel's listen-queue counters (`TcpExt: ListenOverflows ListenDrops` in /proc/net/netstat):
/// connections whose handshake completed while an accept queue was full, and SYNs or handshakes
/// dropped at a listener for any reason (overflows included). They count for the whole network
/// namespace, every listener of every process, so a delta over a run is what the run should be
/// compared with, on a machine where nothing else is being stormed.
public struct ListenQueueCounters: Equatable, Sendable {
    public var overflows: Int
    public var drops: Int

    public init(overflows: Int, drops: Int) {
        self.overflows = overflows
        self.drops = drops
    }

    /// The counters now; nil where /proc/net/netstat cannot be read or lacks them.
    public static func read() -> ListenQueueCounters? {
        SystemMemory.readSmallFile("/proc/net/netstat").flatMap(parse)
    }

    /// Reads them out of /proc/net/netstat's text: a `TcpExt:` line of names, then one of values.
    public static func parse(_ text: [UInt8]) -> ListenQueueCounters? {
        let prefix = Array("TcpExt:".utf8)
        let rows = text.split(separator: UInt8(ascii: "\n")).filter { $0.starts(with: prefix) }
        guard rows.count >= 2 else { return nil }
        let names = rows[0].split(separator: UInt8(ascii: " ")).dropFirst()
        let values = rows[1].split(separator: UInt8(ascii: " ")).dropFirst()
        guard names.count == values.count else { return nil }
        func value(_ name: String) -> Int? {
            guard let index = names.firstIndex(where: { $0.elementsEqual(name.utf8) }) else { return nil }
            let word = values[values.startIndex + (index - names.startIndex)]
            var number = 0
            for byte in word {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                number = number &* 10 &+ Int(byte - UInt8(ascii: "0"))
            }
            return number
        }
        guard let overflows = value("ListenOverflows"), let drops = value("ListenDrops") else { return nil }
        return ListenQueueCounters(overflows: overflows, drops: drops)
    }

    /// How much each grew since `baseline` (never negative: the counters wrap only at 2^64).
    public func since(_ baseline: ListenQueueCounters) -> ListenQueueCounters {
        ListenQueueCounters(overflows: max(0, overflows - baseline.overflows), drops: max(0, drops - baseline.drops))
    }
}
