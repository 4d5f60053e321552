import Belay
import BelayGateway
import Synchronization

/// A tour of the resilience library against simulated flaky operations, printing every
/// decision each strategy takes and a summary. Runs offline in a few seconds.
public struct LibraryDemo: Sendable {
    /// Where each line of output goes.
    public let print: @Sendable (String) -> Void
    /// Multiplies every simulated duration (1 = real pace, smaller = faster).
    public let pace: Double

    /// Creates the demo.
    public init(pace: Double = 1, print: @escaping @Sendable (String) -> Void) {
        self.pace = pace
        self.print = print
    }

    private struct SimulatedFailure: Error, CustomStringConvertible {
        var description: String
    }

    private func scaled(_ duration: Duration) -> Duration { duration * pace }

    /// Runs every scene and returns the tally of decisions.
    @discardableResult
    public func run() async throws -> [String: Int] {
        let tally = TallySink(print: print)
        try await retryScene(tally)
        try await breakerScene(tally)
        try await timeoutScene(tally)
        try await bulkheadScene(tally)
        try await rateLimitScene(tally)
        let counts = tally.counts
        print("")
        print("Summary of decisions")
        for (name, count) in counts.sorted(by: { $0.key < $1.key }) {
            print("  \(name.padding(to: 22)) \(count)")
        }
        return counts
    }

    private func retryScene(_ sink: TallySink) async throws {
        print("== 1. Retry with full jitter: a payment API failing 2 of every 3 calls ==")
        let pipeline = try ResiliencePipeline<String>.Builder()
            .timeout(scaled(.seconds(2)), name: "total-timeout")
            .retry(
                .init(
                    maxAttempts: 4,
                    backoff: .exponentialJitter(base: scaled(.milliseconds(50)), cap: scaled(.seconds(1)))
                )
            )
            .telemetry(sink)
            .build()
        let calls = Mutex(0)
        for request in 1...3 {
            let value = try await pipeline.execute(correlationID: "charge-\(request)") { context in
                let call = calls.withLock {
                    $0 += 1
                    return $0
                }
                if call % 3 != 0 {
                    throw SimulatedFailure(description: "HTTP 503 from payments (attempt \(context.attempt))")
                }
                return "charge-\(request) succeeded on attempt \(context.attempt)"
            }
            print("   -> \(value)")
        }
    }

    private func breakerScene(_ sink: TallySink) async throws {
        print("")
        print("== 2. Circuit breaker: the shipping API goes down, then recovers ==")
        let breaker = try CircuitBreaker(
            .init(
                failureRatio: 0.5,
                minimumThroughput: 4,
                window: .seconds(10),
                breakDuration: scaled(.milliseconds(300)),
                name: "shipping-breaker"
            )
        )
        let pipeline = try ResiliencePipeline<String>.Builder().circuitBreaker(breaker).telemetry(sink).build()
        let outage = Mutex(true)
        for call in 1...8 {
            let outcome = await pipeline.executeOutcome(correlationID: "label-\(call)") { _ in
                if outage.withLock({ $0 }) { throw SimulatedFailure(description: "connection refused") }
                return "label printed"
            }
            describe(call: call, outcome)
        }
        print("   ... the shipping API comes back; waiting out the break")
        outage.withLock { $0 = false }
        try await Task.sleep(for: scaled(.milliseconds(350)))
        for call in 9...10 {
            describe(call: call, await pipeline.executeOutcome { _ in "label printed" })
        }
    }

    private func timeoutScene(_ sink: TallySink) async throws {
        print("")
        print("== 3. Hedging and timeouts: a quote API that sometimes stalls ==")
        let pipeline = try ResiliencePipeline<String>.Builder()
            .timeout(scaled(.milliseconds(500)), name: "quote-timeout")
            .hedging(.init(maxHedgedAttempts: 1, delay: .fixed(scaled(.milliseconds(100)))))
            .telemetry(sink)
            .build()
        let calls = Mutex(0)
        let quote = await pipeline.executeOutcome(correlationID: "quote-1") { context in
            let call = calls.withLock {
                $0 += 1
                return $0
            }
            if call == 1 { try await Task.sleep(for: scaled(.seconds(10))) }
            return "quote from attempt \(context.attempt)"
        }
        describe(call: 1, quote)
        let stalled = await pipeline.executeOutcome(correlationID: "quote-2") { _ in
            try await Task.sleep(for: scaled(.seconds(10)))
            return "never"
        }
        describe(call: 2, stalled)
    }

    private func bulkheadScene(_ sink: TallySink) async throws {
        print("")
        print("== 4. Bulkhead: 8 simultaneous calls, 3 slots, a queue of 2 ==")
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .bulkhead(.init(maxConcurrent: 3, maxQueue: 2, name: "crm-bulkhead"))
            .telemetry(sink)
            .build()
        let pace = self.pace
        let outcomes = await withTaskGroup(of: Result<Int, any Error>.self) { group in
            for call in 1...8 {
                group.addTask {
                    await pipeline.executeOutcome { _ in
                        try await Task.sleep(for: .milliseconds(100) * pace)
                        return call
                    }
                }
            }
            var outcomes: [Result<Int, any Error>] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let served = outcomes.filter { (try? $0.get()) != nil }.count
        print("   -> \(served) served, \(outcomes.count - served) rejected at once with bulkhead-full")
    }

    private func rateLimitScene(_ sink: TallySink) async throws {
        print("")
        print("== 5. Rate limiter: 8 simultaneous SMS to a provider allowing 20/s with a burst of 3 ==")
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .rateLimiter(
                .init(permitsPerSecond: 20 / pace, burst: 3, maxWait: scaled(.milliseconds(120)), name: "sms-rate")
            )
            .telemetry(sink)
            .build()
        let outcomes = await withTaskGroup(of: Result<Int, any Error>.self) { group in
            for call in 1...8 {
                group.addTask { await pipeline.executeOutcome(correlationID: "sms-\(call)") { _ in call } }
            }
            var outcomes: [Result<Int, any Error>] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        let sent = outcomes.filter { (try? $0.get()) != nil }.count
        print(
            "   -> \(sent) sent (3 at once, the rest paced 50 ms apart), \(outcomes.count - sent) rejected with rate-limited"
        )
    }

    private func describe<T>(call: Int, _ outcome: Result<T, any Error>) {
        switch outcome {
        case .success(let value):
            print("   call \(call): ok (\(value))")
        case .failure(let error as ResilienceError):
            let after = error.retryAfter.map { ", retry after \($0.formattedForHumans)" } ?? ""
            print("   call \(call): \(error.code) from \(error.strategy)\(after)")
        case .failure(let error):
            print("   call \(call): failed: \(error)")
        }
    }
}

/// Prints each decision and counts them by name.
private final class TallySink: ResilienceEventSink {
    private let counter = Mutex<[String: Int]>([:])
    let print: @Sendable (String) -> Void

    init(print: @escaping @Sendable (String) -> Void) {
        self.print = print
    }

    func receive(_ event: ResilienceEvent) {
        counter.withLock { $0[event.kind.name, default: 0] += 1 }
        print("   \(event)" + (event.correlationID.map { " {\($0)}" } ?? ""))
    }

    var counts: [String: Int] { counter.withLock { $0 } }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
