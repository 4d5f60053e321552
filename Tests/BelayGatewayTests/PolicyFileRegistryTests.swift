import Belay
import BelayGateway
import BelayHTTP
import Synchronization
import Testing

/// An application running its own calls under the policies of the gateway's `belay.yaml`,
/// through a `ResilienceRegistry`: the file's options apply, and loading a changed file keeps
/// the breaker's and the adaptive limit's state where their options are unchanged. Counts, no
/// timings: every outcome is thrown or returned at once.
@Suite(.timeLimit(.minutes(1))) struct PolicyFileRegistryTests {
    struct Refused: Error {}

    /// The code of the resilience error `outcome` failed with, if it did.
    static func code(_ outcome: Result<Int, any Error>) -> ResilienceError.Code? {
        guard case .failure(let error as ResilienceError) = outcome else { return nil }
        return error.code
    }

    /// Counts calls across the pipeline's attempts.
    final class Counter: Sendable {
        private let count = Mutex(0)
        /// This call's number, from 1.
        func next() -> Int {
            count.withLock {
                $0 += 1
                return $0
            }
        }
    }

    static func file(attempt: String = "1m", failureRatio: Double = 0.6) -> String {
        """
        upstreams:
          crm:
            endpoints: ["https://crm.example.com"]
            timeouts: { attempt: \(attempt), total: 10m }
            retry: { max_attempts: 2, base: 1ms, cap: 1ms, budget: 1 }
            circuit_breaker: { failure_ratio: \(failureRatio), minimum_throughput: 2, window: 60s, break: 10m }
            bulkhead: { adaptive: { algorithm: aimd, initial: 8, min: 2, max: 16 }, max_queue: 0, max_wait: 0s }
        """
    }

    /// Registers every upstream of `yaml` in `registry` as a pipeline for `Int`.
    static func load(_ yaml: String, into registry: ResilienceRegistry<ContinuousClock>) throws -> [UpstreamPolicy] {
        let policies = try ConfigLoader(environment: [:]).load(yaml: yaml).upstreams.map(\.policy)
        for policy in policies { try registry.register(policy, for: Int.self) }
        return policies
    }

    @Test func anApplicationRunsTheGatewaysPolicyFileAndALoadedChangeKeepsWhatIsUnchanged() async throws {
        let registry = ResilienceRegistry()
        let policy = try #require(try Self.load(Self.file(), into: registry).first)
        let pipeline = try registry.pipeline("crm", for: Int.self)
        let limitOptions = try #require(policy.adaptiveConcurrencyConfiguration)
        func limit() throws -> Int { try registry.shared.adaptiveConcurrencyLimit("crm", limitOptions).limit }
        func breaker() throws -> CircuitState {
            try registry.shared.circuitBreaker("crm", policy.breakerConfiguration).state
        }

        // The file's retry: a second attempt after a timeout of the dependency, which lowers
        // the AIMD limit (8 → 7); one failure in two calls keeps the breaker closed (0.5 < 0.6).
        let calls = Counter()
        let recovered = try await pipeline.execute { _ in
            guard calls.next() > 1 else {
                throw ResilienceError(code: .timeout, strategy: "crm-client", message: "no answer")
            }
            return 1
        }
        #expect(recovered == 1)
        #expect(calls.next() == 3)
        #expect(try limit() == 7)
        #expect(try breaker() == .closed)
        // Another failure: two in three, the breaker opens, and refuses the next call.
        _ = await pipeline.executeOutcome { _ in throw Refused() }
        #expect(try breaker() == .open)
        let refused = await pipeline.executeOutcome { _ in 1 }
        #expect(Self.code(refused) == .circuitOpen)

        // An HTTP client for the same upstream from the same registry shares both.
        let client = try UpstreamClient(policy: policy, shared: registry.shared)
        #expect(client.breaker.state == .open)
        try await client.shutdown()

        // The file again with another attempt timeout: the breaker stays open, the limit learnt.
        _ = try Self.load(Self.file(attempt: "2m"), into: registry)
        let reloaded = await (try registry.pipeline("crm", for: Int.self)).executeOutcome { _ in 1 }
        #expect(Self.code(reloaded) == .circuitOpen)
        #expect(try limit() == 7)

        // New breaker options: a new breaker, closed; the limit's options are unchanged, so it stays.
        let changed = try #require(try Self.load(Self.file(attempt: "2m", failureRatio: 0.9), into: registry).first)
        #expect(try await (try registry.pipeline("crm", for: Int.self)).execute { _ in 1 } == 1)
        #expect(try registry.shared.circuitBreaker("crm", changed.breakerConfiguration).state == .closed)
        #expect(try limit() == 7)
    }
}
