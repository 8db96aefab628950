import Reactor

/// Stages on a worker: the stream and request loads follow a `LevelSchedule` the coordinator extends
/// at each stage's start (`WorkerCommand.stage`).
extension StreamLoad {
    /// From the level held now to `target` streams over `seconds`.
    func move(to target: Double, over seconds: Double) {
        var levels = self.levels ?? LevelSchedule()
        levels.move(to: target, over: seconds, at: MonotonicClock.nanoseconds())
        self.levels = levels
    }

    /// Opens or closes streams towards the level due now. A ramp up opens at most 256 a turn and
    /// keeps the pending cap; a ramp down closes the newest streams first. Streams that failed still
    /// count until a ramp down passes them (they are not replaced: a failure is reported, not hidden).
    func pumpLevel(_ levels: LevelSchedule) {
        let wanted = Int(levels.level(at: MonotonicClock.nanoseconds()).rounded())
        var batch = 0
        while attempted - retired < wanted && batch < 256 && attempted - streaming - ended < maximumPending {
            openOrder.append(Int32(streams.count))
            openOne()
            batch += 1
        }
        while attempted - retired > wanted, let index = openOrder.popLast().map(Int.init) {
            retire(index)
        }
    }

    /// Closes stream `index` for good (or lets it end when its reconnection timer fires).
    private func retire(_ index: Int) {
        streams[index].retired = true
        retired += 1
        if let connection = loop.connection(id: streams[index].connection) { connection.close() }
    }
}

extension RequestLoad {
    /// From the rate now to `target` requests per second over `seconds` (the pace must be `.staged`).
    func move(to target: Double, over seconds: Double) {
        levels.move(to: target, over: seconds, at: MonotonicClock.nanoseconds())
    }
}
