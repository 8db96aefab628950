/// Counts open streams that are behind: a stream's level is how far into the publications it is
/// (events published before it opened, plus events it got); it is behind while its level is below
/// `published`. Updated as streams open, get events and close, so the count costs no scan.
struct GapCounter {
    /// Open streams by level (few distinct levels: most streams are at `published` or just below).
    private var openAtLevel: [Int: Int] = [:]
    /// Open streams whose level is below `published`.
    private(set) var behind = 0
    private(set) var published = 0

    /// A stream opened at `level` (the published count then: it is not owed earlier events).
    mutating func opened(at level: Int) {
        openAtLevel[level, default: 0] += 1
        if level < published { behind += 1 }
    }

    /// An open stream at `level` got an event.
    mutating func advanced(from level: Int) {
        remove(level)
        openAtLevel[level + 1, default: 0] += 1
        if level + 1 == published { behind -= 1 }
    }

    /// An open stream at `level` closed.
    mutating func closed(at level: Int) {
        remove(level)
        if level < published { behind -= 1 }
    }

    /// So many events have been published: streams at the levels passed fall behind.
    mutating func publish(_ count: Int) {
        let old = published
        published = count
        if count >= old && count - old <= openAtLevel.count {
            for level in old..<count { behind += openAtLevel[level] ?? 0 }
        } else {
            behind = openAtLevel.reduce(0) { $0 + ($1.key < count ? $1.value : 0) }
        }
    }

    private mutating func remove(_ level: Int) {
        openAtLevel[level, default: 0] -= 1
        if openAtLevel[level] == 0 { openAtLevel[level] = nil }
    }
}
