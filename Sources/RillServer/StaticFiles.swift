import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Files under `--static DIR`, read on request. Only plain relative paths are served: every segment
/// non-empty, not `.` or `..` (nor any hidden name), no NUL or backslash, after percent-decoding;
/// the last component is opened with O_NOFOLLOW and must be a regular file.
struct StaticFiles {
    let directory: String
    let maximumBytes: Int

    /// The full path of a file under the directory.
    func path(of relativePath: String) -> String { directory + "/" + relativePath }

    enum Failure: Error { case notFound, tooLarge, unavailable }

    /// The decoded path is safe to append to the directory, or nil.
    static func safeRelativePath(_ decoded: [UInt8]) -> String? {
        guard !decoded.isEmpty, !decoded.contains(0), !decoded.contains(UInt8(ascii: "\\")) else { return nil }
        for segment in decoded.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard let first = segment.first, first != UInt8(ascii: ".") else { return nil }
        }
        return String(validating: decoded, as: UTF8.self)
    }

    /// The file's bytes, read whole (the loop thread blocks for a local file read: fine for a demo's
    /// assets, not for large files, hence `maximumBytes`), and what fstat said of it before the read
    /// (a file changed meanwhile then differs from it: `StaticFileCache` reads it again).
    func read(_ relativePath: String) -> Result<(bytes: [UInt8], status: stat), Failure> {
        let fd: Int32
        do {
            fd = try FileDescriptor.open(path(of: relativePath), flags: O_RDONLY | O_NOFOLLOW)
        } catch {
            return .failure(error.errno == EMFILE || error.errno == ENFILE ? .unavailable : .notFound)
        }
        defer { FileDescriptor.close(fd) }
        do {
            let info = try FileDescriptor.status(fd)
            guard info.st_mode & S_IFMT == S_IFREG else { return .failure(.notFound) }
            guard Int(info.st_size) <= maximumBytes else { return .failure(.tooLarge) }
            var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
            var offset = 0
            while offset < bytes.count {
                let result = try bytes.withUnsafeMutableBytes { buffer throws(SystemError) in
                    try FileDescriptor.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset...]))
                }
                guard case .done(let count) = result, count > 0 else { break }
                offset += count
            }
            if offset < bytes.count { bytes.removeLast(bytes.count - offset) }  // the file shrank meanwhile
            return .success((bytes, info))
        } catch {
            return .failure(.notFound)  // a read error (EIO, EISDIR) on a file we could open
        }
    }

    /// A Content-Type from the file name's extension.
    static func contentType(of path: String) -> String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: ".") else { return "application/octet-stream" }
        switch name[name.index(after: dot)...].lowercased() {
        case "html", "htm": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json": return "application/json"
        case "txt", "md": return "text/plain; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "ico": return "image/x-icon"
        case "wasm": return "application/wasm"
        default: return "application/octet-stream"
        }
    }
}
