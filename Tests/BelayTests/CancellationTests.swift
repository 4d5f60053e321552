import Belay
import BelayTestKit
import Testing

/// A caller whose task is cancelled gets `CancellationError`: never a value, never a
/// `timeout`, and an operation it had not started yet never runs (Polly's behaviour, issue 19).
@Suite(.timeLimit(.minutes(1))) struct CancellationTests {
    let clock = ManualClock()

    /// One pipeline per strategy, each set up so that an uncancelled call would run the
    /// operation (or, for fault injection, hand back its injected value).
    enum Strategy: String, CaseIterable, CustomStringConvertible {
        case none, timeout, cooperativeTimeout, retry, circuitBreaker, bulkhead, rateLimiter, fallback, hedging
        case faultInjection, adaptiveConcurrencyLimit

        var description: String { rawValue }

        func pipeline(on clock: ManualClock) throws -> ResiliencePipeline<Int> {
            let builder = ResiliencePipeline<Int>.Builder(clock: clock)
            switch self {
            case .none: return try builder.build()
            case .timeout: return try builder.timeout(.seconds(1)).build()
            case .cooperativeTimeout: return try builder.timeout(.seconds(1), enforcement: .cooperative).build()
            case .retry: return try builder.retry(.init(maxAttempts: 3, backoff: .constant(.zero))).build()
            case .circuitBreaker: return try builder.circuitBreaker(.init(minimumThroughput: 1)).build()
            case .bulkhead: return try builder.bulkhead(.init(maxConcurrent: 1)).build()
            case .rateLimiter:
                return try builder.rateLimiter(.init(permitsPerSecond: 1, burst: 1)).build()
            case .fallback: return try builder.fallback(.init(shouldHandle: { _ in true }) { _, _ in 7 }).build()
            case .hedging: return try builder.hedging(.init(delay: .fixed(.seconds(1)))).build()
            case .faultInjection:
                return try builder.faultInjection(.init(enabled: true, rate: 1, fault: .outcome { 7 })).build()
            case .adaptiveConcurrencyLimit:
                return try builder.adaptiveConcurrencyLimit(.init(initial: 2, minimum: 1, maximum: 2)).build()
            }
        }
    }

    /// Runs `body` in a task that is cancelled before `body` starts.
    private func cancelledCaller(
        _ body: @escaping @Sendable () async -> Result<Int, any Error>
    ) async -> Result<Int, any Error> {
        await Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await body()
        }.value
    }

    @Test(arguments: Strategy.allCases)
    func aCallerAlreadyCancelledGetsCancellationAndTheOperationNeverRuns(strategy: Strategy) async throws {
        let pipeline = try strategy.pipeline(on: clock)
        let calls = Tally()
        let outcome = await cancelledCaller {
            await pipeline.executeOutcome { _ in calls.increment() }
        }
        #expect(outcome.error is CancellationError, "got \(outcome)")
        #expect(calls.count == 0)
    }

    @Test func aCancelledCallerTakesNoProbeSlot() async throws {
        let breaker = try CircuitBreaker(.init(minimumThroughput: 1, breakDuration: .seconds(5)), clock: clock)
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).circuitBreaker(breaker).build()
        _ = await pipeline.executeOutcome { _ in throw TestError() }
        clock.advance(by: .seconds(5))
        let cancelled = await cancelledCaller { await pipeline.executeOutcome { _ in 1 } }
        #expect(cancelled.error is CancellationError)
        #expect(breaker.state == .open)  // the break's end is still unseen: no probe was admitted
        #expect(try await pipeline.execute { _ in 1 } == 1)
        #expect(breaker.state == .closed)
    }

    @Test func aCancelledCallerWhoseDeadlineHasPassedGetsCancellationNotATimeout() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock).timeout(.seconds(1)).build()
        let expired = Deadline(after: .zero, on: clock)
        let outcome = await cancelledCaller {
            await Deadline.$current.withValue(expired) { await pipeline.executeOutcome { _ in 1 } }
        }
        #expect(outcome.error is CancellationError, "got \(outcome)")
    }

    @Test func aCallerCancelledWhileTheCooperativeDeadlinePassesGetsCancellation() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .timeout(.seconds(1), enforcement: .cooperative)
            .build()
        let clock = self.clock
        let outcome = await Task {
            await pipeline.executeOutcome { _ in
                // The caller goes away, then the work fails after the deadline (as an HTTP
                // client does when its request is cancelled).
                withUnsafeCurrentTask { $0?.cancel() }
                clock.advance(by: .seconds(2))
                throw TestError()
            }
        }.value
        #expect(outcome.error is CancellationError, "got \(outcome)")
    }

    @Test func aCallerCancelledBetweenAttemptsGetsCancellationNotTheRetriedValue() async throws {
        let calls = Tally()
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .retry(.init(maxAttempts: 3, backoff: .constant(.zero), shouldRetry: { (try? $0.get()) == 503 }))
            .build()
        let outcome = await Task {
            await pipeline.executeOutcome { _ in
                calls.increment()
                withUnsafeCurrentTask { $0?.cancel() }
                return 503
            }
        }.value
        #expect(outcome.error is CancellationError, "got \(outcome)")
        #expect(calls.count == 1)
    }
}
