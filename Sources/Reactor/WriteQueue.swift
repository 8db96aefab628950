#if canImport(Glibc)
import Glibc
#endif

/// The unwritten remainder of a connection's writes: shared chunks plus the offset already sent of
/// the first one. Exists only while the socket pushes back; an idle connection has none.
final class WriteQueue {
    /// At most this many chunks go to one `sendmsg`; Linux's IOV_MAX is 1024, and past a few dozen
    /// chunks the kernel's copy cost dominates the syscall's.
    static let maximumIOVectors = 64

    private var chunks: [SharedBytes] = []
    private var head = 0
    /// Bytes of `chunks[head]` already written.
    private var headOffset = 0
    private(set) var byteCount = 0

    var isEmpty: Bool { byteCount == 0 }

    func append(_ chunk: SharedBytes, offset: Int = 0) {
        guard chunk.count > offset else { return }
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            head = 0
            headOffset = offset
        } else if offset > 0 {
            // Only the first chunk may start part-way; later ones are whole (callers queue remainders
            // only into an empty queue).
            preconditionFailure("a partial chunk can only start an empty queue")
        }
        chunks.append(chunk)
        byteCount += chunk.count - offset
    }

    /// Fills `vectors` with the queued bytes, oldest first; returns how many were filled.
    func gather(into vectors: UnsafeMutableBufferPointer<iovec>) -> Int {
        var filled = 0
        var index = head
        var offset = headOffset
        while index < chunks.count && filled < vectors.count {
            let chunk = chunks[index]
            vectors[filled] = iovec(
                iov_base: UnsafeMutableRawPointer(mutating: chunk.bytes.baseAddress! + offset),
                iov_len: chunk.count - offset)
            filled += 1
            index += 1
            offset = 0
        }
        return filled
    }

    /// Drops `count` bytes that the kernel accepted.
    func consume(_ count: Int) {
        var remaining = count
        byteCount -= count
        while remaining > 0 {
            let available = chunks[head].count - headOffset
            if remaining < available {
                headOffset += remaining
                return
            }
            remaining -= available
            head += 1
            headOffset = 0
        }
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 32 && head * 2 >= chunks.count {
            // Compact now and then so a queue that never fully drains does not grow without bound.
            chunks.removeFirst(head)
            head = 0
        }
    }
}
