import Reactor

/// One event kept for replay.
public struct HistoryEntry {
    public let sequence: UInt64
    public let id: String
    public let bytes: SharedBytes

    public init(sequence: UInt64, id: String, bytes: SharedBytes) {
        self.sequence = sequence
        self.id = id
        self.bytes = bytes
    }
}

/// A topic's recent events, oldest first, bounded by count and by bytes. A ring: appending and
/// trimming are O(1), where an array's `removeFirst` would move every kept entry on every publish.
public struct HistoryRing {
    private var storage: [HistoryEntry?] = []
    /// Physical index of the oldest entry.
    private var head = 0
    public private(set) var count = 0
    public private(set) var byteCount = 0

    public init() {}

    /// Appends, then drops the oldest entries past either bound (the newest is always kept).
    public mutating func append(_ entry: HistoryEntry, countLimit: Int, byteLimit: Int) {
        guard countLimit > 0 else { return }
        while count >= countLimit { removeOldest() }
        if count == storage.count {
            // Every slot is in use, yet below the count limit: grow, oldest first.
            if head != 0 {
                storage = Array(storage[head...] + storage[..<head])
                head = 0
            }
            storage.append(entry)
        } else {
            storage[(head + count) % storage.count] = entry
        }
        count += 1
        byteCount += entry.bytes.count
        while byteCount > byteLimit && count > 1 { removeOldest() }
    }

    /// The `index`-th entry, 0 the oldest.
    public subscript(index: Int) -> HistoryEntry {
        storage[(head + index) % storage.count]!
    }

    /// The sequence number of the newest entry with `id`, if one is kept.
    public func sequence(ofID id: String) -> UInt64? {
        var index = count - 1
        while index >= 0 {
            if self[index].id == id { return self[index].sequence }
            index -= 1
        }
        return nil
    }

    /// The entries newer than `sequence`, oldest first.
    public func entries(after sequence: UInt64) -> [HistoryEntry] {
        var index = count
        while index > 0 && self[index - 1].sequence > sequence { index -= 1 }
        return (index..<count).map { self[$0] }
    }

    private mutating func removeOldest() {
        guard count > 0 else { return }
        byteCount -= storage[head]!.bytes.count
        storage[head] = nil
        head = (head + 1) % storage.count
        count -= 1
    }
}
