import BelayAPI
import BelayClient
import BelayGateway
import BelayTestUpstream
import Foundation
import NIOHTTP1
import Testing

extension GatewayHarness {
    /// Reads a delivery until `condition` holds (the worker records attempts right after
    /// the upstream answers); gives up after 10 s so a broken feature fails, not hangs.
    func delivery(_ id: String, until condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
        var last: [String: Any] = [:]
        for _ in 0..<1_000 {
            last = try await send(.GET, "/v1/deliveries/\(id)").problem ?? [:]
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("delivery \(id) never reached the expected state: \(last)")
        return last
    }

    func queue(_ json: String, headers: [(String, String)] = []) async throws -> Answer {
        try await send(.POST, "/v1/deliveries", headers: [("Content-Type", "application/json")] + headers, body: json)
    }
}

@Suite struct DeliveryRoutesTests {
    @Test func anAcceptedDeliveryReachesTheUpstreamWithItsKeyAndShowsItsAttempt() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let answer = try await gateway.queue(
                #"{"upstream":"pay","method":"POST","path":"/v1/orders?src=belay","body":{"order":42}}"#,
                headers: [("Idempotency-Key", "\"order-42\"")]
            )
            #expect(answer.status == 202)
            let id = try #require(answer.problem?["id"] as? String)
            #expect(id.hasPrefix("dlv_"))
            #expect(answer.header("Location") == "/v1/deliveries/\(id)")
            #expect(answer.problem?["status"] as? String == "pending")

            let shown = try await gateway.delivery(id) { $0["status"] as? String == "delivered" }
            let received = try #require(gateway.upstreams[0].requests.first)
            #expect(received.method == "POST" && received.path == "/v1/orders?src=belay")
            #expect(received.headers["idempotency-key"] == "order-42")
            #expect(received.headers["content-type"] == "application/json")
            let attempts = try #require(shown["attempts"] as? [[String: Any]])
            #expect(attempts.count == 1)
            #expect(attempts[0]["status_code"] as? Int == 200)
            #expect(attempts[0]["decision"] as? String == "delivered (HTTP 200)")
            #expect((shown["body"] as? [String: Any])?["order"] as? Int == 42)
            #expect(shown["idempotency_key"] as? String == "order-42")
        }
    }

    @Test func theSameKeyAndPayloadReturnsTheFirstDeliveryAndAnotherPayloadIs422() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let body = #"{"upstream":"pay","method":"POST","path":"/v1/orders","idempotency_key":"k-1","body":{"a":1}}"#
            let first = try await gateway.queue(body)
            let again = try await gateway.queue(body)
            #expect(first.status == 202 && again.status == 202)
            #expect(again.problem?["id"] as? String == first.problem?["id"] as? String)
            #expect(again.header("Idempotent-Replayed") == "true")
            let other = try await gateway.queue(
                #"{"upstream":"pay","method":"POST","path":"/v1/orders","idempotency_key":"k-1","body":{"a":2}}"#
            )
            #expect(other.status == 422 && other.code == "idempotency-key-reused")
            #expect(other.problem?["field"] as? String == "Idempotency-Key")
        }
    }

    @Test func concurrentDuplicatesOfOneKeyMakeOneDelivery() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let body = #"{"upstream":"pay","method":"POST","path":"/v1/orders","body":{"n":1}}"#
            let answers = try await withThrowingTaskGroup(of: GatewayHarness.Answer.self) { group in
                for _ in 0..<24 {
                    group.addTask { try await gateway.queue(body, headers: [("Idempotency-Key", "dup-1")]) }
                }
                var answers: [GatewayHarness.Answer] = []
                for try await answer in group { answers.append(answer) }
                return answers
            }
            // Each is either the one delivery (202, the first or a replay of it) or told
            // that the first is still being accepted (409); nothing else.
            #expect(
                answers.allSatisfy { $0.status == 202 || ($0.status == 409 && $0.code == "idempotency-key-in-flight") }
            )
            let ids = Set(answers.filter { $0.status == 202 }.compactMap { $0.problem?["id"] as? String })
            #expect(ids.count == 1)
            let id = try #require(ids.first)
            _ = try await gateway.delivery(id) { $0["status"] as? String == "delivered" }
            let list = try await gateway.send(.GET, "/v1/deliveries")
            #expect((list.problem?["deliveries"] as? [[String: Any]])?.count == 1)
            #expect(gateway.upstreams[0].requests.count == 1)
        }
    }

    @Test(arguments: [
        ("not json", "/", "invalid-request", 400),
        (#"[1,2]"#, "/", "invalid-request", 400),
        (#"{"method":"POST","path":"/x"}"#, "/upstream", "invalid-request", 400),
        (#"{"upstream":"nope","method":"POST","path":"/x"}"#, "/upstream", "unknown-upstream", 404),
        (#"{"upstream":"pay","path":"/x"}"#, "/method", "invalid-request", 400),
        (#"{"upstream":"pay","method":"post","path":"/x"}"#, "/method", "invalid-request", 400),
        (#"{"upstream":"pay","method":"POST"}"#, "/path", "invalid-request", 400),
        (#"{"upstream":"pay","method":"POST","path":"/a/../../admin"}"#, "/path", "invalid-request", 400),
        (#"{"upstream":"pay","method":"POST","path":"/x","body":"not base64!"}"#, "/body", "invalid-request", 400),
        (
            #"{"upstream":"pay","method":"POST","path":"/x","headers":{"Host":"evil"}}"#, "/headers/Host",
            "invalid-request", 400
        ),
        (
            #"{"upstream":"pay","method":"POST","path":"/x","not_before":"tomorrow"}"#, "/not_before",
            "invalid-request", 400
        ),
        // Found by schemathesis: Foundation's ISO 8601 parser took these; RFC 3339 does not.
        (
            #"{"upstream":"pay","method":"POST","path":"/x","not_before":"2026-02-31T10:00:00Z"}"#, "/not_before",
            "invalid-request", 400
        ),
        (
            #"{"upstream":"pay","method":"POST","path":"/x","not_before":"2026-11-23T10:00:00"}"#, "/not_before",
            "invalid-request", 400
        ),
        (
            #"{"upstream":"pay","method":"POST","path":"/x","not_before":"2026-11-23T10:00:00Zjunk"}"#, "/not_before",
            "invalid-request", 400
        ),
        (
            #"{"upstream":"pay","method":"POST","path":"/x","require_ack":"yes"}"#, "/require_ack", "invalid-request",
            400
        ),
        (#"{"upstream":"pay","method":"POST","path":"/x","colour":"red"}"#, "/colour", "invalid-request", 400),
        // Control characters in the keys: a NUL is text PostgreSQL refuses, which failed the
        // whole group-committed batch, every other caller's accept in it too.
        (
            #"{"upstream":"pay","method":"POST","path":"/x","idempotency_key":"a\u0000b"}"#, "/idempotency_key",
            "invalid-request", 400
        ),
        (
            #"{"upstream":"pay","method":"POST","path":"/x","idempotency_key":"a\u007fb"}"#, "/idempotency_key",
            "invalid-request", 400
        ),
        (
            #"{"upstream":"pay","method":"POST","path":"/x","ordering_key":"a\u0000b"}"#, "/ordering_key",
            "invalid-request", 400
        ),
        (
            #"{"upstream":"pay","method":"POST","path":"/x","ordering_key":"line\nbreak"}"#, "/ordering_key",
            "invalid-request", 400
        ),
    ])
    func badInputNamesTheField(body: String, field: String, code: String, status: Int) async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let answer = try await gateway.queue(body)
            #expect(answer.status == status)
            #expect(answer.header("Content-Type") == "application/problem+json")
            #expect(answer.code == code)
            #expect(answer.problem?["field"] as? String == field)
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func aTooLargeBodyIs413() async throws {
        try await GatewayHarness.run(config: .pay(server: "max_body: 1KiB")) { gateway in
            let padding = String(repeating: "x", count: 2_000)
            let answer = try await gateway.queue(
                #"{"upstream":"pay","method":"POST","path":"/x","body":{"p":"\#(padding)"}}"#
            )
            #expect(answer.status == 413 && answer.code == "payload-too-large")
        }
    }

    @Test func aPermanentRefusalIsDeadAtOnceAndCanBeReplayedOrCancelled() async throws {
        try await GatewayHarness.run(config: .pay(policy: "retry: { max_attempts: 1 }")) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(statuses: [422], status: 200))
            let id = try #require(
                try await gateway.queue(#"{"upstream":"pay","method":"POST","path":"/v1/orders"}"#).problem?["id"]
                    as? String
            )
            let dead = try await gateway.delivery(id) { $0["status"] as? String == "dead" }
            #expect(dead["last_error"] as? String == "HTTP 422")
            let attempts = dead["attempts"] as? [[String: Any]] ?? []
            #expect(attempts.first?["decision"] as? String == "dead: HTTP 422 is a permanent refusal; not retried")
            #expect(gateway.upstreams[0].requests.count == 1)

            let deadList = try await gateway.send(.GET, "/v1/deliveries?status=dead")
            #expect((deadList.problem?["deliveries"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])

            let replay = try await gateway.send(.POST, "/v1/deliveries/\(id)/retry")
            #expect(replay.status == 200)
            _ = try await gateway.delivery(id) { $0["status"] as? String == "delivered" }
            #expect(gateway.upstreams[0].requests.count == 2)
            let cancel = try await gateway.send(.POST, "/v1/deliveries/\(id)/cancel")
            #expect(cancel.status == 409 && cancel.code == "conflict")
            #expect(try await gateway.send(.POST, "/v1/deliveries/dlv_nope/cancel").code == "not-found")
        }
    }

    @Test func whileTheBreakerIsOpenPendingDeliveriesSayTheyWaitWithoutSpendingAttempts() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 2, window: 60s, break: 60s }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            gateway.upstreams[0].setBehavior(.always(503))
            var ids: [String] = []
            for index in 0..<2 {
                let answer = try await gateway.queue(#"{"upstream":"pay","method":"PUT","path":"/v1/\#(index)"}"#)
                ids.append(answer.problem?["id"] as? String ?? "")
            }
            // Both fail once; the breaker opens; neither is tried again for the break.
            let held = try await gateway.delivery(ids[0]) { $0["waiting"] is String }
            let waiting = held["waiting"] as? String ?? ""
            #expect(waiting.hasPrefix("pay's circuit breaker is open; attempts resume in about "))
            #expect(held["status"] as? String == "pending" && held["attempt_count"] as? Int == 1)
            let list = try await gateway.send(.GET, "/v1/deliveries?status=pending")
            let rows = list.problem?["deliveries"] as? [[String: Any]] ?? []
            #expect(rows.count == 2 && rows.allSatisfy { $0["waiting"] is String })
            #expect(gateway.upstreams[0].requests.count == 2)
        }
    }

    @Test func aRequiredAckIsRecorded() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let id = try #require(
                try await gateway.queue(#"{"upstream":"pay","method":"PUT","path":"/v1/x","require_ack":true}"#)
                    .problem?["id"] as? String
            )
            let delivered = try await gateway.delivery(id) { $0["status"] as? String == "delivered" }
            #expect(delivered["next_attempt_at"] is String)
            let received = try #require(gateway.upstreams[0].requests.first)
            #expect(received.headers["belay-delivery-id"] == id)
            let ack = try await gateway.send(.POST, "/v1/deliveries/\(id)/ack")
            #expect(ack.status == 200 && ack.problem?["status"] as? String == "acknowledged")
            #expect(try await gateway.send(.POST, "/v1/deliveries/\(id)/ack").status == 200)
        }
    }

    @Test func listsPageNewestFirstAndRejectAnUnknownStatus() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            var ids: [String] = []
            for index in 0..<3 {
                let answer = try await gateway.queue(#"{"upstream":"pay","method":"POST","path":"/v1/\#(index)"}"#)
                ids.append(answer.problem?["id"] as? String ?? "")
            }
            let page = try await gateway.send(.GET, "/v1/deliveries?limit=2")
            let first = page.problem?["deliveries"] as? [[String: Any]] ?? []
            #expect(first.map { $0["id"] as? String } == [ids[2], ids[1]])
            let cursor = try #require(page.problem?["next_cursor"] as? String)
            let rest = try await gateway.send(.GET, "/v1/deliveries?limit=2&cursor=\(cursor)")
            #expect((rest.problem?["deliveries"] as? [[String: Any]])?.map { $0["id"] as? String } == [ids[0]])
            #expect(rest.problem?["next_cursor"] is NSNull)
            let bad = try await gateway.send(.GET, "/v1/deliveries?status=lost")
            #expect(bad.status == 400 && bad.problem?["field"] as? String == "status")
            #expect(try await gateway.send(.GET, "/v1/deliveries/dlv_nope").code == "not-found")
        }
    }

    @Test func consumersNeedTheDeliveryScopes() async throws {
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              reader: { key_sha256: "\(sha256Hex("reader-key"))", scopes: ["deliveries:read"] }
              writer: { key_sha256: "\(sha256Hex("writer-key"))", scopes: ["deliveries:write", "deliveries:read"] }
              sender: { key_sha256: "\(sha256Hex("sender-key"))", scopes: ["deliveries:write", "proxy:pay"] }
            upstreams:
              pay: { endpoints: ["\(urls[0])"] }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            let body = #"{"upstream":"pay","method":"POST","path":"/v1/x"}"#
            #expect(try await gateway.queue(body).status == 401)
            #expect(try await gateway.queue(body, headers: [("Authorization", "Bearer reader-key")]).status == 403)
            // deliveries:write alone does not lend the upstream's credentials.
            let unscoped = try await gateway.queue(body, headers: [("Authorization", "Bearer writer-key")])
            #expect(unscoped.status == 403 && unscoped.problem?["field"] as? String == "/upstream")
            let accepted = try await gateway.queue(body, headers: [("Authorization", "Bearer sender-key")])
            #expect(accepted.status == 202)
            let read = try await gateway.send(.GET, "/v1/deliveries", headers: [("Authorization", "Bearer reader-key")])
            #expect(read.status == 200)
        }
    }

    @Test func theCLIClientRendersListsAndDeliveriesAsTables() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let id = try #require(
                try await gateway.queue(
                    #"{"upstream":"pay","method":"POST","path":"/v1/orders","idempotency_key":"o-1"}"#
                )
                .problem?["id"] as? String
            )
            _ = try await gateway.delivery(id) { $0["status"] as? String == "delivered" }
            let client = ManagementClient(baseURL: "http://127.0.0.1:\(gateway.port)/", apiKey: nil)
            let list = DeliveryTable.list(try await client.get("/v1/deliveries").decode(DeliveryPage.self))
            let lines = list.split(separator: "\n")
            #expect(lines.count == 2)
            #expect(lines[0].hasPrefix("ID") && lines[0].contains("STATUS") && lines[0].contains("LAST ERROR"))
            #expect(lines[1].hasPrefix(id) && lines[1].contains("delivered") && lines[1].contains("POST /v1/orders"))
            let shown = DeliveryTable.show(try await client.get("/v1/deliveries/\(id)").decode(DeliveryDetail.self))
            #expect(shown.contains("idempotency key o-1"))
            #expect(shown.contains("require ack     no"))
            #expect(shown.contains("HTTP 200") && shown.contains("delivered (HTTP 200)"))
            // The attempt row starts with its number (JSON numbers are not flags).
            #expect(shown.split(separator: "\n").last?.hasPrefix("1 ") == true)
            let missing = try await client.post("/v1/deliveries/dlv_nope/retry")
            #expect(missing.status == 404 && missing.problemSummary.hasPrefix("not-found: "))
            #expect(DeliveryTable.list(DeliveryPage(deliveries: [], nextCursor: nil)) == "no deliveries")
        }
    }
}
