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
        hedging: { delay: 130ms }
        """

    /// `GET /v1/requests/{id}` as JSON.
    func trail(_ gateway: GatewayHarness, _ id: String) async throws -> [String: Any] {
        let answer = try await gateway.send(.GET, "/v1/requests/\(id)")
        return try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
    }

    @Test func theSlowTenthIsHedgedSoItsCallersDoNotWaitAndTheLoadBarelyGrows() async throws {
        try await GatewayHarness.run(config: .pay(policy: Self.policy)) { gateway in
            // 100 ms an answer; every tenth request takes a second more.
            gateway.upstreams[0].setBehavior(
                UpstreamBehavior(latencyMilliseconds: 100, slowEvery: 10, slowMilliseconds: 1_000)
            )
            var hedged: [String] = []
            for index in 0..<50 {
                let answer = try await gateway.send(.GET, "/proxy/pay/v1/quote/\(index)")
                #expect(answer.status == 200)
                if answer.header("Belay-Attempts") == "2" { hedged.append(answer.header("Belay-Request-Id") ?? "") }
            }
            // The upstream's 10th, 20th… request was slow: each such call was answered by its hedge
            // (5 of them, a few more if a busy machine made a usual answer late too).
            #expect(hedged.count >= 5 && hedged.count <= 8, "\(hedged.count) hedged")
            #expect(gateway.upstreams[0].arrivalCount == 50 + hedged.count)  // 10 % more load, not double
            // No caller waited for a slow answer: every hedged call was answered by one attempt while
            // the other was cancelled (how fast is the benchmark's business, not this test's).
            for id in hedged {
                let attempts = try #require(try await trail(gateway, id)["attempts"] as? [[String: Any]])
                #expect(attempts.compactMap { $0["status"] as? Int } == [200], "\(id)")
                #expect(attempts.compactMap { $0["failure"] as? String } == ["cancelled"], "\(id)")
            }

            // The trail shows the hedge: two attempts, the slower one cancelled, and why.
            let record = try await trail(gateway, try #require(hedged.first))
            let attempts = try #require(record["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["number"] as? Int } == [1, 2])
            // One answered; the other (the slow first attempt, or a hedge a late usual answer beat
            // on a busy machine) was cancelled.
            #expect(attempts.compactMap { $0["status"] as? Int } == [200])
            #expect(attempts.compactMap { $0["failure"] as? String } == ["cancelled"])
            let decisions = try #require(record["decisions"] as? [[String: Any]])
            #expect(decisions.map { $0["kind"] as? String } == ["hedge_launched"])
            #expect(decisions.first?["attempt"] as? Int == 2)
            #expect(
                (decisions.first?["description"] as? String)?.hasPrefix("hedged: attempt 2 launched after 130") == true
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

    @Test func aKeyedWriteIsNotHedgedEitherNorIsAPut() async throws {
        let policy = Self.policy + "\nidempotency: { header: Idempotency-Key }"
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(latencyMilliseconds: 300))
            let post = try await gateway.send(
                .POST,
                "/proxy/pay/v1/orders",
                headers: [("Idempotency-Key", "order-7")],
                body: #"{"order":7}"#
            )
            let put = try await gateway.send(.PUT, "/proxy/pay/v1/orders/7", body: #"{"order":7}"#)
            #expect(post.status == 200 && put.status == 200)
            #expect(post.header("Belay-Attempts") == "1" && put.header("Belay-Attempts") == "1")
            #expect(gateway.upstreams[0].arrivalCount == 2)
        }
    }

    @Test func aHedgeTheRateLimitRefusesDoesNotBeatTheAttemptWaitingForItsAnswer() async throws {
        // One permit a second, waited for at most the attempt timeout: the hedge, at 130 ms, is
        // refused one at once (the next comes after 1 s); the first attempt answers at 400 ms.
        let policy = """
            timeouts: { attempt: 500ms, total: 10s }
            hedging: { delay: 130ms }
            rate_limit: { rps: 1, burst: 1 }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(latencyMilliseconds: 400))
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/quote")
            #expect(answer.status == 200, "\(answer.body)")
            #expect(gateway.upstreams[0].arrivalCount == 1)
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
