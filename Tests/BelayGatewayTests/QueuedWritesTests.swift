import AsyncHTTPClient
import Belay
import BelayStore
import BelayTestUpstream
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing

@testable import BelayGateway
@testable import BelayHTTP

/// `degrade: { writes: queue }` decisions, without sockets.
@Suite struct QueuedWritesDecisionTests {
    let endpoint = UpstreamEndpoint(scheme: "http", host: "127.0.0.1", port: 9)

    func policy(keyed: Bool) -> UpstreamPolicy {
        var policy = UpstreamPolicy(name: "pay", endpoints: [endpoint])
        if keyed { policy.idempotencyHeader = "Idempotency-Key" }
        return policy
    }

    func result(_ outcome: Result<UpstreamResponse, any Error>, attempts: [UpstreamFailure.Kind?]) -> UpstreamResult {
        UpstreamResult(
            outcome: outcome,
            staleAge: nil,
            attempts: attempts.enumerated().map { index, failure in
                AttemptRecord(
                    number: index + 1,
                    endpoint: endpoint,
                    status: failure == nil ? 503 : nil,
                    failure: failure,
                    duration: .milliseconds(1)
                )
            }
        )
    }

    func answer(_ status: Int) -> Result<UpstreamResponse, any Error> {
        .success(
            UpstreamResponse(status: .init(code: status), headers: [:], body: .buffered(.init()), endpoint: endpoint)
        )
    }

    @Test func preferRespondAsyncIsReadAmongOtherPreferencesInAnyCase() {
        #expect(QueuedWrites.prefersAsync([.prefer: "respond-async"]))
        #expect(QueuedWrites.prefersAsync([.prefer: "return=minimal, Respond-Async; x=1"]))
        #expect(QueuedWrites.prefersAsync([.prefer: "wait=10,respond-async"]))
        #expect(!QueuedWrites.prefersAsync([.prefer: "return=minimal"]))
        #expect(!QueuedWrites.prefersAsync([.prefer: "respond-asynchronously"]))
        // A quoted value is one word, whatever it holds (RFC 7230 quoted-string, RFC 7240).
        #expect(!QueuedWrites.prefersAsync([.prefer: #"note="a, respond-async, b""#]))
        #expect(!QueuedWrites.prefersAsync([.prefer: #"note="a \", respond-async""#]))
        #expect(QueuedWrites.prefersAsync([.prefer: #"note="a, b", respond-async"#]))
        #expect(QueuedWrites.prefersAsync([.prefer: #"return=minimal; note="x;y", Respond-Async"#]))
        #expect(!QueuedWrites.prefersAsync([:]))
    }

    @Test func onlyAWriteThatIsSafeToSendAgainIsQueued() {
        let keyless = policy(keyed: false)
        let keyed = policy(keyed: true)
        let open = result(.failure(ResilienceError(code: .circuitOpen, strategy: "pay", message: "open")), attempts: [])
        // The breaker refused it before any attempt: nothing was sent, keys or not.
        #expect(QueuedWrites.reason(open, policy: keyless) == "the circuit breaker is open; nothing was sent")
        // Never a read, never a streamed body.
        #expect(QueuedWrites.mayQueue(method: .post, body: .buffered(ByteBuffer(string: "{}"))))
        #expect(QueuedWrites.mayQueue(method: .delete, body: .none))
        #expect(!QueuedWrites.mayQueue(method: .get, body: .none))
        #expect(!QueuedWrites.mayQueue(method: .post, body: .stream(.bytes(ByteBuffer(string: "{}")))))
        // Attempts failed to connect: a connect timeout can follow a request written on a reused
        // connection, so only a key makes it safe.
        let refused = result(
            .failure(UpstreamFailure(kind: .connect, endpoint: endpoint, detail: "refused")),
            attempts: [.connect, .connect]
        )
        #expect(QueuedWrites.reason(refused, policy: keyless) == nil)
        #expect(QueuedWrites.reason(refused, policy: keyed) != nil)
        // The breaker opened between attempts of a keyed call: queued, but not "nothing was sent".
        let openedMidway = result(
            .failure(ResilienceError(code: .circuitOpen, strategy: "pay", message: "open")),
            attempts: [.reset]
        )
        #expect(QueuedWrites.reason(openedMidway, policy: keyless) == nil)
        #expect(
            QueuedWrites.reason(openedMidway, policy: keyed)?.hasSuffix("the upstream honours idempotency keys") == true
        )
        // A 503 or a reset after it was sent: only with idempotency keys.
        let unavailable = result(answer(503), attempts: [nil])
        #expect(QueuedWrites.reason(unavailable, policy: keyless) == nil)
        #expect(
            QueuedWrites.reason(unavailable, policy: keyed)
                == "every attempt failed (last: HTTP 503); the upstream honours idempotency keys"
        )
        let reset = result(
            .failure(UpstreamFailure(kind: .reset, endpoint: endpoint, detail: "reset")),
            attempts: [.reset]
        )
        #expect(QueuedWrites.reason(reset, policy: keyless) == nil)
        #expect(QueuedWrites.reason(reset, policy: keyed) != nil)
        // An answer the caller should see: a 4xx (a 429 is its quota), a 500 that is not retried.
        for status in [400, 408, 422, 429, 500] {
            #expect(QueuedWrites.reason(result(answer(status), attempts: [nil]), policy: keyed) == nil, "\(status)")
        }
        // The caller's own failure.
        let callers = result(.failure(RequestBodyError(code: .incomplete, underlying: nil)), attempts: [])
        #expect(QueuedWrites.reason(callers, policy: keyed) == nil)
    }

    @Test func aQueuedWriteKeepsItsPayloadNotWhatBelongsToOneRequest() throws {
        var upstream = UpstreamConfig(name: "pay", endpoints: [])
        var headers = HTTPFields()
        for (name, value) in [
            ("Content-Type", "application/json"), ("Prefer", "respond-async"), ("Idempotency-Key", "k1"),
            ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            ("X-Forwarded-For", "10.0.0.1"), ("Belay-Timeout", "2s"), ("X-Shop", "berlin"),
        ] {
            headers.append(HTTPField(name: HTTPField.Name(name)!, value: value))
        }
        func delivery(_ headers: HTTPFields) -> NewDelivery {
            QueuedWrites.delivery(
                upstream: upstream,
                method: .post,
                path: "/v1/orders",
                query: "a=1",
                headers: headers,
                body: Data("{}".utf8),
                callerKey: "k1",
                madeKey: nil,
                consumer: "shop",
                schedule: [.zero],
                now: Date(timeIntervalSince1970: 0)
            )
        }
        // No key header of its own: the caller's Idempotency-Key goes as sent.
        let keyless = delivery(headers)
        #expect(keyless.path == "/v1/orders?a=1" && keyless.idempotencyKey == "k1" && keyless.keyFromCaller)
        #expect(keyless.headers.map(\.name) == ["Content-Type", "Idempotency-Key", "X-Shop"])
        // With one, the queue sets it.
        upstream.idempotencyHeader = "Idempotency-Key"
        let keyed = delivery(headers)
        #expect(keyed.headers.map(\.name) == ["Content-Type", "X-Shop"])
        // A retry with a new trace context and another incidental header is the same payload.
        headers[HTTPField.Name("traceparent")!] = "00-11111111111111111111111111111111-2222222222222222-01"
        headers[HTTPField.Name("User-Agent")!] = "retry/2"
        #expect(delivery(headers).fingerprint == keyed.fingerprint)
        var otherBody = delivery(headers)
        otherBody = QueuedWrites.delivery(
            upstream: upstream,
            method: .post,
            path: "/v1/orders",
            query: "a=1",
            headers: headers,
            body: Data("{\"x\":1}".utf8),
            callerKey: "k1",
            madeKey: nil,
            consumer: "shop",
            schedule: [.zero],
            now: Date(timeIntervalSince1970: 0)
        )
        #expect(otherBody.fingerprint != keyed.fingerprint)
    }
}

/// Writes queued through the proxy while the upstream is down, then delivered.
@Suite(.timeLimit(.minutes(1))) struct QueuedWritesGatewayTests {
    static func config(keyed: Bool = true) -> ConfigTemplate {
        .custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            upstreams:
              pay:
                endpoints: ["\(urls[0])"]
                retry: { max_attempts: 2, base: 5ms, cap: 10ms }
                circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 2, window: 10s, break: 300ms }
                degrade: { writes: queue }
            \(keyed ? "    idempotency: { header: Idempotency-Key }" : "")
            deliveries: { schedule: [0s, 500ms, 500ms, 500ms, 500ms, 500ms, 500ms, 500ms] }
            """
        }
    }

    static let async = [("Prefer", "respond-async"), ("Content-Type", "application/json")]

    @Test func aWriteRefusedByTheOpenBreakerIsQueuedThenDeliveredWithTheCallersKey() async throws {
        try await GatewayHarness.run(config: Self.config()) { gateway in
            let upstream = gateway.upstreams[0]
            upstream.setBehavior(.always(503))
            // Without the preference nothing is queued: the failure is the caller's to see.
            let plain = try await gateway.send(.POST, "/proxy/pay/v1/orders", body: #"{"order":0}"#)
            #expect(plain.status == 503 && plain.header("Belay-Degraded") == nil)
            // The breaker is open now (2 of 2 failed).
            let queued = try await gateway.send(
                .POST,
                "/proxy/pay/v1/orders?source=web",
                headers: Self.async + [("Idempotency-Key", "order-1"), ("X-Shop", "berlin")],
                body: #"{"order":1}"#
            )
            #expect(queued.status == 202, "\(queued.body)")
            #expect(queued.header("Preference-Applied") == "respond-async")
            #expect(queued.header("Belay-Degraded") == "queued")
            let location = try #require(queued.header("Location"))
            #expect(location.hasPrefix("/v1/deliveries/dlv_"))
            let answer = try #require(queued.problem)
            #expect(answer["status"] as? String == "pending" && answer["location"] as? String == location)
            #expect((answer["queued_because"] as? String)?.isEmpty == false)
            // What support reads on the status page meanwhile: writes are queued.
            let status = try await gateway.send(.GET, "/v1/upstreams/pay")
            let degradation = (status.problem?["degradation"] as? [String: Any])?["level"] as? String
            #expect(degradation == "minimal", "\(status.body)")
            #expect(status.problem?["criticality"] as? String == "critical")
            // The same key again: the same delivery, replayed.
            let again = try await gateway.send(
                .POST,
                "/proxy/pay/v1/orders?source=web",
                headers: Self.async + [("Idempotency-Key", "order-1"), ("X-Shop", "berlin")],
                body: #"{"order":1}"#
            )
            #expect(again.status == 202 && again.header("Location") == location)
            #expect(again.header("Idempotent-Replayed") == "true")
            // The same key with another body: 422, as for POST /v1/deliveries.
            let other = try await gateway.send(
                .POST,
                "/proxy/pay/v1/orders?source=web",
                headers: Self.async + [("Idempotency-Key", "order-1")],
                body: #"{"order":2}"#
            )
            #expect(other.status == 422 && other.code == "idempotency-key-reused", "\(other.body)")

            // The upstream comes back: the queue delivers it, once, with the caller's key.
            upstream.setBehavior(UpstreamBehavior(status: 201))
            let delivery = try await poll(gateway, location) { $0["status"] as? String == "delivered" }
            #expect(delivery["status"] as? String == "delivered", "\(delivery)")
            // (A half-open breaker's trial call of a later request may have carried the key too,
            // and been answered 503: only one was taken.)
            let arrived = upstream.requests.filter { $0.headers["idempotency-key"] == "order-1" && $0.status == 201 }
            #expect(arrived.count == 1)
            let first = try #require(arrived.first)
            #expect(first.method == "POST" && first.path == "/v1/orders?source=web")
            #expect(first.body == #"{"order":1}"# && first.headers["x-shop"] == "berlin")
            #expect(first.headers["prefer"] == nil)

            // The caller lost its 202 and sends the write again now the upstream is back: it is
            // answered from the queue, not done a second time.
            let late = try await gateway.send(
                .POST,
                "/proxy/pay/v1/orders?source=web",
                headers: Self.async + [("Idempotency-Key", "order-1"), ("X-Shop", "berlin")],
                body: #"{"order":1}"#
            )
            #expect(late.status == 202 && late.header("Location") == location && late.header("Belay-Attempts") == "0")
            #expect(late.header("Idempotent-Replayed") == "true")
            #expect(
                upstream.requests.filter { $0.headers["idempotency-key"] == "order-1" && $0.status == 201 }.count == 1
            )

            // The audit trail and the metrics say what happened.
            let id = try #require(queued.header("Belay-Request-Id"))
            let trail = try await poll(gateway, "/v1/requests/\(id)") { $0["outcome"] != nil }
            #expect(trail["outcome"] as? String == "queued" && trail["status"] as? Int == 202)
            let decisions = (trail["decisions"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
            #expect(decisions.last == "queued_for_delivery", "\(decisions)")
            let metrics = try await gateway.send(.GET, "/metrics")
            #expect(metrics.body.contains(#"belay_proxy_requests_total{upstream="pay",outcome="queued"} 3"#))
        }
    }

    @Test func aWriteAnUpstreamWithoutKeysMayHaveTakenIsNotQueued() async throws {
        try await GatewayHarness.run(config: Self.config(keyed: false)) { gateway in
            gateway.upstreams[0].setBehavior(.always(503))
            // Sent once (unsafe, no keys: not retried), answered 503: it may have been taken.
            let sent = try await gateway.send(.POST, "/proxy/pay/v1/orders", headers: Self.async, body: "{}")
            #expect(sent.status == 503 && sent.header("Belay-Degraded") == nil)
            // A read is never queued.
            let read = try await gateway.send(.GET, "/proxy/pay/v1/orders", headers: Self.async)
            #expect(read.status == 503 && read.header("Belay-Degraded") == nil)
            let page = try await gateway.send(.GET, "/v1/deliveries")
            #expect(page.body.contains(#""deliveries":[]"#), "\(page.body)")
        }
    }

    @Test func aKeyedWriteWhoseAttemptsAllFailedIsQueuedWithoutAKeyOfItsOwn() async throws {
        try await GatewayHarness.run(config: Self.config()) { gateway in
            let upstream = gateway.upstreams[0]
            upstream.setBehavior(.always(503))
            let queued = try await gateway.send(.POST, "/proxy/pay/v1/orders", headers: Self.async, body: "{}")
            #expect(queued.status == 202, "\(queued.body)")
            #expect(queued.header("Belay-Attempts") == "2")
            #expect(
                (queued.problem?["queued_because"] as? String)
                    == "every attempt failed (last: HTTP 503); the upstream honours idempotency keys"
            )
            // The key Belay made for the attempts is the one the queue sends again.
            let sentKeys = Set(upstream.requests.compactMap { $0.headers["idempotency-key"] })
            #expect(sentKeys.count == 1)
            upstream.setBehavior(UpstreamBehavior(status: 201))
            let location = try #require(queued.header("Location"))
            _ = try await poll(gateway, location) { $0["status"] as? String == "delivered" }
            let requests = upstream.requests
            #expect(Set(requests.compactMap { $0.headers["idempotency-key"] }).count == 1)
            #expect(requests.last?.status == 201 && requests.count >= 3, "\(requests.map(\.status))")
        }
    }
}
