import Belay
import Benchmark

// Success-path cost of each Belay strategy, alone and composed, on ContinuousClock with
// Output = Int. Every benchmark runs 1000 pipeline executions per sample
// (`scalingFactor: .kilo`), so the table shows per-execution values (marked `*`).
// Pipelines and the operation closure are built once, outside the measured loop.
// Compare each row with `empty` (a pipeline with no strategies) for the strategy's own cost.

/// The operation every pipeline runs: returns at once, never throws.
let operation: ResiliencePipeline<Int>.Operation = { _ in 1 }

/// An error for the call that trips the breaker.
struct TripError: Error {}

typealias Builder = ResiliencePipeline<Int>.Builder<ContinuousClock>

/// Builds a pipeline or stops the benchmark with the configuration error.
func pipeline(_ configure: (Builder) throws -> Builder) -> ResiliencePipeline<Int> {
    do {
        return try configure(ResiliencePipeline<Int>.Builder()).build()
    } catch {
        fatalError("invalid benchmark pipeline: \(error)")
    }
}

/// A rate limiter that always has a token: 10^12 permits/s, burst 10^6.
let neverWaits = RateLimiter<ContinuousClock>.Configuration(permitsPerSecond: 1e12, burst: 1_000_000)

/// Registers a benchmark that runs `pipeline` on the success path 1000 times per sample.
func successBenchmark(_ name: String, _ pipeline: ResiliencePipeline<Int>) {
    Benchmark(name) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try await pipeline.execute(operation))
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 10,
        scalingFactor: .kilo,  // 1000 executions per sample; results are per execution
        maxDuration: .seconds(2),
        maxIterations: 5_000
    )

    // Baseline: the pipeline machinery alone (context, Deadline.current read, the operation).
    successBenchmark("empty", .empty)

    // One strategy each. The configurations are spelled out (`Bulkhead.Configuration()`):
    // a bare `.init()` would pick the overload taking a shared `Bulkhead`/`CircuitBreaker`
    // object, whose initialiser throws. The timeout (10 s) and hedging delay (1 s) never fire.
    successBenchmark("timeout", pipeline { $0.timeout(.seconds(10)) })
    successBenchmark("timeout-cooperative", pipeline { $0.timeout(.seconds(10), enforcement: .cooperative) })
    successBenchmark("retry", pipeline { $0.retry() })
    successBenchmark("retry+budget", pipeline { try $0.retry(.init(budget: RetryBudget(.init()))) })
    successBenchmark("circuitBreaker", pipeline { $0.circuitBreaker(CircuitBreaker<ContinuousClock>.Configuration()) })
    successBenchmark("bulkhead", pipeline { $0.bulkhead(Bulkhead.Configuration()) })
    successBenchmark(
        "adaptiveLimit-aimd",
        pipeline { $0.adaptiveConcurrencyLimit(.init(algorithm: .aimd())) }
    )
    successBenchmark(
        "adaptiveLimit-gradient",
        pipeline { $0.adaptiveConcurrencyLimit(.init(algorithm: .gradient())) }
    )
    successBenchmark("rateLimiter", pipeline { $0.rateLimiter(neverWaits) })
    successBenchmark("fallback", pipeline { $0.fallback(.init { _, _ in 0 }) })
    successBenchmark("hedging", pipeline { $0.hedging(.init(delay: .fixed(.seconds(1)))) })
    successBenchmark(
        "faultInjection",
        pipeline { $0.faultInjection(.init(enabled: false, fault: .error { TripError() })) }
    )

    // Composed: the typical outbound stack, and the same without the timeout (which needs child tasks).
    successBenchmark(
        "pipeline5",
        pipeline {
            $0.timeout(.seconds(10))
                .retry()
                .circuitBreaker(CircuitBreaker<ContinuousClock>.Configuration())
                .bulkhead(Bulkhead.Configuration())
                .rateLimiter(neverWaits)
        }
    )
    successBenchmark(
        "pipeline5-cooperative",
        pipeline {
            $0.timeout(.seconds(10), enforcement: .cooperative)
                .retry()
                .circuitBreaker(CircuitBreaker<ContinuousClock>.Configuration())
                .bulkhead(Bulkhead.Configuration())
                .rateLimiter(neverWaits)
        }
    )
    successBenchmark(
        "pipeline4-no-timeout",
        pipeline {
            $0.retry()
                .circuitBreaker(CircuitBreaker<ContinuousClock>.Configuration())
                .bulkhead(Bulkhead.Configuration())
                .rateLimiter(neverWaits)
        }
    )

    // Rejection by a breaker that tripped (state open, not isolated): one failing call opens
    // it for an hour in `setup`; every measured call is then rejected with `circuit-open`.
    let breaker: CircuitBreaker<ContinuousClock>
    do {
        breaker = try CircuitBreaker(
            .init(
                minimumThroughput: 1,
                breakDuration: .seconds(3600),
                maxBreakDuration: .seconds(3600),
                consecutiveFailures: 1
            )
        )
    } catch {
        fatalError("invalid breaker: \(error)")
    }
    let guarded = pipeline { $0.circuitBreaker(breaker) }
    Benchmark(
        "breakerOpenRejection",
        closure: { benchmark in
            for _ in benchmark.scaledIterations {
                do {
                    blackHole(try await guarded.execute(operation))
                    benchmark.error("breakerOpenRejection: the call was not rejected")
                } catch {
                    blackHole(error)
                }
            }
        },
        setup: {
            _ = try? await guarded.execute { _ in throw TripError() }
            guard breaker.state == .open else {
                fatalError("breakerOpenRejection: the breaker did not open (state \(breaker.state))")
            }
            do {
                _ = try await guarded.execute(operation)
                fatalError("breakerOpenRejection: a call went through the open breaker")
            } catch let error as ResilienceError where error.code == .circuitOpen {
                // The path the benchmark measures.
            }
        }
    )
}
