import BelayGateway
import BelayHTTP
import BelayTestUpstream
import Foundation
import NIOHTTP1
import Testing

/// Hedged reads through a running gateway (`upstreams.<name>.hedging`), against a test upstream
/// whose every tenth answer is slow. Runs with the suites that start processes, one at a time:
/// it compares latencies, which a busy machine's other tests would blur.
@Suite(.timeLimit(.minutes(1))) struct HedgingGatewayTests {
    static let policy = """
        timeouts: { attempt: 5s, total: 10s }
        hedging: { delay: 60ms }
        """

    /// `GET /v1/requests/{id}` as JSON.
    func trail(_ gateway: GatewayHarness, _ id: String) async throws -> [String: Any] {
        let answer = try await gateway.send(.GET, "/v1/requests/\(id)")
        return try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
    }

    @Test func theSlowTenthIsHedgedSoItsCallersDoNotWaitAndTheLoadBarelyGrows() async throws {
        try await GatewayHarness.run(config: .pay(policy: Self.policy)) { gateway in
            // 50 ms an answer; every tenth request takes a second more.
            gateway.upstreams[0].setBehavior(
                UpstreamBehavior(latencyMilliseconds: 50, slowEvery: 10, slowMilliseconds: 1_000)
            )
            var latencies: [Duration] = []
            var hedged: [String] = []
            let clock = ContinuousClock()
            for index in 0..<50 {
                let start = clock.now
                let answer = try await gateway.send(.GET, "/proxy/pay/v1/quote/\(index)")
                latencies.append(start.duration(to: clock.now))
                #expect(answer.status == 200)
                if answer.header("Belay-Attempts") == "2" { hedged.append(answer.header("Belay-Request-Id") ?? "") }
            }
            // The upstream's 5th, 10th… request of 55 was slow: each such call was answered by its hedge.
            #expect(hedged.count == 5)
            #expect(gateway.upstreams[0].arrivalCount == 55)  // 10 % more load, not double
            let sorted = latencies.sorted()
            let p50 = sorted[24]
            let p99 = sorted[49]
            #expect(p99 < .milliseconds(1_000), "a caller waited for a slow answer: \(sorted)")
            #expect(p99 < p50 * 3, "p50 \(p50), p99 \(p99)")

            // The trail shows the hedge: two attempts, the slower one cancelled, and why.
            let record = try await trail(gateway, try #require(hedged.first))
            let attempts = try #require(record["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["number"] as? Int } == [1, 2])
            #expect(attempts.map { $0["status"] as? Int } == [nil, 200])
            #expect(attempts.first?["failure"] as? String == "cancelled")
            let decisions = try #require(record["decisions"] as? [[String: Any]])
            #expect(decisions.map { $0["kind"] as? String } == ["hedge_launched"])
            #expect(decisions.first?["attempt"] as? Int == 2)
            #expect(
                (decisions.first?["description"] as? String)?.hasPrefix("hedged: attempt 2 launched after 60") == true
            )
        }
    }

    @Test func anUnkeyedWriteIsNeverHedged() async throws {
        try await GatewayHarness.run(config: .pay(policy: Self.policy)) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(latencyMilliseconds: 300))
            let answer = try await gateway.send(.POST, "/proxy/pay/v1/orders", body: #"{"order":1}"#)
            #expect(answer.status == 200)
            #expect(answer.header("Belay-Attempts") == "1")
            #expect(gateway.upstreams[0].requests.count == 1)
        }
    }

    @Test func aKeyedWriteToAnUpstreamThatHonoursKeysIsHedgedWithTheSameKey() async throws {
        let policy = Self.policy + "\nidempotency: { header: Idempotency-Key }"
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            // The second request (the write) is slow, the third (its hedge) is not.
            gateway.upstreams[0].setBehavior(UpstreamBehavior(slowEvery: 2, slowMilliseconds: 300))
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/ping").status == 200)
            let answer = try await gateway.send(
                .POST,
                "/proxy/pay/v1/orders",
                headers: [("Idempotency-Key", "order-7")],
                body: #"{"order":7}"#
            )
            #expect(answer.status == 200)
            #expect(answer.header("Belay-Attempts") == "2")
            #expect(gateway.upstreams[0].arrivalCount == 3)
            let writes = gateway.upstreams[0].requests.filter { $0.path == "/v1/orders" }
            #expect(!writes.isEmpty && writes.allSatisfy { $0.header("idempotency-key") == "order-7" })
        }
    }

    /// The paths of the problems of `hedging` (empty when it loads), and the policy it makes.
    private static func load(_ hedging: String) -> (paths: [String], policy: UpstreamPolicy.Hedging?) {
        do {
            let config = try ConfigLoader(environment: [:]).load(
                yaml: "upstreams: { pay: { endpoints: [\"http://a.example\"], hedging: \(hedging) } }"
            )
            return ([], config.upstreams.first?.policy.hedging)
        } catch {
            return (error.issues.map(\.path), nil)
        }
    }

    @Test func hedgingOptionsLoadAndEveryMistakeNamesItsKeyPath() {
        #expect(Self.load("{ delay: p95, max_extra: 2 }").policy == .init(delay: .percentile(0.95), maxExtra: 2))
        #expect(Self.load("{ delay: 250ms }").policy == .init(delay: .fixed(.milliseconds(250)), maxExtra: 1))
        for (hedging, path) in [
            ("{ delay: p100 }", "upstreams.pay.hedging.delay"),
            ("{ delay: p0 }", "upstreams.pay.hedging.delay"),
            ("{ delay: fast }", "upstreams.pay.hedging.delay"),
            ("{ delay: 0s }", "upstreams.pay.hedging.delay"),
            ("{ max_extra: 1 }", "upstreams.pay.hedging.delay"),
            ("{ delay: 50ms, max_extra: 4 }", "upstreams.pay.hedging.max_extra"),
            ("{ delay: 50ms, extra: 1 }", "upstreams.pay.hedging.extra"),
        ] {
            #expect(Self.load(hedging).paths == [path], "\(hedging)")
        }
    }
}
