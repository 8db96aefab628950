import CEpoll
#if canImport(Glibc)
import Glibc
#endif

/// Connection I/O: reads into the loop's scratch buffer, direct writes with only the remainder
/// queued, flushing with `sendmsg`, half-close and the single close path.
extension EventLoop {
    // MARK: - Readiness

    func connectionReady(_ connection: Connection, mask: UInt32) {
        if mask & CEPOLL_ERR != 0 {
            let code = Socket.pendingError(connection.fd)
            close(
                connection, reason: closeReason(SystemError(operation: "socket", errno: code == 0 ? ECONNRESET : code)))
            return
        }
        if mask & (CEPOLL_IN | CEPOLL_HUP) != 0 {
            readReady(connection, hangup: mask & CEPOLL_HUP != 0)
            guard isCurrent(connection) else { return }
        }
        if mask & CEPOLL_OUT != 0 && wakeupFlushedBytes < configuration.flushBytesPerWakeup {
            flush(connection)
        }
    }

    /// A just-accepted connection's first read, without waiting for the next wake-up to report
    /// it: a client usually sends its request right after connecting, and waiting a turn for it
    /// would add a whole turn (a busy one, under load) to every new client's first answer. Nothing
    /// there yet costs one read that returns EAGAIN.
    func readFirst(_ connection: Connection) {
        guard isCurrent(connection), slots[Int(connection.fd)].flags.contains(.registeredIn) else { return }
        readReady(connection, hangup: false)
    }

    /// Reads once, or again while each read fills the whole buffer (up to `readsPerWakeup`, and
    /// while the wake-up's `readBytesPerWakeup` lasts; past it, once and at most
    /// `overBudgetReadBytes`).
    /// On hang-up (both directions gone) it reads what is left and closes.
    private func readReady(_ connection: Connection, hangup: Bool) {
        let fd = connection.fd
        var reads = 0
        while true {
            let flags = slots[Int(fd)].flags
            if flags.contains(.readClosed) || flags.contains(.readPaused) {
                // Level-triggered HUP would repeat forever: nothing more can happen on this socket.
                if hangup { close(connection, reason: .eof) }
                return
            }
            // Past the wake-up's budget every socket still gets a small read: a request from a new
            // client is read in the same turn as the flood's, not after the whole flood's backlog.
            let overBudget = statistics.bytesRead - wakeupStartBytesRead >= configuration.readBytesPerWakeup
            let size = overBudget ? min(readBuffer.count, EventLoop.overBudgetReadBytes) : readBuffer.count
            let result: IOResult<Int>
            do {
                result = try syscall("read") { Glibc.read(fd, readBuffer.baseAddress, size) }
            } catch {
                close(connection, reason: closeReason(error))
                return
            }
            guard case .done(let count) = result else {
                if hangup { close(connection, reason: .eof) }
                return
            }
            if count > 0 {
                statistics.bytesRead += count
                slots[Int(fd)].handler?.connection(
                    connection, didRead: UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
                guard isCurrent(connection) else { return }
                reads += 1
                if !hangup && (count < size || reads >= configuration.readsPerWakeup || overBudget) { return }
            } else {
                if hangup {
                    close(connection, reason: .eof)
                } else {
                    slots[Int(fd)].flags.insert(.readClosed)
                    slots[Int(fd)].handler?.connectionDidReadEOF(connection)
                    // After the handler: the usual reaction is to close, which needs no epoll_ctl.
                    if isCurrent(connection) { refreshInterest(fd) }
                }
                return
            }
        }
    }

    // MARK: - Writing

    /// Direct write; only what the socket does not take now is queued: `shared` by reference when
    /// given, else a copy of the remainder.
    func write(_ connection: Connection, _ bytes: UnsafeRawBufferPointer, shared: SharedBytes?) -> Bool {
        guard isCurrent(connection) else { return false }
        let fd = connection.fd
        let index = Int(fd)
        let refused: FdSlot.Flags = [.writeShutdown, .shutdownPending, .closePending, .failed]
        guard slots[index].flags.isDisjoint(with: refused) else { return false }
        guard bytes.count > 0 else { return true }

        var written = 0
        if slots[index].queue == nil && slots[index].kind == .connection {
            do {
                if case .done(let result) = try syscall(
                    "send", { send(fd, bytes.baseAddress, bytes.count, CEPOLL_MSG_NOSIGNAL) })
                {
                    written = result
                    statistics.bytesWritten += result
                    if result == bytes.count { return true }
                }
            } catch {
                fail(connection, reason: closeReason(error))
                return false
            }
        }

        let queue: WriteQueue
        if let existing = slots[index].queue {
            queue = existing
        } else {
            queue = WriteQueue()
            slots[index].queue = queue
            refreshInterest(fd)
        }
        if let shared {
            queue.append(shared, offset: written)
        } else {
            queue.append(SharedBytes(UnsafeRawBufferPointer(rebasing: bytes[written...])))
        }
        if queue.byteCount > configuration.writeHighWatermark && !slots[index].flags.contains(.notWritable) {
            slots[index].flags.insert(.notWritable)
            // Not now: the caller may be looping over many connections (see ConnectionHandler).
            deferredWritability.append((connection, false))
        }
        return true
    }

    /// Writes queued bytes with `sendmsg` until the queue is empty or the socket is full; then does
    /// what waited for the flush (writability callback, shutdown, close).
    func flush(_ connection: Connection) {
        let fd = connection.fd
        let index = Int(fd)
        guard let queue = slots[index].queue else {
            refreshInterest(fd)
            return
        }
        while !queue.isEmpty {
            let vectorCount = queue.gather(into: iovecs)
            var message = msghdr()
            message.msg_iov = iovecs.baseAddress
            message.msg_iovlen = vectorCount
            let result: Int
            do {
                guard case .done(let sent) = try syscall("sendmsg", { sendmsg(fd, &message, CEPOLL_MSG_NOSIGNAL) })
                else { break }
                result = sent
            } catch {
                close(connection, reason: closeReason(error))
                return
            }
            statistics.bytesWritten += result
            wakeupFlushedBytes += result
            let offered = iovecs.prefix(vectorCount).reduce(0) { $0 + $1.iov_len }
            queue.consume(result)
            if result < offered { break }  // the socket is full
        }

        if slots[index].flags.contains(.notWritable) && queue.byteCount <= configuration.writeLowWatermark {
            slots[index].flags.remove(.notWritable)
            // Queued behind any earlier change of this connection, so the handler sees them in order.
            deferredWritability.append((connection, true))
        }
        guard slots[index].queue?.isEmpty == true else { return }
        slots[index].queue = nil
        let flags = slots[index].flags
        if flags.contains(.closePending) {
            close(connection, reason: .local)
            return
        }
        if flags.contains(.shutdownPending) {
            shutdownNow(connection)
        }
        refreshInterest(fd)
    }

    // MARK: - Closing

    /// Closes the connection and its fd, then calls `connectionDidClose`: the one close path.
    func close(_ connection: Connection, reason: CloseReason) {
        guard isCurrent(connection) else { return }
        let index = Int(connection.fd)
        let handler = slots[index].handler
        let userData = slots[index].userData
        wheel.cancel(slots[index].connectTimer)
        releaseSlot(connection.fd)
        statistics.connectionsClosed += 1
        // The handler may still read the connection's userData (say, to find it in its tables).
        let outer = closingConnection
        closingConnection = (connection, userData)
        handler?.connectionDidClose(connection, reason: reason)
        closingConnection = outer
    }

    /// Closes with a reset (SO_LINGER on, zero seconds): queued and unsent bytes are dropped and the
    /// kernel frees the socket's buffers at once, where a FIN would wait behind them.
    func abort(_ connection: Connection) {
        guard isCurrent(connection) else { return }
        var option = linger(l_onoff: 1, l_linger: 0)
        // If it fails, the close below is an orderly one: still a close.
        _ = setsockopt(connection.fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close(connection, reason: .local)
    }

    func closeAfterFlush(_ connection: Connection) {
        guard isCurrent(connection) else { return }
        let index = Int(connection.fd)
        if slots[index].queue == nil {
            close(connection, reason: .local)
            return
        }
        slots[index].flags.insert([.closePending, .readClosed])
        refreshInterest(connection.fd)
    }

    func shutdownWrite(_ connection: Connection) {
        guard isCurrent(connection) else { return }
        let index = Int(connection.fd)
        if slots[index].queue == nil && slots[index].kind == .connection {
            shutdownNow(connection)
        } else {
            slots[index].flags.insert(.shutdownPending)
        }
    }

    private func shutdownNow(_ connection: Connection) {
        let index = Int(connection.fd)
        slots[index].flags.remove(.shutdownPending)
        slots[index].flags.insert(.writeShutdown)
        do {
            try syscallChecked("shutdown") { Glibc.shutdown(connection.fd, Int32(SHUT_WR)) }
        } catch {
            // ENOTCONN: the peer is gone already. Deferred: this may run inside shutdownWrite().
            fail(connection, reason: closeReason(error))
        }
    }

    /// A failure found where a close callback would re-enter the caller (inside `write`): the
    /// connection stops accepting writes now and is closed at the next safe point.
    func fail(_ connection: Connection, reason: CloseReason) {
        slots[Int(connection.fd)].flags.insert(.failed)
        deferredCloses.append((connection, reason))
    }

    /// The safe point: delivers the writability changes (in order) and runs the closes that were
    /// deferred, until neither is left (a callback may cause more).
    func runDeferred() {
        // A callback run from here may reach another safe point (forEachConnection, say): the
        // outer call delivers what it adds, so nothing is delivered twice.
        guard !runningDeferred else { return }
        runningDeferred = true
        defer { runningDeferred = false }
        while hasDeferredWork {
            var next = 0
            while next < deferredWritability.count {
                let (connection, isWritable) = deferredWritability[next]
                next += 1
                guard isCurrent(connection) else { continue }
                slots[Int(connection.fd)].handler?.connectionWritabilityDidChange(connection, isWritable: isWritable)
            }
            deferredWritability.removeAll(keepingCapacity: true)
            while let (connection, reason) = deferredCloses.popLast() {
                close(connection, reason: reason)
            }
        }
    }

    var hasDeferredWork: Bool { !deferredCloses.isEmpty || !deferredWritability.isEmpty }

    func closeReason(_ error: SystemError) -> CloseReason {
        error.isReset ? .reset : .error(error)
    }

    // MARK: - Interest and small accessors

    /// EPOLLIN unless reading is closed or paused; EPOLLOUT while bytes are queued or connecting.
    /// If the kernel refuses (ENOMEM, ENOSPC), the connection fails: it is closed with that error at
    /// the next safe point, never a trap.
    func refreshInterest(_ fd: Int32) {
        let slot = slots[Int(fd)]
        var events: UInt32 = 0
        if slot.kind == .connecting {
            events = CEPOLL_OUT
        } else if slot.flags.isDisjoint(with: [.readClosed, .readPaused]) {
            events = CEPOLL_IN
        }
        if slot.queue != nil { events |= CEPOLL_OUT }
        do {
            try setInterest(fd, events: events)
        } catch {
            let connection = Connection(loop: self, fd: fd, generation: slot.generation)
            if !slot.flags.contains(.failed) { fail(connection, reason: .error(error)) }
        }
    }

    func setReadPaused(_ connection: Connection, _ paused: Bool) {
        guard isCurrent(connection) else { return }
        if paused {
            slots[Int(connection.fd)].flags.insert(.readPaused)
        } else {
            slots[Int(connection.fd)].flags.remove(.readPaused)
        }
        refreshInterest(connection.fd)
    }

    func queuedBytes(_ connection: Connection) -> Int {
        isCurrent(connection) ? slots[Int(connection.fd)].queue?.byteCount ?? 0 : 0
    }

    func unsentBytes(_ connection: Connection) -> Int {
        guard isCurrent(connection) else { return 0 }
        return max(0, Int(cepoll_unsent_bytes(connection.fd)))
    }

    func isWritable(_ connection: Connection) -> Bool {
        isCurrent(connection) && !slots[Int(connection.fd)].flags.contains(.notWritable)
    }

    func userData(_ connection: Connection) -> UInt64 {
        if isCurrent(connection) { return slots[Int(connection.fd)].userData }
        if let (closing, userData) = closingConnection, closing == connection { return userData }
        return 0
    }

    func setUserData(_ connection: Connection, _ value: UInt64) {
        guard isCurrent(connection) else { return }
        slots[Int(connection.fd)].userData = value
    }
}
