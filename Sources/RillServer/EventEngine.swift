import HTTPServer
import RillBytes
import SSE

/// Where `rill serve`'s events are stored and ordered, beside the hub that delivers them. The
/// default engine is memory: the hub itself (`PublicationRoute.localHub`), one node, ids that name
/// this process's history. Another engine takes publications (as a `PublicationSequencer`: it
/// answers each request once the event is stored) and feeds every node's hub in one order, with ids
/// that name the engine's history (`RedisEngine`).
///
/// Its part in resuming: an id that names another history than the engine's current one (its
/// *epoch*) must not be looked up at all, whatever the hub happens to keep.
public protocol EventEngine: PublicationSequencer {
    /// Whether publications can be stored now (else they are refused with 503 and Retry-After).
    var isAvailable: Bool { get }
    /// Why `lastEventID` cannot be resumed whatever the hub keeps (another epoch), or nil to let
    /// the hub decide.
    func resetReason(for lastEventID: String) -> StreamReset.Reason?
    /// Whether `lastEventID` names an event of the current epoch that this node has not read yet
    /// (the client comes from a node that is ahead), or that this node cannot judge yet (it is
    /// reconnecting to its store, which may have lost the epoch): its stream waits (`whenRead`)
    /// rather than be reset or resumed on a guess.
    func hasNotRead(_ lastEventID: String) -> Bool
    /// Calls `ready` once this node has read past `lastEventID`, or after a short wait at most.
    func whenRead(past lastEventID: String, _ ready: @escaping () -> Void)
}

/// What a stream that cannot resume from its Last-Event-ID is told: a response header
/// (`Rill-Reset: <reason>`) and a first event `event: reset` whose id is the newest event now (so a
/// client that reconnects again resumes from here) and whose data names the reason and that
/// position, as JSON. Counted in `/metrics` (`rill_replay_resets_total`).
public enum StreamReset {
    public enum Reason: String, Sendable, CaseIterable {
        /// The id belongs to another history: the server (memory engine) or the store (Redis) restarted
        /// and lost it.
        case epoch
        /// The id is not in the history kept now: older than it holds, or never one of these topics'.
        case unknown
    }

    /// The response header naming the reason.
    public static let header = "Rill-Reset"

    /// The `event: reset` to write first; `position` is the newest event's id, if any.
    public static func event(_ reason: Reason, position: String?) -> SharedBytes {
        let quoted = position.map { "\"" + jsonEscaped($0) + "\"" } ?? "null"
        let data = "{\"reason\":\"\(reason.rawValue)\",\"position\":\(quoted)}"
        // A position is an id the hub delivered, so valid; if not, the event goes without one.
        return (try? EventEncoder.encodeShared(OutgoingEvent(data: data, id: position, name: "reset")))
            ?? (try! EventEncoder.encodeShared(OutgoingEvent(data: data, name: "reset")))
    }

    private static func jsonEscaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 { out += "?" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }
}
