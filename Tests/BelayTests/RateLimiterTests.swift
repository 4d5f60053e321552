import Belay
import BelayTestKit
import Testing

@Suite(.timeLimit(.minutes(1))) struct RateLimiterTests {
    let clock = ManualClock()

    @Test func allowsTheBurstThenRejectsWithTheTimeToTheNextPermit() async throws {
        let limiter = try RateLimiter(.init(permitsPerSecond: 10, burst: 3), clock: clock)
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).rateLimiter(limiter).build()
        for call in 1...3 { #expect(try await pipeline.execute { _ in call } == call) }
        let outcome = await pipeline.executeOutcome { _ in 4 }
        let error = try #require(outcome.error as? ResilienceError)
        #expect(error.code == .rateLimited)
        #expect(error.retryAfter == .milliseconds(100))
    }

    @Test func refillsAtTheConfiguredRate() throws {
        let limiter = try RateLimiter(.init(permitsPerSecond: 4, burst: 2), clock: clock)
        #expect(limiter.tryAcquire() == nil)
        #expect(limiter.tryAcquire() == nil)
        #expect(limiter.tryAcquire() == .milliseconds(250))
        clock.advance(by: .milliseconds(249))
        #expect(limiter.tryAcquire() != nil)
        clock.advance(by: .milliseconds(1))
        #expect(limiter.tryAcquire() == nil)
        clock.advance(by: .seconds(60))  // refills to the burst, no further
        #expect(limiter.tryAcquire() == nil)
        #expect(limiter.tryAcquire() == nil)
        #expect(limiter.tryAcquire() != nil)
    }

    @Test func waitsForAPermitWithinMaxWaitAndSpacesWaiters() async throws {
        let events = RecordingEventSink()
        let limiter = try RateLimiter(.init(permitsPerSecond: 10, burst: 1, maxWait: .milliseconds(250)), clock: clock)
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).rateLimiter(limiter).telemetry(events).build()
        #expect(try await pipeline.execute { _ in 1 } == 1)
        let second = Task { try await pipeline.execute { _ in 2 } }
        #expect(await clock.nextSleepScheduled() == .at(.milliseconds(100)))
        let third = Task { try await pipeline.execute { _ in 3 } }
        #expect(await clock.nextSleepScheduled() == .at(.milliseconds(200)))
        // A fourth would wait 300 ms > 250 ms: rejected at once.
        #expect(await pipeline.executeOutcome { _ in 4 }.resilienceCode == .rateLimited)
        clock.advance(to: .at(.milliseconds(200)))
        #expect(try await second.value == 2)
        #expect(try await third.value == 3)
        #expect(events.names == ["rate_limit_delayed", "rate_limit_delayed", "rejected"])
    }

    @Test func aWaitIsNeverLongerThanTheDeadline() async throws {
        let limiter = try RateLimiter(.init(permitsPerSecond: 1, burst: 1, maxWait: .seconds(10)), clock: clock)
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).rateLimiter(limiter).build()
        _ = try await pipeline.execute { _ in 1 }
        let outcome = await Deadline.$current.withValue(Deadline(after: .milliseconds(500), on: clock)) {
            await pipeline.executeOutcome { _ in 2 }
        }
        #expect(outcome.resilienceCode == .rateLimited)
    }

    @Test func partitionsHaveTheirOwnBuckets() async throws {
        let limiter = try RateLimiter(.init(permitsPerSecond: 1, burst: 1, partitioned: true), clock: clock)
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).rateLimiter(limiter).build()
        #expect(try await pipeline.execute(partitionKey: "orders-app") { _ in 1 } == 1)
        #expect(await pipeline.executeOutcome(partitionKey: "orders-app") { _ in 1 }.resilienceCode == .rateLimited)
        #expect(try await pipeline.execute(partitionKey: "billing-app") { _ in 2 } == 2)
        #expect(limiter.partitionCount == 2)
    }

    @Test func idlePartitionsAreForgottenWhenTheLimitIsReached() throws {
        let limiter = try RateLimiter(
            .init(permitsPerSecond: 1, burst: 1, partitioned: true, maxPartitions: 2),
            clock: clock
        )
        #expect(limiter.tryAcquire(partition: "a") == nil)
        #expect(limiter.tryAcquire(partition: "b") == nil)
        clock.advance(by: .seconds(1))  // both buckets full again: idle
        #expect(limiter.tryAcquire(partition: "c") == nil)
        #expect(limiter.partitionCount == 1)
    }

    @Test func aCancelledWaiterGivesItsPermitBack() async throws {
        let limiter = try RateLimiter(.init(permitsPerSecond: 10, burst: 1, maxWait: .seconds(1)), clock: clock)
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).rateLimiter(limiter).build()
        _ = try await pipeline.execute { _ in 1 }
        let waiter = Task { await pipeline.executeOutcome { _ in 2 } }
        _ = await clock.nextSleepScheduled()
        waiter.cancel()
        #expect(await waiter.value.error is CancellationError)
        clock.advance(by: .milliseconds(100))
        #expect(limiter.tryAcquire() == nil)
    }

    @Test func invalidRateIsRejected() {
        #expect {
            _ = try RateLimiter(.init(permitsPerSecond: 0, burst: 0), clock: clock)
        } throws: { error in
            (error as? ConfigurationError)?.issues.map(\.option) == [
                "rate-limiter.permitsPerSecond", "rate-limiter.burst",
            ]
        }
    }

    @Test(arguments: [1e-300, 1e-10, 1e300, .infinity, -.infinity, .nan, -1])
    func aRateThatWouldTrapIsRejected(rate: Double) {
        // 1e-300 permits a second makes the second call's wait 1e300 s, beyond what a Duration holds.
        #expect {
            let limiter = try RateLimiter(.init(permitsPerSecond: rate, burst: 1), clock: clock)
            _ = limiter.tryAcquire()
            _ = limiter.tryAcquire()
        } throws: { error in
            (error as? ConfigurationError)?.issues.map(\.option) == ["rate-limiter.permitsPerSecond"]
        }
    }

    @Test func theSlowestAndFastestRatesStillAnswer() throws {
        let slow = try RateLimiter(.init(permitsPerSecond: 1e-9, burst: 1, maxWait: .seconds(1)), clock: clock)
        #expect(slow.tryAcquire() == nil)
        // 1e9 s (about 31 years), give or take a rounding of the Double.
        let wait = try #require(slow.tryAcquire())
        #expect(wait > .seconds(999_999_999) && wait < .seconds(1_000_000_001))
        let fast = try RateLimiter(.init(permitsPerSecond: 1e15, burst: Int.max), clock: clock)
        for _ in 0..<3 { #expect(fast.tryAcquire() == nil) }
    }
}
