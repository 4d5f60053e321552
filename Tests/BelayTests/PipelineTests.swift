import Belay
import BelayTestKit
import Synchronization
import Testing

/// Records the order strategies run in.
struct TracingStrategy<Output: Sendable>: ResilienceStrategy {
    let name: String
    let log: RecordingLog

    func execute(_ context: ResilienceContext, next: ResiliencePipeline<Output>.Next) async -> Result<Output, any Error>
    {
        log.append("enter \(name)")
        let outcome = await next(context)
        log.append("leave \(name)")
        return outcome
    }
}

final class RecordingLog: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

@Suite(.timeLimit(.minutes(1))) struct PipelineTests {
    @Test func theFirstStrategyAddedIsTheOutermost() async throws {
        let log = RecordingLog()
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .strategy(TracingStrategy<Int>(name: "a", log: log))
            .strategy(TracingStrategy<Int>(name: "b", log: log))
            .build()
        _ = try await pipeline.execute { _ in
            log.append("operation")
            return 1
        }
        #expect(log.all == ["enter a", "enter b", "operation", "leave b", "leave a"])
        #expect(pipeline.count == 2)
    }

    @Test func anEmptyPipelineRunsTheOperationOnce() async throws {
        let calls = Tally()
        #expect(try await ResiliencePipeline<Int>.empty.execute { _ in calls.increment() } == 1)
        await #expect(throws: TestError.self) {
            try await ResiliencePipeline<Int>.empty.execute { _ in throw TestError() }
        }
    }

    @Test func theContextCarriesCorrelationIdAndPartitionKey() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder().retry().build()
        _ = try await pipeline.execute(correlationID: "req-1", partitionKey: "orders-app") { context in
            #expect(context.correlationID == "req-1")
            #expect(context.partitionKey == "orders-app")
            #expect(context.attempt == 1)
            return 1
        }
    }

    @Test func everyInvalidOptionIsReportedWithItsPath() {
        let clock = ManualClock()
        #expect {
            _ = try ResiliencePipeline<Int>.Builder(clock: clock)
                .timeout(.seconds(-1), name: "total")
                .retry(.init(maxAttempts: 0))
                .circuitBreaker(.init(failureRatio: -0.1))
                .bulkhead(.init(maxConcurrent: 0))
                .rateLimiter(.init(permitsPerSecond: -1, burst: 1))
                .hedging(.init(maxHedgedAttempts: 0))
                .faultInjection(.init(rate: 2, fault: .outcome { 0 }))
                .build()
        } throws: { error in
            (error as? ConfigurationError)?.issues.map(\.option) == [
                "total.timeout", "retry.maxAttempts", "circuit-breaker.failureRatio", "circuit-breaker.failureRatio",
                "bulkhead.maxConcurrent", "rate-limiter.permitsPerSecond", "hedging.maxHedgedAttempts",
                "fault-injection.rate",
            ]
        }
    }

    @Test func aTypicalHTTPPipelineComposes() async throws {
        let clock = ManualClock()
        let events = RecordingEventSink()
        let breaker = try CircuitBreaker(.init(minimumThroughput: 100), clock: clock)
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .timeout(.seconds(10), name: "total")
            .retry(
                .init(maxAttempts: 3, backoff: .constant(.milliseconds(100)), shouldRetry: { (try? $0.get()) == 503 })
            )
            .circuitBreaker(breaker, isFailure: { (try? $0.get()) == 503 })
            .bulkhead(.init(maxConcurrent: 10))
            .timeout(.seconds(2), name: "attempt")
            .telemetry(events)
            .build()
        let calls = Tally()
        let task = Task { try await pipeline.execute { _ in calls.increment() == 1 ? 503 : 200 } }
        // total timer, attempt timer, backoff; then the second attempt's timer.
        var sleeps: [ManualClock.Instant] = []
        for _ in 0..<3 { sleeps.append(await clock.nextSleepScheduled()) }
        #expect(sleeps.sorted() == [.at(.milliseconds(100)), .at(.seconds(2)), .at(.seconds(10))])
        clock.advance(to: .at(.milliseconds(100)))
        #expect(try await task.value == 200)
        #expect(calls.count == 2)
        #expect(events.names == ["retry_scheduled"])
    }
}
