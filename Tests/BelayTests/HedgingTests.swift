import Belay
import BelayTestKit
import Testing

@Suite(.timeLimit(.minutes(1))) struct HedgingTests {
    let clock = ManualClock()

    @Test func aSlowFirstAttemptIsHedgedAndTheWinnerCancelsIt() async throws {
        let events = RecordingEventSink()
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .hedging(.init(maxHedgedAttempts: 2, delay: .fixed(.milliseconds(200))))
            .telemetry(events)
            .build()
        let cancelled = Tally()
        let task = Task {
            try await pipeline.execute { context in
                if context.attempt == 1 {
                    do { try await suspendUntilCancelled() } catch {
                        cancelled.increment()
                        throw error
                    }
                }
                return context.attempt
            }
        }
        let hedgeAt = await clock.nextSleepScheduled()
        #expect(hedgeAt == .at(.milliseconds(200)))
        clock.advance(to: hedgeAt)
        #expect(try await task.value == 2)
        #expect(cancelled.count == 1)
        #expect(events.names == ["hedge_launched"])
    }

    @Test func aFastAttemptLaunchesNoHedge() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .hedging(.init(maxHedgedAttempts: 3, delay: .fixed(.seconds(1))))
            .build()
        let calls = Tally()
        #expect(try await pipeline.execute { _ in calls.increment() } == 1)
        #expect(calls.count == 1)
    }

    @Test func aFailedAttemptStartsTheNextAtOnce() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .hedging(.init(maxHedgedAttempts: 2, delay: .fixed(.seconds(60))))
            .build()
        let value = try await pipeline.execute { context in
            if context.attempt < 3 { throw TestError(id: context.attempt) }
            return context.attempt
        }
        #expect(value == 3)
    }

    @Test func whenEveryAttemptFailsTheLastOutcomeIsReturned() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .hedging(.init(maxHedgedAttempts: 1, delay: .fixed(.seconds(60))))
            .build()
        let calls = Tally()
        let outcome = await pipeline.executeOutcome { _ in throw TestError(id: calls.increment()) }
        #expect(outcome.error as? TestError == TestError(id: 2))
    }

    @Test func percentileDelayFollowsObservedLatency() throws {
        let tracker = LatencyTracker(capacity: 100)
        #expect(tracker.percentile(0.95, minimumSamples: 1) == nil)
        for millisecond in 1...100 { tracker.record(.milliseconds(millisecond)) }
        #expect(tracker.percentile(0.95) == .milliseconds(95))
        #expect(tracker.percentile(0.5) == .milliseconds(50))
        #expect(tracker.percentile(1) == .milliseconds(100))
        #expect(tracker.percentile(0) == .milliseconds(1))
        #expect(tracker.percentile(0.5, minimumSamples: 101) == nil)
    }

    @Test func percentileDelayUsesTheFallbackUntilEnoughSamples() async throws {
        let tracker = LatencyTracker()
        let strategy = try Hedging<Int, ManualClock>(
            .init(delay: .percentile(0.9, otherwise: .milliseconds(300), minimumSamples: 5)),
            clock: clock,
            latencies: tracker
        )
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).strategy(strategy).build()
        let task = Task {
            try await pipeline.execute { context in
                if context.attempt == 1 { try await suspendUntilCancelled() }
                return context.attempt
            }
        }
        #expect(await clock.nextSleepScheduled() == .at(.milliseconds(300)))
        clock.advance(to: .at(.milliseconds(300)))
        #expect(try await task.value == 2)
        for _ in 0..<5 { tracker.record(.milliseconds(40)) }
        let second = Task {
            try await pipeline.execute { context in
                if context.attempt == 1 { try await suspendUntilCancelled() }
                return context.attempt
            }
        }
        #expect(await clock.nextSleepScheduled() == .at(.milliseconds(340)))
        clock.advance(to: .at(.milliseconds(340)))
        #expect(try await second.value == 2)
    }

    @Test func withoutLaunchesOnFailureAFailureWaitsForTheHedgeOrIsReturned() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .hedging(.init(maxHedgedAttempts: 1, delay: .fixed(.seconds(60)), launchesOnFailure: false))
            .build()
        // Alone, a failure is returned at once, for a retry outside to handle: no second attempt.
        let calls = Tally()
        let outcome = await pipeline.executeOutcome { _ in throw TestError(id: calls.increment()) }
        #expect(outcome.error as? TestError == TestError(id: 1))
        #expect(calls.count == 1)

        // With a hedge running, the first attempt's failure waits for it (a clock of its own:
        // the first call's timer is still recorded on the suite's).
        let clock = ManualClock()
        let hedged = try ResiliencePipeline<Int>.Builder(clock: clock)
            .hedging(.init(maxHedgedAttempts: 1, delay: .fixed(.milliseconds(200)), launchesOnFailure: false))
            .build()
        let task = Task {
            try await hedged.execute { context in
                if context.attempt == 1 {
                    try await clock.sleep(until: .at(.milliseconds(500)))
                    throw TestError(id: 1)
                }
                try await clock.sleep(until: .at(.seconds(1)))
                return context.attempt
            }
        }
        // The first attempt's sleep and the hedge's timer, then the hedge's own sleep.
        _ = await clock.nextSleepScheduled()
        _ = await clock.nextSleepScheduled()
        clock.advance(to: .at(.milliseconds(200)))
        #expect(await clock.nextSleepScheduled() == .at(.seconds(1)))
        clock.advance(to: .at(.milliseconds(500)))
        clock.advance(to: .at(.seconds(1)))
        #expect(try await task.value == 2)
    }

    @Test func eachHedgeIsWithdrawnFromTheRetryBudgetAndNoneStartsWhenItIsSpent() async throws {
        func pipeline(_ budget: RetryBudget<ManualClock>) throws -> ResiliencePipeline<Int> {
            try ResiliencePipeline<Int>.Builder(clock: clock)
                .hedging(.init(maxHedgedAttempts: 1, delay: .fixed(.milliseconds(200)), budget: budget))
                .build()
        }
        // Spent: the first attempt, a second long, is the only one.
        let spent = try RetryBudget(.init(ratio: 0, minimumPerSecond: 0), clock: clock)
        let alone = try pipeline(spent)
        let first = Task {
            try await alone.execute { context in
                if context.attempt == 1 { try await clock.sleep(until: .at(.seconds(1))) }
                return context.attempt
            }
        }
        _ = await clock.nextSleepScheduled()
        _ = await clock.nextSleepScheduled()
        clock.advance(to: .at(.milliseconds(200)))
        clock.advance(to: .at(.seconds(1)))
        #expect(try await first.value == 1)
        #expect(spent.usage.retries == 0)

        // With room: the hedge starts after 200 ms, answers, and is withdrawn from the budget.
        let ample = try RetryBudget(.init(), clock: clock)
        let hedged = try pipeline(ample)
        let second = Task {
            try await hedged.execute { context in
                if context.attempt == 1 { try await suspendUntilCancelled() }
                return context.attempt
            }
        }
        let timer = await clock.nextSleepScheduled()
        clock.advance(to: timer)
        #expect(try await second.value == 2)
        #expect(ample.usage.retries == 1)
    }
}
