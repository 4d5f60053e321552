import BelayGateway
import BelayTestUpstream
import Crypto
import Foundation
import Logging
import NIOHTTP1
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(2))) struct ProxyTests {
    @Test func passesAnswersThroughWithBelayHeaders() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(status: 201, body: #"{"id":"ch_1"}"#))
            let answer = try await gateway.send(
                .GET,
                "/proxy/pay/v1/charges?limit=2",
                headers: [("X-Request-Id", "req-42")]
            )
            #expect(answer.status == 201)
            #expect(answer.body == #"{"id":"ch_1"}"#)
            // Belay's own id, never the caller's; the caller's goes on upstream.
            let requestID = try #require(answer.header("Belay-Request-Id"))
            #expect(requestID != "req-42" && requestID.count == 36)
            #expect(answer.header("Belay-Attempts") == "1")
            #expect(answer.header("Belay-Endpoint")?.hasPrefix("127.0.0.1:") == true)
            let received = try #require(gateway.upstreams[0].requests.first)
            #expect(received.path == "/v1/charges?limit=2")
            #expect(received.header("X-Request-Id") == "req-42")
            #expect(received.header("X-Forwarded-For") == "127.0.0.1")
        }
    }

    @Test func smallAnswersKeepTheirLengthAndHEADAnswersTheirsWithoutABody() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let body = #"{"ok":true,"id":"ch_1","amount":1000}"#
            gateway.upstreams[0].setBehavior(UpstreamBehavior(body: body))
            let get = try await gateway.send(.GET, "/proxy/pay/v1/charges/ch_1")
            #expect(get.body == body)
            #expect(get.header("Content-Length") == String(body.utf8.count))
            let head = try await gateway.send(.HEAD, "/proxy/pay/v1/charges/ch_1")
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            #expect(head.header("Content-Length") == String(body.utf8.count))
        }
    }

    @Test func anAnswerCutShortIsCutShortForTheCallerToo() async throws {
        // The head promises 100 bytes; 9 come, then the upstream closes the connection.
        let upstream = try await RawUpstream(
            answer: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"partial"
        )
        let url = upstream.baseURL
        try await GatewayHarness.run(upstreams: 0, config: .custom { _ in payConfig([url]) }) { gateway in
            // Not a complete-looking answer: the caller's read fails as the upstream's did.
            await #expect(throws: (any Error).self) {
                let answer = try await gateway.send(.GET, "/proxy/pay/v1/charges")
                Issue.record("answered \(answer.status) with \(answer.body.utf8.count) bytes")
            }
        }
        try await upstream.close()
    }

    @Test func transient503sAreRetriedUntilSuccess() async throws {
        try await GatewayHarness.run(config: .pay(policy: "retry: { max_attempts: 3, base: 1ms, cap: 5ms }")) {
            gateway in
            gateway.upstreams[0].setBehavior(.sequence([503, 503]))
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/balance")
            #expect(answer.status == 200)
            #expect(answer.header("Belay-Attempts") == "3")
            #expect(gateway.upstreams[0].requests.map(\.status) == [503, 503, 200])
        }
    }

    @Test func theLastAnswerPassesThroughWhenRetriesAreUsedUp() async throws {
        try await GatewayHarness.run(config: .pay(policy: "retry: { max_attempts: 2, base: 1ms, cap: 5ms }")) {
            gateway in
            gateway.upstreams[0].setBehavior(.always(503))
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/balance")
            #expect(answer.status == 503)
            #expect(answer.body == #"{"error":"simulated 503"}"#)
            #expect(answer.header("Belay-Attempts") == "2")
        }
    }

    @Test func failsOverToTheNextEndpoint() async throws {
        try await GatewayHarness.run(upstreams: 2, config: .pay(policy: "retry: { base: 1ms, cap: 5ms }")) {
            gateway in
            gateway.upstreams[0].setBehavior(.down)
            gateway.upstreams[1].setBehavior(UpstreamBehavior(body: "backup"))
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/balance")
            #expect(answer.status == 200)
            #expect(answer.body == "backup")
            #expect(answer.header("Belay-Attempts") == "2")
            #expect(
                answer.header("Belay-Endpoint") == gateway.upstreams[1].host + ":\(await gateway.upstreams[1].port())"
            )
        }
    }

    @Test func eachAttemptGoesToAnEndpointNotYetTriedEvenWhenOneIsEjected() async throws {
        try await GatewayHarness.run(upstreams: 2, config: .pay(policy: "retry: { base: 1ms, cap: 5ms }")) {
            gateway in
            gateway.upstreams[0].setBehavior(.down)
            var attempts: [String?] = []
            for _ in 0..<4 {
                let answer = try await gateway.send(.GET, "/proxy/pay/v1/balance")
                #expect(answer.status == 200)
                attempts.append(answer.header("Belay-Attempts"))
            }
            // The third call's first attempt ejects the primary (3 failures in a row); its
            // second goes to the backup, not back to the primary. The fourth skips the primary.
            #expect(attempts == ["2", "2", "2", "1"])
            #expect(gateway.upstreams[0].requests.count == 3)
            #expect(gateway.upstreams[1].requests.count == 4)
        }
    }

    @Test func postIsNotRetriedWithoutIdempotencyConfig() async throws {
        try await GatewayHarness.run(config: .pay(policy: "retry: { base: 1ms, cap: 5ms }")) { gateway in
            gateway.upstreams[0].setBehavior(.sequence([503]))
            let answer = try await gateway.send(.POST, "/proxy/pay/v1/charges", body: #"{"amount":100}"#)
            #expect(answer.status == 503)
            #expect(gateway.upstreams[0].requests.count == 1)
        }
    }

    @Test func postIsRetriedWithOneKeyWhenTheUpstreamHonoursKeys() async throws {
        let policy = """
            retry: { base: 1ms, cap: 5ms }
            idempotency: { header: "Idempotency-Key" }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            gateway.upstreams[0].setBehavior(.sequence([503, 502]))
            let answer = try await gateway.send(.POST, "/proxy/pay/v1/charges", body: #"{"amount":100}"#)
            #expect(answer.status == 200)
            let keys = gateway.upstreams[0].requests.map { $0.header("Idempotency-Key") }
            #expect(keys.count == 3)
            #expect(Set(keys).count == 1)
            #expect(keys.first??.isEmpty == false)
            #expect(gateway.upstreams[0].requests.allSatisfy { $0.bodySize == 14 })

            // The caller's own key, quoted as a Structured Field string, is the one sent.
            gateway.upstreams[0].clearRequests()
            _ = try await gateway.send(
                .POST,
                "/proxy/pay/v1/charges",
                headers: [("Idempotency-Key", "\"abc-123\"")],
                body: "{}"
            )
            #expect(gateway.upstreams[0].requests.map { $0.header("Idempotency-Key") } == ["abc-123"])
        }
    }

    @Test func everyDecisionIsLoggedWithTheRequestIDAndUpstreamButNoSecret() async throws {
        let logs = LogStore()
        let ids = Mutex<[String]>([])
        let policy = """
            retry: { max_attempts: 3, base: 1ms, cap: 5ms }
            circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 4 }
            headers: { Authorization: "Bearer ${PAY_TOKEN}" }
            """
        try await GatewayHarness.run(config: .pay(policy: policy), environment: ["PAY_TOKEN": "sekrit"], logs: logs) {
            gateway in
            gateway.upstreams[0].setBehavior(.sequence([503]))
            let caller = [("Authorization", "Bearer caller-key"), ("Cookie", "session=cookie-value")]
            let retried = try await gateway.send(
                .GET,
                "/proxy/pay/v1/x",
                headers: caller + [("X-Request-Id", "req-log-1")]
            )
            #expect(retried.status == 200)
            ids.withLock { $0.append(retried.header("Belay-Request-Id") ?? "") }
            gateway.upstreams[0].setBehavior(.always(503))
            let failed = try await gateway.send(
                .GET,
                "/proxy/pay/v1/x",
                headers: caller + [("X-Request-Id", "req-log-2")]
            )
            ids.withLock { $0.append(failed.header("Belay-Request-Id") ?? "") }
        }
        let (first, second) = ids.withLock { ($0[0], $0[1]) }
        let records = logs.records
        let retry = try #require(records.first { $0.metadata["belay.event"] == "retry_scheduled" })
        #expect(retry.level == .info)
        #expect(retry.metadata["belay.request.id"].map { "\($0)" } == first)
        #expect(retry.metadata["belay.upstream"] == "pay")
        #expect(retry.message.contains("HTTP 503"))
        let opened = try #require(records.first { $0.metadata["belay.event"] == "circuit_opened" })
        #expect(opened.level == .notice)
        #expect(opened.metadata["belay.request.id"].map { "\($0)" } == second)
        #expect(opened.metadata["belay.upstream"] == "pay")
        for secret in ["sekrit", "caller-key", "cookie-value"] {
            #expect(!records.contains { $0.text.contains(secret) }, "\(secret) was logged")
        }
    }

    @Test func theCallersKeyIsReadFromTheConfiguredHeaderAndKept() async throws {
        let policy = """
            retry: { base: 1ms, cap: 5ms }
            idempotency: { header: "X-Idem-Key" }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            let upstream = gateway.upstreams[0]
            let cases: [(headers: [(String, String)], key: String?)] = [
                ([("X-Idem-Key", "\"k-1\"")], "k-1"),  // the configured header, quoted
                ([("X-Idem-Key", "k-2")], "k-2"),  // bare
                ([("Idempotency-Key", "\"k-3\"")], "k-3"),  // the standard header
                ([], nil),  // none: one new key for every attempt
            ]
            for (headers, key) in cases {
                upstream.clearRequests()
                upstream.setBehavior(.sequence([503]))
                let answer = try await gateway.send(.POST, "/proxy/pay/v1/charges", headers: headers, body: "{}")
                #expect(answer.status == 200)
                let sent = upstream.requests.map { $0.header("X-Idem-Key") }
                #expect(sent.count == 2)
                #expect(Set(sent).count == 1, "\(sent)")
                if let key {
                    #expect(sent.first == key)
                } else {
                    #expect(sent.first??.isEmpty == false)
                }
            }
        }
    }

    @Test func retryAfterIsHonoured() async throws {
        try await GatewayHarness.run(config: .pay(policy: "retry: { base: 1ms, cap: 5ms }")) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(statuses: [429], retryAfter: "1"))
            let start = ContinuousClock.now
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/balance")
            #expect(answer.status == 200)
            #expect(start.duration(to: .now) >= .seconds(1))
        }
    }

    @Test func aRetryAfterBeyondTheDeadlinePassesThe429ThroughAtOnce() async throws {
        try await GatewayHarness.run(config: .pay(policy: "timeouts: { total: 2s }")) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(statuses: [429], retryAfter: "30"))
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/balance")
            #expect(answer.status == 429)
            #expect(answer.header("Retry-After") == "30")
            #expect(gateway.upstreams[0].requests.count == 1)
        }
    }

    @Test func anAttemptTimeoutMovesOnAndATotalTimeoutAnswers504() async throws {
        let policy = """
            timeouts: { connect: 1s, attempt: 1s, total: 4s }
            retry: { max_attempts: 5, base: 1ms, cap: 5ms }
            """
        // Deadlines with room: on 2 cores busy with the other tests, the backup's answer must
        // still come inside what is left of the total after the primary's attempt timed out.
        try await GatewayHarness.run(upstreams: 2, config: .pay(policy: policy)) { gateway in
            // The primary is too slow: its attempt times out and the backup answers.
            gateway.upstreams[0].setBehavior(UpstreamBehavior(latencyMilliseconds: 30_000))
            let first = try await gateway.send(.GET, "/proxy/pay/v1/slow-primary")
            #expect(first.status == 200)
            #expect(first.header("Belay-Attempts") == "2")

            // Both hang: attempts time out until the total timeout answers 504.
            gateway.upstreams[0].setBehavior(UpstreamBehavior(hang: true))
            gateway.upstreams[1].setBehavior(UpstreamBehavior(hang: true))
            let start = ContinuousClock.now
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/hangs")
            #expect(answer.status == 504)
            #expect(answer.code == "timeout")
            #expect(answer.header("Content-Type") == "application/problem+json")
            // The total ends it: the upstreams would hang for ever.
            #expect(start.duration(to: .now) < .seconds(20))
        }
    }

    @Test func theCallersBelayTimeoutShrinksTheTotal() async throws {
        try await GatewayHarness.run(config: .pay(policy: "timeouts: { attempt: 5s, total: 10s }")) {
            gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(hang: true))
            let start = ContinuousClock.now
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/x", headers: [("Belay-Timeout", "300ms")])
            #expect(answer.status == 504)
            #expect(start.duration(to: .now) < .seconds(3))
            let bad = try await gateway.send(.GET, "/proxy/pay/v1/x", headers: [("Belay-Timeout", "soon")])
            #expect(bad.status == 400)
            #expect(bad.problem?["field"] as? String == "Belay-Timeout")
        }
    }

    @Test func asManyCallsReachAnEndpointAtOnceAsTheBulkheadAdmits() async throws {
        let policy = """
            timeouts: { connect: 1s, attempt: 20s, total: 20s }
            bulkhead: { max_concurrent: 12, max_queue: 0 }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(latencyMilliseconds: 2_000))
            let answers = try await withThrowingTaskGroup(of: GatewayHarness.Answer.self) { group in
                for call in 0..<12 {
                    group.addTask { try await gateway.send(.GET, "/proxy/pay/v1/slow/\(call)") }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // Each went out at once on a connection of its own. (With AsyncHTTPClient's default
            // of 8 connections per endpoint, 4 waited for one and failed with 502 once
            // `timeouts.connect` had passed.)
            #expect(answers.map(\.status) == Array(repeating: 200, count: 12))
            #expect(answers.map { $0.header("Belay-Attempts") } == Array(repeating: "1", count: 12))
            #expect(gateway.upstreams[0].requests.count == 12)
        }
    }

    @Test func anAnswerReadIntoMemoryIsBoundedByTheAttemptTimeout() async throws {
        let policy = """
            timeouts: { connect: 200ms, attempt: 300ms, total: 700ms }
            retry: { max_attempts: 5, base: 1ms, cap: 5ms }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            // A retriable 503 is read into memory before it is retried; its head comes at once,
            // its body one byte per 100 ms (within the read timeout), 3 s in all.
            gateway.upstreams[0].setBehavior(
                UpstreamBehavior(status: 503, errorBody: String(repeating: "x", count: 30), trickleMilliseconds: 100)
            )
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/trickles")
            #expect(answer.status == 504)
            #expect(answer.code == "timeout")
        }
    }

    @Test func aCallQueuedInTheBulkheadLeavesAtItsDeadline() async throws {
        let logs = LogStore()
        let queuedID = Mutex("")
        let policy = """
            timeouts: { attempt: 2s, total: 2s }
            retry: { max_attempts: 1 }
            bulkhead: { max_concurrent: 1, max_queue: 5 }
            """
        // Rejections and timeouts are logged at debug.
        try await GatewayHarness.run(config: .pay(policy: policy), logs: logs, logLevel: .debug) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(hang: true))
            async let holder = gateway.send(.GET, "/proxy/pay/v1/holds-the-slot")
            while gateway.upstreams[0].requests.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
            let queued = try await gateway.send(
                .GET,
                "/proxy/pay/v1/x",
                headers: [("Belay-Timeout", "200ms"), ("X-Request-Id", "req-queued")]
            )
            queuedID.withLock { $0 = queued.header("Belay-Request-Id") ?? "" }
            #expect(queued.status == 504)
            #expect(queued.code == "timeout")
            #expect(queued.header("Belay-Attempts") == "0")
            #expect(try await holder.status == 504)
        }
        // The bulkhead let it go at its deadline (rather than the call timing out once it got a slot).
        let id = queuedID.withLock { $0 }
        let decisions = logs.records.filter {
            $0.metadata["belay.request.id"].map { "\($0)" } == id && $0.metadata["belay.event"] != nil
        }
        #expect(decisions.map { $0.metadata["belay.event"] } == ["rejected", "timeout"])
        #expect(decisions.first?.metadata["belay.strategy"] == "pay-bulkhead")
    }

    @Test(arguments: ["9999999999999999d", "99999999999999999999s", "36501d"])
    func anOutOfRangeBelayTimeoutIs400(value: String) async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/x", headers: [("Belay-Timeout", value)])
            #expect(answer.status == 400)
            #expect(answer.code == "invalid-request")
            #expect(answer.problem?["field"] as? String == "Belay-Timeout")
            #expect(gateway.upstreams[0].requests.isEmpty)
            // The gateway is still serving.
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/x").status == 200)
        }
    }

    @Test func anOutageOpensTheBreakerThenOneProbeClosesIt() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 4, window: 60s, break: 1s }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            let upstream = gateway.upstreams[0]
            upstream.setBehavior(.always(503))
            for _ in 0..<4 { _ = try await gateway.send(.GET, "/proxy/pay/v1/x") }
            #expect(upstream.requests.count == 4)

            // Open: rejected at once, the upstream untouched, with Retry-After.
            let rejected = try await gateway.send(.GET, "/proxy/pay/v1/x")
            #expect(rejected.status == 503)
            #expect(rejected.code == "circuit-open")
            #expect(rejected.header("Retry-After") == "1")
            #expect(rejected.problem?["retryable"] as? Bool == true)
            #expect(upstream.requests.count == 4)

            // The upstream recovers; after the break exactly one probe goes through and closes it.
            // The probe is slow enough (1 s, within the 2 s attempt timeout) that the next call
            // comes while it is in flight.
            upstream.setBehavior(UpstreamBehavior(latencyMilliseconds: 1_000))
            try await Task.sleep(for: .milliseconds(1_100))
            async let probe = gateway.send(.GET, "/proxy/pay/v1/probe")
            await upstream.waitForArrivals(5)  // the probe is in flight
            let meanwhile = try await gateway.send(.GET, "/proxy/pay/v1/other")
            #expect(meanwhile.code == "circuit-open")
            #expect(meanwhile.header("Retry-After") == "1")
            #expect(try await probe.status == 200)
            #expect(upstream.requests.count == 5)
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/x").status == 200)
            let state = try await gateway.send(.GET, "/v1/upstreams/pay")
            #expect(state.problem?["breaker"] as? String == "closed")
        }
    }

    /// The circuit-open detail says what opened the breaker (issue 19) in words that carry
    /// neither the upstream's body and headers nor the policy's secrets.
    @Test func theCircuitOpenDetailSaysWhatOpenedItAndNoSecret() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 4, window: 60s, break: 30s }
            headers: { Authorization: "Bearer tok_live_hunter2" }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            let upstream = gateway.upstreams[0]
            upstream.setBehavior(
                UpstreamBehavior(
                    status: 503,
                    errorBody: #"{"error":"card sk_live_body_leak declined"}"#,
                    headers: ["X-Debug-Token": "sk_live_header_leak"]
                )
            )
            for _ in 0..<4 { _ = try await gateway.send(.GET, "/proxy/pay/v1/x") }
            let rejected = try await gateway.send(.GET, "/proxy/pay/v1/x")
            #expect(rejected.code == "circuit-open")
            #expect(upstream.requests.count == 4)
            let detail = try #require(rejected.problem?["detail"] as? String)
            let endpoint = String(await upstream.baseURL().dropFirst("http://".count))
            #expect(
                detail == "pay is failing; calls are paused while its circuit is open: "
                    + "opened after 4 of 4 calls failed; last: HTTP 503 from \(endpoint)"
            )
            for secret in ["sk_live", "hunter2", "declined"] {
                #expect(!rejected.body.contains(secret))
            }
        }
    }

    @Test func anUnreachableUpstreamIsNamedAsWhatOpenedTheCircuit() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 2, window: 60s, break: 30s }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            gateway.upstreams[0].setBehavior(.down)
            for _ in 0..<2 { _ = try await gateway.send(.GET, "/proxy/pay/v1/x") }
            let rejected = try await gateway.send(.GET, "/proxy/pay/v1/x")
            #expect(rejected.code == "circuit-open")
            let detail = try #require(rejected.problem?["detail"] as? String)
            #expect(detail.contains(": opened after 2 of 2 calls failed; last: reset failure at "), "\(detail)")
        }
    }

    @Test func slowsDownBeforeTheProvidersQuotaIsSpent() async throws {
        try await GatewayHarness.run(config: .pay(policy: "retry: { max_attempts: 1 }")) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(quota: 10, quotaWindowSeconds: 60))
            var answers: [GatewayHarness.Answer] = []
            for _ in 0..<12 { answers.append(try await gateway.send(.GET, "/proxy/pay/v1/x")) }
            // The provider's quota is never exceeded: Belay refuses the excess itself.
            #expect(gateway.upstreams[0].requests.allSatisfy { $0.status == 200 })
            #expect(gateway.upstreams[0].requests.count == 10)
            #expect(answers.prefix(10).allSatisfy { $0.status == 200 })
            let refused = answers[10]
            #expect(refused.status == 429)
            #expect(refused.code == "rate-limited")
            let retryAfter = try #require(refused.header("Retry-After"))
            #expect(Int(retryAfter) ?? 0 >= 30)
            // The provider's policy, and nothing left until the wait is over.
            #expect(refused.header("RateLimit-Policy") == #""pay-quota";q=10;w=60"#)
            #expect(refused.header("RateLimit") == #""pay-quota";r=0;t="# + retryAfter)
            let state = try await gateway.send(.GET, "/v1/upstreams/pay")
            #expect(state.problem?["quota_pacing"] as? Bool == true)
        }
    }

    @Test func theOutboundRateLimitStatesItsPolicyWhenItRefuses() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            rate_limit: { rps: 0.1, burst: 1 }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/x").status == 200)
            // The next permit is 10 s away, more than the 2 s attempt timeout may wait.
            let refused = try await gateway.send(.GET, "/proxy/pay/v1/x")
            #expect(refused.status == 429)
            #expect(refused.code == "rate-limited")
            // The seconds left until that permit: 10, or 9 when a second passed since the first call.
            let wait = try #require(refused.header("Retry-After").flatMap { Int($0) })
            #expect((9...10).contains(wait))
            #expect(refused.header("RateLimit-Policy") == #""pay-rate-limit";q=1;w=10"#)
            #expect(refused.header("RateLimit") == #""pay-rate-limit";r=0;t=\#(wait)"#)
            #expect(gateway.upstreams[0].requests.count == 1)
        }
    }

    @Test func theConsumerRateLimitStatesItsRateNotItsBurstPerSecond() async throws {
        let yaml: @Sendable ([String]) -> String = { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              app: { key_sha256: "\(sha256Hex("app-key"))", scopes: ["proxy:*"], rate_limit: { rps: 0.1, burst: 2 } }
            upstreams:
              pay: { endpoints: ["\(urls[0])"] }
            """
        }
        try await GatewayHarness.run(config: .custom(yaml)) { gateway in
            let key = [("Authorization", "Bearer app-key")]
            for _ in 0..<2 { #expect(try await gateway.send(.GET, "/proxy/pay/v1/x", headers: key).status == 200) }
            let refused = try await gateway.send(.GET, "/proxy/pay/v1/x", headers: key)
            #expect(refused.status == 429)
            #expect(refused.code == "rate-limited")
            // 0.1 per second, 2 at once: 2 per 20 s (not 2 per second).
            #expect(refused.header("RateLimit-Policy") == #""consumer";q=2;w=20"#)
            let retryAfter = try #require(refused.header("Retry-After"))
            #expect(refused.header("RateLimit") == #""consumer";r=0;t="# + retryAfter)
        }
    }

    @Test func staleIfErrorServesTheLastGoodAnswer() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            cache: { stale_if_error: 10m }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(body: #"{"rates":[1,2]}"#))
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/rates").header("Belay-Degraded") == nil)
            gateway.upstreams[0].setBehavior(.always(502))
            let stale = try await gateway.send(.GET, "/proxy/pay/v1/rates")
            #expect(stale.status == 200)
            #expect(stale.body == #"{"rates":[1,2]}"#)
            #expect(stale.header("Belay-Degraded")?.hasPrefix("stale; age=") == true)
            // Nothing cached for another path: the failure passes through.
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/other").status == 502)
        }
    }

    @Test func oneConsumersCachedAnswerIsNeverServedToAnother() async throws {
        let yaml: @Sendable ([String]) -> String = { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              alice: { key_sha256: "\(sha256Hex("alice-key"))", scopes: ["proxy:*"] }
              bob: { key_sha256: "\(sha256Hex("bob-key"))", scopes: ["proxy:*"] }
            upstreams:
              pay:
                endpoints: ["\(urls[0])"]
                retry: { max_attempts: 1 }
                cache: { stale_if_error: 10m }
            """
        }
        try await GatewayHarness.run(config: .custom(yaml)) { gateway in
            let alice = [("Authorization", "Bearer alice-key")]
            let bob = [("Authorization", "Bearer bob-key")]
            gateway.upstreams[0].setBehavior(UpstreamBehavior(body: #"{"me":"alice"}"#))
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/me", headers: alice).status == 200)
            gateway.upstreams[0].setBehavior(.always(502))
            let forBob = try await gateway.send(.GET, "/proxy/pay/v1/me", headers: bob)
            #expect(forBob.status == 502)
            #expect(!forBob.body.contains("alice"))
            let forAlice = try await gateway.send(.GET, "/proxy/pay/v1/me", headers: alice)
            #expect(forAlice.status == 200)
            #expect(forAlice.body == #"{"me":"alice"}"#)
            #expect(forAlice.header("Belay-Degraded") != nil)
        }
    }

    @Test func inOpenModeCachedAnswersAreKeptPerForwardedCredentials() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            cache: { stale_if_error: 10m }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            let user1 = [("Authorization", "Bearer user-1")]
            let cookie1 = [("Cookie", "s=1")]
            gateway.upstreams[0].setBehavior(UpstreamBehavior(body: "user-1"))
            for headers in [user1, cookie1] {
                let fresh = try await gateway.send(.GET, "/proxy/pay/v1/me", headers: headers)
                #expect(fresh.body == "user-1")
            }
            gateway.upstreams[0].setBehavior(.always(502))
            for other in [[("Authorization", "Bearer user-2")], [("Cookie", "s=2")], []] {
                let answer = try await gateway.send(.GET, "/proxy/pay/v1/me", headers: other)
                #expect(answer.status == 502, "\(other)")
            }
            for headers in [user1, cookie1] {
                let stale = try await gateway.send(.GET, "/proxy/pay/v1/me", headers: headers)
                #expect(stale.body == "user-1")
                #expect(stale.header("Belay-Degraded") != nil)
            }
        }
    }

    @Test(arguments: [
        ("Set-Cookie", "session=abc; HttpOnly"), ("Cache-Control", "private"), ("Cache-Control", "no-store"),
        ("Cache-Control", "max-age=0, Private=\"Set-Cookie\""),
    ])
    func answersThatArePersonalAreNeverCached(header: String, value: String) async throws {
        let policy = """
            retry: { max_attempts: 1 }
            cache: { stale_if_error: 10m }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            let upstream = gateway.upstreams[0]
            upstream.setBehavior(UpstreamBehavior(body: "personal", headers: [header: value]), for: "/v1/personal")
            upstream.setBehavior(UpstreamBehavior(body: "public", headers: ["Cache-Control": "max-age=60"]))
            let personal = try await gateway.send(.GET, "/proxy/pay/v1/personal")
            #expect(personal.body == "personal")
            let shared = try await gateway.send(.GET, "/proxy/pay/v1/public")
            #expect(shared.body == "public")
            upstream.setBehavior(.always(502), for: "/v1/personal")
            upstream.setBehavior(.always(502))
            let personalAgain = try await gateway.send(.GET, "/proxy/pay/v1/personal")
            #expect(personalAgain.status == 502)
            let sharedAgain = try await gateway.send(.GET, "/proxy/pay/v1/public")
            #expect(sharedAgain.body == "public")
        }
    }

    @Test func upstreamNamesAreNotRevealedBeforeAuthenticationOrBeyondScopes() async throws {
        let yaml: @Sendable ([String]) -> String = { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              narrow: { key_sha256: "\(sha256Hex("narrow-key"))", scopes: ["proxy:pay"] }
              wide: { key_sha256: "\(sha256Hex("wide-key"))", scopes: ["proxy:*"] }
            upstreams:
              pay: { endpoints: ["\(urls[0])"] }
            """
        }
        try await GatewayHarness.run(config: .custom(yaml)) { gateway in
            for path in ["/proxy/pay/v1/x", "/proxy/nope/v1/x", "/proxy/../x"] {
                let anonymous = try await gateway.send(.GET, path)
                #expect(anonymous.status == 401, "\(path)")
                #expect(anonymous.code == "unauthorized", "\(path)")
            }
            let narrow = try await gateway.send(
                .GET,
                "/proxy/nope/v1/x",
                headers: [("Authorization", "Bearer narrow-key")]
            )
            #expect(narrow.code == "forbidden")
            let wide = try await gateway.send(.GET, "/proxy/nope/v1/x", headers: [("Authorization", "Bearer wide-key")])
            #expect(wide.code == "unknown-upstream")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test(.enabled(if: ipv6LoopbackAvailable, "needs an IPv6 loopback address"))
    func ipv6EndpointsAreBracketedInTheURLTheHostHeaderAndBelayEndpoint() async throws {
        try await GatewayHarness.run(upstreamHost: "::1", config: .pay()) { gateway in
            let port = await gateway.upstreams[0].port()
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/x")
            #expect(answer.status == 200)
            #expect(answer.header("Belay-Endpoint") == "[::1]:\(port)")
            let received = try #require(gateway.upstreams[0].requests.first)
            #expect(received.header("Host") == "[::1]:\(port)")
            #expect(received.path == "/v1/x")
        }
    }

    @Test func unknownUpstreamIs404ProblemJSON() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let answer = try await gateway.send(.GET, "/proxy/nope/v1/x")
            #expect(answer.status == 404)
            #expect(answer.code == "unknown-upstream")
            #expect(answer.problem?["request_id"] as? String == answer.header("Belay-Request-Id"))
        }
    }

    @Test func unmatchedRoutesAreProblemJSON() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            for path in ["/nope", "/v1/upstreams/pay/extra", "/v1"] {
                let answer = try await gateway.send(.GET, path, headers: [("X-Request-Id", "req-404")])
                #expect(answer.status == 404, "\(path)")
                #expect(answer.code == "not-found", "\(path)")
                #expect(answer.header("Content-Type") == "application/problem+json")
                let requestID = try #require(answer.header("Belay-Request-Id"))
                #expect(requestID != "req-404")
                #expect(answer.problem?["request_id"] as? String == requestID)
            }
            let post = try await gateway.send(.POST, "/v1/upstreams", body: "{}")
            #expect(post.status == 405)
            #expect(post.code == "method-not-allowed")
            #expect(post.header("Allow") == "GET")
            #expect(post.header("Content-Type") == "application/problem+json")
            let delete = try await gateway.send(.DELETE, "/v1/upstreams/pay")
            #expect(delete.status == 405)
            #expect(delete.header("Allow") == "GET")
            #expect(try await gateway.send(.GET, "/healthz").status == 200)
            #expect(try await gateway.send(.GET, "/v1/upstreams/pay").status == 200)
        }
    }

    @Test(arguments: [
        "/proxy/pay/../admin", "/proxy/pay/v1/%2e%2e/admin", "/proxy/pay/v1/%2E%2E/%2E%2E/etc",
        "/proxy/pay/v1/..%2fadmin", "/proxy/pay/v1/%5c..%5cadmin", "/proxy/pay/v1/./x",
    ])
    func pathEscapesAreRefused(path: String) async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let answer = try await gateway.send(.GET, path)
            #expect(answer.status == 400 || answer.status == 404, "\(path) → \(answer.status)")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func anOversizedBodyIs413() async throws {
        try await GatewayHarness.run(config: .pay(server: "max_body: 1KiB")) { gateway in
            let answer = try await gateway.send(
                .POST,
                "/proxy/pay/v1/upload",
                body: String(repeating: "x", count: 2_000)
            )
            #expect(answer.status == 413)
            #expect(answer.code == "payload-too-large")
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func aStreamedBodyGrowingPastMaxBodyIs413AndNotTheUpstreamsFault() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 1, window: 60s, break: 60s }
            """
        try await GatewayHarness.run(config: .pay(policy: policy, server: "max_body: 1KiB")) { gateway in
            // Within the limit, a chunked body streams through.
            let small = try await gateway.sendStreamed(.POST, "/proxy/pay/v1/upload", chunks: ["abc", "def"])
            #expect(small.status == 200)
            #expect(gateway.upstreams[0].requests.last?.bodySize == 6)

            // Past it: 413, three times (enough to eject the endpoint if it counted).
            let chunks = Array(repeating: String(repeating: "x", count: 512), count: 6)
            for _ in 0..<3 {
                let answer = try await gateway.sendStreamed(.POST, "/proxy/pay/v1/upload", chunks: chunks)
                #expect(answer.status == 413)
                #expect(answer.code == "payload-too-large")
                #expect(answer.problem?["upstream"] as? String == "pay")
            }

            // Neither the breaker nor outlier ejection counted it against the upstream.
            let state = try await gateway.send(.GET, "/v1/upstreams/pay")
            #expect(state.problem?["breaker"] as? String == "closed")
            let endpoints = state.problem?["endpoints"] as? [[String: Any]]
            #expect(endpoints?.first?["ejected"] as? Bool == false)
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/x").status == 200)
        }
    }

    @Test func largeBodiesStreamThroughBothWays() async throws {
        // Streaming, not deadlines, is under test: 8 MiB through a debug build on a busy machine
        // (the crash tests' processes run beside it) can outlast the default 2 s attempt.
        let policy = "timeouts: { attempt: 20s, total: 30s }"
        try await GatewayHarness.run(config: .pay(policy: policy, server: "max_body: 64MiB")) { gateway in
            let big = String(repeating: "x", count: 8 << 20)
            let upload = try await gateway.send(.PUT, "/proxy/pay/v1/files/a", body: big)
            #expect(upload.status == 200)
            #expect(gateway.upstreams[0].requests.first?.bodySize == 8 << 20)

            gateway.upstreams[0].setBehavior(UpstreamBehavior(body: String(repeating: "y", count: 3 << 20)))
            let download = try await gateway.send(.GET, "/proxy/pay/v1/files/a")
            #expect(download.status == 200)
            #expect(download.body.utf8.count == 3 << 20)
            #expect(download.header("Content-Length") == String(3 << 20))
        }
    }

    @Test(arguments: [false, true])
    func largeErrorAnswersPassThrough(chunked: Bool) async throws {
        let policy = """
            retry: { max_attempts: 2, base: 1ms, cap: 5ms }
            circuit_breaker: { minimum_throughput: 100 }
            timeouts: { attempt: 20s, total: 40s }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            let big = String(repeating: "e", count: 2 << 20)
            gateway.upstreams[0].setBehavior(UpstreamBehavior(status: 404, errorBody: big, chunked: chunked))
            let notFound = try await gateway.send(.GET, "/proxy/pay/v1/missing")
            #expect(notFound.status == 404)
            #expect(notFound.body.utf8.count == 2 << 20)
            #expect(notFound.header("Belay-Attempts") == "1")

            // A retried status too: the last answer reaches the caller whole.
            gateway.upstreams[0].setBehavior(UpstreamBehavior(status: 503, errorBody: big, chunked: chunked))
            let unavailable = try await gateway.send(.GET, "/proxy/pay/v1/busy")
            #expect(unavailable.status == 503)
            #expect(unavailable.body.utf8.count == 2 << 20)
            #expect(unavailable.header("Belay-Attempts") == "2")
            #expect(unavailable.header("Content-Length") == (chunked ? nil : String(2 << 20)))
        }
    }

    @Test(arguments: [false, true])
    func answersTooLargeToCacheStillReachTheCaller(chunked: Bool) async throws {
        let policy = """
            retry: { max_attempts: 1 }
            cache: { stale_if_error: 10m }
            timeouts: { attempt: 30s, total: 30s }
            """
        // 2 MiB, chunked or not, on 2 cores busy with the other tests: the default attempt
        // timeout (2s) is not what this test is about.
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            let upstream = gateway.upstreams[0]
            let big = String(repeating: "y", count: 2 << 20)
            upstream.setBehavior(UpstreamBehavior(body: big, chunked: chunked), for: "/v1/big")
            upstream.setBehavior(UpstreamBehavior(body: "small", chunked: chunked), for: "/v1/small")
            let large = try await gateway.send(.GET, "/proxy/pay/v1/big")
            #expect(large.status == 200)
            let whole = large.body == big
            #expect(whole, "got \(large.body.utf8.count) bytes")
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/small").body == "small")

            // The small answer was cached, the large one was not.
            upstream.setBehavior(.always(502), for: "/v1/big")
            upstream.setBehavior(.always(502), for: "/v1/small")
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/big").status == 502)
            let stale = try await gateway.send(.GET, "/proxy/pay/v1/small")
            #expect(stale.status == 200)
            #expect(stale.body == "small")
            #expect(stale.header("Belay-Degraded")?.hasPrefix("stale; age=") == true)
        }
    }

    @Test func hopByHopHeadersAreStripped() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            _ = try await gateway.send(
                .GET,
                "/proxy/pay/v1/x",
                headers: [
                    ("Connection", "X-Secret-Hop"), ("X-Secret-Hop", "1"), ("Proxy-Authorization", "Basic abc"),
                    ("TE", "trailers"), ("Belay-Timeout", "5s"),
                    ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                ]
            )
            let received = try #require(gateway.upstreams[0].requests.first)
            #expect(received.header("X-Secret-Hop") == nil)
            #expect(received.header("Proxy-Authorization") == nil)
            #expect(received.header("TE") == nil)
            #expect(received.header("Belay-Timeout") == nil)
            #expect(received.header("traceparent") == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        }
    }

    @Test func credentialsComeFromConfigAndConsumersMustAuthenticate() async throws {
        let key = "orders-secret-key"
        let digest = sha256Hex(key)
        let yaml: @Sendable ([String]) -> String = { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              orders: { key_sha256: "\(digest)", scopes: ["proxy:pay"] }
              reporting: { key_sha256: "\(sha256Hex("reporting-key"))", scopes: ["deliveries:read"] }
            upstreams:
              pay:
                endpoints: ["\(urls[0])"]
                headers: { Authorization: "Bearer ${PAY_TOKEN}" }
            """
        }
        try await GatewayHarness.run(config: .custom(yaml), environment: ["PAY_TOKEN": "upstream-token"]) { gateway in
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/x").code == "unauthorized")
            #expect(
                try await gateway.send(.GET, "/proxy/pay/v1/x", headers: [("Authorization", "Bearer wrong")]).status
                    == 401
            )
            #expect(
                try await gateway.send(.GET, "/proxy/pay/v1/x", headers: [("Authorization", "Bearer reporting-key")])
                    .code == "forbidden"
            )
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/x", headers: [("Authorization", "Bearer \(key)")])
            #expect(answer.status == 200)
            let received = try #require(gateway.upstreams[0].requests.last)
            #expect(received.header("Authorization") == "Bearer upstream-token")
            #expect(!answer.body.contains("upstream-token"))
        }
    }
}

func sha256Hex(_ text: String) -> String {
    SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
}
