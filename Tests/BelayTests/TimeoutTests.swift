import Belay
import BelayTestKit
import Testing

@Suite(.timeLimit(.minutes(1))) struct TimeoutTests {
    let clock = ManualClock()

    @Test func aFastOperationIsNotAffected() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).timeout(.seconds(1)).build()
        let value = try await pipeline.execute { context in
            #expect(context.deadline?.instant(on: clock) == .at(.seconds(1)))
            return 7
        }
        #expect(value == 7)
        #expect(clock.sleeperCount == 0)
    }

    @Test func aHangingOperationIsCancelledAtTheDeadline() async throws {
        let events = RecordingEventSink()
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .timeout(.milliseconds(1500))
            .telemetry(events)
            .build()
        let sawCancellation = Tally()
        let task = Task {
            await pipeline.executeOutcome { _ in
                do {
                    try await suspendUntilCancelled()
                } catch {
                    sawCancellation.increment()
                    throw error
                }
            }
        }
        let fire = await clock.nextSleepScheduled()
        #expect(fire == .at(.milliseconds(1500)))
        clock.advance(by: .milliseconds(1499))
        #expect(sawCancellation.count == 0)
        clock.advance(to: fire)
        let outcome = await task.value
        #expect(outcome.resilienceCode == .timeout)
        #expect(sawCancellation.count == 1)
        #expect(events.names == ["timeout"])
    }

    @Test func deadlinesShrinkThroughNestedPipelines() async throws {
        let outer = try ResiliencePipeline<Int>.Builder(clock: clock).timeout(.seconds(10), name: "outer").build()
        let inner = try ResiliencePipeline<Int>.Builder(clock: clock).timeout(.seconds(20), name: "inner").build()
        let task = Task {
            await outer.executeOutcome { _ in
                clock.advance(by: .seconds(4))
                return try await inner.execute { context in
                    // The inner timeout cannot extend the outer budget: 10 s from t=0.
                    #expect(context.deadline?.instant(on: clock) == .at(.seconds(10)))
                    #expect(Deadline.current?.remaining(on: clock) == .seconds(6))
                    try await suspendUntilCancelled()
                }
            }
        }
        let outerFire = await clock.nextSleepScheduled()
        let innerFire = await clock.nextSleepScheduled()
        #expect(outerFire == .at(.seconds(10)))
        #expect(innerFire == .at(.seconds(10)))
        clock.advance(to: innerFire)
        let outcome = await task.value
        #expect(outcome.resilienceCode == .timeout)
    }

    @Test func anInnerShorterTimeoutWins() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .timeout(.seconds(10), name: "total")
            .timeout(.seconds(2), name: "attempt")
            .build()
        let task = Task { await pipeline.executeOutcome { _ in try await suspendUntilCancelled() } }
        let total = await clock.nextSleepScheduled()
        let attempt = await clock.nextSleepScheduled()
        #expect([total, attempt].sorted() == [.at(.seconds(2)), .at(.seconds(10))])
        clock.advance(to: .at(.seconds(2)))
        let outcome = await task.value
        #expect((outcome.error as? ResilienceError)?.strategy == "attempt")
    }

    @Test func aSpentBudgetTimesOutWithoutRunning() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).timeout(.seconds(5)).build()
        let calls = Tally()
        let deadline = Deadline(after: .zero, on: clock)
        let outcome = await Deadline.$current.withValue(deadline) {
            await pipeline.executeOutcome { _ in calls.increment() }
        }
        #expect(outcome.resilienceCode == .timeout)
        #expect(calls.count == 0)
    }

    @Test func retriesInsideATotalTimeoutStopAtTheDeadline() async throws {
        let events = RecordingEventSink()
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .timeout(.seconds(1))
            .retry(.init(maxAttempts: 10, backoff: .constant(.milliseconds(600))))
            .telemetry(events)
            .build()
        let calls = Tally()
        let task = Task {
            await pipeline.executeOutcome { _ in
                calls.increment()
                throw TestError()
            }
        }
        // The timer and the first backoff sleep are scheduled concurrently, in either order.
        let sleeps = [await clock.nextSleepScheduled(), await clock.nextSleepScheduled()].sorted()
        #expect(sleeps == [.at(.milliseconds(600)), .at(.seconds(1))])
        clock.advance(to: .at(.milliseconds(600)))
        let outcome = await task.value
        #expect(outcome.error is TestError)
        #expect(calls.count == 2)
        #expect(events.names == ["retry_scheduled", "retry_abandoned"])
    }

    @Test func outerCancellationIsReportedAsCancellation() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).timeout(.seconds(5)).build()
        let task = Task { await pipeline.executeOutcome { _ in try await suspendUntilCancelled() } }
        _ = await clock.nextSleepScheduled()
        task.cancel()
        #expect(await task.value.error is CancellationError)
    }

    @Test func aDeadlineSetOnAnotherClockIsSeenAsItsRemainingBudget() {
        let deadline = Deadline(after: .seconds(30), on: clock)
        // Read on the continuous clock: at most the budget, and it only shrinks.
        let first = deadline.remaining(on: ContinuousClock())
        let second = deadline.remaining(on: ContinuousClock())
        #expect(first <= .seconds(30))
        #expect(first > .seconds(29))
        #expect(second <= first)
        #expect(deadline.instant(on: clock) == .at(.seconds(30)))
    }

    @Test func aCooperativeTimeoutBindsTheDeadlineWithoutATimer() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .timeout(.seconds(3), enforcement: .cooperative)
            .build()
        let value = try await pipeline.execute { context in
            #expect(context.deadline?.instant(on: clock) == .at(.seconds(3)))
            #expect(Deadline.current?.instant(on: clock) == .at(.seconds(3)))
            return 5
        }
        #expect(value == 5)
        #expect(clock.unclaimedSleeps == 0)
    }

    @Test func aCooperativeTimeoutReportsAFailureAfterTheDeadlineAsTimeout() async throws {
        let events = RecordingEventSink()
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .timeout(.seconds(3), enforcement: .cooperative)
            .telemetry(events)
            .build()
        let late = await pipeline.executeOutcome { _ in
            clock.advance(by: .seconds(3))
            throw TestError()
        }
        #expect(late.resilienceCode == .timeout)
        #expect(events.names == ["timeout"])
        let early = await pipeline.executeOutcome { _ in throw TestError() }
        #expect(early.error is TestError)
    }

    @Test func zeroTimeoutIsRejected() {
        #expect {
            _ = try ResiliencePipeline<Int>.Builder(clock: clock).timeout(.zero).build()
        } throws: { error in
            (error as? ConfigurationError)?.issues.first?.option == "timeout.timeout"
        }
    }
}
