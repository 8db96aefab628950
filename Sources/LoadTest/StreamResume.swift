/// An event id read as the server's order, without allocating: a plain decimal (`rill serve`'s
/// memory engine: a hub-wide sequence from a per-start base, so one topic's ids need not be
/// consecutive) or `<epoch>-<ms>-<seq>` (the Redis
/// engine; `<ms>-<seq>` without the epoch). Ids of another shape (chosen by a publisher) have no
/// order a client can check.
struct EventOrder: Equatable {
    /// FNV-1a of the epoch segment (0 for none): ids of different epochs are not compared.
    var epoch: UInt64
    var major: UInt64
    var minor: UInt64

    init?(_ id: UnsafeRawBufferPointer) {
        var dashCount = 0
        var first = -1
        var second = -1
        for index in id.indices where id[index] == UInt8(ascii: "-") {
            dashCount += 1
            if dashCount == 1 { first = index } else if dashCount == 2 { second = index } else { return nil }
        }
        switch dashCount {
        case 0:
            guard let value = EventOrder.number(id, 0..<id.count) else { return nil }
            (epoch, major, minor) = (0, 0, value)
        case 1:
            guard let major = EventOrder.number(id, 0..<first),
                let minor = EventOrder.number(id, first + 1..<id.count)
            else { return nil }
            (epoch, self.major, self.minor) = (0, major, minor)
        default:
            guard first > 0, let major = EventOrder.number(id, first + 1..<second),
                let minor = EventOrder.number(id, second + 1..<id.count)
            else { return nil }
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in UnsafeRawBufferPointer(rebasing: id[0..<first]) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            (epoch, self.major, self.minor) = (hash, major, minor)
        }
    }

    /// The decimal in `range` of `bytes` (nil: empty, not digits, or past UInt64).
    private static func number(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt64? {
        guard !range.isEmpty else { return nil }
        var value: UInt64 = 0
        for index in range {
            let byte = bytes[index]
            guard byte >= 48 && byte <= 57 else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times.addingReportingOverflow(UInt64(byte - 48))
            guard !overflow && !carry else { return nil }
            value = sum
        }
        return value
    }

    /// Whether this id comes after `other` in the same epoch (nil: different epochs, no order).
    func isAfter(_ other: EventOrder) -> Bool? {
        guard epoch == other.epoch else { return nil }
        return (major, minor) > (other.major, other.minor)
    }
}

/// One client stream's position in the server's order, as far as ids show it: the order of its
/// last event's id, and whether the stream ever repeated an event. (The id's bytes, sent back as
/// `Last-Event-ID`, are the stream parser's last event ID, kept by `StreamLoad`; lost events are not
/// visible in ids, which are hub-wide: `StreamLoad` counts them against the publications.)
struct StreamResume {
    private var last: EventOrder? = nil
    private(set) var repeated = false

    /// An event with `id` arrived (an empty id keeps the last one, as the parser reports it):
    /// false if its id is at or before the last one's (a duplicate).
    mutating func received(id: UnsafeRawBufferPointer) -> Bool {
        guard !id.isEmpty else { return true }
        let order = EventOrder(id)
        if let order, let last, order.isAfter(last) == false {
            repeated = true
            return false
        }
        last = order
        return true
    }

    /// `event: reset`: the server could not resume; a new sequence starts at `id`.
    mutating func reset(id: UnsafeRawBufferPointer) { last = EventOrder(id) }
}
