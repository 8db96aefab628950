@testable import HTTPServer
import Testing

private typealias Machine = ConnectionStateMachine
private let timeouts = Machine.Timeouts(header: 10_000, idle: 60_000, linger: 2_000)

/// A connection accepted at `now`, in the request phase.
private func accepted(at now: UInt32) -> Machine {
    var state = Machine()
    _ = state.open(now: now, timeouts: timeouts, atLimit: false, draining: false)
    return state
}

/// A connection at `now` between keep-alive requests.
private func idle(at now: UInt32) -> Machine {
    var state = accepted(at: now)
    _ = state.responded(keepAlive: true, now: now, timeouts: timeouts)
    return state
}

private func stream(at now: UInt32) -> Machine {
    var state = accepted(at: now)
    state.subscribed()
    return state
}

@Suite struct ConnectionStateMachineTests {
    // MARK: - The word

    /// A fresh reactor slot's word (0) is a connection just accepted: request phase, nothing listed.
    @Test func freshWordIsANewConnection() {
        let state = Machine(0)
        #expect(state == Machine())
        #expect(state.phase == .request && !state.isListed && !state.isReadingPaused && !state.isAwaitingResponse)
        #expect(state.isHeld && state.hasDeadline && state.isServingRequests)
    }

    /// The state survives being packed into userData and decoded again, and its fields do not overlap.
    @Test func roundTripsThroughTheWord() {
        var state = accepted(at: 0xDEAD_BEEF)
        _ = state.enlist()
        state.responseDeferred()
        _ = state.stepParsed(isWritable: true)
        let decoded = Machine(state.raw)
        #expect(decoded == state)
        #expect(decoded.phase == .request && decoded.deadline == 0xDEAD_BEEF &+ 10_000)
        #expect(decoded.isListed && decoded.isReadingPaused && decoded.isAwaitingResponse)
    }

    // MARK: - Opening and the connection limit

    /// Below the limit a connection is accepted, held, and its header timeout runs from `now`.
    @Test func acceptsBelowTheLimit() {
        var state = Machine()
        let opened = state.open(now: 500, timeouts: timeouts, atLimit: false, draining: false)
        #expect(opened == .accept)
        #expect(state.phase == .request && state.deadline == 10_500 && state.isHeld)
    }

    /// At the connection limit the client is turned away (503), lingers, and is not held.
    @Test func rejectsAtTheLimit() {
        var state = Machine()
        let opened = state.open(now: 500, timeouts: timeouts, atLimit: true, draining: false)
        #expect(opened == .reject)
        #expect(state.phase == .rejected && state.deadline == 2_500 && !state.isHeld)
        let read = state.bytesArrived(now: 600, timeouts: timeouts)
        #expect(read == .discard)
        #expect(state.closed() == (wasHeld: false, release: .none))
    }

    /// While draining every new connection is turned away as at the limit.
    @Test func rejectsWhileDraining() {
        var state = Machine()
        let opened = state.open(now: 0, timeouts: timeouts, atLimit: false, draining: true)
        #expect(opened == .reject)
        #expect(state.phase == .rejected && state.deadline == 2_000)
    }

    /// A graceful drain gives an idle keep-alive connection a short grace instead of a close at
    /// once (never a longer one than its idle timeout left); other phases are untouched.
    @Test func drainShortensAnIdleConnectionsDeadline() {
        var state = idle(at: 1_000)
        #expect(state.deadline == 61_000)
        state.drainIdle(now: 5_000, grace: 1_000)
        #expect(state.phase == .idle && state.deadline == 6_000)
        var late = idle(at: 0)
        late.drainIdle(now: 59_500, grace: 1_000)
        #expect(late.deadline == 60_000, "the idle timeout comes first")
        var request = accepted(at: 0)
        request.drainIdle(now: 100, grace: 1_000)
        #expect(request.phase == .request && request.deadline == 10_000)
    }

    // MARK: - Requests

    /// Bytes on an idle keep-alive connection begin a request: the header timeout runs from their `now`.
    @Test func bytesOnAnIdleConnectionBeginARequest() {
        var state = idle(at: 1_000)
        #expect(state.phase == .idle && state.deadline == 61_000)
        let read = state.bytesArrived(now: 5_000, timeouts: timeouts)
        #expect(read == .parse)
        #expect(state.phase == .request && state.deadline == 15_000)
    }

    /// More bytes of a request in progress are parsed without moving its deadline.
    @Test func bytesInsideARequestKeepItsDeadline() {
        var state = accepted(at: 1_000)
        let read = state.bytesArrived(now: 9_000, timeouts: timeouts)
        #expect(read == .parse)
        #expect(state.phase == .request && state.deadline == 11_000)
    }

    /// A stream, a closing and a rejected connection drop what they read.
    @Test func discardsBytesWhenNotServing() {
        var closing = accepted(at: 0)
        _ = closing.responded(keepAlive: false, now: 0, timeouts: timeouts)
        for var state in [stream(at: 0), closing] {
            let before = state
            let read = state.bytesArrived(now: 100, timeouts: timeouts)
            #expect(read == .discard)
            #expect(state == before)
        }
    }

    /// A keep-alive response makes the connection idle with the idle timeout from `now`.
    @Test func keepAliveResponseGoesIdle() {
        var state = accepted(at: 0)
        let response = state.responded(keepAlive: true, now: 3_000, timeouts: timeouts)
        #expect(response == .awaitNextRequest)
        #expect(state.phase == .idle && state.deadline == 63_000 && state.isHeld)
    }

    /// A last response shuts our side down and lingers; the connection is still held until it closes.
    @Test func lastResponseLingers() {
        var state = accepted(at: 0)
        let response = state.responded(keepAlive: false, now: 3_000, timeouts: timeouts)
        #expect(response == .shutdownAndLinger)
        #expect(state.phase == .closing && state.deadline == 5_000)
        let step = state.stepParsed(isWritable: true)
        #expect(step == .stop)
        #expect(state.closed() == (wasHeld: true, release: .none))
    }

    /// A malformed request gets its error answer, then the connection lingers as after a last response.
    @Test func parseErrorLingers() {
        var state = accepted(at: 0)
        let response = state.parseFailed(now: 7, timeouts: timeouts)
        #expect(response == .shutdownAndLinger)
        #expect(state.phase == .closing && state.deadline == 2_007)
    }

    /// A subscription becomes a stream: no deadline, parsing stops, and closing releases the subscription.
    @Test func subscriptionBecomesAStream() {
        var state = accepted(at: 0)
        state.subscribed()
        #expect(state.phase == .stream && !state.hasDeadline && state.isHeld)
        let step = state.stepParsed(isWritable: true)
        #expect(step == .stop)
        #expect(state.closed() == (wasHeld: true, release: .subscription))
    }

    /// A read that ends inside a request keeps a partial; on an idle connection that begins a request.
    @Test func unfinishedRequestKeepsAPartial() {
        var request = accepted(at: 0)
        let keepsPartial = request.requestUnfinished(now: 4_000, timeouts: timeouts)
        #expect(keepsPartial)
        #expect(request.phase == .request && request.deadline == 10_000, "the deadline is the request's first")
        var idleState = idle(at: 0)
        let keepsPartial2 = idleState.requestUnfinished(now: 4_000, timeouts: timeouts)
        #expect(keepsPartial2)
        #expect(idleState.phase == .request && idleState.deadline == 14_000)
        var streamState = stream(at: 0)
        let keepsPartial3 = streamState.requestUnfinished(now: 4_000, timeouts: timeouts)
        #expect(!keepsPartial3)
        #expect(streamState.phase == .stream)
    }

    // MARK: - Backpressure and relayed publications

    /// Parsing goes on while the socket takes the responses.
    @Test func proceedsWhileWritable() {
        var state = accepted(at: 0)
        let step = state.stepParsed(isWritable: true)
        #expect(step == .proceed)
        #expect(!state.isReadingPaused)
    }

    /// Responses piling up pause reading; writability resumes it once, and only while serving requests.
    @Test func pausesOnBackpressureAndResumes() {
        var state = accepted(at: 0)
        let resumed = state.resume()
        #expect(!resumed, "nothing to resume")
        let step = state.stepParsed(isWritable: false)
        #expect(step == .pause)
        #expect(state.isReadingPaused)
        _ = state.responded(keepAlive: true, now: 0, timeouts: timeouts)
        let resumed2 = state.resume()
        #expect(resumed2)
        #expect(!state.isReadingPaused)
        let resumed3 = state.resume()
        #expect(!resumed3, "resumes once")
    }

    /// A connection over its share of the loop turn yields: reading pauses and resumes once (on the
    /// next turn); backpressure and a waiting publication take precedence (they resume themselves).
    @Test func yieldsItsTurnOverBudget() {
        var state = accepted(at: 0)
        let step = state.stepParsed(isWritable: true, overBudget: true)
        #expect(step == .yield && state.isReadingPaused)
        let resumed = state.resume()
        #expect(resumed && !state.isReadingPaused)
        let blocked = state.stepParsed(isWritable: false, overBudget: true)
        #expect(blocked == .pause)
        var waiting = accepted(at: 0)
        waiting.responseDeferred()
        let waitingStep = waiting.stepParsed(isWritable: true, overBudget: true)
        let waitingResumed = waiting.resume()
        #expect(waitingStep == .pause && !waitingResumed, "waits for its publication, not for the next turn")
        var streaming = stream(at: 0)
        let streamStep = streaming.stepParsed(isWritable: true, overBudget: true)
        #expect(streamStep == .stop)
    }

    /// A paused connection that has since started closing does not resume.
    @Test func closingConnectionDoesNotResume() {
        var state = accepted(at: 0)
        _ = state.stepParsed(isWritable: false)
        _ = state.responded(keepAlive: false, now: 0, timeouts: timeouts)
        let resumed = state.resume()
        #expect(!resumed)
    }

    /// A forwarded publication pauses reading, even while writable, until its event returns.
    @Test func waitsForARelayedPublication() {
        var state = accepted(at: 0)
        state.responseDeferred()
        let step = state.stepParsed(isWritable: true)
        #expect(step == .pause)
        let resumed = state.resume()
        #expect(!resumed, "the socket drained, but the publication is still out")
        state.deferredAnswered()
        _ = state.responded(keepAlive: true, now: 50, timeouts: timeouts)
        let resumed2 = state.resume()
        #expect(resumed2)
        let step2 = state.stepParsed(isWritable: true)
        #expect(step2 == .proceed)
    }

    // MARK: - Deadlines and the sweep

    /// A connection with a deadline is listed once; a stream is never listed.
    @Test func enlistsOnce() {
        var state = accepted(at: 0)
        let listed = state.enlist()
        #expect(listed)
        #expect(state.isListed)
        let listed2 = state.enlist()
        #expect(!listed2)
        _ = state.responded(keepAlive: true, now: 10, timeouts: timeouts)
        let listed3 = state.enlist()
        #expect(!listed3, "a moved deadline needs no new entry")
        var streamState = stream(at: 0)
        let listed4 = streamState.enlist()
        #expect(!listed4)
    }

    /// Before its deadline a connection stays listed; at and after it, it times out by its phase.
    @Test func sweepsByDeadline() {
        var state = accepted(at: 1_000)
        _ = state.enlist()
        let swept = state.sweep(now: 10_999)
        #expect(swept == .keep)
        #expect(state.isListed)
        let swept2 = state.sweep(now: 11_000)
        #expect(swept2 == .timeOut(.header))
        #expect(!state.isListed)
        var late = accepted(at: 1_000)
        let swept3 = late.sweep(now: 50_000)
        #expect(swept3 == .timeOut(.header))
    }

    /// Each phase times out with its own timeout: header, idle, linger (closing and rejected).
    @Test func timeoutKindFollowsThePhase() {
        var idleState = idle(at: 0)
        let swept = idleState.sweep(now: 59_999)
        #expect(swept == .keep)
        let swept2 = idleState.sweep(now: 60_000)
        #expect(swept2 == .timeOut(.idle))
        var closing = accepted(at: 0)
        _ = closing.responded(keepAlive: false, now: 0, timeouts: timeouts)
        let swept3 = closing.sweep(now: 2_000)
        #expect(swept3 == .timeOut(.linger))
        var rejected = Machine()
        _ = rejected.open(now: 0, timeouts: timeouts, atLimit: true, draining: false)
        let swept4 = rejected.sweep(now: 1_999)
        #expect(swept4 == .keep)
        let swept5 = rejected.sweep(now: 2_000)
        #expect(swept5 == .timeOut(.linger))
    }

    /// A deadline past UInt32.max wraps: it is ahead until the wrapped time, then it has passed.
    @Test func deadlineWrapsAroundUInt32() {
        let start = UInt32.max - 4_999
        var state = accepted(at: start)
        #expect(state.deadline == 5_000)
        let swept = state.sweep(now: start)
        #expect(swept == .keep)
        let swept2 = state.sweep(now: UInt32.max)
        #expect(swept2 == .keep)
        let swept3 = state.sweep(now: 0)
        #expect(swept3 == .keep)
        let swept4 = state.sweep(now: 4_999)
        #expect(swept4 == .keep)
        let swept5 = state.sweep(now: 5_000)
        #expect(swept5 == .timeOut(.header))
        var later = accepted(at: start)
        let swept6 = later.sweep(now: 100_000)
        #expect(swept6 == .timeOut(.header))
    }

    /// A listed connection that became a stream is forgotten by the sweep, and unlisted.
    @Test func sweepForgetsStreams() {
        var state = accepted(at: 0)
        _ = state.enlist()
        state.subscribed()
        let swept = state.sweep(now: 1_000_000)
        #expect(swept == .forget)
        #expect(!state.isListed)
    }

    // MARK: - Draining and closing

    /// Draining ends a stream (unsubscribe, FIN) with the linger timeout, which lists it again.
    @Test func drainEndsStreams() {
        var state = stream(at: 0)
        _ = state.enlist()
        _ = state.sweep(now: 1)
        let drained = state.drain(now: 30_000, timeouts: timeouts)
        #expect(drained == .endStream)
        #expect(state.phase == .closing && state.deadline == 32_000)
        let listed = state.enlist()
        #expect(listed)
        #expect(state.closed() == (wasHeld: true, release: .none), "the stream was unsubscribed already")
    }

    /// Draining closes idle connections and leaves requests in progress and closing ones alone.
    @Test func drainClosesIdleAndLetsRequestsFinish() {
        var idleState = idle(at: 0)
        let drained = idleState.drain(now: 5, timeouts: timeouts)
        #expect(drained == .close)
        var request = accepted(at: 0)
        let before = request
        let drained2 = request.drain(now: 5, timeouts: timeouts)
        #expect(drained2 == .none)
        #expect(request == before)
        var closing = accepted(at: 0)
        _ = closing.responded(keepAlive: false, now: 0, timeouts: timeouts)
        let drained3 = closing.drain(now: 5, timeouts: timeouts)
        #expect(drained3 == .none)
        var rejected = Machine()
        _ = rejected.open(now: 0, timeouts: timeouts, atLimit: true, draining: false)
        let drained4 = rejected.drain(now: 5, timeouts: timeouts)
        #expect(drained4 == .none)
    }

    /// Closing a connection serving requests releases its partial request; every phase but rejected was held.
    @Test func closeReleases() {
        #expect(accepted(at: 0).closed() == (wasHeld: true, release: .partialRequest))
        #expect(idle(at: 0).closed() == (wasHeld: true, release: .partialRequest))
        #expect(stream(at: 0).closed() == (wasHeld: true, release: .subscription))
    }

    /// A whole keep-alive life: request, idle, a second request that subscribes, drain, linger timeout.
    @Test func keepAliveLifecycle() {
        var state = Machine()
        let opened = state.open(now: 0, timeouts: timeouts, atLimit: false, draining: false)
        #expect(opened == .accept)
        let listed = state.enlist()
        #expect(listed)
        let read = state.bytesArrived(now: 1, timeouts: timeouts)
        #expect(read == .parse)
        let response = state.responded(keepAlive: true, now: 2, timeouts: timeouts)
        #expect(response == .awaitNextRequest)
        let swept = state.sweep(now: 30_000)
        #expect(swept == .keep)
        let read2 = state.bytesArrived(now: 40_000, timeouts: timeouts)
        #expect(read2 == .parse)
        #expect(state.deadline == 50_000)
        state.subscribed()
        let swept2 = state.sweep(now: 40_100)
        #expect(swept2 == .forget)
        let drained = state.drain(now: 90_000, timeouts: timeouts)
        #expect(drained == .endStream)
        let listed2 = state.enlist()
        #expect(listed2)
        let swept3 = state.sweep(now: 91_999)
        #expect(swept3 == .keep)
        let swept4 = state.sweep(now: 92_000)
        #expect(swept4 == .timeOut(.linger))
    }

    // MARK: - Request bodies

    /// A head with a body ends the header timeout: the body has `timeouts.body` from the head,
    /// and a body that stalls (bytes too few to earn credit) runs out there, however long the
    /// header timeout.
    @Test func bodyHasItsOwnDeadline() {
        var state = accepted(at: 0)
        state.bodyStarted(now: 1_000, timeouts: timeouts)
        #expect(state.phase == .body && state.deadline == 6_000 && state.isServingRequests)
        state.bodyArrived(1, now: 3_000, timeouts: timeouts)
        #expect(state.deadline == 6_000, "one byte earns less than a millisecond")
        let early = state.sweep(now: 5_999)
        #expect(early == .keep)
        let late = state.sweep(now: 6_000)
        #expect(late == .timeOut(.body))
        #expect(state.closed() == (wasHeld: true, release: .partialRequest))
    }

    /// Each body byte earns 1/rate s, but the deadline is never more than `timeouts.body` ahead:
    /// a fast start cannot be banked for a long stall.
    @Test func bodyBytesEarnCreditUpToTheBodyTimeout() {
        var state = accepted(at: 0)
        state.bodyStarted(now: 0, timeouts: timeouts)
        state.bodyArrived(16 << 10, now: 4_000, timeouts: timeouts)
        #expect(state.deadline == 6_000, "16 KiB at 16 KiB/s: one second more")
        state.bodyArrived(1 << 20, now: 4_100, timeouts: timeouts)
        #expect(state.deadline == 9_100, "capped at now + body timeout")
    }

    /// A body that keeps up with the minimum rate never runs out, however long it is; one a little
    /// slower falls behind and runs out.
    @Test func bodyAtTheMinimumRateNeverRunsOut() {
        var steady = accepted(at: 0)
        steady.bodyStarted(now: 0, timeouts: timeouts)
        var slow = steady
        var now: UInt32 = 0
        var slowTimedOut = false
        for _ in 0..<1_000 {
            now += 100
            steady.bodyArrived(1_640, now: now, timeouts: timeouts)  // 16.4 KB/s
            slow.bodyArrived(1_400, now: now, timeouts: timeouts)  // 14 KB/s
            let steadySweep = steady.sweep(now: now)
            #expect(steadySweep == .keep)
            if slow.sweep(now: now) == .timeOut(.body) { slowTimedOut = true }
        }
        #expect(slowTimedOut)
    }

    /// Without a minimum rate the whole body must arrive within the body timeout of its head; an
    /// answered request leaves the body phase for keep-alive; drain lets a body in progress finish.
    @Test func bodyWithoutRateAndAfterIt() {
        var noRate = timeouts
        noRate.bodyRate = 0
        var state = accepted(at: 0)
        state.bodyStarted(now: 100, timeouts: noRate)
        state.bodyArrived(1 << 20, now: 200, timeouts: noRate)
        #expect(state.deadline == 5_100)
        #expect(state.drain(now: 300, timeouts: noRate) == .none)
        let keepsPartial = state.requestUnfinished(now: 300, timeouts: noRate)
        #expect(keepsPartial && state.phase == .body && state.deadline == 5_100)
        _ = state.responded(keepAlive: true, now: 400, timeouts: noRate)
        #expect(state.phase == .idle && state.deadline == 60_400)
        state.bodyArrived(1, now: 500, timeouts: noRate)
        #expect(state.deadline == 60_400, "credit only in the body phase")
    }
}
