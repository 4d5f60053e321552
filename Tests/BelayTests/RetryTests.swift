import Belay
import BelayTestKit
import Testing

@Suite(.timeLimit(.minutes(1))) struct RetryTests {
    let clock = ManualClock()

    private func pipeline(
        _ configuration: Retry<Int, ManualClock>.Configuration,
        events: RecordingEventSink = RecordingEventSink()
    ) throws -> ResiliencePipeline<Int> {
        try ResiliencePipeline<Int>.Builder(clock: clock).retry(configuration).telemetry(events).build()
    }

    @Test func retriesThrownErrorsAtTheExactBackoffInstants() async throws {
        let events = RecordingEventSink()
        let pipeline = try pipeline(
            .init(maxAttempts: 3, backoff: .exponential(base: .milliseconds(100), cap: .seconds(5))),
            events: events
        )
        let calls = Tally()
        let task = Task {
            try await pipeline.execute { context in
                let call = calls.increment()
                #expect(context.attempt == call)
                if call < 3 { throw TestError(id: call) }
                return call
            }
        }
        let first = await clock.nextSleepScheduled()
        #expect(first == .at(.milliseconds(100)))
        clock.advance(to: first)
        let second = await clock.nextSleepScheduled()
        #expect(second == .at(.milliseconds(300)))
        clock.advance(to: second)
        #expect(try await task.value == 3)
        #expect(events.names == ["retry_scheduled", "retry_scheduled"])
    }

    @Test func returnedValuesAreNotRetriedByDefault() async throws {
        let calls = Tally()
        let value = try await pipeline(.init(maxAttempts: 5)).execute { _ in calls.increment() }
        #expect(value == 1)
        #expect(calls.count == 1)
    }

    @Test func outcomesCanBeRetriedWithoutThrowing() async throws {
        let pipeline = try pipeline(
            .init(maxAttempts: 4, backoff: .constant(.zero), shouldRetry: { (try? $0.get()) == 503 })
        )
        let calls = Tally()
        let value = try await pipeline.execute { _ in calls.increment() < 3 ? 503 : 200 }
        #expect(value == 200)
        #expect(calls.count == 3)
    }

    @Test func stopsAfterMaxAttemptsAndReturnsTheLastOutcome() async throws {
        let events = RecordingEventSink()
        let pipeline = try pipeline(
            .init(maxAttempts: 2, backoff: .constant(.zero), shouldRetry: { _ in true }),
            events: events
        )
        let calls = Tally()
        let outcome = await pipeline.executeOutcome { _ in
            throw TestError(id: calls.increment())
        }
        #expect(outcome.error as? TestError == TestError(id: 2))
        #expect(calls.count == 2)
        #expect(events.names == ["retry_scheduled", "retry_abandoned"])
        guard case .retryAbandoned(let reason, _) = events.events.last?.kind else {
            Issue.record("expected an abandon event")
            return
        }
        #expect(reason == .attemptsExhausted)
    }

    @Test func oneAttemptMeansNoRetry() async throws {
        let calls = Tally()
        let outcome = try await pipeline(.init(maxAttempts: 1)).executeOutcome { _ in
            calls.increment()
            throw TestError()
        }
        #expect(outcome.error is TestError)
        #expect(calls.count == 1)
    }

    @Test func delayHintIsHonouredWhenLongerThanTheBackoff() async throws {
        let pipeline = try pipeline(
            .init(
                maxAttempts: 2,
                backoff: .constant(.milliseconds(10)),
                shouldRetry: { (try? $0.get()) == 429 },
                delayHint: { (try? $0.get()) == 429 ? .seconds(7) : nil }
            )
        )
        let calls = Tally()
        let task = Task { try await pipeline.execute { _ in calls.increment() == 1 ? 429 : 200 } }
        let wake = await clock.nextSleepScheduled()
        #expect(wake == .at(.seconds(7)))
        clock.advance(by: .seconds(6))
        #expect(calls.count == 1)
        clock.advance(to: wake)
        #expect(try await task.value == 200)
    }

    @Test func aDelayHintBeyondTheMaximumStopsRetrying() async throws {
        let events = RecordingEventSink()
        let pipeline = try pipeline(
            .init(
                maxAttempts: 3,
                shouldRetry: { (try? $0.get()) == 429 },
                delayHint: { _ in .seconds(61) },
                maxDelayHint: .seconds(60)
            ),
            events: events
        )
        let value = try await pipeline.execute { _ in 429 }
        #expect(value == 429)
        #expect(clock.unclaimedSleeps == 0)
        guard case .retryAbandoned(.delayHintTooLong, _) = events.events.first?.kind else {
            Issue.record("expected delay-hint-too-long, got \(events.events)")
            return
        }
    }

    @Test func aRetryThatCannotStartBeforeTheDeadlineIsNotStarted() async throws {
        let events = RecordingEventSink()
        let pipeline = try pipeline(
            .init(maxAttempts: 3, backoff: .constant(.seconds(2))),
            events: events
        )
        let calls = Tally()
        let deadline = Deadline(after: .seconds(2), on: clock)
        let outcome = await Deadline.$current.withValue(deadline) {
            await pipeline.executeOutcome { _ in
                calls.increment()
                throw TestError()
            }
        }
        #expect(outcome.error is TestError)
        #expect(calls.count == 1)
        guard case .retryAbandoned(.deadline, _) = events.events.first?.kind else {
            Issue.record("expected a deadline abandon, got \(events.events)")
            return
        }
    }

    @Test func aRetryEndingJustBeforeTheDeadlineIsStarted() async throws {
        let pipeline = try pipeline(.init(maxAttempts: 2, backoff: .constant(.seconds(2))))
        let calls = Tally()
        let deadline = Deadline(after: .seconds(2) + .nanoseconds(1), on: clock)
        let task = Task {
            await Deadline.$current.withValue(deadline) {
                await pipeline.executeOutcome { _ in
                    if calls.increment() == 1 { throw TestError() }
                    return 1
                }
            }
        }
        clock.advance(to: await clock.nextSleepScheduled())
        #expect(try await task.value.get() == 1)
    }

    @Test func cancellationDuringBackoffStopsAtOnce() async throws {
        let pipeline = try pipeline(.init(maxAttempts: 5, backoff: .constant(.seconds(30))))
        let calls = Tally()
        let task = Task {
            await pipeline.executeOutcome { _ in
                calls.increment()
                throw TestError()
            }
        }
        _ = await clock.nextSleepScheduled()
        task.cancel()
        let outcome = await task.value
        #expect(outcome.error is CancellationError)
        #expect(calls.count == 1)
        #expect(clock.sleeperCount == 0)
    }

    @Test func cancellationIsNotRetried() async throws {
        let calls = Tally()
        let outcome = try await pipeline(.init(maxAttempts: 3)).executeOutcome { _ in
            calls.increment()
            throw CancellationError()
        }
        #expect(outcome.error is CancellationError)
        #expect(calls.count == 1)
    }

    @Test func jitterUsesTheInjectedRandomSource() async throws {
        let random = ScriptedRandom([0.25, 0.5])
        let pipeline = try pipeline(
            .init(
                maxAttempts: 3,
                backoff: .exponentialJitter(base: .seconds(1), cap: .seconds(10)),
                random: { random.next() }
            )
        )
        let calls = Tally()
        let task = Task {
            try await pipeline.execute { _ in
                if calls.increment() < 3 { throw TestError() }
                return 0
            }
        }
        let first = await clock.nextSleepScheduled()
        #expect(first == .at(.milliseconds(250)))  // 0.25 · min(10s, 1s)
        clock.advance(to: first)
        let second = await clock.nextSleepScheduled()
        #expect(second == .at(.milliseconds(1250)))  // + 0.5 · min(10s, 2s)
        clock.advance(to: second)
        _ = try await task.value
    }

    @Test func invalidOptionsAreRejectedWhenBuilt() {
        #expect {
            _ = try ResiliencePipeline<Int>.Builder(clock: clock)
                .retry(.init(maxAttempts: 0, backoff: .constant(.seconds(-1))))
                .build()
        } throws: { error in
            let issues = (error as? ConfigurationError)?.issues.map(\.description) ?? []
            return issues == [
                "retry.maxAttempts: must be at least 1 (got 0)",
                "retry.backoff.delay: must not be negative (got -1.0 seconds)",
            ]
        }
    }
}
