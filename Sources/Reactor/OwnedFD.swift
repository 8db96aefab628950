#if canImport(Glibc)
import Glibc
#endif

/// The sole owner of one file descriptor between its creation and the moment it is handed to the
/// loop's fd table (which then owns it). Being `~Copyable`, it cannot be closed twice or leaked on an
/// error path: if it is dropped without being handed over, `deinit` closes it.
struct OwnedFD: ~Copyable {
    let raw: Int32

    init(_ raw: Int32) {
        precondition(raw >= 0, "OwnedFD needs a valid descriptor")
        self.raw = raw
    }

    /// Gives up ownership without closing: the receiver now owns `raw`.
    consuming func release() -> Int32 {
        let raw = self.raw
        discard self
        return raw
    }

    deinit {
        closeDescriptor(raw)
    }
}
