import Belay
import BelayGateway
import BelayHTTP
import Crypto
import Foundation
import HTTPTypes
import Testing

@Suite struct ConfigLoaderTests {
    let loader = ConfigLoader(environment: ["PAYMENTS_TOKEN": "s3cr3t", "STRIPE_WHSEC": "whsec_abc"])

    private func issues(_ yaml: String) -> [String] { loader.issues(yaml) }

    @Test func theDesignExampleLoadsWithEveryValue() throws {
        let config = try loader.load(
            yaml: """
                server:   { listen: "127.0.0.1:8080", max_body: 1MiB }
                storage:  { url: "sqlite:./belay-data/belay.db" }
                consumers:
                  orders-app: { key_sha256: "\(String(repeating: "ab", count: 32))", scopes: ["proxy:*", "deliveries:write", "deliveries:read"], rate_limit: { rps: 200, burst: 400 } }
                upstreams:
                  payments:
                    endpoints: ["https://api.pay.example", "https://backup.pay.example/v2/"]
                    timeouts:  { connect: 1s, attempt: 2s, total: 10s }
                    retry:     { max_attempts: 3, base: 100ms, cap: 5s, budget: 0.1, on: [408, 429, 502, 503, 504, connect, reset, timeout] }
                    circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 10, window: 60s, break: 30s, half_open_probes: 1 }
                    bulkhead:  { max_concurrent: 100, max_queue: 50 }
                    rate_limit: { rps: 50, burst: 100 }
                    cache:     { stale_if_error: 10m }
                    idempotency: { header: "Idempotency-Key" }
                    headers:   { Authorization: "Bearer ${PAYMENTS_TOKEN}" }
                    probe:     { path: "/health", every: 60s }
                deliveries: { schedule: [0s, 5s, 5m, 20m, 4h, 1d], notify_after: 3, ack_timeout: 1h }
                webhooks:
                  stripe:
                    verify: { scheme: stripe, secret: "${STRIPE_WHSEC}", tolerance: 5m }
                    forward_to: "http://127.0.0.1:3000/hooks/stripe"
                    forward_secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                alerts: [ { url: "http://127.0.0.1:9000/alerts" } ]
                """
        )
        #expect(config.server.listen == .init(host: "127.0.0.1", port: 8080))
        #expect(config.server.maxBody == 1_048_576)
        #expect(config.storage == .sqlite(path: "./belay-data/belay.db"))
        #expect(config.consumers.first?.rateLimit == .init(rps: 200, burst: 400))
        let payments = try #require(config.upstream(named: "payments"))
        #expect(payments.endpoints.map(\.description) == ["https://api.pay.example", "https://backup.pay.example/v2"])
        #expect(payments.timeouts == .init(connect: .seconds(1), attempt: .seconds(2), total: .seconds(10)))
        #expect(payments.retry.budget == 0.1)
        #expect(
            payments.retry.on.map(\.description) == ["408", "429", "502", "503", "504", "connect", "reset", "timeout"]
        )
        #expect(payments.circuitBreaker.breakDuration == .seconds(30))
        #expect(payments.staleIfError == .seconds(600))
        #expect(payments.idempotencyHeader == "Idempotency-Key")
        #expect(payments.headers.first?.value.value == "Bearer s3cr3t")
        #expect("\(payments.headers.first!.value)" == "<redacted>")
        #expect(payments.probe?.every == .seconds(60))
        #expect(config.deliveries.schedule.last == .seconds(86_400))
        #expect(config.webhooks.first?.scheme == .stripe)
        #expect(config.webhooks.first?.secrets.first?.value == "whsec_abc")
        #expect(config.alerts.map(\.url) == ["http://127.0.0.1:9000/alerts"])
    }

    @Test func theHalfOpenStateMayBeJudgedByTheProbesFailureRatio() throws {
        let config = try loader.load(
            yaml: """
                upstreams:
                  pay:
                    \(Self.endpoints)
                    circuit_breaker: { half_open_probes: 4, half_open_judgment: failure_ratio }
                  default:
                    \(Self.endpoints)
                """
        )
        #expect(config.upstream(named: "pay")?.circuitBreaker.halfOpenJudgment == .failureRatio)
        #expect(config.upstream(named: "pay")?.policy.circuitBreaker.halfOpenJudgment == .failureRatio)
        #expect(config.upstream(named: "default")?.policy.circuitBreaker.halfOpenJudgment == .anyFailure)
        #expect(
            issues("upstreams: { pay: { \(Self.endpoints), circuit_breaker: { half_open_judgment: majority } } }")
                == [
                    "line 1: upstreams.pay.circuit_breaker.half_open_judgment: must be one of any_failure, "
                        + "failure_ratio (got 'majority')"
                ]
        )
    }

    @Test func anEmptyConfigIsEveryDefault() throws {
        let config = try loader.load(yaml: "")
        #expect(config.server.listen.description == "127.0.0.1:8080")
        #expect(config.storage.description == "sqlite:./belay-data/belay.db")
        #expect(config.upstreams.isEmpty)
        #expect(config.metrics.enabled)
    }

    @Test func metricsCanBeTurnedOff() throws {
        #expect(try loader.load(yaml: "metrics: { enabled: false }").metrics.enabled == false)
        #expect(try loader.load(yaml: "metrics: { enabled: true }").metrics.enabled)
    }

    @Test func everyProblemIsReportedWithItsPathAndLine() {
        let found = issues(
            """
            server:
              listen: "nowhere"
              max_bodyy: 1MiB
            upstreams:
              payments:
                endpoints: ["ftp://files.example"]
                retry: { max_attempts: 0, budget: 1.5, on: [503, soon] }
                timeouts: { attempt: 20s, total: 10s }
                headers: { Authorization: "Bearer ${MISSING_TOKEN}" }
            """
        )
        #expect(
            found == [
                "line 2: server.listen: must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080 (got 'nowhere')",
                "line 3: server.max_bodyy: unknown key; did you mean 'max_body'? (allowed: body_timeout, drain, header_timeout, idle_timeout, instance, listen, max_body, tls)",
                "line 6: upstreams.payments.endpoints[0]: must be an absolute http:// or https:// URL (got 'ftp://files.example')",
                "line 7: upstreams.payments.retry.max_attempts: must be between 1 and 20 (got 0)",
                "line 7: upstreams.payments.retry.budget: must be a number between 0 and 1 (got '1.5')",
                "line 7: upstreams.payments.retry.on[1]: must be a 4xx/5xx status or one of connect, reset, timeout (got 'soon')",
                "line 9: upstreams.payments.headers.Authorization: refers to the environment variable MISSING_TOKEN, which is not set",
                "upstreams.payments.timeouts.attempt: must not exceed timeouts.total (20s > 10s)",
            ]
        )
    }

    @Test func openModeIsRefusedOffLoopback() {
        #expect(
            issues("server: { listen: \"0.0.0.0:8080\" }") == [
                "line 1: server.listen: open mode (no consumers configured) is allowed on loopback only; configure consumers or listen on 127.0.0.1"
            ]
        )
    }

    @Test func malformedYAMLNamesTheLine() {
        let found = issues("upstreams:\n  payments: [\n")
        #expect(found.count == 1)
        #expect(found.first?.hasPrefix("line 3: (root): not valid YAML") == true)
    }

    @Test(arguments: [
        (
            "deliveries: { schedule: [0s, 5x] }",
            "line 1: deliveries.schedule[1]: must be a duration such as 250ms, 5s, 20m, 4h or 1d (got '5x')"
        ),
        (
            "deliveries: { schedule: [0s], notify_after: 3 }",
            "deliveries.notify_after: must not exceed the 1 attempts of deliveries.schedule (got 3)"
        ),
        ("storage: { url: \"mysql://x\" }", "line 1: storage.url: must start with sqlite: or postgres://"),
        (
            "webhooks: { gh: { verify: { scheme: gitlab, secret: x } } }",
            "line 1: webhooks.gh.verify.scheme: unknown scheme 'gitlab' (known: standard-webhooks, stripe, github, hmac)"
        ),
        (
            "consumers: { app: { key_sha256: abc } }",
            "line 1: consumers.app.key_sha256: must be 64 hex digits (the SHA-256 of the API key)"
        ),
        (
            "upstreams: { pay: { timeouts: { total: 0s } } }",
            "line 1: upstreams.pay.timeouts.total: must be greater than zero"
        ),
        (
            "upstreams: { pay: { endpoints: [\"http://a.example\"], timeouts: { total: 9999999999999999d } } }",
            "line 1: upstreams.pay.timeouts.total: is out of range: at most 36500d (got '9999999999999999d')"
        ),
        (
            "deliveries: { schedule: [0s, 99999999999999999999s] }",
            "line 1: deliveries.schedule[1]: is out of range: at most 36500d (got '99999999999999999999s')"
        ),
        (
            #"storage: { url: "postgres://belay:hunter2pw@db/belay?sslmode=bogus" }"#,
            "line 1: storage.url: sslmode 'bogus' is not one of disable, prefer, require, verify-ca, verify-full"
        ),
        (
            #"storage: { url: "postgres://belay:hunter2pw@db/belay?pool_size=1" }"#,
            "line 1: storage.url: pool_size '1' must be a whole number from 3 to 1000"
        ),
        (
            #"server: { instance: "web 1" }"#,
            "line 1: server.instance: an instance name must be 1 to 64 ASCII letters, digits, '-', '_', '.' or ':'"
        ),
        (
            "server: { max_body: 99999999999GiB }",
            "line 1: server.max_body: is out of range (got '99999999999GiB')"
        ),
        (
            "server: { max_body: 99999999999999999999 }",
            "line 1: server.max_body: is out of range (got '99999999999999999999')"
        ),
        (
            "color: blue",
            "line 1: color: unknown key (allowed: alerts, audit, consumers, deliveries, incidents, logging, metrics, retention, server, storage, telemetry, upstreams, webhooks)"
        ),
        ("metrics: { enabled: maybe }", "line 1: metrics.enabled: must be true or false (got 'maybe')"),
        (
            "metrics: { enable: false }",
            "line 1: metrics.enable: unknown key; did you mean 'enabled'? (allowed: enabled)"
        ),
    ])
    func eachMistakeHasAClearMessage(yaml: String, expected: String) {
        #expect(issues(yaml).contains(expected), "got \(issues(yaml))")
    }

    @Test func theAuditTrailHasDefaultsAndValidatedSettings() throws {
        let defaults = try loader.load(yaml: "upstreams: {}")
        #expect(defaults.audit == GatewayConfig.Audit())
        #expect(defaults.audit.enabled)
        #expect(defaults.audit.retention == .seconds(7 * 86_400))
        #expect(defaults.audit.maxSize == 1 << 30)
        let set = try loader.load(yaml: "audit: { enabled: false, retention: 36h, max_size: 200MiB }")
        #expect(!set.audit.enabled)
        #expect(set.audit.retention == .seconds(36 * 3_600))
        #expect(set.audit.maxSize == 200 << 20)
        #expect(
            issues("audit: { enabled: maybe, retention: 0s, max_size: 10KiB, keep: 3 }") == [
                "line 1: audit.keep: unknown key (allowed: enabled, max_size, retention)",
                "line 1: audit.enabled: must be true or false (got 'maybe')",
                "line 1: audit.retention: must be greater than zero",
                "line 1: audit.max_size: must be at least 1MiB (got '10KiB')",
            ]
        )
        #expect(
            issues("audit:\n  retention: 7 days\n") == [
                "line 2: audit.retention: must be a duration such as 250ms, 5s, 20m, 4h or 1d (got '7 days')"
            ]
        )
    }

    @Test func incidentsCloseAfterAConfiguredQuietTime() throws {
        #expect(try loader.load(yaml: "upstreams: {}").incidents.closeAfter == .seconds(300))
        #expect(try loader.load(yaml: "incidents: { close_after: 30s }").incidents.closeAfter == .seconds(30))
        #expect(
            issues("incidents: { close_after: 500ms, after: 1m }") == [
                "line 1: incidents.after: unknown key (allowed: close_after)",
                "line 1: incidents.close_after: must be from 1s to 24h (got '500ms')",
            ]
        )
        #expect(
            issues("incidents: { close_after: 2d }") == [
                "line 1: incidents.close_after: must be from 1s to 24h (got '2d')"
            ]
        )
        #expect(
            issues("incidents: { close_after: soon }").first?.hasPrefix(
                "line 1: incidents.close_after: must be a duration"
            ) == true
        )
    }

    @Test func anUpstreamWithoutEndpointsIsReported() {
        #expect(
            issues("upstreams: { pay: { bulkhead: { max_concurrent: 5 } } }") == [
                "line 1: upstreams.pay.endpoints: is required: list the upstream's base URLs in failover order"
            ]
        )
    }

    @Test func durationsAndSizes() {
        #expect(ConfigDuration.parse("250ms") == .milliseconds(250))
        #expect(ConfigDuration.parse("4h") == .seconds(14_400))
        #expect(ConfigDuration.parse("1d") == .seconds(86_400))
        #expect(ConfigDuration.parse("0") == .zero)
        #expect(ConfigDuration.parse("1.5s") == nil)
        #expect(ConfigDuration.parse("-1s") == nil)
        #expect(ConfigDuration.format(.milliseconds(1500)) == "1500ms")
        #expect(ConfigDuration.format(.seconds(300)) == "5m")
        #expect(ConfigByteSize.parse("1MiB") == 1_048_576)
        #expect(ConfigByteSize.parse("10MB") == 10_000_000)
        #expect(ConfigByteSize.parse("12") == 12)
        #expect(ConfigByteSize.parse("1TB") == nil)
    }

    @Test func outOfRangeValuesAreRefusedNotWrappedOrTrappedOn() {
        #expect(ConfigDuration.parse("36500d") == .seconds(36_500 * 86_400))
        #expect(ConfigDuration.read("36501d") == .failure(.outOfRange))
        #expect(ConfigDuration.read("9999999999999999d") == .failure(.outOfRange))
        #expect(ConfigDuration.read("153722867280912931m") == .failure(.outOfRange))
        #expect(ConfigDuration.read("99999999999999999999ms") == .failure(.outOfRange))
        #expect(ConfigDuration.read("9223372036854775807ms") == .failure(.outOfRange))
        #expect(ConfigDuration.read("5 s") == .failure(.malformed))
        #expect(ConfigByteSize.read("8589934591GiB") == .success(8_589_934_591 << 30))
        #expect(ConfigByteSize.read("8589934592GiB") == .failure(.outOfRange))
        #expect(ConfigByteSize.read("99999999999999999999") == .failure(.outOfRange))
        #expect(ConfigByteSize.read("1 TiB") == .failure(.malformed))
    }

    // MARK: numbers that could trap, the loopback rule, duplicate keys, adapting defaults

    static let hash = String(repeating: "ab", count: 32)
    static let endpoints = "endpoints: [\"http://a.example\"]"

    @Test(arguments: [
        // Without `burst`, the burst was Int(rps.rounded(.up)): a trap for 1e300.
        (
            "consumers: { a: { key_sha256: \"\(hash)\", rate_limit: { rps: 1e300 } } }",
            "line 1: consumers.a.rate_limit.rps: must be a number between 0.000001 and 1000000 (got '1e300')"
        ),
        (
            "upstreams: { pay: { \(endpoints), rate_limit: { rps: 1e300 } } }",
            "line 1: upstreams.pay.rate_limit.rps: must be a number between 0.000001 and 1000000 (got '1e300')"
        ),
        // The limiter's wait would be 1e300 s, beyond what a Duration holds.
        (
            "upstreams: { pay: { \(endpoints), rate_limit: { rps: 1e-300, burst: 1 } } }",
            "line 1: upstreams.pay.rate_limit.rps: must be a number between 0.000001 and 1000000 (got '1e-300')"
        ),
        (
            "upstreams: { pay: { \(endpoints), rate_limit: { rps: nan } } }",
            "line 1: upstreams.pay.rate_limit.rps: must be a number between 0.000001 and 1000000 (got 'nan')"
        ),
        (
            "upstreams: { pay: { \(endpoints), rate_limit: { rps: 10, burst: 99999999999999999999 } } }",
            "line 1: upstreams.pay.rate_limit.burst: must be between 1 and 10000000 (got 99999999999999999999)"
        ),
        (
            "upstreams: { pay: { \(endpoints), rate_limit: { rps: 10, burst: 10000001 } } }",
            "line 1: upstreams.pay.rate_limit.burst: must be between 1 and 10000000 (got 10000001)"
        ),
        (
            "upstreams: { pay: { \(endpoints), bulkhead: { max_concurrent: 100001 } } }",
            "line 1: upstreams.pay.bulkhead.max_concurrent: must be between 1 and 100000 (got 100001)"
        ),
        (
            "upstreams: { pay: { \(endpoints), bulkhead: { max_queue: -1 } } }",
            "line 1: upstreams.pay.bulkhead.max_queue: must be between 0 and 1000000 (got -1)"
        ),
        (
            "upstreams: { pay: { \(endpoints), circuit_breaker: { minimum_throughput: 1000001 } } }",
            "line 1: upstreams.pay.circuit_breaker.minimum_throughput: must be between 1 and 1000000 (got 1000001)"
        ),
        (
            "upstreams: { pay: { \(endpoints), circuit_breaker: { half_open_probes: 1001 } } }",
            "line 1: upstreams.pay.circuit_breaker.half_open_probes: must be between 1 and 1000 (got 1001)"
        ),
        (
            "upstreams: { pay: { \(endpoints), circuit_breaker: { failure_ratio: nan } } }",
            "line 1: upstreams.pay.circuit_breaker.failure_ratio: must be a number between 0 and 1 (got 'nan')"
        ),
        (
            "upstreams: { pay: { \(endpoints), retry: { budget: -0.0000001 } } }",
            "line 1: upstreams.pay.retry.budget: must be a number between 0 and 1 (got '-0.0000001')"
        ),
        (
            "deliveries: { concurrency: 10001 }",
            "line 1: deliveries.concurrency: must be between 1 and 10000 (got 10001)"
        ),
        (
            "deliveries: { notify_after: -99999999999999999999 }",
            "line 1: deliveries.notify_after: must be between 1 and 1000 (got -99999999999999999999)"
        ),
        (
            "server: { listen: \"127.0.0.1:99999999999999999999\" }",
            "line 1: server.listen: must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080 (got '127.0.0.1:99999999999999999999')"
        ),
    ])
    func everyNumberIsRangeCheckedNeverTrappedOn(yaml: String, expected: String) {
        #expect(issues(yaml) == [expected])
    }

    @Test func theExtremesTheLoaderAcceptsBuildTheirLimitersAndClients() async throws {
        let config = try loader.load(
            yaml: """
                consumers:
                  slow: { key_sha256: "\(Self.hash)", scopes: ["proxy:*"], rate_limit: { rps: 0.000001 } }
                  fast: { key_sha256: "\(String(repeating: "cd", count: 32))", rate_limit: { rps: 1000000, burst: 10000000 } }
                upstreams:
                  slow:
                    \(Self.endpoints)
                    timeouts: { connect: 36500d, attempt: 36500d, total: 36500d }
                    retry: { max_attempts: 20, base: 36500d, cap: 36500d, budget: 1 }
                    circuit_breaker: { failure_ratio: 1, minimum_throughput: 1000000, window: 36500d, break: 36500d, half_open_probes: 1000 }
                    bulkhead: { max_concurrent: 100000, max_queue: 1000000 }
                    rate_limit: { rps: 0.000001 }
                  fast:
                    \(Self.endpoints)
                    timeouts: { connect: 1ms, attempt: 1ms, total: 1ms }
                    rate_limit: { rps: 1000000 }
                """
        )
        #expect(
            config.consumers.map(\.rateLimit) == [.init(rps: 0.000001, burst: 1), .init(rps: 1e6, burst: 10_000_000)]
        )
        #expect(config.upstreams.map(\.rateLimit?.burst) == [1, 1_000_000])
        let auth = try ConsumerAuth(consumers: config.consumers)
        #expect(!auth.isOpenMode)
        for upstream in config.upstreams {
            let client = try UpstreamClient(policy: upstream.policy)
            try? await client.shutdown()
        }
        for limit in config.consumers.compactMap(\.rateLimit) + config.upstreams.compactMap(\.rateLimit) {
            let stated = RateLimitHeaders.policy(permitsPerSecond: limit.rps, burst: limit.burst)
            #expect(stated.quota >= 1 && stated.window >= 1)
        }
    }

    @Test(arguments: [
        ("127.0.0.1:8080", true), ("127.9.8.7:8080", true), ("localhost:8080", true), ("[::1]:8080", true),
        ("[0:0:0:0:0:0:0:1]:8080", true),
        // A host name that starts like a loopback address is anything DNS says it is.
        ("127.0.0.1.attacker.example:8080", false), ("127.attacker.example:8080", false),
        ("localhost.attacker.example:8080", false), ("127.1:8080", false), ("0.0.0.0:8080", false),
        ("[::]:8080", false), ("[::ffff:127.0.0.1]:8080", false), ("128.0.0.1:8080", false),
        ("127.0.0.256:8080", false), ("[::1%lo]:8080", false),
    ])
    func openModeNeedsALoopbackAddressNotAName(listen: String, allowed: Bool) {
        let found = issues("server: { listen: \"\(listen)\" }")
        #expect(
            found.contains { $0.contains("open mode (no consumers configured) is allowed on loopback only") }
                == !allowed,
            "got \(found)"
        )
    }

    @Test func twoConsumersWithOneKeyAreRefused() {
        let upper = Self.hash.uppercased()
        #expect(
            issues(
                """
                consumers:
                  reader: { key_sha256: "\(Self.hash)", scopes: ["deliveries:read"] }
                  admin: { key_sha256: "\(upper)", scopes: ["admin"] }
                """
            ) == [
                "line 3: consumers.admin.key_sha256: is the same key as consumers.reader.key_sha256 (line 2): each consumer needs its own key"
            ]
        )
    }

    @Test func theAuthenticatorRefusesTwoConsumersWithOneKey() {
        let consumers: [GatewayConfig.Consumer] = [
            .init(name: "reader", keySHA256: Self.hash, scopes: ["deliveries:read"]),
            .init(name: "admin", keySHA256: Self.hash.uppercased(), scopes: ["admin"]),
        ]
        #expect {
            _ = try ConsumerAuth(consumers: consumers)
        } throws: { error in
            (error as? ConfigurationError)?.issues.map(\.option) == ["admin.keySHA256"]
        }
    }

    @Test func theAuthenticatorMatchesAKeyHashWrittenInUppercase() throws {
        let key = "k-123"
        let digest = SHA256.hash(data: Data(key.utf8)).map { String(format: "%02X", $0) }.joined()
        let auth = try ConsumerAuth(consumers: [.init(name: "app", keySHA256: digest, scopes: ["admin"])])
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(key)"
        #expect((try? auth.identify(headers).get())?.name == "app")
    }

    @Test func defaultsAdaptToTheValuesTheUserWrote() throws {
        func upstream(_ policy: String) throws -> UpstreamConfig {
            try #require(loader.load(yaml: "upstreams: { pay: { \(Self.endpoints), \(policy) } }").upstreams.first)
        }
        // connect defaults to min(1s, attempt); attempt to min(2s, total), at least connect.
        #expect(
            try upstream("timeouts: { attempt: 300ms }").timeouts
                == .init(connect: .milliseconds(300), attempt: .milliseconds(300), total: .seconds(10))
        )
        #expect(
            try upstream("timeouts: { total: 500ms }").timeouts
                == .init(connect: .milliseconds(500), attempt: .milliseconds(500), total: .milliseconds(500))
        )
        // total defaults to max(10s, attempt); attempt to max(2s, connect).
        #expect(
            try upstream("timeouts: { attempt: 30s }").timeouts
                == .init(connect: .seconds(1), attempt: .seconds(30), total: .seconds(30))
        )
        #expect(
            try upstream("timeouts: { connect: 5s }").timeouts
                == .init(connect: .seconds(5), attempt: .seconds(5), total: .seconds(10))
        )
        #expect(
            try upstream("timeouts: { connect: 20s }").timeouts
                == .init(connect: .seconds(20), attempt: .seconds(20), total: .seconds(20))
        )
        #expect(
            try upstream("timeouts: { connect: 2s, total: 3s }").timeouts
                == .init(connect: .seconds(2), attempt: .seconds(2), total: .seconds(3))
        )
        // base defaults to min(100ms, cap); cap to max(5s, base).
        let capped = try upstream("retry: { cap: 50ms }").retry
        #expect((capped.base, capped.cap) == (.milliseconds(50), .milliseconds(50)))
        let based = try upstream("retry: { base: 10s }").retry
        #expect((based.base, based.cap) == (.seconds(10), .seconds(10)))
        // notify_after defaults to min(3, the schedule's attempts).
        #expect(try loader.load(yaml: "deliveries: { schedule: [0s, 5s] }").deliveries.notifyAfter == 2)
    }

    @Test func valuesTheUserWroteThatConflictAreStillIssues() {
        func found(_ policy: String) -> [String] {
            issues("upstreams: { pay: { \(Self.endpoints), \(policy) } }")
        }
        #expect(
            found("timeouts: { connect: 2s, attempt: 1s }") == [
                "upstreams.pay.timeouts.connect: must not exceed timeouts.attempt (2s > 1s)"
            ]
        )
        #expect(
            found("timeouts: { attempt: 20s, total: 10s }") == [
                "upstreams.pay.timeouts.attempt: must not exceed timeouts.total (20s > 10s)"
            ]
        )
        #expect(
            found("timeouts: { connect: 5s, total: 3s }") == [
                "upstreams.pay.timeouts.connect: must not exceed timeouts.total (5s > 3s)"
            ]
        )
        #expect(
            found("retry: { base: 1s, cap: 100ms }") == [
                "upstreams.pay.retry.base: must not exceed retry.cap (1s > 100ms)"
            ]
        )
    }

    // MARK: webhook verification options

    @Test func hmacOptionsLoadWithTheirDefaults() throws {
        let config = try loader.load(
            yaml: """
                webhooks:
                  shop:
                    verify: { scheme: hmac, secret: s1, header: X-Shop-Hmac, algorithm: sha512, encoding: base64, prefix: "sha512=", id_header: X-Shop-Id }
                  plain:
                    verify: { scheme: hmac, secrets: [old, new], header: X-Signature, id_pointer: "/event/id" }
                  stripe:
                    verify: { scheme: stripe, secret: "${STRIPE_WHSEC}", id_pointer: "/data/object/id" }
                """
        )
        let shop = try #require(config.webhooks.first)
        #expect(
            shop.hmac
                == .init(
                    header: "X-Shop-Hmac",
                    algorithm: .sha512,
                    encoding: .base64,
                    prefix: "sha512=",
                    idHeader: "X-Shop-Id"
                )
        )
        #expect(shop.idPointer == nil)
        #expect(config.webhooks[1].hmac == .init(header: "X-Signature", algorithm: .sha256, encoding: .hex))
        #expect(config.webhooks[1].secrets.map(\.value) == ["old", "new"])
        #expect(config.webhooks[1].idPointer == "/event/id")
        #expect(config.webhooks[2].hmac == nil)
        #expect(config.webhooks[2].idPointer == "/data/object/id")
        #expect(config.webhooks[2].tolerance == .seconds(300))
        for source in config.webhooks {
            #expect(throws: Never.self) { try WebhookVerifier(source: source) }
        }
    }

    @Test func standardWebhooksKeysAreChecked() throws {
        let publicKey = "whpk_" + Curve25519.Signing.PrivateKey().publicKey.rawRepresentation.base64EncodedString()
        let config = try loader.load(
            yaml: """
                webhooks:
                  sw:
                    verify: { scheme: standard-webhooks, secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "\(publicKey)"], tolerance: 1m }
                    forward_secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                """
        )
        #expect(config.webhooks.first?.secrets.count == 2)
        #expect(config.webhooks.first?.tolerance == .seconds(60))
        let short = Data(repeating: 1, count: 16).base64EncodedString()
        let long = Data(repeating: 1, count: 65).base64EncodedString()
        let found = issues(
            """
            webhooks:
              sw:
                verify:
                  scheme: standard-webhooks
                  secrets:
                    - "whsec_\(short)"
                    - "whsec_\(long)"
                    - "whsec_not*base64"
                    - "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                    - "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                    - "whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                    - "whpk_%%%"
                forward_secret: "\(publicKey)"
              single:
                verify: { scheme: standard-webhooks, secret: "whsec_AAAA" }
                forward_secret: "whsec_AAAA"
            """
        )
        #expect(
            found == [
                "line 6: webhooks.sw.verify.secrets[0]: must decode to 24–64 bytes after whsec_ (got 16)",
                "line 7: webhooks.sw.verify.secrets[1]: must decode to 24–64 bytes after whsec_ (got 65)",
                "line 8: webhooks.sw.verify.secrets[2]: is not valid base64 after whsec_",
                "line 9: webhooks.sw.verify.secrets[3]: must be a Standard Webhooks secret (whsec_ + base64) or public key (whpk_ + base64)",
                "line 10: webhooks.sw.verify.secrets[4]: is a private signing key (whsk_), which belongs with the sender: configure its public key (whpk_) instead",
                "line 11: webhooks.sw.verify.secrets[5]: must decode to a 32-byte ed25519 public key after whpk_ (got 24 bytes)",
                "line 12: webhooks.sw.verify.secrets[6]: is not valid base64 after whpk_",
                "line 13: webhooks.sw.forward_secret: must be a Standard Webhooks secret starting with whsec_",
                "line 15: webhooks.single.verify.secret: must decode to 24–64 bytes after whsec_ (got 3)",
                "line 16: webhooks.single.forward_secret: must decode to 24–64 bytes after whsec_ (got 3)",
            ]
        )
        // No message repeats a secret.
        #expect(!found.joined().contains("MfKQ9r8G"))
    }

    @Test(arguments: [
        (
            "webhooks: { h: { verify: { scheme: hmac, secret: s, id_header: X-Id } } }",
            "line 1: webhooks.h.verify.header: is required for scheme hmac"
        ),
        (
            "webhooks: { h: { verify: { scheme: hmac, secret: s, header: \"X Sig\", id_header: X-Id } } }",
            "line 1: webhooks.h.verify.header: must be an HTTP header name (got 'X Sig')"
        ),
        (
            "webhooks: { h: { verify: { scheme: hmac, secret: s, header: X-Sig, id_header: \"X:Id\" } } }",
            "line 1: webhooks.h.verify.id_header: must be an HTTP header name (got 'X:Id')"
        ),
        (
            "webhooks: { g: { verify: { scheme: github, secret: s }, order_by: \"data.id\" } }",
            "line 1: webhooks.g.order_by: must be a JSON pointer starting with / such as /id (got 'data.id')"
        ),
        (
            "webhooks: { h: { verify: { scheme: hmac, secret: s, header: X-Sig } } }",
            "line 1: webhooks.h.verify.id_header: is required for scheme hmac unless id_pointer is set: events are deduplicated by their id"
        ),
        (
            "webhooks: { h: { verify: { scheme: hmac, secret: s, header: X-Sig, id_header: X-Id, id_pointer: /id } } }",
            "line 1: webhooks.h.verify.id_header: set id_header or id_pointer, not both"
        ),
        (
            "webhooks: { h: { verify: { scheme: hmac, secret: s, header: X-Sig, id_header: X-Id, algorithm: md5 } } }",
            "line 1: webhooks.h.verify.algorithm: must be sha256 or sha512 (got 'md5')"
        ),
        (
            "webhooks: { h: { verify: { scheme: hmac, secret: s, header: X-Sig, id_header: X-Id, encoding: base32 } } }",
            "line 1: webhooks.h.verify.encoding: must be hex or base64 (got 'base32')"
        ),
        (
            "webhooks: { s: { verify: { scheme: stripe, secret: s, header: X-Sig } } }",
            "line 1: webhooks.s.verify.header: applies to scheme hmac only (this source is stripe)"
        ),
        (
            "webhooks: { g: { verify: { prefix: \"sha256=\", scheme: github, secret: s } } }",
            "line 1: webhooks.g.verify.prefix: applies to scheme hmac only (this source is github)"
        ),
        (
            "webhooks: { s: { verify: { scheme: stripe, secret: s, id_pointer: id } } }",
            "line 1: webhooks.s.verify.id_pointer: must be a JSON pointer starting with / such as /id (got 'id')"
        ),
        (
            "webhooks: { s: { verify: { scheme: stripe, secret: s, id_pointer: \"/a~2\" } } }",
            "line 1: webhooks.s.verify.id_pointer: has '~2' in '/a~2': only ~0 (for ~) and ~1 (for /) are escapes"
        ),
        (
            "webhooks: { s: { verify: { scheme: stripe, secret: s, id_pointr: /id } } }",
            "line 1: webhooks.s.verify.id_pointr: unknown key; did you mean 'id_pointer'? (allowed: algorithm, encoding, header, id_header, id_pointer, path, prefix, scheme, secret, secrets, tolerance, upstream)"
        ),
        (
            "webhooks: { s: { verify: { scheme: stripe } } }",
            "line 1: webhooks.s.verify.secret: is required"
        ),
    ])
    func eachWebhookMistakeHasAClearMessage(yaml: String, expected: String) {
        #expect(issues(yaml) == [expected])
    }
}

/// What Belay sends on its own account (an endpoint URL, a policy's headers) is checked when the
/// config loads: the HTTP client would otherwise refuse each request (`invalidURL`,
/// `invalidHeaderFieldValues`), and the caller would be told it sent a bad request.
extension ConfigLoaderTests {
    private static func upstream(_ endpoint: String, headers: String = "") -> String {
        """
        upstreams:
          pay:
            endpoints: ["\(endpoint)"]\(headers.isEmpty ? "" : "\n    headers: { \(headers) }")
        """
    }

    @Test(arguments: [
        "http://pay .example",  // a space in the host
        "http://pay.example/a b",  // a space in the path
        "http://pay.example/a\\tb",  // a tab
        "http://pay.example/\\u0007",  // a control character
        "http://pay.example/\\u00e9",  // not ASCII
        "http://pay.example/%zz",  // a bad escape
        "http://pay%2eexample",  // an escape in the host
        "http://pay_ex!ample",  // not a host name
        "http://[::1",  // an unclosed IPv6 literal
        "http://pay.example:0",  // no port 0
        "http://user:pw@pay.example",  // userinfo
        "http://user@pay.example",  // userinfo without a password
        "http://pay.example/#top",  // a fragment
    ])
    func anEndpointTheClientCouldNotSendToIsRefusedAtLoad(_ endpoint: String) {
        let found = issues(Self.upstream(endpoint))
        #expect(found.contains { $0.contains("upstreams.pay.endpoints[0]:") }, "\(endpoint): \(found)")
    }

    @Test func endpointsTheClientCanSendToLoadWithTheirPathAsWritten() throws {
        let config = try loader.load(
            yaml: """
                upstreams:
                  pay:
                    endpoints: ["https://api.pay.example:8443/v1/a%20b/", "http://[::1]:8080", "http://pay_svc.internal"]
                """
        )
        let endpoints = try #require(config.upstream(named: "pay")).endpoints
        #expect(endpoints.map(\.basePath) == ["/v1/a%20b", "", ""])
        #expect(endpoints.map(\.host) == ["api.pay.example", "::1", "pay_svc.internal"])
    }

    @Test(arguments: [
        (#"X-Key: "a\r\nInjected: 1""#, "upstreams.pay.headers.X-Key"),
        (#"X-Key: "a\nb""#, "upstreams.pay.headers.X-Key"),
        (#"X-Key: "a\u0000b""#, "upstreams.pay.headers.X-Key"),
        (#"X-Key: "a\u007fb""#, "upstreams.pay.headers.X-Key"),
        (#"X-Key: "a\u0001b""#, "upstreams.pay.headers.X-Key"),
        (#"X-Key: "${MULTILINE}""#, "upstreams.pay.headers.X-Key"),
        (#""X Key": "v""#, "upstreams.pay.headers.X Key"),
        (#""X-Ké": "v""#, "upstreams.pay.headers.X-Ké"),
    ])
    func aPolicyHeaderTheClientCouldNotSendIsRefusedAtLoadWithoutItsValue(headers: String, path: String) {
        let loader = ConfigLoader(environment: ["MULTILINE": "s3cr3t-line-one\ns3cr3t-line-two"])
        var found: [String] = []
        do {
            _ = try loader.load(yaml: Self.upstream("https://pay.example", headers: headers))
        } catch {
            found = error.issues.map(\.description)
        }
        #expect(found.count == 1 && found.first?.contains("\(path):") == true, "\(headers): \(found)")
        #expect(!found.joined().contains("s3cr3t") && !found.joined().contains("Injected"), "\(found)")
    }

    @Test func aHeaderValueWithATabOrNonASCIILoads() throws {
        let config = try loader.load(yaml: Self.upstream("https://pay.example", headers: #"X-Key: "a\tb ü""#))
        #expect(try #require(config.upstream(named: "pay")).headers.first?.value.value == "a\tb ü")
    }

    @Test func aProbePathThatIsNotARequestTargetIsRefusedAtLoad() {
        let found = issues(
            """
            upstreams:
              pay: { endpoints: ["https://pay.example"], probe: { path: "/health check" } }
            """
        )
        #expect(found.count == 1 && found.first?.contains("upstreams.pay.probe.path:") == true, "\(found)")
    }

    @Test func anOTLPHeaderTheClientCouldNotSendIsRefusedAtLoad() {
        let found = issues(
            #"telemetry: { otlp: { endpoint: "http://127.0.0.1:4318", headers: { X-Key: "a\r\nb" } } }"#
        )
        #expect(found.count == 1 && found.first?.contains("telemetry.otlp.headers.X-Key:") == true, "\(found)")
    }
}

extension ConfigLoader {
    /// Every problem loading `yaml` reports, as `check-config` prints them; none for a valid file.
    func issues(_ yaml: String) -> [String] {
        do {
            _ = try load(yaml: yaml)
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }
}
