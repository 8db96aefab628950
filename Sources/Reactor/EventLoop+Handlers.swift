extension EventLoop {
    /// Calls `body` with every open connection whose handler is `handler` (a server draining its
    /// own connections, not those of others on the same loop). `body` may close them.
    public func forEachConnection(handledBy handler: AnyObject, _ body: (Connection) -> Void) {
        for fd in slots.indices where slots[fd].kind == .connection && slots[fd].handler === handler {
            body(Connection(loop: self, fd: Int32(fd), generation: slots[fd].generation))
        }
        runDeferred()
    }
}
