import Belay
import BelayGateway
import Crypto
import Foundation
import Testing

@Suite struct ConfigLoaderTests {
    let loader = ConfigLoader(environment: ["PAYMENTS_TOKEN": "s3cr3t", "STRIPE_WHSEC": "whsec_abc"])

    private func issues(_ yaml: String) -> [String] {
        do {
            _ = try loader.load(yaml: yaml)
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

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
                "line 3: server.max_bodyy: unknown key; did you mean 'max_body'? (allowed: body_timeout, header_timeout, idle_timeout, listen, max_body)",
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
            "server: { max_body: 99999999999GiB }",
            "line 1: server.max_body: is out of range (got '99999999999GiB')"
        ),
        (
            "server: { max_body: 99999999999999999999 }",
            "line 1: server.max_body: is out of range (got '99999999999999999999')"
        ),
        (
            "color: blue",
            "line 1: color: unknown key (allowed: alerts, audit, consumers, deliveries, logging, metrics, retention, server, storage, telemetry, upstreams, webhooks)"
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
