import HTTP1

/// A request split across reads: its parser (mid-message) and the bytes not yet consumed.
struct PartialRequest {
    var parser: RequestParser
    var buffered: [UInt8] = []
    /// Where the unconsumed bytes of `buffered` begin: a pipeline served a share at a time moves
    /// this mark, not its bytes (a `removeFirst` per turn would move the whole backlog each time).
    var start = 0
    var pending: PendingRequest? = nil
    /// What it holds, as counted against the server's budget for partial requests while it is in
    /// `partials`: its buffers' capacities (a body with a Content-Length is reserved whole).
    var charge = 0

    var heldBytes: Int { buffered.capacity + (pending?.heldBytes ?? 0) }
}

/// A request whose head has arrived and whose body follows, kept until its end.
struct PendingRequest {
    var keepAlive: Bool
    var isHEAD: Bool
    /// The route to run at the end (nil when the answer is `held`, or was given at the head).
    var route: Int? = nil
    var parameter = ByteRange(0, 0)
    /// A copy of the head's bytes and the head, for the handler's request view at the end.
    var headBytes: [UInt8] = []
    var head: MessageHead? = nil
    /// An answer decided on the head (a refusal), written once the body has arrived.
    var held: [UInt8]? = nil
    /// The body, collected only for a route that takes one, up to `bodyLimit`.
    var body: [UInt8] = []
    var bodyLimit: Int? = nil

    var collectsBody: Bool { bodyLimit != nil && held == nil }
    var heldBytes: Int { body.capacity + headBytes.capacity + (held?.capacity ?? 0) }
}
