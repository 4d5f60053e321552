import BelayTestUpstream
import NIOHTTP1
import Synchronization
import Testing

/// The adaptive limit against a provider of fixed capacity (``UpstreamBehavior/capacity``: 4
/// workers of 20 ms, a waiting line of 4, 429 beyond), through a running gateway: the same
/// 24 callers overflow it with a fixed bulkhead and stay near it with the adaptive limit.
/// Counts, not timings; the bounds leave room for a busy machine (it runs in scripts/test.sh's
/// serial phase).
@Suite(.timeLimit(.minutes(1))) struct CapacityGatewayTests {
    static let common = """
        timeouts: { connect: 5s, attempt: 5s, total: 10s }
        retry: { max_attempts: 1 }
        circuit_breaker: { minimum_throughput: 100000 }
        """
    static let provider = UpstreamBehavior(latencyMilliseconds: 20, capacity: 4, capacityQueue: 4)

    /// 24 callers, 30 calls each; the statuses the callers got, and the limit at the end (if adaptive).
    static func overflow(_ bulkhead: String) async throws -> (statuses: [UInt], refused: Int, limit: Int?) {
        final class Outcome: Sendable {
            let value = Mutex<(statuses: [UInt], refused: Int, limit: Int?)>(([], 0, nil))
        }
        let outcome = Outcome()
        try await GatewayHarness.run(config: .pay(policy: common + "\n" + bulkhead)) { gateway in
            gateway.upstreams[0].setBehavior(provider)
            let statuses = try await withThrowingTaskGroup(of: [UInt].self) { group in
                for _ in 0..<24 {
                    group.addTask {
                        var seen: [UInt] = []
                        for _ in 0..<30 {
                            seen.append(UInt(try await gateway.send(.GET, "/proxy/pay/v1/quote").status))
                        }
                        return seen
                    }
                }
                var all: [UInt] = []
                for try await seen in group { all += seen }
                return all
            }
            let state = try await gateway.send(.GET, "/v1/upstreams/pay")
            let concurrency = state.problem?["concurrency"] as? [String: Any]
            let refused = gateway.upstreams[0].capacityCounts().refused
            let limit = concurrency?["limit"] as? Int
            outcome.value.withLock { $0 = (statuses, refused, limit) }
        }
        return outcome.value.withLock { $0 }
    }

    @Test func theAdaptiveLimitKeepsCallersJustUnderAProvidersCapacity() async throws {
        let fixed = try await Self.overflow("bulkhead: { max_concurrent: 100 }")
        let adaptive = try await Self.overflow(
            "bulkhead: { adaptive: { algorithm: aimd, initial: 20, min: 1, max: 64 }, max_queue: 100, max_wait: 5s }"
        )
        #expect(fixed.statuses.count == 720 && adaptive.statuses.count == 720)
        let fixedRefused = fixed.statuses.filter { $0 == 429 }.count
        let adaptiveRefused = adaptive.statuses.filter { $0 == 429 }.count
        // Fixed: 24 at once into 8 places, so most calls are refused by the provider.
        #expect(fixedRefused > 720 / 3, "fixed: \(fixedRefused) of 720 refused")
        // Adaptive: the limit learns the 8 places; what the provider refuses is a small share,
        // the learning at the start mostly, and every other call succeeds.
        #expect(adaptiveRefused * 2 < fixedRefused, "adaptive \(adaptiveRefused), fixed \(fixedRefused)")
        #expect(adaptiveRefused < 720 / 4, "adaptive: \(adaptiveRefused) of 720 refused")
        #expect(adaptive.statuses.allSatisfy { $0 == 200 || $0 == 429 })
        #expect(adaptive.refused == adaptiveRefused && fixed.refused == fixedRefused)
        let limit = try #require(adaptive.limit)
        #expect(limit >= 1 && limit <= 16, "the limit ended at \(limit)")
    }
}
