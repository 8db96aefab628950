import HTTPServer
#if canImport(Glibc)
import Glibc
#endif

/// Small files under `--static`, kept as whole prepared responses (head and body in one buffer, one
/// write) and checked against the file on every request with one `lstat`: the same device, inode,
/// mode, size, mtime and ctime serve the kept bytes; anything else (an edit, a rename over it, a
/// symlink, removal) misses and the file is read again as before. So a request for a kept file
/// allocates nothing and makes one syscall instead of open, fstat, read and close.
///
/// Keyed by the request's raw path bytes (before percent-decoding): only a spelling that already
/// passed the traversal checks and named a regular file is ever stored, and decoding is a function
/// of the bytes. Bounded in files and bytes; past the bounds, files are read per request. Loop-confined.
struct StaticFileCache {
    /// What `lstat` says of a file, compared whole.
    struct Identity: Equatable {
        let device: UInt64, inode: UInt64, mode: UInt32, size: Int64
        let modified: timespec, changed: timespec

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            mode = UInt32(info.st_mode)
            size = Int64(info.st_size)
            modified = info.st_mtim
            changed = info.st_ctim
        }

        static func == (a: Identity, b: Identity) -> Bool {
            a.device == b.device && a.inode == b.inode && a.mode == b.mode && a.size == b.size
                && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
                && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
        }
    }

    struct Entry {
        let rawPath: [UInt8]
        /// The file's full path, NUL-terminated, for `lstat`.
        let fullPath: [CChar]
        let identity: Identity
        let response: PreparedResponse
        let bytes: Int
    }

    static let maximumFileBytes = 64 << 10
    static let maximumEntries = 1024
    static let maximumTotalBytes = 8 << 20

    /// Entries by the hash of their raw path (a short list per hash: collisions compare bytes).
    private var buckets: [Int: [Entry]] = [:]
    private(set) var count = 0
    private(set) var totalBytes = 0

    private static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes: bytes)
        return hasher.finalize()
    }

    /// The kept response for the file `rawPath` names, if the file has not changed since.
    mutating func response(for rawPath: UnsafeRawBufferPointer) -> PreparedResponse? {
        let key = Self.hash(rawPath)
        guard let bucket = buckets[key],
            let index = bucket.firstIndex(where: { $0.rawPath.elementsEqual(rawPath) })
        else { return nil }
        let entry = bucket[index]
        var info = stat()
        if lstat(entry.fullPath, &info) == 0 && Identity(info) == entry.identity { return entry.response }
        remove(key: key, index: index)  // changed or gone: read again (and kept again if it still fits)
        return nil
    }

    /// Keeps `response` for `rawPath` if it is small enough and the bounds allow.
    mutating func store(
        rawPath: UnsafeRawBufferPointer, fullPath: String, identity: Identity, fileBytes: Int,
        response: PreparedResponse
    ) {
        let bytes = response.byteCount
        guard fileBytes <= Self.maximumFileBytes, count < Self.maximumEntries,
            totalBytes + bytes <= Self.maximumTotalBytes
        else { return }
        let key = Self.hash(rawPath)
        if let index = buckets[key]?.firstIndex(where: { $0.rawPath.elementsEqual(rawPath) }) {
            remove(key: key, index: index)
        }
        buckets[key, default: []].append(
            Entry(
                rawPath: Array(rawPath), fullPath: Array(fullPath.utf8CString), identity: identity,
                response: response, bytes: bytes))
        count += 1
        totalBytes += bytes
    }

    private mutating func remove(key: Int, index: Int) {
        guard let removed = buckets[key]?.remove(at: index) else { return }
        if buckets[key]?.isEmpty == true { buckets[key] = nil }
        count -= 1
        totalBytes -= removed.bytes
    }
}
