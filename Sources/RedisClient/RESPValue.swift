/// One RESP2 reply from Redis. Errors are values (`.error`), as Redis sends them: a command that
/// fails is an answer, not a broken connection.
public enum RESPValue: Equatable, Sendable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    /// A bulk string; nil is RESP2's null bulk (`$-1`), e.g. GET of a missing key.
    case bulk([UInt8]?)
    /// An array; nil is RESP2's null array (`*-1`), e.g. XREAD BLOCK that timed out.
    case array([RESPValue]?)

    /// The text of a simple or bulk string (bytes decoded as UTF-8), nil for anything else.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulk(let bytes?): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The elements of a non-null array, nil for anything else.
    public var elements: [RESPValue]? {
        if case .array(let elements?) = self { return elements }
        return nil
    }

    /// Whether this is the null bulk or null array.
    public var isNull: Bool {
        switch self {
        case .bulk(nil), .array(nil): true
        default: false
        }
    }
}

/// Why a command got no reply, or bytes from the server could not be read as RESP.
public enum RedisError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The client is not connected now (the command was not sent).
    case notConnected
    /// The connection was lost (or closed) before the reply came.
    case connectionLost
    /// No reply within the command's timeout: the connection is closed and reconnects.
    case timeout
    /// The server sent bytes that are not RESP2, or past the decoder's bounds.
    case protocolViolation(String)
    /// Redis answered with an error reply (`-ERR ...`).
    case server(String)

    public var description: String {
        switch self {
        case .notConnected: "not connected to Redis"
        case .connectionLost: "connection to Redis lost"
        case .timeout: "Redis did not answer in time"
        case .protocolViolation(let reason): "Redis protocol violation: \(reason)"
        case .server(let message): "Redis error: \(message)"
        }
    }
}
