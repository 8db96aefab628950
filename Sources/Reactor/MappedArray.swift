import CEpoll
#if canImport(Glibc)
import Glibc
#endif

/// A growable array indexed by fd, in its own anonymous mapping: the reactor's fd table and the
/// hub's per-fd memberships.
///
/// Why not a Swift array: growing an array by doubling copies it and leaves the old storage with
/// malloc, so a table for N fds holds 2–3× N entries resident, and reserving for RLIMIT_NOFILE up
/// front asks for 2^30 entries on hosts that set the limit that high. A mapping reserved with
/// MAP_NORESERVE costs only the pages its entries touch, and `mremap` grows it by moving page-table
/// entries, not bytes: resident memory stays one entry per fd in use, whatever the limit.
/// Noncopyable: one owner, and the mapping goes with it.
public struct MappedArray<Element>: ~Copyable {
    private var base: UnsafeMutablePointer<Element>
    /// Entries initialised: indices 0..<count.
    public private(set) var count = 0
    /// Entries the mapping can hold before it grows.
    public private(set) var capacity: Int

    /// `capacity` entries of address space (resident only as used) to start.
    public init(capacity: Int = 4096) {
        self.capacity = max(capacity, 1)
        base = MappedArray.map(bytes: self.capacity * MemoryLayout<Element>.stride)
    }

    deinit {
        base.deinitialize(count: count)
        munmap(base, capacity * MemoryLayout<Element>.stride)
    }

    public var indices: Range<Int> { 0..<count }

    public subscript(index: Int) -> Element {
        get {
            precondition(index >= 0 && index < count, "index \(index) out of 0..<\(count)")
            return base[index]
        }
        nonmutating _modify {
            precondition(index >= 0 && index < count, "index \(index) out of 0..<\(count)")
            yield &base[index]
        }
        nonmutating set {
            precondition(index >= 0 && index < count, "index \(index) out of 0..<\(count)")
            base[index] = newValue
        }
    }

    /// Makes `index` valid, filling new entries with `filler`; the mapping grows by doubling.
    public mutating func ensure(_ index: Int, filling filler: Element) {
        guard index >= count else { return }
        if index >= capacity {
            var grown = capacity
            while index >= grown { grown *= 2 }
            let stride = MemoryLayout<Element>.stride
            // Entries are moved as bits, which Swift values allow (references and existentials alike).
            guard let moved = cepoll_mremap(base, capacity * stride, grown * stride) else {
                fatalError("mremap to \(grown) entries failed: errno \(errno)")
            }
            base = moved.assumingMemoryBound(to: Element.self)
            capacity = grown
        }
        (base + count).initialize(repeating: filler, count: index + 1 - count)
        count = index + 1
    }

    /// Drops the entries from `newCount` on and gives their pages back to the kernel
    /// (MADV_DONTNEED: the mapping stays, and a page is zero-filled again only when touched), so a
    /// table that once held many entries costs what it holds now. `ensure` fills them again.
    public mutating func shrink(to newCount: Int) {
        guard newCount >= 0 && newCount < count else { return }
        (base + newCount).deinitialize(count: count - newCount)
        count = newCount
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = UnsafeMutableRawPointer(base).advanced(by: newCount * MemoryLayout<Element>.stride)
        let firstWhole = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: UnsafeMutableRawPointer(base)) + capacity * MemoryLayout<Element>.stride) / page * page
        guard end > firstWhole, let pages = UnsafeMutableRawPointer(bitPattern: firstWhole) else { return }
        _ = madvise(pages, end - firstWhole, MADV_DONTNEED)
    }

    private static func map(bytes: Int) -> UnsafeMutablePointer<Element> {
        let pointer = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let pointer, pointer != UnsafeMutableRawPointer(bitPattern: -1) else {
            fatalError("mmap of \(bytes) bytes failed: errno \(errno)")
        }
        return pointer.assumingMemoryBound(to: Element.self)
    }
}
