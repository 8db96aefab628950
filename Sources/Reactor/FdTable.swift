import CEpoll
#if canImport(Glibc)
import Glibc
#endif

/// The loop's fd table: a flat array of `FdSlot`s indexed by fd, in its own anonymous mapping.
///
/// Why not a Swift array: growing an array by doubling copies it and leaves the old storage with
/// malloc, so a table for N fds holds 2–3× N slots resident; reserving for RLIMIT_NOFILE up front
/// instead asks for 48 bytes × 2^30 on hosts that set the limit that high. A mapping reserved with
/// MAP_NORESERVE costs only the pages its slots touch, and `mremap` grows it by moving page-table
/// entries, not bytes: resident memory stays 48 bytes per fd in use, whatever the limit.
struct FdTable {
    private var base: UnsafeMutablePointer<FdSlot>
    /// Slots initialised: fds 0..<count.
    private(set) var count = 0
    /// Slots the mapping can hold.
    private(set) var capacity: Int

    /// 4,096 slots (192 KiB of address space, resident only as used) to start.
    init(capacity: Int = 4096) {
        self.capacity = capacity
        base = FdTable.map(bytes: capacity * MemoryLayout<FdSlot>.stride)
    }

    var indices: Range<Int> { 0..<count }

    subscript(fd: Int) -> FdSlot {
        get {
            precondition(fd < count, "fd \(fd) has no slot")
            return base[fd]
        }
        nonmutating _modify {
            precondition(fd < count, "fd \(fd) has no slot")
            yield &base[fd]
        }
    }

    /// Makes `fd` have a slot (free, generation 0), growing the mapping by doubling.
    mutating func ensure(_ fd: Int) {
        guard fd >= count else { return }
        if fd >= capacity {
            var grown = capacity
            while fd >= grown { grown *= 2 }
            let stride = MemoryLayout<FdSlot>.stride
            // Slots are moved as bits, which Swift values allow (references and existentials alike).
            guard let moved = cepoll_mremap(base, capacity * stride, grown * stride) else {
                fatalError("mremap of the fd table to \(grown) slots failed: errno \(errno)")
            }
            base = moved.assumingMemoryBound(to: FdSlot.self)
            capacity = grown
        }
        (base + count).initialize(repeating: FdSlot(), count: fd + 1 - count)
        count = fd + 1
    }

    /// Deinitialises every slot and unmaps the table; the loop's deinit calls it once.
    mutating func release() {
        base.deinitialize(count: count)
        munmap(base, capacity * MemoryLayout<FdSlot>.stride)
        count = 0
        capacity = 0
    }

    private static func map(bytes: Int) -> UnsafeMutablePointer<FdSlot> {
        let pointer = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let pointer, pointer != UnsafeMutableRawPointer(bitPattern: -1) else {
            fatalError("mmap of the fd table (\(bytes) bytes) failed: errno \(errno)")
        }
        return pointer.assumingMemoryBound(to: FdSlot.self)
    }
}
