import Belay
import BelayTestKit
import Testing

/// Pipelines and shared objects by name: shared between pipelines, kept across a replacement
/// with unchanged options, made afresh with new ones, and a failed replacement changes nothing.
@Suite(.timeLimit(.minutes(1))) struct ResilienceRegistryTests {
    let clock = ManualClock()
    let breakerOptions = CircuitBreaker<ManualClock>.Configuration(
        failureRatio: 0.5,
        minimumThroughput: 2,
        breakDuration: .seconds(30),
        name: "crm"
    )

    /// Registers `name` as a pipeline with the shared breaker `crm` (and, if given, the
    /// shared adaptive limit `crm-limit`).
    @discardableResult
    func register(
        _ registry: ResilienceRegistry<ManualClock>,
        _ name: String,
        breaker: CircuitBreaker<ManualClock>.Configuration,
        limit: AdaptiveConcurrencyLimit<ManualClock>.Configuration? = nil,
        retries: Int = 1
    ) throws -> ResiliencePipeline<Int> {
        try registry.register(name, for: Int.self) { builder, shared throws(ConfigurationError) in
            var builder = builder.retry(.init(maxAttempts: retries, backoff: .constant(.zero)))
                .circuitBreaker(try shared.circuitBreaker("crm", breaker))
            if let limit {
                builder = builder.adaptiveConcurrencyLimit(try shared.adaptiveConcurrencyLimit("crm-limit", limit))
            }
            return builder
        }
    }

    func fail(_ pipeline: ResiliencePipeline<Int>, times: Int) async {
        for _ in 0..<times {
            _ = await pipeline.executeOutcome { _ in throw TestError() }
        }
    }

    @Test func pipelinesThatAskForABreakerWithTheSameOptionsShareIt() async throws {
        let registry = ResilienceRegistry(clock: clock)
        let orders = try register(registry, "orders", breaker: breakerOptions)
        let quotes = try register(registry, "quotes", breaker: breakerOptions)
        #expect(registry.names == ["orders", "quotes"])
        await fail(orders, times: 2)
        #expect(try registry.shared.circuitBreaker("crm", breakerOptions).state == .open)
        // The other pipeline is refused by the breaker the first one opened.
        let refused = await quotes.executeOutcome { _ in 1 }
        #expect((refused.error as? ResilienceError)?.code == .circuitOpen)
        // And a pipeline asked for by name is the registered one.
        let again = await (try registry.pipeline("quotes", for: Int.self)).executeOutcome { _ in 1 }
        #expect((again.error as? ResilienceError)?.code == .circuitOpen)
    }

    @Test func aReplacementWithUnchangedBreakerOptionsKeepsItsStateAndNewOptionsStartAfresh() async throws {
        let registry = ResilienceRegistry(clock: clock)
        await fail(try register(registry, "orders", breaker: breakerOptions), times: 2)
        // A new policy for the pipeline (three attempts) with the same breaker: still open.
        let replaced = try register(registry, "orders", breaker: breakerOptions, retries: 3)
        #expect(try registry.shared.circuitBreaker("crm", breakerOptions).state == .open)
        let refused = await replaced.executeOutcome { _ in 1 }
        #expect((refused.error as? ResilienceError)?.code == .circuitOpen)

        // A callback added to the options is not an option: the breaker is kept.
        var withCallback = breakerOptions
        withCallback.onStateChange = { _ in }
        try register(registry, "orders", breaker: withCallback)
        #expect(try registry.shared.circuitBreaker("crm", breakerOptions).state == .open)

        // Another break duration: a new breaker, closed, for the new policy.
        var longer = breakerOptions
        longer.breakDuration = .seconds(60)
        let renewed = try register(registry, "orders", breaker: longer)
        #expect(try await renewed.execute { _ in 7 } == 7)
        #expect(try registry.shared.circuitBreaker("crm", longer).state == .closed)
    }

    @Test func aReplacementWithUnchangedLimitOptionsKeepsTheLearntLimit() async throws {
        let registry = ResilienceRegistry(clock: clock)
        let limitOptions = AdaptiveConcurrencyLimit<ManualClock>.Configuration(
            algorithm: .aimd(backoff: 0.5),
            initial: 8,
            minimum: 1,
            maximum: 16,
            name: "crm-limit"
        )
        let pipeline = try register(registry, "orders", breaker: breakerOptions, limit: limitOptions)
        // A timeout of the dependency is a drop: the limit halves.
        _ = await pipeline.executeOutcome { _ in
            throw ResilienceError(code: .timeout, strategy: "attempt-timeout", message: "2s passed")
        }
        let limiter = try registry.shared.adaptiveConcurrencyLimit("crm-limit", limitOptions)
        #expect(limiter.limit == 4)
        try register(registry, "orders", breaker: breakerOptions, limit: limitOptions, retries: 2)
        #expect(try registry.shared.adaptiveConcurrencyLimit("crm-limit", limitOptions).limit == 4)
        var wider = limitOptions
        wider.maximum = 32
        try register(registry, "orders", breaker: breakerOptions, limit: wider)
        #expect(try registry.shared.adaptiveConcurrencyLimit("crm-limit", wider).limit == 8)
    }

    @Test func anInvalidReplacementChangesNothing() async throws {
        let registry = ResilienceRegistry(clock: clock)
        await fail(try register(registry, "orders", breaker: breakerOptions), times: 2)
        var other = breakerOptions
        other.breakDuration = .seconds(60)
        // New breaker options with an invalid retry: refused whole, every invalid option named.
        #expect {
            try register(registry, "orders", breaker: other, retries: 0)
        } throws: { error in
            (error as? ConfigurationError)?.issues.map(\.option) == ["retry.maxAttempts"]
        }
        // The old pipeline and its open breaker stay; the new breaker was never stored.
        let kept = await (try registry.pipeline("orders", for: Int.self)).executeOutcome { _ in 1 }
        #expect((kept.error as? ResilienceError)?.code == .circuitOpen)
        #expect(try registry.shared.circuitBreaker("crm", breakerOptions).state == .open)
    }

    @Test func anUnknownNameOrOutputIsAnErrorNamingIt() throws {
        let registry = ResilienceRegistry(clock: clock)
        try register(registry, "orders", breaker: breakerOptions)
        #expect {
            _ = try registry.pipeline("refunds", for: Int.self)
        } throws: { error in
            (error as? ConfigurationError)?.description
                == "invalid resilience configuration: registry.refunds: no pipeline is registered under this name for Int"
        }
        #expect(throws: ConfigurationError.self) { _ = try registry.pipeline("orders", for: String.self) }
        #expect(registry.remove("orders", for: Int.self))
        #expect(!registry.remove("orders", for: Int.self))
        #expect(registry.names.isEmpty)
    }

    @Test func sharedBulkheadsAndRateLimitersAreKeptWhileTheirOptionsAre() throws {
        let registry = ResilienceRegistry(clock: clock)
        let bulkhead = try registry.shared.bulkhead("crm", .init(maxConcurrent: 4))
        #expect(try registry.shared.bulkhead("crm", .init(maxConcurrent: 4)) === bulkhead)
        #expect(try registry.shared.bulkhead("crm", .init(maxConcurrent: 8)) !== bulkhead)
        let limiter = try registry.shared.rateLimiter("crm", .init(permitsPerSecond: 10, burst: 10))
        #expect(try registry.shared.rateLimiter("crm", .init(permitsPerSecond: 10, burst: 10)) === limiter)
        // Names are per kind: a bulkhead and a rate limiter may share one.
        #expect(try registry.shared.rateLimiter("crm", .init(permitsPerSecond: 5, burst: 10)) !== limiter)
        #expect {
            _ = try registry.shared.bulkhead("crm", .init(maxConcurrent: 0))
        } throws: { error in
            (error as? ConfigurationError)?.issues.map(\.option) == ["bulkhead.maxConcurrent"]
        }
    }

    @Test func aStageIsStoredOnlyWhenCommittedAndForgottenNamesStartAfresh() async throws {
        let registry = ResilienceRegistry(clock: clock)
        let breaker = try registry.shared.circuitBreaker("crm", breakerOptions)
        var other = breakerOptions
        other.breakDuration = .seconds(60)
        // A stage finds the registry's object for the same options, and keeps a new one aside.
        let stage = registry.stage()
        #expect(try stage.circuitBreaker("crm", breakerOptions) === breaker)
        let staged = try stage.circuitBreaker("crm", other)
        #expect(staged !== breaker)
        #expect(try stage.circuitBreaker("crm", other) === staged)
        // Not committed: the registry still has the old one, and dropping the stage changes nothing.
        #expect(try registry.shared.circuitBreaker("crm", breakerOptions) === breaker)
        // Committed: the staged one replaces it.
        let second = registry.stage()
        let committed = try second.circuitBreaker("crm", other)
        registry.commit(second)
        #expect(try registry.shared.circuitBreaker("crm", other) === committed)
        // A name no longer kept starts afresh; one kept stays.
        let bulkhead = try registry.shared.bulkhead("shipping", .init(maxConcurrent: 4))
        registry.removeShared(except: ["shipping"])
        #expect(try registry.shared.bulkhead("shipping", .init(maxConcurrent: 4)) === bulkhead)
        #expect(try registry.shared.circuitBreaker("crm", other) !== committed)
    }
}
