import AsyncHTTPClient
import BelayGateway
import BelayTestUpstream
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing

/// Config reload without a restart: what a reload may change live (``ReloadPlan``), and
/// `POST /v1/admin/reload` against a running gateway (real sockets on 127.0.0.1).
@Suite struct ReloadTests {
    private static let loader = ConfigLoader(environment: [:])

    /// Consumers `app` (every scope) and, with `ops`, `ops` (proxy only).
    private static func consumers(ops: Bool = false) -> String {
        """
        consumers:
          app: { key_sha256: "\(sha256Hex("app-key"))", scopes: ["admin"] }
        \(ops ? #"  ops: { key_sha256: "\#(sha256Hex("ops-key"))", scopes: ["proxy:*"] }"# : "")
        """
    }

    /// A config with the consumers, `listen`, and upstream `pay` at `endpoint` with `policy` lines.
    private static func config(
        _ endpoint: String,
        listen: String = "127.0.0.1:0",
        ops: Bool = false,
        policy: String = "",
        server: String = ""
    ) -> String {
        """
        server: { listen: "\(listen)"\(server.isEmpty ? "" : ", \(server)") }
        \(consumers(ops: ops))
        upstreams:
          pay:
            endpoints: ["\(endpoint)"]
        \(policy.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n"))
        """
    }

    /// `127.0.0.1:port` of a base URL, as `Belay-Endpoint` names it.
    private static func hostPort(_ url: String) -> String {
        String(url.dropFirst("http://".count))
    }

    private static let admin = [("Authorization", "Bearer app-key")]

    private static func reload(_ gateway: GatewayHarness) async throws -> GatewayHarness.Answer {
        try await gateway.send(.POST, "/v1/admin/reload", headers: admin)
    }

    // MARK: the plan

    @Test func thePlanAppliesPoliciesAndConsumersAndNamesWhatNeedsARestart() throws {
        let running = try Self.loader.load(yaml: Self.config("http://127.0.0.1:9001"))
        let loaded = try Self.loader.load(
            yaml: Self.config("http://127.0.0.1:9002", listen: "127.0.0.1:8081", ops: true)
                + """

                  billing:
                    endpoints: ["http://127.0.0.1:9003"]
                storage: { url: "sqlite:/tmp/elsewhere.db" }
                deliveries: { concurrency: 4 }
                """
        )
        let plan = ReloadPlan(running: running, loaded: loaded)
        #expect(plan.issues.isEmpty)
        #expect(plan.applied == ["consumers", "upstreams.pay"])
        #expect(plan.needsRestart == ["server.listen", "storage", "upstreams.billing (added)", "deliveries"])
        #expect(plan.effective.server.listen == running.server.listen)
        #expect(plan.effective.storage == running.storage)
        #expect(plan.effective.deliveries == running.deliveries)
        #expect(plan.effective.upstreams.map(\.name) == ["pay"])
        #expect(plan.effective.upstreams.first?.endpoints.first?.port == 9002)
        #expect(plan.effective.consumers.map(\.name).sorted() == ["app", "ops"])
    }

    @Test func anUpstreamsProbeWaitsForARestartItsHeadersDoNot() throws {
        let running = try Self.loader.load(yaml: Self.config("http://127.0.0.1:9001"))
        let loaded = try Self.loader.load(
            yaml: Self.config(
                "http://127.0.0.1:9001",
                policy: """
                    timeouts: { attempt: 3s }
                    probe: { path: "/health", every: 30s }
                    headers: { Authorization: "Bearer a-new-token-value" }
                    """
            )
        )
        let plan = ReloadPlan(running: running, loaded: loaded)
        #expect(plan.applied == ["upstreams.pay"])
        #expect(plan.needsRestart == ["upstreams.pay.probe"])
        let pay = try #require(plan.effective.upstreams.first)
        #expect(pay.timeouts.attempt == .seconds(3))
        #expect(pay.probe == nil)
        #expect(pay.headers.map(\.name) == ["Authorization"])
        #expect(pay.headers.map(\.value.value) == ["Bearer a-new-token-value"])
    }

    /// `webhooks` with source `shop` (secret `secret`) and, with `ledger`, source `ledger`.
    private static func webhooks(secret: String, ledger: Bool = false) -> String {
        """
        webhooks:
          shop: { verify: { scheme: standard-webhooks, secret: "\(secret)" } }
        \(ledger ? #"  ledger: { verify: { scheme: github, secret: "a-ledger-secret-0001" } }"# : "")
        """
    }

    @Test func webhooksAndAlertsApplyLiveButASourceARunningAckListensToStays() throws {
        let ack = """
            ack: { webhook: shop, match: /data/key, timeout: 1h }
            """
        let running = try Self.loader.load(
            yaml: Self.config("http://127.0.0.1:9001", policy: ack) + "\n" + Self.webhooks(secret: inboxSecret)
        )
        let loaded = try Self.loader.load(
            yaml: Self.config("http://127.0.0.1:9001")
                + "\n\(Self.webhooks(secret: inboxSecret, ledger: true))"
                    + """

                    alerts:
                      - { url: "http://127.0.0.1:9009/alerts", min_severity: critical }
                    """
        )
        let plan = ReloadPlan(running: running, loaded: loaded)
        #expect(plan.issues.isEmpty)
        #expect(plan.applied == ["webhooks", "alerts"])
        #expect(plan.needsRestart == ["upstreams.pay.ack"])
        #expect(plan.effective.webhooks.map(\.name).sorted() == ["ledger", "shop"])
        #expect(plan.effective.alerts.map(\.minSeverity) == [.critical])

        // Removing the source the running ack listens to waits for the restart that drops the ack.
        let withoutShop = try Self.loader.load(
            yaml: Self.config("http://127.0.0.1:9001")
                + """

                webhooks:
                  ledger: { verify: { scheme: github, secret: "a-ledger-secret-0001" } }
                """
        )
        let removal = ReloadPlan(running: running, loaded: withoutShop)
        #expect(removal.applied == ["webhooks"])
        #expect(removal.needsRestart == ["upstreams.pay.ack", "webhooks.shop (removed)"])
        #expect(removal.effective.webhooks.map(\.name) == ["ledger", "shop"])
    }

    @Test func aSourceThatWouldVerifyThroughAnUpstreamNotRunningWaitsForTheRestart() throws {
        let verified = """
            webhooks:
              shop:
                verify: { scheme: standard-webhooks, secret: "\(inboxSecret)", upstream: shopapi, path: "/o/{/id}" }
                forward_to: "http://127.0.0.1:9003/hooks"
            """
        let running = try Self.loader.load(yaml: Self.config("http://127.0.0.1:9001"))
        let loaded = try Self.loader.load(
            yaml: Self.config("http://127.0.0.1:9001")
                + """

                  shopapi:
                    endpoints: ["http://127.0.0.1:9002"]
                \(verified)
                """
        )
        let plan = ReloadPlan(running: running, loaded: loaded)
        #expect(plan.needsRestart == ["upstreams.shopapi (added)", "webhooks.shop (added)"])
        #expect(plan.applied.isEmpty)
        #expect(plan.effective.webhooks.isEmpty)
    }

    @Test func everyServerKeyButTheCertificateNeedsARestart() throws {
        let running = try Self.loader.load(yaml: Self.config("http://127.0.0.1:9001"))
        let loaded = try Self.loader.load(
            yaml: Self.config(
                "http://127.0.0.1:9001",
                listen: "127.0.0.1:8081",
                server:
                    #"max_body: 2MiB, header_timeout: 3s, idle_timeout: 9s, body_timeout: 7s, drain: 1s, instance: "b""#
            )
        )
        let plan = ReloadPlan(running: running, loaded: loaded)
        #expect(
            plan.needsRestart == [
                "server.listen", "server.max_body", "server.header_timeout", "server.idle_timeout",
                "server.body_timeout", "server.drain", "server.instance",
            ]
        )
        #expect(plan.effective.server == running.server)
    }

    @Test func openModeIsRefusedWhileTheListenerStaysOffLoopback() throws {
        let running = try Self.loader.load(yaml: Self.config("http://127.0.0.1:9001", listen: "0.0.0.0:8080"))
        let loaded = try Self.loader.load(
            yaml: """
                server: { listen: "127.0.0.1:8080" }
                upstreams:
                  pay: { endpoints: ["http://127.0.0.1:9001"] }
                """
        )
        let plan = ReloadPlan(running: running, loaded: loaded)
        #expect(plan.issues.map(\.path) == ["consumers"])
        #expect(plan.needsRestart == ["server.listen"])
    }

    @Test func anUnchangedFileAppliesNothing() throws {
        let yaml = Self.config("http://127.0.0.1:9001")
        let plan = ReloadPlan(running: try Self.loader.load(yaml: yaml), loaded: try Self.loader.load(yaml: yaml))
        #expect(plan.applied.isEmpty && plan.needsRestart.isEmpty && plan.issues.isEmpty)
    }

    // MARK: a running gateway

    @Test func aValidReloadTakesEffectForNewRequests() async throws {
        let next = ReloadableConfig()
        try await GatewayHarness.run(
            upstreams: 2,
            config: .custom { Self.config($0[0]) },
            reload: next
        ) { gateway in
            let first = await gateway.upstreams[0].baseURL()
            let second = await gateway.upstreams[1].baseURL()
            let ops = [("Authorization", "Bearer ops-key")]
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/items", headers: ops).status == 401)
            let before = try await gateway.send(.GET, "/proxy/pay/v1/items", headers: Self.admin)
            #expect(before.header("Belay-Endpoint") == Self.hostPort(first))

            next.set(Self.config(second, listen: "127.0.0.1:1", ops: true))
            let answer = try await Self.reload(gateway)
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.problem?["outcome"] as? String == "applied")
            #expect(answer.problem?["applied"] as? [String] == ["consumers", "upstreams.pay"])
            #expect(answer.problem?["needs_restart"] as? [String] == ["server.listen"])

            let after = try await gateway.send(.GET, "/proxy/pay/v1/items", headers: ops)
            #expect(after.status == 200)
            #expect(after.header("Belay-Endpoint") == Self.hostPort(second))
            #expect(gateway.upstreams[1].requests.count == 1)

            let metrics = try await gateway.send(.GET, "/metrics", headers: Self.admin)
            #expect(metrics.body.contains(#"belay_config_reloads_total{outcome="applied"} 1"#))
            #expect(metrics.body.contains(#"belay_config_reloads_total{outcome="refused"} 0"#))
            let stamp = metrics.body.split(separator: "\n")
                .first { $0.hasPrefix("belay_config_last_reload_success_timestamp_seconds ") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
            #expect((stamp ?? 0) > 1_700_000_000, "\(metrics.body)")
        }
    }

    /// `pay` at `urls[0]` sending `X-Shop-Token: token`, inbox source `shop` verified with
    /// `secret`, and with `next`: inbox source `ledger` and an alert sink at `urls[1]/alerts`.
    private static func liveConfig(_ urls: [String], token: String, secret: String, next: Bool = false) -> String {
        Self.config(urls[0], policy: #"headers: { X-Shop-Token: "\#(token)" }"#) + "\n"
            + Self.webhooks(secret: secret)
            + (next
                ? """

                  ledger: { verify: { scheme: standard-webhooks, secret: "\(inboxSecret)" } }
                alerts:
                  - { url: "\(urls[1])/alerts" }
                """ : "")
    }

    @Test func webhooksAlertsAndAnUpstreamsHeadersTakeEffectForTheNextRequest() async throws {
        let next = ReloadableConfig()
        let logs = LogStore()
        try await GatewayHarness.run(
            upstreams: 2,
            config: .custom { Self.liveConfig($0, token: "first-token-value-1", secret: inboxSecret) },
            logs: logs,
            reload: next
        ) { gateway in
            let urls = [await gateway.upstreams[0].baseURL(), await gateway.upstreams[1].baseURL()]
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/items", headers: Self.admin).status == 200)
            #expect(gateway.upstreams[0].requests.last?.header("x-shop-token") == "first-token-value-1")
            #expect(try await gateway.deliverWebhook("{}", id: "msg_0", source: "ledger").status == 404)

            next.set(Self.liveConfig(urls, token: "second-token-value-2", secret: forwardSecret, next: true))
            let answer = try await Self.reload(gateway)
            #expect(
                answer.problem?["applied"] as? [String] == ["upstreams.pay", "webhooks", "alerts"],
                "\(answer.body)"
            )
            #expect(answer.problem?["needs_restart"] as? [String] == [])

            // The upstream's new header value is sent.
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/items", headers: Self.admin).status == 200)
            #expect(gateway.upstreams[0].requests.last?.header("x-shop-token") == "second-token-value-2")
            // The inbox verifies with the new secret, and serves the new source.
            #expect(try await gateway.deliverWebhook("{}", id: "msg_1", secret: inboxSecret).status == 401)
            #expect(try await gateway.deliverWebhook("{}", id: "msg_2", secret: forwardSecret).status == 200)
            #expect(try await gateway.deliverWebhook("{}", id: "msg_3", source: "ledger").status == 200)

            // The new alert sink is sent the next alert: a delivery the upstream refuses for good.
            gateway.upstreams[0].setBehavior(.always(422), for: "/v1/refuse")
            let queued = try await gateway.queue(
                #"{"upstream":"pay","method":"POST","path":"/v1/refuse","body":{"order":1}}"#,
                headers: Self.admin
            )
            #expect(queued.status == 202, "\(queued.body)")
            try await gateway.eventually { gateway.upstreams[1].requests.contains { $0.path == "/alerts" } }
            let alert = try #require(gateway.upstreams[1].requests.first { $0.path == "/alerts" })
            #expect((alert.body ?? "").contains("delivery.dead"), "\(alert.body ?? "")")
            // The reload's own log line says what it applied.
            #expect(logs.records.contains { $0.text.contains("belay.reload.outcome=applied") })
        }
    }

    @Test func anInvalidReloadIsRefusedWithEveryProblemAndTheRunningConfigKept() async throws {
        let next = ReloadableConfig()
        let logs = LogStore()
        try await GatewayHarness.run(config: .custom { Self.config($0[0]) }, logs: logs, reload: next) { gateway in
            let url = await gateway.upstreams[0].baseURL()
            next.set(
                Self.config(url, ops: true, policy: "retry: { max_attempts: 0 }\ntimeouts: { attempt: soon }")
            )
            let answer = try await Self.reload(gateway)
            #expect(answer.status == 422)
            #expect(answer.header("Content-Type") == "application/problem+json")
            #expect(answer.code == "config-invalid")
            let problems = try #require(answer.problem?["problems"] as? [[String: Any]])
            let paths = problems.compactMap { $0["path"] as? String }
            #expect(paths.contains("upstreams.pay.retry.max_attempts"), "\(problems)")
            #expect(paths.contains("upstreams.pay.timeouts.attempt"), "\(problems)")
            #expect(problems.count == 2)

            // Still the running config: ops is unknown, app still calls.
            #expect(
                try await gateway.send(.GET, "/proxy/pay/v1/items", headers: [("Authorization", "Bearer ops-key")])
                    .status == 401
            )
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/items", headers: Self.admin).status == 200)
            let refused = logs.records.filter { $0.message.hasPrefix("config reload refused") }
            #expect(refused.count == 1)
            #expect(refused.first?.level == .error)
            #expect(refused.first?.message.contains("upstreams.pay.retry.max_attempts") == true)
            #expect(refused.first?.message.contains("upstreams.pay.timeouts.attempt") == true)
            let metrics = try await gateway.send(.GET, "/metrics", headers: Self.admin)
            #expect(metrics.body.contains(#"belay_config_reloads_total{outcome="refused"} 1"#))
        }
    }

    @Test func reloadingNeedsTheAdminScope() async throws {
        let next = ReloadableConfig()
        try await GatewayHarness.run(config: .custom { Self.config($0[0], ops: true) }, reload: next) { gateway in
            let answer = try await gateway.send(
                .POST,
                "/v1/admin/reload",
                headers: [("Authorization", "Bearer ops-key")]
            )
            #expect(answer.status == 403)
            #expect(try await gateway.send(.POST, "/v1/admin/reload").status == 401)
        }
    }

    @Test func aRequestInFlightFinishesUnderThePolicyItBeganWith() async throws {
        let next = ReloadableConfig()
        try await GatewayHarness.run(
            upstreams: 2,
            config: .custom {
                Self.config($0[0], policy: "timeouts: { attempt: 60s, total: 60s }\nretry: { max_attempts: 1 }")
            },
            reload: next
        ) { gateway in
            let first = await gateway.upstreams[0].baseURL()
            let second = await gateway.upstreams[1].baseURL()
            // Held at the upstream for longer than the new policy's attempt timeout allows.
            gateway.upstreams[0].setBehavior(UpstreamBehavior(latencyMilliseconds: 5_000), for: "/slow")
            async let held = gateway.send(.GET, "/proxy/pay/slow", headers: Self.admin, timeout: .seconds(90))
            await gateway.upstreams[0].waitForArrivals(1)

            next.set(
                Self.config(second, policy: "timeouts: { attempt: 3s, total: 3s }\nretry: { max_attempts: 1 }")
            )
            #expect(try await Self.reload(gateway).status == 200)
            // A new request runs under the new policy (its endpoint)...
            let fresh = try await gateway.send(.GET, "/proxy/pay/v1/items", headers: Self.admin)
            #expect(fresh.header("Belay-Endpoint") == Self.hostPort(second))
            // ...while the held one (5 s at the upstream) finishes under the old: its 60 s attempt, not the new 3 s.
            let answer = try await held
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.header("Belay-Endpoint") == Self.hostPort(first))
        }
    }

    @Test func aBreakerKeepsItsStateWhenItsSettingsAreUnchanged() async throws {
        let breaker = "circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 2, window: 60s, break: 10m }"
        let next = ReloadableConfig()
        try await GatewayHarness.run(
            config: .custom { Self.config($0[0], policy: "retry: { max_attempts: 1 }\n\(breaker)") },
            reload: next
        ) { gateway in
            let url = await gateway.upstreams[0].baseURL()
            gateway.upstreams[0].setBehavior(UpstreamBehavior(status: 503), for: "/fail")
            for _ in 0..<2 { _ = try await gateway.send(.GET, "/proxy/pay/fail", headers: Self.admin) }
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/items", headers: Self.admin).code == "circuit-open")

            // Another timeout, the same breaker settings: still open.
            next.set(Self.config(url, policy: "retry: { max_attempts: 1 }\ntimeouts: { attempt: 5s }\n\(breaker)"))
            #expect(try await Self.reload(gateway).status == 200)
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/items", headers: Self.admin).code == "circuit-open")

            // New breaker settings: a new breaker, closed.
            next.set(
                Self.config(
                    url,
                    policy: "retry: { max_attempts: 1 }\ntimeouts: { attempt: 5s }\n"
                        + "circuit_breaker: { failure_ratio: 0.9, minimum_throughput: 2, window: 60s, break: 10m }"
                )
            )
            #expect(try await Self.reload(gateway).status == 200)
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/items", headers: Self.admin).status == 200)
        }
    }

    /// The adaptive limit is kept across a reload that leaves its options as they were (what it
    /// learnt still holds), and starts afresh from `initial` when they change; a refused reload
    /// changes neither.
    @Test func anAdaptiveLimitKeepsWhatItLearntWhenItsSettingsAreUnchanged() async throws {
        let adaptive =
            "bulkhead: { adaptive: { algorithm: aimd, initial: 8, min: 2, max: 16 }, max_queue: 0, max_wait: 0s }"
        let policy = "retry: { max_attempts: 1 }\ncircuit_breaker: { minimum_throughput: 1000 }\n"
        let next = ReloadableConfig()
        try await GatewayHarness.run(
            config: .custom { Self.config($0[0], policy: policy + adaptive) },
            reload: next
        ) { gateway in
            func limit() async throws -> Int? {
                let state = try await gateway.send(.GET, "/v1/upstreams/pay", headers: Self.admin)
                return (state.problem?["concurrency"] as? [String: Any])?["limit"] as? Int
            }
            let url = await gateway.upstreams[0].baseURL()
            // Each 503 lowers the AIMD limit by one: 8 → 5.
            gateway.upstreams[0].setBehavior(UpstreamBehavior(status: 503), for: "/fail")
            for _ in 0..<3 { _ = try await gateway.send(.GET, "/proxy/pay/fail", headers: Self.admin) }
            #expect(try await limit() == 5)

            // Another timeout, the same limit settings: the learnt limit stays.
            next.set(Self.config(url, policy: policy + "timeouts: { attempt: 5s }\n" + adaptive))
            #expect(try await Self.reload(gateway).status == 200)
            #expect(try await limit() == 5)

            // A refused reload (an invalid bound) with other limit settings changes nothing…
            next.set(
                Self.config(
                    url,
                    policy: policy + "timeouts: { attempt: 5s, connect: 10s }\n"
                        + "bulkhead: { adaptive: { algorithm: aimd, initial: 12, min: 2, max: 16 } }"
                )
            )
            #expect(try await Self.reload(gateway).status != 200)
            #expect(try await limit() == 5)
            // …so the same settings as before still find the learnt limit.
            next.set(Self.config(url, policy: policy + "timeouts: { attempt: 4s }\n" + adaptive))
            #expect(try await Self.reload(gateway).status == 200)
            #expect(try await limit() == 5)

            // New limit settings: a new limit, at its `initial`.
            next.set(
                Self.config(
                    url,
                    policy: policy + "bulkhead: { adaptive: { algorithm: aimd, initial: 12, min: 2, max: 16 } }"
                )
            )
            #expect(try await Self.reload(gateway).status == 200)
            #expect(try await limit() == 12)
        }
    }

    @Test func aRenewedCertificateIsServedToNewConnectionsAfterAReload() async throws {
        let oldCA = try TestCertificateAuthority("Old CA")
        let newCA = try TestCertificateAuthority("New CA")
        defer {
            oldCA.remove()
            newCA.remove()
        }
        let old = try oldCA.issue("gateway-old")
        let renewed = try newCA.issue("gateway-new")
        let oldTLS = #"tls: { cert: "\#(old.certificatePath)", key: "\#(old.keyPath)" }"#
        let renewedTLS = #"tls: { cert: "\#(renewed.certificatePath)", key: "\#(renewed.keyPath)" }"#
        let next = ReloadableConfig()
        try await GatewayHarness.run(config: .custom { Self.config($0[0], server: oldTLS) }, reload: next) {
            gateway in
            let url = await gateway.upstreams[0].baseURL()
            let health = "https://127.0.0.1:\(gateway.port)/healthz"
            #expect(try await Self.status(health, trusting: oldCA) == 200)
            await #expect(throws: (any Error).self) { try await Self.status(health, trusting: newCA) }

            next.set(Self.config(url, server: renewedTLS))
            let answer = try await Self.tlsReload(gateway.port, trusting: oldCA)
            #expect(answer.contains(#""applied":["server.tls"]"#), "\(answer)")

            #expect(try await Self.status(health, trusting: newCA) == 200)
            await #expect(throws: (any Error).self) { try await Self.status(health, trusting: oldCA) }
        }
    }

    /// The status of `GET url` over a new connection from a client trusting only `ca`.
    private static func status(_ url: String, trusting ca: TestCertificateAuthority) async throws -> UInt {
        try await withClient(trusting: ca) { client in
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1 << 20)
            return response.status.code
        }
    }

    /// `POST /v1/admin/reload` over TLS; the answer's body.
    private static func tlsReload(_ port: Int, trusting ca: TestCertificateAuthority) async throws -> String {
        try await withClient(trusting: ca) { client in
            var request = HTTPClientRequest(url: "https://127.0.0.1:\(port)/v1/admin/reload")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer app-key")
            let response = try await client.execute(request, timeout: .seconds(30))
            return String(buffer: try await response.body.collect(upTo: 1 << 20))
        }
    }

    private static func withClient<T: Sendable>(
        trusting ca: TestCertificateAuthority,
        _ body: (HTTPClient) async throws -> T
    ) async throws -> T {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates([try ca.niosslCertificate])
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}
