/// Immutable bytes in one allocation, shared by reference: the unit that several connections' write
/// queues can hold at once (an SSE event framed once, queued to every slow subscriber) without a copy.
/// The storage address is stable for the object's lifetime, so a queued chunk can be handed to
/// `writev` directly.
public final class SharedBytes: @unchecked Sendable {
    // @unchecked: the bytes are written only in `init` and never again.
    public let count: Int
    private let base: UnsafeMutableRawPointer

    /// Copies `bytes` into a new immutable buffer.
    public convenience init(_ bytes: UnsafeRawBufferPointer) {
        self.init(capacity: bytes.count) { target in
            target.copyMemory(from: bytes)
            return bytes.count
        }
    }

    /// Copies any byte collection (`[UInt8]`, `"text".utf8`, ...).
    public convenience init(_ bytes: some Collection<UInt8>) {
        self.init(capacity: bytes.count) { target in
            target.copyBytes(from: bytes)
            return bytes.count
        }
    }

    /// Builds the bytes in place: `initialize` gets `capacity` writable bytes and returns how many it used.
    public init(capacity: Int, initialize: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows {
        base = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 16)
        do {
            let used = try initialize(UnsafeMutableRawBufferPointer(start: base, count: capacity))
            precondition(used >= 0 && used <= capacity, "SharedBytes initializer used \(used) of \(capacity) bytes")
            count = used
        } catch {
            base.deallocate()
            throw error
        }
    }

    deinit { base.deallocate() }

    /// The bytes, valid for as long as this object lives.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// A copy as an array.
    public var array: [UInt8] { Array(bytes) }
}
