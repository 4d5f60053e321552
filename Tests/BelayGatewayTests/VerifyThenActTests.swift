import BelayTestUpstream
import Foundation
import NIOHTTP1
import Testing

@testable import BelayGateway

/// An inbox whose `shop` source fetches each event's order from `pay` (upstream 0) before
/// forwarding it to upstream 1.
func verifyingInboxConfig(_ urls: [String]) -> String {
    """
    server: { listen: "127.0.0.1:0" }
    upstreams:
      pay: { endpoints: ["\(urls[0])"], retry: { max_attempts: 1 } }
    deliveries: { schedule: [0s, 100ms, 200ms] }
    webhooks:
      shop:
        verify: { scheme: standard-webhooks, secret: "\(inboxSecret)", upstream: pay, path: "/v1/orders/{/data/id}?expand=items" }
        forward_to: "\(urls[1])/hooks/shop"
        forward_secret: "\(forwardSecret)"
    """
}

@Suite(.timeLimit(.minutes(1))) struct VerifyThenActTests {
    @Test func aForwardCarriesTheResourcesCurrentStateFetchedThroughTheProxy() async throws {
        try await GatewayHarness.run(upstreams: 2, config: .custom(verifyingInboxConfig)) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(body: #"{"id":"ord 1","status":"paid"}"#))
            let event = #"{"type":"order.paid","data":{"id":"ord 1","status":"pending"}}"#
            let answer = try await gateway.deliverWebhook(event, id: "msg_v1")
            #expect(answer.status == 200)
            try await gateway.eventually { gateway.upstreams[1].requests.contains { $0.path == "/hooks/shop" } }

            // The state was fetched through the proxy's client for `pay`, the id percent-encoded.
            let fetch = try #require(gateway.upstreams[0].requests.first)
            #expect(fetch.method == "GET" && fetch.path == "/v1/orders/ord%201?expand=items")
            let forwarded = try #require(gateway.upstreams[1].requests.first)
            let body = try #require(forwarded.body)
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
            )
            #expect((object["event"] as? [String: Any])?["type"] as? String == "order.paid")
            #expect((object["current"] as? [String: Any])?["status"] as? String == "paid")
            let verified = try #require(object["verified"] as? [String: Any])
            #expect(verified["upstream"] as? String == "pay")
            #expect(verified["path"] as? String == "/v1/orders/ord%201?expand=items")
            #expect(verified["status"] as? Int == 200)
            // The event's bytes are carried as they came.
            #expect(body.hasPrefix(#"{"event":"# + event + #","current":"#))

            // Belay signed what it sent: the envelope, not the provider's event.
            var headers = HTTPFieldsBuilder()
            for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
                headers.add(name, forwarded.headers[name] ?? "")
            }
            let check = GatewayConfig.WebhookSource(
                name: "app",
                scheme: .standardWebhooks,
                secrets: [Secret(forwardSecret)]
            )
            let outcome = try WebhookVerifier(source: check).verify(
                body: Data(body.utf8),
                headers: headers.fields,
                now: Date()
            )
            #expect((try? outcome.get()) != nil)
        }
    }

    @Test func anEventWhoseResourceDoesNotExistIsDeadAndNeverForwarded() async throws {
        try await GatewayHarness.run(upstreams: 2, config: .custom(verifyingInboxConfig)) { gateway in
            gateway.upstreams[0].setBehavior(.always(404))
            let answer = try await gateway.deliverWebhook(#"{"data":{"id":"forged"}}"#, id: "msg_forged")
            #expect(answer.status == 200)
            try await gateway.eventually { try await gateway.events("?status=dead").count == 1 }
            let event = try #require(try await gateway.events().first)
            let forward = try #require(event["forward"] as? [String: Any])
            #expect((forward["last_error"] as? String)?.contains("does not exist") == true)
            #expect(gateway.upstreams[1].requests.isEmpty)
        }
    }

    @Test func aProviderFailingToAnswerDelaysTheForwardUntilItDoes() async throws {
        try await GatewayHarness.run(upstreams: 2, config: .custom(verifyingInboxConfig)) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(statuses: [503], status: 200))
            _ = try await gateway.deliverWebhook(#"{"data":{"id":42}}"#, id: "msg_retry")
            try await gateway.eventually { try await gateway.events("?status=delivered").count == 1 }
            #expect(gateway.upstreams[0].requests.map(\.status) == [503, 200])
            #expect(gateway.upstreams[0].requests.last?.path == "/v1/orders/42?expand=items")
            #expect(gateway.upstreams[1].requests.count == 1)
        }
    }

    @Test func aStaleCachedStateIsNeverForwardedAsCurrent() async throws {
        let config = ConfigTemplate.custom { urls in
            verifyingInboxConfig(urls).replacingOccurrences(
                of: "retry: { max_attempts: 1 } }",
                with: "retry: { max_attempts: 1 }, cache: { stale_if_error: 10m } }"
            )
        }
        try await GatewayHarness.run(upstreams: 2, config: .custom { urls in config.yaml(urls) }) { gateway in
            _ = try await gateway.deliverWebhook(#"{"data":{"id":"o1"}}"#, id: "msg_fresh")
            try await gateway.eventually { try await gateway.events("?status=delivered").count == 1 }
            // The provider fails now: its client could answer from the stale-if-error cache.
            gateway.upstreams[0].setBehavior(.always(503))
            _ = try await gateway.deliverWebhook(#"{"data":{"id":"o1"}}"#, id: "msg_later")
            try await gateway.eventually { try await gateway.events("?status=dead").count == 1 }
            let dead = try #require(try await gateway.events("?status=dead").first?["forward"] as? [String: Any])
            #expect((dead["last_error"] as? String)?.contains("answered HTTP 503") == true)
            #expect(gateway.upstreams[1].requests.count == 1)
        }
    }

    @Test func aForwardWaitsWithoutSpendingAnAttemptWhileTheProvidersBreakerIsOpen() async throws {
        let config = ConfigTemplate.custom { urls in
            verifyingInboxConfig(urls).replacingOccurrences(
                of: "retry: { max_attempts: 1 } }",
                with: "retry: { max_attempts: 1 }, cache: { stale_if_error: 10m }, "
                    + "circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 2, break: 30s } }"
            )
        }
        try await GatewayHarness.run(upstreams: 2, config: .custom { urls in config.yaml(urls) }) { gateway in
            _ = try await gateway.deliverWebhook(#"{"data":{"id":"o1"}}"#, id: "msg_first")
            try await gateway.eventually { try await gateway.events("?status=delivered").count == 1 }
            // The provider fails; two proxied calls open its breaker.
            gateway.upstreams[0].setBehavior(.always(503))
            for _ in 0..<2 { _ = try await gateway.send(.GET, "/proxy/pay/v1/other") }
            _ = try await gateway.deliverWebhook(#"{"data":{"id":"o1"}}"#, id: "msg_held")
            // Held until the break ends (~30 s), no attempt spent, nothing forwarded.
            try await gateway.eventually {
                let pending = try await gateway.events("?status=pending").first?["forward"] as? [String: Any]
                guard let next = (pending?["next_attempt_at"] as? String).flatMap({ try? Date($0, strategy: .iso8601) })
                else { return false }
                return next > Date().addingTimeInterval(10) && (pending?["attempts"] as? [Any])?.isEmpty == true
            }
            #expect(gateway.upstreams[1].requests.count == 1)
        }
    }

    @Test func anEventWithoutTheIdIsDeadWithTheReason() async throws {
        try await GatewayHarness.run(upstreams: 2, config: .custom(verifyingInboxConfig)) { gateway in
            _ = try await gateway.deliverWebhook(#"{"data":{}}"#, id: "msg_noid")
            try await gateway.eventually { try await gateway.events("?status=dead").count == 1 }
            let forward = try #require(try await gateway.events().first?["forward"] as? [String: Any])
            #expect((forward["last_error"] as? String)?.contains("no string or integer at /data/id") == true)
            #expect(gateway.upstreams[0].requests.isEmpty && gateway.upstreams[1].requests.isEmpty)
        }
    }

    @Test func pathTemplates() throws {
        let template = try PathTemplate("/v1/{/a}/x/{/b/0}")
        #expect(try template.render(with: Data(#"{"a":"p/q?","b":[7]}"#.utf8)) == "/v1/p%2Fq%3F/x/7")
        #expect(throws: PathTemplate.Invalid(message: "the event has no string or integer at /a")) {
            try template.render(with: Data(#"{"a":{},"b":[1]}"#.utf8))
        }
        #expect(throws: PathTemplate.Invalid(message: "the event is not JSON, so /a cannot be read from it")) {
            try template.render(with: Data("id=1".utf8))
        }
        #expect(try PathTemplate("/plain").render(with: Data()) == "/plain")
        #expect(try template.render(with: Data(#"{"a":"..","b":["."]}"#.utf8)) == "/v1/%2E%2E/x/%2E")
        for (text, message) in [
            ("v1/{/id}", "must start with / (got 'v1/{/id}')"),
            ("/v1/{/id", "has a { without its } in '/v1/{/id'"),
            ("/v1/id}", "has a } without its { in '/v1/id}'"),
            ("/v1/{id}", "'{id}' in '/v1/{id}' must hold a JSON pointer into the event, such as {/data/object/id}"),
            ("/v1/{}", "'{}' in '/v1/{}' must hold a JSON pointer into the event, such as {/data/object/id}"),
        ] {
            #expect(throws: PathTemplate.Invalid(message: message)) { try PathTemplate(text) }
        }
    }

    @Test func theConfigIsChecked() throws {
        let loader = ConfigLoader(environment: [:])
        func issues(_ verify: String, forward: Bool = true) -> [String] {
            let yaml = """
                upstreams: { pay: { endpoints: ["http://127.0.0.1:1"] } }
                webhooks:
                  shop:
                    verify: { scheme: github, secret: s, \(verify) }
                \(forward ? "    forward_to: \"http://127.0.0.1:2/h\"" : "")
                """
            do {
                _ = try loader.load(yaml: yaml)
                return []
            } catch {
                return error.issues.map(\.description)
            }
        }
        let config = try loader.load(
            yaml: """
                upstreams: { pay: { endpoints: ["http://127.0.0.1:1"] } }
                webhooks:
                  shop:
                    verify: { scheme: github, secret: s, upstream: pay, path: "/v1/x/{/id}" }
                    forward_to: "http://127.0.0.1:2/h"
                """
        )
        #expect(config.webhooks.first?.currentState == .init(upstream: "pay", path: "/v1/x/{/id}"))
        #expect(
            issues(#"upstream: nope, path: "/x""#) == [
                "line 4: webhooks.shop.verify.upstream: names the unknown upstream 'nope'"
            ]
        )
        #expect(
            issues("upstream: pay") == [
                "line 4: webhooks.shop.verify.path: is required with verify.upstream, e.g. \"/v1/charges/{/data/object/id}\""
            ]
        )
        #expect(issues(#"path: "/x""#) == ["line 4: webhooks.shop.verify.upstream: is required with verify.path"])
        #expect(
            issues(#"upstream: pay, path: "/x/{id}""#) == [
                "line 4: webhooks.shop.verify.path: '{id}' in '/x/{id}' must hold a JSON pointer into the event, such as {/data/object/id}"
            ]
        )
        #expect(
            issues(#"upstream: pay, path: "/x""#, forward: false) == [
                "line 4: webhooks.shop.forward_to: is required with verify.upstream: the current state is fetched for each forward"
            ]
        )
    }
}
