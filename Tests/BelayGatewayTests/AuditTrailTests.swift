import BelayGateway
import BelayTestUpstream
import Foundation
import NIOHTTP1
import Testing

@Suite(.timeLimit(.minutes(1))) struct AuditTrailTests {
    /// `GET /v1/requests/{id}` as JSON. A trail is readable as soon as its request has been
    /// answered: the route has the recorder write what it holds before it says not found.
    func trail(_ gateway: GatewayHarness, _ id: String) async throws -> [String: Any] {
        let answer = try await gateway.send(.GET, "/v1/requests/\(id)")
        #expect(answer.status == 200, "GET /v1/requests/\(id): \(answer.status) \(answer.body)")
        return try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
    }

    @Test func aRetriedRequestShowsBothAttemptsAndWhyItWasRetried() async throws {
        try await GatewayHarness.run(config: .pay(policy: "retry: { max_attempts: 3, base: 1ms, cap: 5ms }")) {
            gateway in
            gateway.upstreams[0].setBehavior(.sequence([503]))
            let answer = try await gateway.send(
                .GET,
                "/proxy/pay/v1/balance?token=s3cr3t",
                headers: [("X-Request-Id", "r-retry"), ("Authorization", "Bearer upstream-secret")]
            )
            #expect(answer.status == 200)
            let endpoint = "127.0.0.1:\(await gateway.upstreams[0].port())"

            let id = try #require(answer.header("Belay-Request-Id"))
            let record = try await trail(gateway, id)
            #expect(record["id"] as? String == id)
            // The caller's X-Request-Id is kept as the correlation id, never as the key.
            #expect(record["correlation_id"] as? String == "r-retry")
            #expect(record["upstream"] as? String == "pay")
            #expect(record["method"] as? String == "GET")
            #expect(record["path"] as? String == "/v1/balance")
            #expect(record["status"] as? Int == 200)
            #expect(record["outcome"] as? String == "success")
            #expect(record["received_at"] is String && record["duration_ms"] is Double)
            let attempts = try #require(record["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["status"] as? Int } == [503, 200])
            #expect(attempts.map { $0["endpoint"] as? String } == [endpoint, endpoint])
            #expect(attempts.map { $0["number"] as? Int } == [1, 2])
            let decisions = try #require(record["decisions"] as? [[String: Any]])
            #expect(decisions.map { $0["kind"] as? String } == ["retry_scheduled"])
            #expect(decisions.first?["attempt"] as? Int == 1)
            let sentence = try #require(decisions.first?["description"] as? String)
            #expect(sentence.hasPrefix("retried because HTTP 503 from \(endpoint) after a "), "\(sentence)")
            // Secrets never reach the trail: no query string, no header values.
            let raw = try await gateway.send(.GET, "/v1/requests/r-retry").body
            #expect(!raw.contains("s3cr3t") && !raw.contains("upstream-secret"))

            let page = try await gateway.send(.GET, "/v1/requests?upstream=pay&outcome=success&since=1h&limit=10")
            #expect(page.status == 200)
            let listed = try #require(
                try JSONSerialization.jsonObject(with: Data(page.body.utf8)) as? [String: Any]
            )
            let requests = try #require(listed["requests"] as? [[String: Any]])
            #expect(requests.map { $0["id"] as? String } == [id])
            #expect(listed["next_cursor"] is NSNull)
            let none = try await gateway.send(.GET, "/v1/requests?upstream=nobody")
            #expect(none.body.contains(#""requests":[]"#))
        }
    }

    @Test func aRetryThatWaitedForRetryAfterSaysSo() async throws {
        try await GatewayHarness.run(config: .pay(policy: "retry: { max_attempts: 2, base: 1ms, cap: 5ms }")) {
            gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(statuses: [503], retryAfter: "1"))
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/x", headers: [("X-Request-Id", "r-wait")])
            #expect(answer.status == 200)
            let endpoint = "127.0.0.1:\(await gateway.upstreams[0].port())"
            let record = try await trail(gateway, try #require(answer.header("Belay-Request-Id")))
            let decisions = try #require(record["decisions"] as? [[String: Any]])
            #expect(
                decisions.map { $0["description"] as? String } == [
                    "retried because HTTP 503 from \(endpoint); waited 1s for Retry-After"
                ]
            )
            let attempts = try #require(record["attempts"] as? [[String: Any]])
            let second = try #require(attempts.last?["started_ms"] as? Double)
            #expect(second >= 1_000, "the second attempt started \(second) ms into the call")
        }
    }

    @Test func aStaleAnswerShowsThatItWasServedStaleAndWhy() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            cache: { stale_if_error: 10m }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            let fresh = try await gateway.send(.GET, "/proxy/pay/v1/rates", headers: [("X-Request-Id", "r-fresh")])
            gateway.upstreams[0].setBehavior(.always(502))
            let stale = try await gateway.send(.GET, "/proxy/pay/v1/rates", headers: [("X-Request-Id", "r-stale")])
            #expect(stale.header("Belay-Degraded") != nil)

            let record = try await trail(gateway, try #require(stale.header("Belay-Request-Id")))
            #expect(record["outcome"] as? String == "stale")
            #expect(record["stale_age_s"] is Double)
            let attempts = try #require(record["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["status"] as? Int } == [502])
            let decisions = try #require(record["decisions"] as? [[String: Any]])
            let last = try #require(decisions.last)
            #expect(last["kind"] as? String == "served_stale")
            let sentence = try #require(last["description"] as? String)
            #expect(sentence.hasPrefix("served stale (age "), "\(sentence)")
            #expect(sentence.hasSuffix("because the upstream answered HTTP 502"), "\(sentence)")
            let freshID = try #require(fresh.header("Belay-Request-Id"))
            #expect(try await trail(gateway, freshID)["outcome"] as? String == "success")
        }
    }

    @Test func anEjectedEndpointIsShownAsSkipped() async throws {
        try await GatewayHarness.run(upstreams: 2, config: .pay(policy: "retry: { base: 1ms, cap: 5ms }")) {
            gateway in
            gateway.upstreams[0].setBehavior(.down)
            var ids: [String] = []
            for index in 0..<4 {
                let answer = try await gateway.send(.GET, "/proxy/pay/v1/x", headers: [("X-Request-Id", "r-\(index)")])
                #expect(answer.status == 200)
                ids.append(answer.header("Belay-Request-Id") ?? "")
            }
            let primary = "127.0.0.1:\(await gateway.upstreams[0].port())"
            let backup = "127.0.0.1:\(await gateway.upstreams[1].port())"
            // The third call ejected the primary; the fourth skips it.
            let record = try await trail(gateway, ids[3])
            let attempts = try #require(record["attempts"] as? [[String: Any]])
            #expect(attempts.count == 1)
            #expect(attempts.first?["endpoint"] as? String == backup)
            #expect(attempts.first?["skipped"] as? [String] == [primary])
            let decisions = try #require(record["decisions"] as? [[String: Any]])
            #expect(
                decisions.map { $0["description"] as? String } == [
                    "skipped endpoint \(primary) because it is ejected as an outlier"
                ]
            )
            // Before the ejection, nothing was skipped.
            let first = try await trail(gateway, ids[0])
            let firstAttempts = try #require(first["attempts"] as? [[String: Any]])
            #expect(firstAttempts.allSatisfy { $0["skipped"] == nil })
            #expect(firstAttempts.first?["failure"] as? String == "reset")
        }
    }

    @Test func badQueriesAndUnknownIdsAreProblems() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let unknown = try await gateway.send(.GET, "/v1/requests/nobody")
            #expect(unknown.status == 404)
            #expect(unknown.code == "not-found")
            #expect(unknown.header("Content-Type") == "application/problem+json")
            let since = try await gateway.send(.GET, "/v1/requests?since=yesterday")
            #expect(since.status == 400 && since.code == "invalid-request")
            #expect(since.problem?["field"] as? String == "since")
            let limit = try await gateway.send(.GET, "/v1/requests?limit=0")
            #expect(limit.status == 400 && limit.problem?["field"] as? String == "limit")
            let date = try await gateway.send(.GET, "/v1/requests?since=2026-11-24T10:00:00Z")
            #expect(date.status == 200)
            let outcome = try await gateway.send(.GET, "/v1/requests?outcome=fine")
            #expect(outcome.status == 400 && outcome.problem?["field"] as? String == "outcome")
            #expect(try await gateway.send(.GET, "/v1/requests?outcome=circuit-open").status == 200)
            // Found by schemathesis: a day its month does not have was taken.
            let day = try await gateway.send(.GET, "/v1/requests?since=8235-02-31T15:16:04.6Z")
            #expect(day.status == 400 && day.problem?["field"] as? String == "since")
            let cursor = try await gateway.send(.GET, "/v1/requests?cursor=abc")
            #expect(cursor.status == 400 && cursor.problem?["field"] as? String == "cursor")
        }
    }

    @Test func consumersNeedTheRequestsReadScope() async throws {
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              app: { key_sha256: "\(sha256Hex("app-key"))", scopes: ["proxy:pay"] }
              analyst: { key_sha256: "\(sha256Hex("analyst-key"))", scopes: ["requests:read"] }
              ops: { key_sha256: "\(sha256Hex("ops-key"))", scopes: ["admin"] }
            upstreams:
              pay: { endpoints: ["\(urls[0])"] }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            let call = try await gateway.send(.GET, "/proxy/pay/v1/x", headers: [("Authorization", "Bearer app-key")])
            #expect(call.status == 200)
            let id = try #require(call.header("Belay-Request-Id"))
            #expect(try await gateway.send(.GET, "/v1/requests/\(id)").status == 401)
            let app = [("Authorization", "Bearer app-key")]
            #expect(try await gateway.send(.GET, "/v1/requests/\(id)", headers: app).status == 403)
            #expect(try await gateway.send(.GET, "/v1/requests", headers: app).status == 403)
            // A consumer's trail is its own: another consumer, even with requests:read, does not
            // find it; admin does.
            let analyst = try await gateway.send(
                .GET,
                "/v1/requests/\(id)",
                headers: [("Authorization", "Bearer analyst-key")]
            )
            #expect(analyst.status == 404)
            let admin = try await gateway.send(
                .GET,
                "/v1/requests/\(id)",
                headers: [("Authorization", "Bearer ops-key")]
            )
            #expect(admin.status == 200)
            #expect(admin.body.contains(#""consumer":"app""#))
            #expect(!admin.body.contains("app-key"))
        }
    }

    @Test func aDisabledAuditTrailRecordsNothing() async throws {
        try await GatewayHarness.run(config: .custom { payConfig($0) + "\naudit: { enabled: false }" }) { gateway in
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/x")
            let id = try #require(answer.header("Belay-Request-Id"))
            #expect(try await gateway.send(.GET, "/v1/requests/\(id)").status == 404)
        }
    }
}
