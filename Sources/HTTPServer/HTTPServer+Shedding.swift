import Reactor

extension HTTPServer {
    /// Under SO_REUSEPORT a server at its connection limit steps out of the port's group (closes its
    /// listener) and steps back in once it has room again, so the kernel hands new connections to
    /// the group's other listeners instead of to one that can only answer 503. Why it matters: an
    /// EventSource treats a 503 as the end (it never reconnects), a refused or reset attempt as a
    /// network error (it retries); and the kernel splits connections over the group by a hash,
    /// not by load, so after a restart one worker may fill up while another has room.
    ///
    /// Only with `reusePort` (alone on its port a server keeps listening: a 503 with Retry-After
    /// beats a refusal), never while draining or after `stopAccepting`.
    func shedListenerIfFull() {
        guard configuration.reusePort, !isDraining, !acceptingStopped, listener.isOpen,
            heldConnections >= maximumConnections
        else { return }
        retireListener()
        listenerShed = true
        statistics.listenerSheds += 1
    }

    /// Back into the group once a twentieth of the limit is free (not at the first close: a
    /// server at the edge would flap).
    func rejoinIfRoom() {
        guard listenerShed, !isDraining, !acceptingStopped,
            heldConnections <= maximumConnections - max(1, maximumConnections / 20)
        else { return }
        guard let reopened = try? loop.listen(on: configuration.address, reusePort: true, handler: self) else {
            return  // tried again at the next close
        }
        listener = reopened
        listenerShed = false
    }

    /// Stops accepting for good (a rolling restart's old worker, once its successors listen); the
    /// connections held are served on.
    public func stopAccepting() {
        acceptingStopped = true
        listener.close()
    }

    /// Closes the listener, keeping its counters (a replaced listener starts from zero).
    private func retireListener() {
        retiredAcceptErrors += listener.acceptErrors
        retiredExhaustionPauses += listener.exhaustionPauses
        listener.close()
    }

    /// Accept failures over every listener this server had.
    public var acceptErrors: Int { retiredAcceptErrors + listener.acceptErrors }
    /// Times accepting paused for lack of descriptors, over every listener this server had.
    public var exhaustionPauses: Int { retiredExhaustionPauses + listener.exhaustionPauses }
}
