import Belay
import BelayTestKit
import Testing

@Suite(.timeLimit(.minutes(1))) struct RetryBudgetTests {
    let clock = ManualClock()

    @Test func allowsExactlyTheRatioOfRequests() throws {
        let budget = try RetryBudget(.init(ratio: 0.5, minimumPerSecond: 0, window: .seconds(10)), clock: clock)
        for _ in 0..<4 { budget.recordRequest() }
        #expect(budget.tryWithdrawRetry())
        #expect(budget.tryWithdrawRetry())
        #expect(!budget.tryWithdrawRetry())
        budget.recordRequest()
        #expect(!budget.tryWithdrawRetry())  // 2.5 allowed, 3 would exceed
        budget.recordRequest()
        #expect(budget.tryWithdrawRetry())  // 3 allowed now
    }

    @Test func theMinimumPerSecondIsAlwaysAvailable() throws {
        let budget = try RetryBudget(.init(ratio: 0, minimumPerSecond: 2, window: .seconds(5)), clock: clock)
        for _ in 0..<10 { #expect(budget.tryWithdrawRetry()) }
        #expect(!budget.tryWithdrawRetry())
    }

    @Test func usageSlidesOutOfTheWindow() throws {
        let budget = try RetryBudget(.init(ratio: 1, minimumPerSecond: 0, window: .seconds(10)), clock: clock)
        budget.recordRequest()
        #expect(budget.tryWithdrawRetry())
        #expect(!budget.tryWithdrawRetry())
        clock.advance(by: .seconds(9))
        #expect(budget.usage == (1, 1))
        clock.advance(by: .seconds(1))
        #expect(budget.usage == (0, 0))
        budget.recordRequest()
        #expect(budget.tryWithdrawRetry())
    }

    @Test func manyConcurrentCallersShareOneBudget() async throws {
        let budget = try RetryBudget(.init(ratio: 0.2, minimumPerSecond: 0, window: .seconds(10)), clock: clock)
        let events = RecordingEventSink()
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .retry(.init(maxAttempts: 3, backoff: .constant(.zero), budget: budget))
            .telemetry(events)
            .build()
        let gate = Gate()
        let attempts = Tally()
        let callers = 100
        let outcomes = await withTaskGroup(of: Result<Int, any Error>.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    await pipeline.executeOutcome { context in
                        attempts.increment()
                        if context.attempt == 1 { await gate.wait() }
                        throw TestError()
                    }
                }
            }
            await gate.waitForArrivals(callers)
            gate.open()
            var outcomes: [Result<Int, any Error>] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        // Every request was counted before any retry was asked for: exactly 20 % retried.
        #expect(attempts.count == callers + 20)
        #expect(budget.usage == (callers, 20))
        let refused = outcomes.filter { $0.resilienceCode == .retryBudgetExhausted }
        // At least the 80 callers that never got a retry were refused by the budget; the
        // rest either used every attempt (their own error) or were refused a second retry.
        #expect(refused.count >= callers - 20)
        #expect(outcomes.allSatisfy { $0.resilienceCode == .retryBudgetExhausted || $0.error is TestError })
        #expect(events.names.filter { $0 == "retry_scheduled" }.count == 20)
    }

    @Test func invalidRatioIsRejected() {
        #expect(throws: ConfigurationError.self) {
            _ = try RetryBudget(.init(ratio: 1.5), clock: clock)
        }
    }
}
