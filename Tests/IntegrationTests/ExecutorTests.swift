@testable import Reactor
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Loop-confined state: a plain class, not Sendable, that only the loop's thread may touch.
private final class Tally {
    var count = 0
    var wrongThread = 0
}

/// An actor isolated to a loop: its jobs run on the loop thread, so it may own loop-confined state
/// and share it with the loop's own callbacks.
private actor Counter {
    nonisolated let executor: EventLoopRemote
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    let tally = Tally()
    let loopThread: UInt

    init(executor: EventLoopRemote, loopThread: UInt) {
        self.executor = executor
        self.loopThread = loopThread
    }

    func increment() {
        if UInt(pthread_self()) != loopThread { tally.wrongThread += 1 }
        tally.count += 1
        // The loop itself is reachable here, without a hop: we are on its thread.
        executor.assumeLoop { loop in _ = loop.openConnections }
    }

    func total() -> (Int, Int) { (tally.count, tally.wrongThread) }
}

/// The thread a loop runs on, asked of the loop itself.
private func loopThreadID(_ remote: EventLoopRemote) -> UInt { remote.sync { _ in UInt(pthread_self()) } }

extension Loopback {
    @Suite struct ExecutorTests {
        /// Eight tasks on the global executor and a stream of closures posted to the loop mutate one
        /// actor's loop-confined state; every increment counts and all of them ran on the loop thread.
        @Test func actorIsolatedToTheLoopMutatesLoopConfinedState() async throws {
            let thread = try LoopThread.start()
            defer { thread.stopAndJoin() }
            let counter = Counter(executor: thread.remote, loopThread: loopThreadID(thread.remote))
            let tasks = 8
            let perTask = 1_000
            let posted = 1_000
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        for _ in 0..<perTask { await counter.increment() }
                    }
                }
                group.addTask {
                    // The loop's own code (a posted closure here; a connection callback alike) joins in
                    // synchronously: on the loop thread it is isolated to the actor already.
                    for _ in 0..<posted {
                        thread.remote.execute { _ in counter.assumeIsolated { $0.tally.count += 1 } }
                    }
                }
            }
            let (count, wrongThread) = await counter.total()
            #expect(count == tasks * perTask + posted)
            #expect(wrongThread == 0)
        }

        /// A task that prefers the loop's executor runs its nonisolated code on the loop thread,
        /// before and after a suspension, and may reach the loop there.
        @Test func taskWithExecutorPreferenceRunsOnTheLoopThread() async throws {
            let thread = try LoopThread.start()
            defer { thread.stopAndJoin() }
            let remote = thread.remote
            let loopThread = loopThreadID(remote)
            let threads = await Task(executorPreference: remote) { () async -> [UInt] in
                var seen = [UInt(pthread_self())]
                await Task.yield()
                seen.append(UInt(pthread_self()))
                // A hop to the global executor and back lands on the loop again.
                _ = await Task.detached { 1 }.value
                seen.append(UInt(pthread_self()))
                #expect(remote.isOnLoopThread)
                seen.append(remote.assumeLoop { _ in UInt(pthread_self()) })
                return seen
            }.value
            #expect(threads == Array(repeating: loopThread, count: 4))
            #expect(!remote.isOnLoopThread)
            #expect(remote.sync { $0.statistics.jobsRun } >= 3)
        }

        /// `submit` returns what the body returned, passes its error on, runs at once on the loop
        /// thread itself, and throws `stopped` for work the loop ended without running.
        @Test func submitReturnsValuesAndThrowsAfterStop() async throws {
            struct Refused: Error, Equatable {}
            let thread = try LoopThread.start()
            let remote = thread.remote
            let loopThread = loopThreadID(remote)
            #expect(try await remote.submit { _ in UInt(pthread_self()) } == loopThread)
            #expect(try await remote.submit { loop in loop.openConnections + 42 } == 42)
            await #expect(throws: Refused()) { try await remote.submit { _ in throw Refused() } }
            // From a task already on the loop: no round through the queue.
            let ranBefore = remote.sync { $0.statistics.tasksRun }
            let inline = try await Task(executorPreference: remote) { try await remote.submit { _ in 7 } }.value
            #expect(inline == 7)
            #expect(remote.sync { $0.statistics.tasksRun } == ranBefore + 1)  // the sync above, only

            // Queued while the loop runs its last turn: never run, so it throws.
            let entered = Semaphore()
            let gate = Semaphore()
            remote.execute { loop in
                loop.stop()
                entered.signal()
                _ = gate.wait()
            }
            #expect(entered.wait())
            let late = Task { try await remote.submit { _ in 1 } }
            var spins = 0
            while !remote.hasPendingTasks && spins < 100_000_000 { spins += 1 }
            #expect(remote.hasPendingTasks)
            gate.signal()
            thread.join()
            await #expect(throws: EventLoopError.stopped) { try await late.value }
            // And after the loop is gone, at once.
            await #expect(throws: EventLoopError.stopped) { try await remote.submit { _ in 1 } }
        }
    }
}
