/// One entry of a Redis stream: its id (`<ms>-<seq>`) and its field/value pairs in order.
public struct StreamEntry: Equatable, Sendable {
    public let id: String
    public let fields: [(name: [UInt8], value: [UInt8])]

    public init(id: String, fields: [(name: [UInt8], value: [UInt8])]) {
        self.id = id
        self.fields = fields
    }

    /// The value of the first field called `name`.
    public func field(_ name: String) -> [UInt8]? {
        fields.first { $0.name.elementsEqual(name.utf8) }?.value
    }

    public static func == (a: StreamEntry, b: StreamEntry) -> Bool {
        a.id == b.id && a.fields.elementsEqual(b.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    /// The entries of an XRANGE reply (an array of `[id, [field, value, ...]]`); nil if malformed.
    public static func entries(ofRange reply: RESPValue) -> [StreamEntry]? {
        guard let items = reply.elements else { return nil }
        var entries: [StreamEntry] = []
        entries.reserveCapacity(items.count)
        for item in items {
            guard let pair = item.elements, pair.count == 2, let id = pair[0].string, let flat = pair[1].elements,
                flat.count % 2 == 0
            else { return nil }
            var fields: [(name: [UInt8], value: [UInt8])] = []
            fields.reserveCapacity(flat.count / 2)
            var index = 0
            while index < flat.count {
                guard case .bulk(let name?) = flat[index], case .bulk(let value?) = flat[index + 1] else { return nil }
                fields.append((name, value))
                index += 2
            }
            entries.append(StreamEntry(id: id, fields: fields))
        }
        return entries
    }

    /// The entries of an XREAD reply on one stream (`[[key, entries]]`, or null when it timed out:
    /// no entries); nil if malformed.
    public static func entries(ofRead reply: RESPValue) -> [StreamEntry]? {
        if reply.isNull { return [] }
        guard let streams = reply.elements else { return nil }
        var all: [StreamEntry] = []
        for stream in streams {
            guard let pair = stream.elements, pair.count == 2, let entries = entries(ofRange: pair[1]) else {
                return nil
            }
            all += entries
        }
        return all
    }
}

/// The commands the event engine uses, as argument lists (send them with `RedisConnection.send`).
public enum RedisCommand {
    public static func ping() -> [[UInt8]] { [bytes("PING")] }
    public static func get(_ key: String) -> [[UInt8]] { [bytes("GET"), bytes(key)] }
    public static func incr(_ key: String) -> [[UInt8]] { [bytes("INCR"), bytes(key)] }

    /// SET, only if the key does not exist yet (`NX`).
    public static func set(_ key: String, _ value: String, onlyIfNew: Bool = false) -> [[UInt8]] {
        [bytes("SET"), bytes(key), bytes(value)] + (onlyIfNew ? [bytes("NX")] : [])
    }

    /// XADD with an id chosen by Redis, the stream trimmed to about `maximumLength` entries
    /// (`MAXLEN ~`: whole macro-nodes at a time, cheap).
    public static func xadd(_ key: String, maximumLength: Int, fields: [(String, [UInt8])]) -> [[UInt8]] {
        var arguments = [bytes("XADD"), bytes(key), bytes("MAXLEN"), bytes("~"), bytes(String(maximumLength)), bytes("*")]
        for (name, value) in fields {
            arguments.append(bytes(name))
            arguments.append(value)
        }
        return arguments
    }

    /// EVAL of a Lua `script` with its keys and arguments (Redis runs it atomically).
    public static func eval(_ script: String, keys: [String], arguments: [[UInt8]]) -> [[UInt8]] {
        [bytes("EVAL"), bytes(script), bytes(String(keys.count))] + keys.map(bytes) + arguments
    }

    /// XRANGE from `start` (inclusive; `(ID` exclusive, `-` the oldest) to the newest, at most `count`.
    public static func xrange(_ key: String, from start: String, count: Int) -> [[UInt8]] {
        [bytes("XRANGE"), bytes(key), bytes(start), bytes("+"), bytes("COUNT"), bytes(String(count))]
    }

    /// XREAD of entries after `id`, waiting up to `block` for one, at most `count`.
    public static func xread(_ key: String, after id: String, count: Int, block: Duration) -> [[UInt8]] {
        let milliseconds = block.components.seconds * 1000 + block.components.attoseconds / 1_000_000_000_000_000
        return [
            bytes("XREAD"), bytes("COUNT"), bytes(String(count)), bytes("BLOCK"), bytes(String(milliseconds)),
            bytes("STREAMS"), bytes(key), bytes(id),
        ]
    }

    private static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
}
