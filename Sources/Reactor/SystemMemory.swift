import CEpoll
#if canImport(Glibc)
import Glibc
#endif

/// What the kernel says about memory, from /proc (Linux), for defaults sized to the machine and for
/// metrics. Each read opens, reads and closes one small file; nil if it is missing or unreadable.
public enum SystemMemory {
    /// Gives malloc's free pages back to the kernel (malloc_trim): after many connections have
    /// gone, what they used is free but still resident until asked for.
    public static func returnFreeHeapPages() { _ = cepoll_malloc_trim() }

    /// Physical memory (MemTotal in /proc/meminfo), in bytes.
    public static func physicalBytes() -> Int? {
        guard let text = readSmallFile("/proc/meminfo"), let kibibytes = field(in: text, line: "MemTotal:", after: nil)
        else {
            return nil
        }
        return kibibytes * 1024
    }

    /// Memory the kernel's TCP sockets hold now (the `mem` pages of the `TCP:` line of
    /// /proc/net/sockstat), in bytes: what tcp_mem pressure is measured against.
    public static func tcpSocketBytes() -> Int? {
        guard let text = readSmallFile("/proc/net/sockstat"), let pages = field(in: text, line: "TCP:", after: "mem")
        else {
            return nil
        }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// The number after `key` (or the first number, if `key` is nil) on the line starting with `line`.
    static func field(in text: [UInt8], line prefix: String, after key: String?) -> Int? {
        let prefix = Array(prefix.utf8)
        var start = 0
        while start < text.count {
            let end = text[start...].firstIndex(of: UInt8(ascii: "\n")) ?? text.count
            let row = text[start..<end]
            start = end + 1
            guard row.starts(with: prefix) else { continue }
            let words = row.dropFirst(prefix.count).split(separator: UInt8(ascii: " "))
            var index = 0
            if let key {
                let keyBytes = Array(key.utf8)
                guard let found = words.firstIndex(where: { $0.elementsEqual(keyBytes) }) else { return nil }
                index = found + 1
            }
            guard index < words.count else { return nil }
            var value = 0
            for byte in words[index] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value &* 10 &+ Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        return nil
    }

    /// A /proc file's text (they report a size of 0, so read until end of file), at most 64 KiB.
    static func readSmallFile(_ path: String) -> [UInt8]? {
        guard let fd = try? FileDescriptor.open(path, flags: O_RDONLY) else { return nil }
        defer { FileDescriptor.close(fd) }
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while text.count < 64 * 1024 {
            let result = buffer.withUnsafeMutableBytes { try? FileDescriptor.read(fd, into: $0) }
            guard case .done(let count)? = result, count > 0 else { break }
            text += buffer[0..<count]
        }
        return text
    }
}
