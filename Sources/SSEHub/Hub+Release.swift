import Reactor

extension Hub {
    /// Subscribers below which, as a share of the most since the last release, tables are given back.
    static let releaseShare = 4
    /// Fewer subscribers than this at the peak are not worth a release.
    static let releaseMinimum = 1024

    /// Once per heartbeat interval: if most subscribers have left since the peak (three quarters),
    /// the per-fd tables give back their pages above the highest fd in use (the hub's memberships and
    /// the loop's fd table), the subscriber lists their spare capacity and malloc its free pages,
    /// so the process returns to about its baseline once its clients leave. O(fds freed at the top + subscribers).
    func releaseMemoryAfterDepartures() {
        // Arrivals end a release under way: the minimum applies again to what comes next.
        if statistics.subscribers > subscribersHigh { releasingDepartures = false }
        subscribersHigh = max(subscribersHigh, statistics.subscribers)
        // Once a release began, it carries on down to zero even below the minimum: a crowd that
        // leaves slowly (a million streams' clients take minutes) would otherwise stop the steps at
        // the last quarter above the minimum and keep its pages.
        guard subscribersHigh >= Hub.releaseMinimum || (releasingDepartures && subscribersHigh > 0),
            statistics.subscribers * Hub.releaseShare <= subscribersHigh
        else { return }
        releasingDepartures = statistics.subscribers > 0
        subscribersHigh = statistics.subscribers
        var top = members.count
        while top > 0 && members[top - 1].topic < 0 { top -= 1 }
        members.shrink(to: top)
        for index in topics.indices { Hub.fit(&topics[index].subscribers) }
        for index in slices.indices { Hub.fit(&slices[index]) }
        loop.releaseUnusedSlots()
        // What the connections' requests and queues used from malloc is free now, but the heap keeps
        // its pages until asked.
        SystemMemory.returnFreeHeapPages()
    }

    /// Reallocates `list` at its size once it uses under a quarter of its capacity.
    static func fit(_ list: inout [Int32]) {
        guard list.capacity > 64 && list.count * 4 < list.capacity else { return }
        var fitted: [Int32] = []
        fitted.reserveCapacity(list.count)
        fitted.append(contentsOf: list)
        list = fitted
    }
}
