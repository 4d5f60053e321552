import BelayHTTP
import BelayTestUpstream
import Foundation
import HTTPTypes
import NIOHTTP1
import Testing

@testable import BelayGateway

/// `criticality: optional` with `fallback`: the config, and a gateway that fails open.
@Suite struct FallbackConfigTests {
    let loader = ConfigLoader(environment: [:])

    private func issues(_ yaml: String) -> [String] { loader.issues(yaml) }

    private func upstream(_ policy: String) -> String {
        "upstreams:\n  recs:\n    endpoints: [\"http://127.0.0.1:9\"]\n" + policy
    }

    @Test func defaultsAdaptToTheBody() throws {
        let json = try loader.load(
            yaml: upstream("    criticality: optional\n    fallback: { body: '{\"items\":[]}' }\n")
        )
        let recs = try #require(json.upstreams.first)
        #expect(recs.criticality == .optional)
        let fallback = try #require(recs.fallback)
        #expect(fallback.status == 200 && fallback.body == #"{"items":[]}"#)
        #expect(fallback.contentType == "application/json" && fallback.methods == ["GET", "HEAD", "OPTIONS"])
        let policy = try #require(recs.policy.fallback)
        #expect(policy.status.code == 200 && policy.methods == [.get, .head, .options])
        #expect(policy.headers[.contentType] == "application/json" && policy.headers[.contentLength] == "12")
        #expect(policy.headers[.cacheControl] == "no-store")

        let text = try loader.load(
            yaml: upstream("    criticality: optional\n    fallback: { body: no recommendations }\n")
        )
        #expect(text.upstreams.first?.fallback?.contentType == "text/plain; charset=utf-8")
        let empty = try loader.load(
            yaml: upstream(
                "    criticality: optional\n    fallback: { status: 204, methods: [GET, POST], headers: { X-Fallback: \"1\" } }\n"
            )
        )
        let written = try #require(empty.upstreams.first?.fallback)
        #expect(written.contentType == nil && written.status == 204 && written.methods == ["GET", "POST"])
        let emptyPolicy = try #require(empty.upstreams.first?.policy.fallback)
        #expect(emptyPolicy.headers[.init("X-Fallback")!] == "1")
        // A 204 has no body, nor a Content-Length.
        #expect(emptyPolicy.headers[.contentLength] == nil)
        // A critical upstream (the default) has no fallback in its policy, nor an optional one without it.
        #expect(try loader.load(yaml: upstream("    criticality: optional\n")).upstreams.first?.policy.fallback == nil)
        #expect(try loader.load(yaml: upstream("")).upstreams.first?.criticality == .critical)
    }

    @Test(arguments: [
        (
            "    fallback: { body: '[]' }\n",
            "line 4: upstreams.recs.fallback: needs criticality: optional: a critical upstream never answers a fallback (set upstreams.recs.criticality: optional, or remove fallback)"
        ),
        (
            "    criticality: critical\n    fallback: { body: '[]' }\n",
            "line 5: upstreams.recs.fallback: needs criticality: optional: a critical upstream never answers a fallback (set upstreams.recs.criticality: optional, or remove fallback)"
        ),
        ("    criticality: maybe\n", "line 4: upstreams.recs.criticality: must be critical or optional (got 'maybe')"),
        (
            "    criticality: optional\n    fallback: { status: 503 }\n",
            "line 5: upstreams.recs.fallback.status: must be between 200 and 499 (got 503)"
        ),
        (
            "    criticality: optional\n    fallback: { body: { items: [] } }\n",
            #"line 5: upstreams.recs.fallback.body: must be a string: quote JSON, as in body: '{"items":[]}'"#
        ),
        (
            "    criticality: optional\n    fallback: { headers: { Content-Length: \"3\" } }\n",
            "line 5: upstreams.recs.fallback.headers.Content-Length: cannot be set here: Belay sets it (or it is hop-by-hop)"
        ),
        (
            "    criticality: optional\n    fallback: { headers: { content-type: text/html } }\n",
            "line 5: upstreams.recs.fallback.headers.content-type: cannot be set here: set it with upstreams.recs.fallback.content_type"
        ),
        (
            "    criticality: optional\n    fallback: { methods: [get] }\n",
            "line 5: upstreams.recs.fallback.methods[0]: must be an HTTP method in capitals, such as GET (got 'get')"
        ),
        (
            "    criticality: optional\n    fallback: { methods: [] }\n",
            "line 5: upstreams.recs.fallback.methods: must list at least one method (remove fallback to have none)"
        ),
        (
            "    criticality: optional\n    fallback: { content_type: json }\n",
            "line 5: upstreams.recs.fallback.content_type: must be a media type such as application/json (got 'json')"
        ),
        (
            "    criticality: optional\n    fallback: { status: 204, body: gone }\n",
            "line 5: upstreams.recs.fallback.body: must be empty: an HTTP 204 answer has no body"
        ),
        (
            "    criticality: optional\n    fallback: { headers: { Belay-Endpoint: x } }\n",
            "line 5: upstreams.recs.fallback.headers.Belay-Endpoint: cannot be set here: Belay sets it (or it is hop-by-hop)"
        ),
        (
            "    criticality: optional\n    degrade: { writes: queue }\n    fallback: { methods: [GET, POST] }\n",
            "line 6: upstreams.recs.fallback.methods: lists POST, a write degrade.writes: queue would queue: a write is either answered by the fallback or queued, not both (remove it from fallback.methods, or set degrade.writes: fail)"
        ),
        (
            "    degrade: { writes: later }\n",
            "line 4: upstreams.recs.degrade.writes: must be queue or fail (got 'later')"
        ),
        (
            "    criticality: optional\n    fallback: { status: 200, answer: x }\n",
            "line 5: upstreams.recs.fallback.answer: unknown key (allowed: body, content_type, headers, methods, status)"
        ),
    ])
    func eachMistakeIsNamed(policy: String, expected: String) {
        #expect(issues(upstream(policy)).contains(expected), "got \(issues(upstream(policy)))")
    }

    @Test func aBodyOver64KiBIsRefused() {
        let body = String(repeating: "x", count: (64 << 10) + 1)
        let found = issues(upstream("    criticality: optional\n    fallback: { body: \(body) }\n"))
        #expect(found == ["line 5: upstreams.recs.fallback.body: must be at most 64KiB (got 65537 bytes)"])
    }
}

@Suite(.timeLimit(.minutes(1))) struct FallbackGatewayTests {
    static let policy = """
        retry: { max_attempts: 2, base: 5ms, cap: 10ms }
        criticality: optional
        fallback: { body: '{"items":[]}', headers: { X-Recs: fallback } }
        """

    @Test func anOptionalUpstreamThatFailsAnswersItsFallbackOnlyToTheMethodsItNames() async throws {
        try await GatewayHarness.run(config: .pay(policy: Self.policy)) { gateway in
            let upstream = gateway.upstreams[0]
            upstream.setBehavior(.always(503))
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/recs")
            #expect(answer.status == 200 && answer.body == #"{"items":[]}"#, "\(answer.body)")
            #expect(answer.header("Belay-Degraded") == "fallback")
            #expect(answer.header("Content-Type") == "application/json" && answer.header("X-Recs") == "fallback")
            #expect(answer.header("Belay-Attempts") == "2")
            #expect(upstream.requests.count == 2)
            // A write is not answered as done: the upstream's 503 reaches the caller.
            let write = try await gateway.send(.POST, "/proxy/pay/v1/recs", body: "{}")
            #expect(write.status == 503 && write.header("Belay-Degraded") == nil)
            // The upstream's own 4xx is an answer, not a failure.
            upstream.setBehavior(.always(404))
            let missing = try await gateway.send(.GET, "/proxy/pay/v1/recs")
            #expect(missing.status == 404 && missing.header("Belay-Degraded") == nil)
            // Unreachable: the fallback answers too.
            upstream.setBehavior(.down)
            let down = try await gateway.send(.GET, "/proxy/pay/v1/recs")
            #expect(down.status == 200 && down.header("Belay-Degraded") == "fallback")

            // The health model calls it stale, in words; the audit trail and the metrics name it.
            let health = try await poll(gateway, "/v1/upstreams/pay") { $0["state"] as? String == "stale" }
            #expect((health["reason"] as? String)?.contains("answering with its fallback") == true, "\(health)")
            #expect(health["stale_age_seconds"] == nil)
            #expect(health["criticality"] as? String == "optional")
            let degradation = health["degradation"] as? [String: Any]
            #expect(degradation?["level"] as? String == "partial")
            #expect(
                degradation?["summary"] as? String
                    == "Pay is unavailable; callers get its default answer instead (an optional dependency)."
            )
            let id = try #require(down.header("Belay-Request-Id"))
            let trail = try await poll(gateway, "/v1/requests/\(id)") { $0["outcome"] != nil }
            #expect(trail["outcome"] as? String == "fallback")
            let decisions = (trail["decisions"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
            #expect(decisions.last == "served_fallback", "\(decisions)")
            let metrics = try await gateway.send(.GET, "/metrics")
            #expect(metrics.body.contains(#"belay_proxy_requests_total{upstream="pay",outcome="fallback"} 2"#))
        }
    }

    @Test func aStaleAnswerComesBeforeTheFallback() async throws {
        let policy = Self.policy + "\ncache: { stale_if_error: 10m }"
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            let upstream = gateway.upstreams[0]
            upstream.setBehavior(UpstreamBehavior(body: #"{"items":["rope"]}"#))
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/recs").status == 200)
            upstream.setBehavior(.always(502))
            let cached = try await gateway.send(.GET, "/proxy/pay/v1/recs")
            #expect(
                cached.body == #"{"items":["rope"]}"# && cached.header("Belay-Degraded")?.hasPrefix("stale") == true
            )
            // Nothing cached for another path: the fallback.
            let other = try await gateway.send(.GET, "/proxy/pay/v1/other")
            #expect(other.body == #"{"items":[]}"# && other.header("Belay-Degraded") == "fallback")
        }
    }

    @Test func aCallerThatNeedsTheCurrentStateNeverGetsTheFallback() async throws {
        let upstream = TestUpstream()
        let serving = Task { try await upstream.run() }
        defer { serving.cancel() }
        upstream.setBehavior(.always(503))
        var config = UpstreamConfig(name: "recs", endpoints: [])
        let url = try #require(URLComponents(string: await upstream.baseURL()))
        config.endpoints = [.init(scheme: "http", host: "127.0.0.1", port: url.port ?? 0, basePath: "")]
        config.retry.maxAttempts = 1
        config.criticality = .optional
        var fallback = UpstreamConfig.Fallback()
        fallback.body = "[]"
        fallback.methods = ["GET", "POST"]
        config.fallback = fallback
        let client = try UpstreamClient(policy: config.policy)
        let degraded = await client.send(UpstreamRequest(method: .get, path: "/v1/recs"), correlationID: nil)
        #expect(degraded.fallback)
        // A probe, a delivery, a lookup: servingStale false gets the upstream's own answer.
        let current = await client.send(
            UpstreamRequest(method: .post, path: "/v1/recs"),
            correlationID: nil,
            servingStale: false
        )
        #expect(!current.fallback)
        if case .success(let response) = current.outcome {
            #expect(response.status.code == 503)
        } else {
            Issue.record("expected the upstream's 503, got \(current.outcome)")
        }
        try await client.shutdown()
    }
}
