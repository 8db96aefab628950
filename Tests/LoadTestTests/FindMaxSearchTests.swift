import LoadTest
import Testing

@Suite struct FindMaxSearchTests {
    static func status(open: Int, errors: [LoadErrorClass: Int] = [:]) -> LoadCounts {
        var counts = LoadCounts()
        counts.open = open
        counts.errors = errors
        return counts
    }

    /// Steps go up by `step` to the ceiling (the last one short), and a clean run reports the ceiling.
    @Test func stepsToTheCeiling() {
        var search = FindMaxSearch(ceiling: 2_500, step: 1_000)
        var levels: [Int] = []
        while let level = search.nextLevel {
            levels.append(level)
            let verdict1 = search.judge(
                level: level, settled: true, status: FindMaxSearchTests.status(open: level), budget: 30)
            #expect(verdict1)
            let verdict2 = search.probed(level: level, delivered: true, gaps: 0)
            #expect(verdict2)
            search.passed(level)
        }
        #expect(levels == [1_000, 2_000, 2_500])
        let conclusion = search.conclusion(interrupted: false)
        #expect(conclusion.maximum == 2_500 && conclusion.failure == nil)
        #expect(conclusion.stoppedBecause == "reached the --connections ceiling (2500) cleanly; raise it to go further")
    }

    /// The first step with an error or a missing stream stops the search at the last clean level.
    @Test func stopsAtTheFirstBadStep() {
        var search = FindMaxSearch(ceiling: 10, step: 4)
        let verdict3 = search.judge(level: 4, settled: true, status: FindMaxSearchTests.status(open: 4), budget: 30)
        #expect(verdict3)
        search.passed(4)
        let verdict4 = search.judge(
            level: 8, settled: true, status: FindMaxSearchTests.status(open: 5, errors: [.status(503): 3]), budget: 30)
        #expect(!verdict4)
        #expect(search.nextLevel == nil)
        let conclusion = search.conclusion(interrupted: false, notes: ["a note"])
        #expect(conclusion.maximum == 4 && conclusion.failure == nil)
        #expect(conclusion.stoppedBecause == "at 8: 5 open, status 503: 3; a note")
    }

    /// A step that does not settle, or whose probe is missed, stops too; nothing clean is a failure.
    @Test func unsettledOrUndeliveredSteps() {
        var slow = FindMaxSearch(ceiling: 10, step: 0)  // a step of at least 1
        #expect(slow.nextLevel == 1)
        let verdict5 = slow.judge(level: 1, settled: false, status: FindMaxSearchTests.status(open: 0), budget: 30.2)
        #expect(!verdict5)
        #expect(
            slow.conclusion(interrupted: false).failure
                == "not even 1 streams held cleanly: at 1: streams still opening after 30 s")

        var deaf = FindMaxSearch(ceiling: 10, step: 5)
        let verdict6 = deaf.judge(level: 5, settled: true, status: FindMaxSearchTests.status(open: 5), budget: 30)
        #expect(verdict6)
        let verdict7 = deaf.probed(level: 5, delivered: false, gaps: 2)
        #expect(!verdict7)
        #expect(
            deaf.conclusion(interrupted: false).stoppedBecause
                == "at 5: the server stopped delivering events (2 streams missed a probe)")
        #expect(FindMaxSearch(ceiling: 3, step: 1).conclusion(interrupted: true).stoppedBecause == "interrupted")
    }
}
