import RillBytes

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
    /// Kept entries whose id the publisher chose (not their sequence in decimal): id to the newest
    /// such sequence, so that every Last-Event-ID is found in O(1) — a reconnection naming an id
    /// that is not kept (or is kept on another topic) must not cost a scan of the whole ring.
    private var chosenIDs: [String: UInt64] = [:]

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
        if decimalValue(entry.id) != entry.sequence { chosenIDs[entry.id] = entry.sequence }
        while byteCount > byteLimit && count > 1 { removeOldest() }
    }

    /// The `index`-th entry, 0 the oldest.
    public subscript(index: Int) -> HistoryEntry {
        storage[(head + index) % storage.count]!
    }

    /// The sequence number of the newest entry with `id`, if one is kept.
    ///
    /// Ids the hub generates are their sequence numbers in decimal, and sequences grow along the
    /// ring, so such an id is found by position: exactly where the topic's sequences are contiguous
    /// (one probe), else by bisection. An id the publisher chose is looked up in `chosenIDs`.
    public func sequence(ofID id: String) -> UInt64? {
        if let candidate = decimalValue(id), let index = index(ofSequence: candidate), self[index].id == id {
            return candidate
        }
        return chosenIDs[id]
    }

    /// The position of the entry with `sequence`, if kept: a guess from the oldest and newest
    /// sequences (exact when they are contiguous), then bisection.
    func index(ofSequence sequence: UInt64) -> Int? {
        guard count > 0 else { return nil }
        let oldest = self[0].sequence, newest = self[count - 1].sequence
        guard sequence >= oldest, sequence <= newest else { return nil }
        let guess = Int(sequence - oldest)
        if guess < count, self[guess].sequence == sequence { return guess }
        let index = firstIndex { $0 >= sequence }
        return index < count && self[index].sequence == sequence ? index : nil
    }

    /// The position of the oldest entry newer than `sequence` (`count` if none is): bisection.
    public func firstIndex(after sequence: UInt64) -> Int {
        firstIndex { $0 > sequence }
    }

    /// The first position whose sequence satisfies `isPast` (which must hold for every later one).
    private func firstIndex(where isPast: (UInt64) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if isPast(self[middle].sequence) { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// The entries newer than `sequence`, oldest first.
    public func entries(after sequence: UInt64) -> [HistoryEntry] {
        (firstIndex(after: sequence)..<count).map { self[$0] }
    }

    /// The oldest entry's sequence, nil if empty.
    public var oldestSequence: UInt64? { count > 0 ? self[0].sequence : nil }

    /// Drops the oldest entry (if any); returns its size in bytes.
    @discardableResult
    public mutating func removeOldest() -> Int {
        guard count > 0 else { return 0 }
        let oldest = storage[head]!
        let size = oldest.bytes.count
        byteCount -= size
        if !chosenIDs.isEmpty, chosenIDs[oldest.id] == oldest.sequence { chosenIDs[oldest.id] = nil }
        storage[head] = nil
        head = (head + 1) % storage.count
        count -= 1
        if count == 0 && storage.count > 64 {
            storage = []  // an emptied topic gives its slots back
            head = 0
        }
        return size
    }
}

/// `text` as a decimal UInt64 with no sign, no leading zero (but "0") and no overflow; nil otherwise.
/// Exactly the strings `decimalString` makes, so a match names the sequence it was made from.
func decimalValue(_ text: String) -> UInt64? {
    let digits = text.utf8
    guard !digits.isEmpty, digits.count <= 20, digits.first != UInt8(ascii: "0") || digits.count == 1 else {
        return nil
    }
    var value: UInt64 = 0
    for byte in digits {
        let digit = byte &- UInt8(ascii: "0")
        guard digit < 10 else { return nil }
        let (times10, overflow) = value.multipliedReportingOverflow(by: 10)
        let (sum, carry) = times10.addingReportingOverflow(UInt64(digit))
        guard !overflow, !carry else { return nil }
        value = sum
    }
    return value
}
