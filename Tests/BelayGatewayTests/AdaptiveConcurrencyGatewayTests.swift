import BelayTestUpstream
import Foundation
import NIOHTTP1
import Testing

/// The adaptive concurrency limit end to end: an upstream answering 503 lowers it, and calls
/// beyond it are answered `concurrency-limited` without reaching the upstream. Counts, never
/// timings: AIMD lowers the limit once per 503 answered to a call admitted after the last
/// decrease, and `max_wait: 0s` rejects at once. The timeouts are generous: on 2 busy cores a
/// 503 answered late must still be a 503, not a 504 (a timeout, which lowers the limit too).
@Suite(.timeLimit(.minutes(1))) struct AdaptiveConcurrencyGatewayTests {
    static let policy = """
        timeouts: { connect: 5s, attempt: 5s, total: 5s }
        retry: { max_attempts: 1 }
        circuit_breaker: { minimum_throughput: 1000 }
        bulkhead: { adaptive: { algorithm: aimd, initial: 8, min: 2, max: 16 }, max_queue: 0, max_wait: 0s }
        """

    /// The gradient holds the limit at `min` until it has measured the round trip without load
    /// (20 calls), then starts from `initial`; the minimum it measured is shown.
    @Test func theGradientMeasuresTheRoundTripWithoutLoadFirst() async throws {
        let policy = """
            timeouts: { connect: 5s, attempt: 5s, total: 5s }
            retry: { max_attempts: 1 }
            bulkhead: { adaptive: { algorithm: gradient, initial: 8, min: 2, max: 16 }, max_queue: 4, max_wait: 5s }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            func concurrency() async throws -> [String: Any] {
                let state = try await gateway.send(.GET, "/v1/upstreams/pay")
                return try #require(state.problem?["concurrency"] as? [String: Any])
            }
            let start = try await concurrency()
            #expect(start["algorithm"] as? String == "gradient")
            #expect(start["limit"] as? Int == 2)
            #expect(start["minimum_rtt_ms"] is NSNull)
            for _ in 0..<20 {
                #expect(try await gateway.send(.GET, "/proxy/pay/v1/orders").status == 200)
            }
            let measured = try await concurrency()
            #expect(measured["limit"] as? Int == 8)
            let minimum = try #require((measured["minimum_rtt_ms"] as? NSNumber)?.doubleValue)
            #expect(minimum > 0)
        }
    }

    @Test func theLimitFallsAsTheUpstreamAnswers503AndCallsBeyondItAreConcurrencyLimited() async throws {
        try await GatewayHarness.run(config: .pay(policy: Self.policy)) { gateway in
            let upstream = gateway.upstreams[0]
            func concurrency() async throws -> [String: Any] {
                let state = try await gateway.send(.GET, "/v1/upstreams/pay")
                return try #require(state.problem?["concurrency"] as? [String: Any])
            }
            let start = try await concurrency()
            #expect(start["limit"] as? Int == 8)
            #expect(start["algorithm"] as? String == "aimd")
            #expect(start["min"] as? Int == 2 && start["max"] as? Int == 16)
            #expect(start["minimum_rtt_ms"] is NSNull)  // AIMD measures no minimum

            // Overloaded: every answer is a 503, passed through as it is; each lowers the limit
            // by the AIMD backoff (0.9, rounded down, at least one less), down to `min`.
            upstream.setBehavior(.always(503))
            var limits: [Int] = []
            for _ in 0..<7 {
                let answer = try await gateway.send(.GET, "/proxy/pay/v1/orders")
                #expect(answer.status == 503)
                #expect(answer.code == nil)  // the upstream's own answer, not Belay's
                limits.append(try await concurrency()["limit"] as? Int ?? -1)
            }
            #expect(limits == [7, 6, 5, 4, 3, 2, 2])

            // Two calls hold the two slots left; a third is refused before reaching the upstream.
            upstream.setBehavior(UpstreamBehavior(hang: true), for: "/v1/hang")
            async let first = gateway.send(.GET, "/proxy/pay/v1/hang/1")
            async let second = gateway.send(.GET, "/proxy/pay/v1/hang/2")
            await upstream.waitForArrivals(9)
            let held = try await concurrency()
            #expect(held["in_flight"] as? Int == 2)
            let refused = try await gateway.send(.GET, "/proxy/pay/v1/orders")
            #expect(refused.status == 503)
            #expect(refused.code == "concurrency-limited")
            #expect(refused.header("Content-Type") == "application/problem+json")
            #expect(refused.header("Retry-After") == "1")
            #expect(refused.problem?["retryable"] as? Bool == true)
            #expect(refused.problem?["upstream"] as? String == "pay")
            #expect(refused.header("Belay-Attempts") == "0")
            let detail = refused.problem?["detail"] as? String ?? ""
            #expect(detail.contains("the concurrency limit of 2 is reached"), "\(detail)")
            #expect(upstream.requests.filter { $0.path == "/v1/orders" }.count == 7)

            let scrape = try await gateway.scrape()
            let pay = ["upstream": "pay"]
            #expect(scrape.value("belay_concurrency_limit", pay) == 2)
            #expect(scrape.value("belay_concurrency_in_flight", pay) == 2)
            #expect(scrape.value("belay_concurrency_queued", pay) == 0)
            #expect(scrape.value("belay_concurrency_rejected_total", pay) == 1)
            #expect(
                scrape.value("belay_proxy_rejections_total", ["upstream": "pay", "reason": "concurrency-limited"]) == 1
            )
            #expect(scrape.types["belay_concurrency_limit"] == "gauge")
            #expect(scrape.types["belay_concurrency_rejected_total"] == "counter")

            // The held calls end at the attempt timeout (a drop too; the limit stays at `min`).
            #expect(try await first.code == "timeout")
            #expect(try await second.code == "timeout")
            let after = try await concurrency()
            #expect(after["limit"] as? Int == 2)
            #expect(after["in_flight"] as? Int == 0)
            #expect(after["rejected"] as? Int == 1)
        }
    }

    @Test func callersMistakesDoNotLowerTheLimit() async throws {
        try await GatewayHarness.run(config: .pay(policy: Self.policy)) { gateway in
            let upstream = gateway.upstreams[0]
            for status in [400, 401, 404, 409, 422] {
                upstream.setBehavior(.always(status))
                #expect(try await gateway.send(.POST, "/proxy/pay/v1/orders", body: "{}").status == status)
            }
            let state = try await gateway.send(.GET, "/v1/upstreams/pay")
            let concurrency = try #require(state.problem?["concurrency"] as? [String: Any])
            #expect(concurrency["limit"] as? Int == 8)
            // A 429 is the provider's: it lowers the limit.
            upstream.setBehavior(.always(429))
            _ = try await gateway.send(.GET, "/proxy/pay/v1/orders")
            let lowered = try await gateway.send(.GET, "/v1/upstreams/pay")
            #expect((lowered.problem?["concurrency"] as? [String: Any])?["limit"] as? Int == 7)
        }
    }

    @Test func anUpstreamWithAFixedBulkheadShowsNoAdaptiveLimit() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let state = try await gateway.send(.GET, "/v1/upstreams/pay")
            #expect(state.problem?["concurrency"] == nil)
            #expect(try await gateway.scrape().value("belay_concurrency_limit", ["upstream": "pay"]) == nil)
        }
    }
}
