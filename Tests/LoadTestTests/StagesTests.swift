@testable import LoadTest
import Testing

@Suite struct StagesTests {
    /// `DURATION:TARGET` with units and k/M suffixes; anything else is refused with its reason.
    @Test func stagesParse() throws {
        #expect(try LoadStage(parsing: "30s:10k") == LoadStage(seconds: 30, target: 10_000))
        #expect(try LoadStage(parsing: "500ms:1.5k") == LoadStage(seconds: 0.5, target: 1_500))
        #expect(try LoadStage(parsing: "5m:0") == LoadStage(seconds: 300, target: 0))
        #expect(try LoadStage(parsing: "0s:2M") == LoadStage(seconds: 0, target: 2_000_000))
        #expect(throws: StageError.notDurationColonTarget("30s")) { try LoadStage(parsing: "30s") }
        #expect(throws: StageError.badDuration("x:1")) { try LoadStage(parsing: "x:1") }
        #expect(throws: StageError.badTarget("30s:-1")) { try LoadStage(parsing: "30s:-1") }
        #expect(throws: StageError.badTarget("30s:ten")) { try LoadStage(parsing: "30s:ten") }
        #expect(throws: StageError.badDuration("8d:1")) { try LoadStage(parsing: "8d:1") }
        #expect(try LoadStage(parsing: "90s:10k").description == "90s:10000")
    }

    /// A list of stages is a piecewise-linear level from 0, holding the last target after the end.
    @Test func stagesAreALevelOverTime() throws {
        let stages = try ["10s:100", "20s:100", "10s:0"].map { try LoadStage(parsing: $0) }
        #expect(stages.totalSeconds == 40)
        #expect(stages.peak == 100)
        #expect(stages.level(at: 0) == 0)
        #expect(stages.level(at: 5) == 50)
        #expect(stages.level(at: 25) == 100)
        #expect(stages.level(at: 35) == 50)
        #expect(stages.level(at: 99) == 0)
    }

    /// A level schedule built one stage at a time: the level, its integral (requests so far) and the
    /// intended time of request k on a ramp (a quadratic) and on a plateau (linear).
    @Test func levelScheduleIntegratesARate() {
        let second: UInt64 = 1_000_000_000
        var schedule = LevelSchedule()
        #expect(schedule.level(at: 5) == 0 && schedule.time(ofCount: 1) == nil)
        schedule.move(to: 10, over: 1, at: second)  // 0 → 10/s over [1 s, 2 s]: 5 requests
        #expect(schedule.level(at: second + second / 2) == 5)
        #expect(abs(schedule.count(at: 2 * second) - 5) < 1e-9)
        // count(t) = 5 t² on the ramp: 1.25 requests by 0.5 s.
        #expect(abs(schedule.count(at: second + second / 2) - 1.25) < 1e-9)
        #expect(schedule.time(ofCount: 5) == 2 * second)
        // After the ramp the rate holds at 10/s: request 10 (the 11th) is due 0.6 s after it.
        #expect(schedule.due(10, now: 3 * second) == 2 * second + 600_000_000)
        #expect(schedule.due(10, now: 2 * second) == nil)
        // The next stage starts from wherever the level is: down to 0 over 2 s from 3 s (10 more).
        schedule.move(to: 0, over: 2, at: 3 * second)
        #expect(abs(schedule.count(at: 5 * second) - 25) < 1e-9)
        #expect(schedule.time(ofCount: 26) == nil, "nothing is due at a rate of 0")
        // A jump (0 s) to 4/s at 10 s.
        schedule.move(to: 4, over: 0, at: 10 * second)
        #expect(schedule.level(at: 10 * second) == 4)
        #expect(schedule.time(ofCount: 27) == 10 * second + 500_000_000)
    }

    /// `R/s`, `R/min`, `R/h` or a plain number per second.
    @Test func churnRatesParse() throws {
        #expect(try ChurnRate(parsing: "100/s").perSecond == 100)
        #expect(try ChurnRate(parsing: "200k/min").perSecond == 200_000 / 60)
        #expect(try ChurnRate(parsing: "3600/h").perSecond == 1)
        #expect(try ChurnRate(parsing: "5").perSecond == 5)
        #expect(throws: ChurnError.malformed("5/day")) { try ChurnRate(parsing: "5/day") }
        #expect(throws: ChurnError.malformed("fast")) { try ChurnRate(parsing: "fast") }
    }
}
