import Belay
import BelayHTTP
import BelayStore
import BelayTestUpstream
import Foundation
import NIOHTTP1
import Testing

@testable import BelayGateway

/// A scrape in the Prometheus text format, parsed into samples.
struct Scrape {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var samples: [Sample] = []
    /// `# TYPE` lines: metric name to type.
    var types: [String: String] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else {
                samples.append(Sample(name: String(series), labels: [:], value: value))
                continue
            }
            samples.append(
                Sample(
                    name: String(series[..<brace]),
                    labels: Self.labels(series[series.index(after: brace)..<series.index(before: series.endIndex)]),
                    value: value
                )
            )
        }
    }

    /// `a="1",b="2"` as a dictionary (values hold no quotes here).
    private static func labels(_ text: Substring) -> [String: String] {
        var labels: [String: String] = [:]
        var rest = text
        while let equals = rest.firstIndex(of: "=") {
            let name = String(rest[..<equals])
            let valueStart = rest.index(equals, offsetBy: 2)
            let valueEnd = rest[valueStart...].firstIndex(of: "\"") ?? rest.endIndex
            labels[name] = String(rest[valueStart..<valueEnd])
            rest = rest[valueEnd...].dropFirst().drop { $0 == "," }
        }
        return labels
    }

    /// The value of the one series named `name` with exactly `labels`; nil if absent.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }
}

extension GatewayHarness {
    func scrape(headers: [(String, String)] = []) async throws -> Scrape {
        let answer = try await send(.GET, "/metrics", headers: headers)
        #expect(answer.status == 200)
        #expect(answer.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        return Scrape(answer.body)
    }

    /// The `host:port` of test upstream `index`: its endpoint label.
    func endpoint(_ index: Int = 0) async -> String {
        String((await upstreams[index].baseURL()).dropFirst("http://".count))
    }
}

@Suite(.timeLimit(.minutes(1))) struct MetricsTests {
    @Test func aRetriedRequestIsCountedByOutcomeAttemptAndRetryWithItsLatency() async throws {
        try await GatewayHarness.run(config: .pay(policy: "retry: { max_attempts: 3, base: 1ms, cap: 5ms }")) {
            gateway in
            gateway.upstreams[0].setBehavior(.sequence([503]))
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/balance?x=1", headers: [("X-Request-Id", "r-77")])
            #expect(answer.status == 200)
            let endpoint = await gateway.endpoint()
            let raw = try await gateway.send(.GET, "/metrics").body
            let scrape = Scrape(raw)
            let pay = ["upstream": "pay"]
            #expect(scrape.value("belay_proxy_requests_total", ["upstream": "pay", "outcome": "success"]) == 1)
            #expect(scrape.value("belay_proxy_requests_total", ["upstream": "pay", "outcome": "server_error"]) == 0)
            #expect(scrape.value("belay_proxy_retries_total", pay) == 1)
            #expect(scrape.value("belay_proxy_retry_budget_exhausted_total", pay) == 0)
            #expect(scrape.value("belay_proxy_stale_responses_total", pay) == 0)
            let attempts = ["upstream": "pay", "endpoint": endpoint]
            #expect(scrape.value("belay_upstream_attempts_total", attempts.merging(["result": "5xx"]) { $1 }) == 1)
            #expect(scrape.value("belay_upstream_attempts_total", attempts.merging(["result": "2xx"]) { $1 }) == 1)
            #expect(scrape.value("belay_upstream_attempt_duration_seconds_count", attempts) == 2)
            #expect(scrape.value("belay_proxy_request_duration_seconds_count", pay) == 1)
            #expect(
                scrape.value("belay_proxy_request_duration_seconds_bucket", pay.merging(["le": "+Inf"]) { $1 }) == 1
            )
            #expect((scrape.value("belay_proxy_request_duration_seconds_sum", pay) ?? 0) > 0)
            #expect(scrape.value("belay_circuit_breaker_state", pay) == 0)
            #expect(scrape.types["belay_proxy_request_duration_seconds"] == "histogram")
            #expect(scrape.types["belay_proxy_requests_total"] == "counter")
            // Neither the path nor the request id becomes a label.
            #expect(!raw.contains("balance") && !raw.contains("r-77"))
        }
    }

    @Test func anOpeningBreakerIsCountedAsATransitionARejectionAndItsState() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 2, window: 60s, break: 30s }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            gateway.upstreams[0].setBehavior(.always(503))
            for _ in 0..<2 { #expect(try await gateway.send(.GET, "/proxy/pay/v1/x").status == 503) }
            let refused = try await gateway.send(.GET, "/proxy/pay/v1/x")
            #expect(refused.code == "circuit-open")
            let scrape = try await gateway.scrape()
            let pay = ["upstream": "pay"]
            #expect(scrape.value("belay_proxy_requests_total", ["upstream": "pay", "outcome": "server_error"]) == 2)
            #expect(scrape.value("belay_proxy_requests_total", ["upstream": "pay", "outcome": "circuit-open"]) == 1)
            #expect(scrape.value("belay_proxy_rejections_total", ["upstream": "pay", "reason": "circuit-open"]) == 1)
            #expect(scrape.value("belay_proxy_rejections_total", ["upstream": "pay", "reason": "bulkhead-full"]) == 0)
            #expect(
                scrape.value(
                    "belay_circuit_breaker_transitions_total",
                    ["upstream": "pay", "from": "closed", "to": "open"]
                ) == 1
            )
            #expect(scrape.value("belay_circuit_breaker_state", pay) == 2)
            // The health model's verdict, read at the scrape: down (3) while the breaker is open.
            #expect(scrape.value("belay_upstream_health", pay) == 3)
            // No probe configured: no probe series.
            #expect(scrape.value("belay_upstream_probe_consecutive_failures", pay) == nil)
        }
    }

    @Test func aStaleAnswerIsCountedAsStaleNotAsTheUpstreamsFailure() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            cache: { stale_if_error: 10m }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            let first = try await gateway.send(.GET, "/proxy/pay/v1/rates")
            #expect(first.status == 200)
            gateway.upstreams[0].setBehavior(.always(502))
            let stale = try await gateway.send(.GET, "/proxy/pay/v1/rates")
            #expect(stale.header("Belay-Degraded") != nil)
            let endpoint = await gateway.endpoint()
            let scrape = try await gateway.scrape()
            let pay = ["upstream": "pay"]
            #expect(scrape.value("belay_proxy_stale_responses_total", pay) == 1)
            #expect(scrape.value("belay_proxy_requests_total", ["upstream": "pay", "outcome": "stale"]) == 1)
            #expect(scrape.value("belay_proxy_requests_total", ["upstream": "pay", "outcome": "success"]) == 1)
            #expect(scrape.value("belay_proxy_requests_total", ["upstream": "pay", "outcome": "server_error"]) == 0)
            // The attempt that failed is still counted against its endpoint.
            let attempts = ["upstream": "pay", "endpoint": endpoint, "result": "5xx"]
            #expect(scrape.value("belay_upstream_attempts_total", attempts) == 1)
        }
    }

    @Test func aFailingEndpointIsCountedEjectedAndTheNextServes() async throws {
        // Port 1 on loopback refuses connections: three failures eject it.
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            upstreams:
              pay:
                endpoints: ["http://127.0.0.1:1", "\(urls[0])"]
                retry: { max_attempts: 2, base: 1ms, cap: 2ms }
                circuit_breaker: { minimum_throughput: 100 }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            for _ in 0..<4 { #expect(try await gateway.send(.GET, "/proxy/pay/v1/x").status == 200) }
            let live = await gateway.endpoint()
            let scrape = try await gateway.scrape()
            let dead = ["upstream": "pay", "endpoint": "127.0.0.1:1"]
            #expect(scrape.value("belay_upstream_attempts_total", dead.merging(["result": "connect"]) { $1 }) == 3)
            #expect(scrape.value("belay_upstream_endpoint_ejected", dead) == 1)
            #expect(scrape.value("belay_upstream_endpoint_ejections_total", dead) == 1)
            let good = ["upstream": "pay", "endpoint": live]
            #expect(scrape.value("belay_upstream_attempts_total", good.merging(["result": "2xx"]) { $1 }) == 4)
            #expect(scrape.value("belay_upstream_endpoint_ejected", good) == 0)
            // A second scrape adds nothing: the counter follows the client's total.
            let again = try await gateway.scrape()
            #expect(again.value("belay_upstream_endpoint_ejections_total", dead) == 1)
        }
    }

    @Test func deliveriesAreCountedAndTheQueueIsReadAtTheScrape() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let answer = try await gateway.queue(#"{"upstream":"pay","method":"POST","path":"/v1/orders","body":{}}"#)
            #expect(answer.status == 202)
            var scrape = Scrape("")
            try await gateway.eventually {
                scrape = try await gateway.scrape()
                return scrape.value("belay_delivery_attempts_total", ["upstream": "pay", "outcome": "delivered"]) == 1
            }
            // Scraped again: the last scrape may have read the store before the attempt was recorded.
            scrape = try await gateway.scrape()
            #expect(scrape.value("belay_delivery_queue_depth", ["status": "delivered"]) == 1)
            #expect(scrape.value("belay_delivery_attempts_total", ["upstream": "pay", "outcome": "retry"]) == 0)
            #expect(scrape.value("belay_delivery_dead_total", ["upstream": "pay"]) == 0)
            #expect(scrape.value("belay_delivery_queue_depth", ["status": "pending"]) == 0)
            #expect(scrape.value("belay_delivery_oldest_pending_age_seconds") == 0)
            #expect(scrape.value("belay_delivery_store_up") == 1)
        }
    }

    @Test func webhooksAreCountedReceivedRejectedByReasonDuplicateAndForwarded() async throws {
        try await GatewayHarness.run(config: .custom { inboxConfig($0) }) { gateway in
            let body = #"{"type":"order.paid"}"#
            #expect(try await gateway.deliverWebhook(body, id: "msg_1").status == 200)
            #expect(try await gateway.deliverWebhook(body, id: "msg_1").status == 200)
            let forged = try await gateway.deliverWebhook(
                body,
                id: "msg_2",
                secret: "whsec_dGhpcyBpcyBub3QgdGhlIHNob3AncyBzZWNyZXQ="
            )
            #expect(forged.status == 401)
            #expect(try await gateway.send(.POST, "/webhooks/nobody-\(UUID())", body: body).status == 404)
            var scrape = Scrape("")
            try await gateway.eventually {
                scrape = try await gateway.scrape()
                return scrape.value("belay_webhooks_forwarded_total", ["source": "shop"]) == 1
            }
            #expect(scrape.value("belay_webhooks_received_total", ["source": "shop"]) == 3)
            #expect(scrape.value("belay_webhooks_duplicates_total", ["source": "shop"]) == 1)
            #expect(
                scrape.value("belay_webhooks_rejected_total", ["source": "shop", "reason": "signature-mismatch"]) == 1
            )
            #expect(scrape.value("belay_webhooks_rejected_total", ["source": "", "reason": "unknown-source"]) == 1)
            #expect(scrape.value("belay_webhooks_dead_total", ["source": "shop"]) == 0)
            #expect(
                scrape.value("belay_delivery_attempts_total", ["upstream": "webhook:shop", "outcome": "delivered"]) == 1
            )
            #expect(!scrape.samples.contains { $0.labels.values.contains { $0.hasPrefix("nobody") } })
        }
    }

    @Test func metricsNeedTheirScopeWhenConsumersAreConfigured() async throws {
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              scraper: { key_sha256: "\(sha256Hex("scraper-key"))", scopes: ["metrics:read"] }
              app: { key_sha256: "\(sha256Hex("app-key"))", scopes: ["proxy:*"] }
            upstreams:
              pay: { endpoints: ["\(urls[0])"] }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            #expect(try await gateway.send(.GET, "/metrics").code == "unauthorized")
            #expect(
                try await gateway.send(.GET, "/metrics", headers: [("Authorization", "Bearer app-key")]).code
                    == "forbidden"
            )
            let scrape = try await gateway.scrape(headers: [("Authorization", "Bearer scraper-key")])
            #expect(scrape.value("belay_circuit_breaker_state", ["upstream": "pay"]) == 0)
        }
    }

    @Test func metricsCanBeTurnedOff() async throws {
        let config = ConfigTemplate.custom { urls in payConfig(urls) + "\nmetrics: { enabled: false }" }
        try await GatewayHarness.run(config: config) { gateway in
            let metrics = try await gateway.send(.GET, "/metrics")
            #expect(metrics.status == 404)
            let proxied = try await gateway.send(.GET, "/proxy/pay/v1/x")
            #expect(proxied.status == 200)
        }
    }
}

/// Unit tests of ``GatewayMetrics`` without a server.
@Suite struct GatewayMetricsTests {
    static func metrics() throws -> GatewayMetrics {
        let config = try ConfigLoader(environment: [:]).load(
            yaml: """
                upstreams:
                  pay: { endpoints: ["https://api.pay.example", "https://[::1]:8443/base"] }
                """
        )
        return GatewayMetrics(config: config)
    }

    static func exchange(_ index: Int, problem: ProblemCode? = nil) -> ProxyExchange {
        ProxyExchange(
            requestID: "req-\(index)-\(UUID())",
            upstream: "pay",
            consumer: "consumer-\(index)",
            method: "GET",
            path: "/v1/customers/cus_\(index)",
            receivedAt: Date(),
            duration: .milliseconds(3),
            status: problem?.status ?? 200,
            problem: problem,
            attempts: [
                AttemptRecord(
                    number: 1,
                    endpoint: UpstreamEndpoint(scheme: "https", host: "::1", port: 8443, basePath: "/base"),
                    status: problem == nil ? 200 : nil,
                    failure: problem == nil ? nil : .timeout,
                    duration: .milliseconds(2)
                )
            ]
        )
    }

    @Test func labelsStayBoundedWhatEverThePathsIdsAndConsumers() throws {
        let metrics = try Self.metrics()
        metrics.observe(Self.exchange(0))
        metrics.observe(Self.exchange(0, problem: .timeout))
        let series = Scrape(metrics.render()).samples.count
        for index in 1...200 {
            metrics.observe(Self.exchange(index, problem: index.isMultiple(of: 2) ? .timeout : nil))
            metrics.observe(
                ProxyExchange(
                    requestID: "r\(index)",
                    upstream: "unknown-\(index)",
                    method: "GET",
                    path: "/x/\(index)",
                    receivedAt: Date(),
                    duration: .zero,
                    status: 200
                )
            )
        }
        let text = metrics.render()
        let scrape = Scrape(text)
        #expect(scrape.samples.count == series)
        #expect(!text.contains("cus_") && !text.contains("req-") && !text.contains("consumer-"))
        #expect(!text.contains("unknown-") && !text.contains("/x/"))
        let v6 = ["upstream": "pay", "endpoint": "[::1]:8443"]
        #expect(scrape.value("belay_upstream_attempts_total", v6.merging(["result": "2xx"]) { $1 }) == 101)
        #expect(scrape.value("belay_upstream_attempts_total", v6.merging(["result": "timeout"]) { $1 }) == 101)
        #expect(scrape.value("belay_proxy_requests_total", ["upstream": "pay", "outcome": "timeout"]) == 101)
        #expect(scrape.value("belay_proxy_request_duration_seconds_bucket", ["upstream": "pay", "le": "0.005"]) == 202)
        #expect(scrape.value("belay_proxy_request_duration_seconds_bucket", ["upstream": "pay", "le": "0.001"]) == 0)
        // Every label name is one of the bounded few.
        let names = Set(scrape.samples.flatMap(\.labels.keys))
        #expect(
            names.isSubset(of: ["upstream", "endpoint", "outcome", "result", "reason", "from", "to", "status", "le"])
        )
    }

    @Test func budgetExhaustionAndRejectionsAreCountedFromTheDecisions() throws {
        let metrics = try Self.metrics()
        var exchange = Self.exchange(1, problem: .retryBudgetExhausted)
        exchange.decisions = [
            ResilienceEvent(
                strategy: "pay-retry",
                kind: .retryScheduled(delay: .zero, reason: "503"),
                correlationID: nil,
                attempt: 1
            ),
            ResilienceEvent(
                strategy: "pay-retry",
                kind: .retryAbandoned(reason: .budgetExhausted, outcome: "503"),
                correlationID: nil,
                attempt: 2
            ),
            ResilienceEvent(
                strategy: "pay-bulkhead",
                kind: .rejected(.bulkheadFull, retryAfter: nil),
                correlationID: nil,
                attempt: 1
            ),
            ResilienceEvent(
                strategy: "pay-rate-limit",
                kind: .rejected(.rateLimited, retryAfter: .seconds(1)),
                correlationID: nil,
                attempt: 1
            ),
        ]
        metrics.observe(exchange)
        metrics.receive(
            ResilienceEvent(
                strategy: "pay",
                kind: .circuitStateChanged(from: .open, to: .halfOpen),
                correlationID: nil,
                attempt: 1
            )
        )
        // Another breaker's transition (not an upstream) is not counted.
        metrics.receive(
            ResilienceEvent(
                strategy: "other",
                kind: .circuitStateChanged(from: .closed, to: .open),
                correlationID: nil,
                attempt: 1
            )
        )
        let scrape = Scrape(metrics.render())
        let pay = ["upstream": "pay"]
        #expect(scrape.value("belay_proxy_retries_total", pay) == 1)
        #expect(scrape.value("belay_proxy_retry_budget_exhausted_total", pay) == 1)
        #expect(scrape.value("belay_proxy_rejections_total", ["upstream": "pay", "reason": "bulkhead-full"]) == 1)
        #expect(scrape.value("belay_proxy_rejections_total", ["upstream": "pay", "reason": "rate-limited"]) == 1)
        #expect(
            scrape.value("belay_proxy_requests_total", ["upstream": "pay", "outcome": "retry-budget-exhausted"]) == 1
        )
        #expect(
            scrape.value(
                "belay_circuit_breaker_transitions_total",
                ["upstream": "pay", "from": "open", "to": "half-open"]
            )
                == 1
        )
        #expect(!scrape.samples.contains { $0.labels["upstream"] == "other" })
    }

    @Test func theHealthModelsVerdictAndTheProbesFailuresAreReadAtTheScrape() async throws {
        let config = try ConfigLoader(environment: [:]).load(
            yaml: """
                upstreams:
                  pay: { endpoints: ["https://api.pay.example"], probe: { path: /health, every: 30s } }
                  ship: { endpoints: ["https://api.ship.example"] }
                """
        )
        let metrics = GatewayMetrics(config: config)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-metrics-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func report(_ name: String, _ state: HealthState, probeFailures: Int?) -> UpstreamHealthReport {
            UpstreamHealthReport(
                name: name,
                state: state,
                reason: "",
                since: now,
                windows: [],
                breakerHistory: [],
                probe: probeFailures.map {
                    ProbeReport(path: "/health", every: .seconds(30), passing: $0 == 0, consecutiveFailures: $0)
                }
            )
        }
        func scrape(_ reports: [UpstreamHealthReport]) async -> Scrape {
            Scrape(
                String(
                    decoding: await metrics.scrape(clients: [:], health: reports, store: store, now: now),
                    as: UTF8.self
                )
            )
        }
        // Made at start, at 0 (healthy; no failed probe), before any report.
        var figures = await scrape([])
        #expect(figures.value("belay_upstream_health", ["upstream": "pay"]) == 0)
        #expect(figures.value("belay_upstream_health", ["upstream": "ship"]) == 0)
        #expect(figures.value("belay_upstream_probe_consecutive_failures", ["upstream": "pay"]) == 0)
        #expect(figures.value("belay_upstream_probe_consecutive_failures", ["upstream": "ship"]) == nil)
        #expect(figures.types["belay_upstream_health"] == "gauge")

        figures = await scrape([report("pay", .degraded, probeFailures: 2), report("ship", .stale, probeFailures: nil)])
        #expect(figures.value("belay_upstream_health", ["upstream": "pay"]) == 1)
        #expect(figures.value("belay_upstream_health", ["upstream": "ship"]) == 2)
        #expect(figures.value("belay_upstream_probe_consecutive_failures", ["upstream": "pay"]) == 2)

        figures = await scrape([report("pay", .healthy, probeFailures: 0), report("gone", .down, probeFailures: 5)])
        #expect(figures.value("belay_upstream_health", ["upstream": "pay"]) == 0)
        #expect(figures.value("belay_upstream_probe_consecutive_failures", ["upstream": "pay"]) == 0)
        // An upstream not configured is never a label.
        #expect(figures.samples.allSatisfy { $0.labels["upstream"] != "gone" })
    }

    @Test func auditLossesAreAddedOncePerScrape() throws {
        let metrics = try Self.metrics()
        metrics.readAudit(dropped: 3, failed: 0)
        metrics.readAudit(dropped: 5, failed: 2)
        metrics.readAudit(dropped: 5, failed: 2)
        let scrape = Scrape(metrics.render())
        #expect(scrape.value("belay_audit_dropped_total") == 5)
        #expect(scrape.value("belay_audit_write_failures_total") == 2)
    }

    @Test func theOldestPendingDeliverysAgeIsReadFromTheStore() async throws {
        let metrics = try Self.metrics()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-metrics-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        for (id, created) in [("dlv_a", t0), ("dlv_b", t0.addingTimeInterval(30))] {
            _ = try await store.insert([
                NewDelivery(
                    id: id,
                    upstream: "pay",
                    method: "POST",
                    path: "/v1/orders",
                    headers: [],
                    body: nil,
                    idempotencyKey: "k-\(id)",
                    keyFromCaller: false,
                    fingerprint: id,
                    notBefore: created.addingTimeInterval(3_600),
                    createdAt: created
                )
            ])
        }
        let scrape = Scrape(
            String(
                decoding: await metrics.scrape(clients: [:], store: store, now: t0.addingTimeInterval(90)),
                as: UTF8.self
            )
        )
        #expect(scrape.value("belay_delivery_oldest_pending_age_seconds") == 90)
        #expect(scrape.value("belay_delivery_queue_depth", ["status": "pending"]) == 2)
        #expect(scrape.value("belay_delivery_queue_depth", ["status": "dead"]) == 0)
        #expect(scrape.value("belay_delivery_store_up") == 1)
    }
}
