/// Encodes commands as RESP2 arrays of bulk strings, the only form Redis needs from a client:
/// `*<count>\r\n` then `$<length>\r\n<bytes>\r\n` per argument. Binary-safe.
public enum RESPEncoder {
    /// Appends the command `arguments` (name first) to `buffer`.
    public static func append(command arguments: [[UInt8]], to buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "*"))
        appendDecimal(arguments.count, to: &buffer)
        for argument in arguments {
            buffer.append(UInt8(ascii: "$"))
            appendDecimal(argument.count, to: &buffer)
            buffer.append(contentsOf: argument)
            buffer.append(contentsOf: crlf)
        }
    }

    /// The command `arguments` as RESP.
    public static func encode(_ arguments: [String]) -> [UInt8] {
        var buffer: [UInt8] = []
        append(command: arguments.map { Array($0.utf8) }, to: &buffer)
        return buffer
    }

    private static let crlf: [UInt8] = [13, 10]

    private static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: String(value).utf8)
        buffer.append(contentsOf: crlf)
    }
}
