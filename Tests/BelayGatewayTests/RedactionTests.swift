import BelayGateway
import BelayTestUpstream
import HTTPTypes
import Logging
import NIOHTTP1
import Testing

@Suite(.timeLimit(.minutes(1))) struct RedactionTests {
    static let upstreamToken = "sk_live_upstream_0123456789"
    static let partnerKey = "partner-key-abcdefgh"
    static let callerKey = "caller-key-4242424242"
    static let shopToken = "shop-token-zyxwvutsrq"
    static let webhookSecret = "webhook-secret-987654321"

    @Test func noSecretReachesAnyLogRecord() async throws {
        let logs = LogStore()
        let yaml: @Sendable ([String]) -> String = { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              app: { key_sha256: "\(sha256Hex(Self.callerKey))", scopes: ["proxy:*"] }
            logging: { redact_headers: [X-Shop-Token] }
            upstreams:
              pay:
                endpoints: ["\(urls[0])"]
                retry: { max_attempts: 2, base: 1ms, cap: 5ms }
                headers: { Authorization: "Bearer ${PAY_TOKEN}", X-Partner-Key: "\(Self.partnerKey)" }
            webhooks:
              shop: { verify: { scheme: hmac, secret: "\(Self.webhookSecret)", header: X-Shop-Hmac, id_header: X-Shop-Id } }
            """
        }
        try await GatewayHarness.run(
            config: .custom(yaml),
            environment: ["PAY_TOKEN": Self.upstreamToken],
            logs: logs,
            logLevel: .trace
        ) { gateway in
            let headers = [("Authorization", "Bearer \(Self.callerKey)"), ("X-Shop-Token", Self.shopToken)]
            // A retried call (decision logs), a failed one (a problem body), a refused one.
            gateway.upstreams[0].setBehavior(.sequence([503]))
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/a", headers: headers).status == 200)
            gateway.upstreams[0].setBehavior(.always(503))
            let failed = try await gateway.send(.GET, "/proxy/pay/v1/b?token=\(Self.shopToken)", headers: headers)
            #expect(failed.status == 503)
            let refused = try await gateway.send(
                .GET,
                "/proxy/pay/v1/c",
                headers: [("Authorization", "Bearer \(Self.upstreamToken)")]
            )
            #expect(refused.status == 401)
            for answer in [failed, refused] {
                #expect(!answer.body.contains(Self.upstreamToken))
            }
            // A webhook with a bad signature is refused and logged, its secret nowhere.
            let webhook = try await gateway.send(
                .POST,
                "/webhooks/shop",
                headers: [("X-Shop-Hmac", "00"), ("X-Shop-Id", "evt-1"), ("Content-Type", "application/json")],
                body: #"{"id":"evt-1"}"#
            )
            #expect(webhook.code == "signature-invalid")
            // A caller's request id is only its correlation id (Belay makes its own): one that
            // happens to be a secret is never logged (checked for every secret below).
            let echoed = try await gateway.send(.GET, "/proxy/pay/v1/d", headers: [("X-Request-Id", Self.partnerKey)])
            #expect(echoed.header("Belay-Request-Id") != Self.partnerKey)
            // The secrets were in play: the upstream got its credentials.
            let received = try #require(gateway.upstreams[0].requests.first)
            #expect(received.header("Authorization") == "Bearer \(Self.upstreamToken)")
            #expect(received.header("X-Partner-Key") == Self.partnerKey)
        }
        let records = logs.records
        // Decisions and the access lines carry the request's fields.
        let retry = try #require(records.first { $0.metadata["belay.event"] == "retry_scheduled" })
        #expect(retry.level == .info)
        #expect(retry.metadata["belay.upstream"] == "pay")
        #expect(retry.metadata["belay.request.id"] != nil)
        #expect(retry.metadata["belay.endpoint"] != nil)
        #expect(retry.metadata["belay.attempt"] == "1")
        let access = records.filter { $0.message == "proxied request" }
        #expect(access.count == 4)
        #expect(access.allSatisfy { $0.level == .debug && $0.metadata["belay.request.id"] != nil })
        #expect(access.first?.metadata["belay.attempt"] == "2")
        #expect(records.contains { $0.message == "request refused" && $0.metadata["belay.problem"] == "unauthorized" })
        let rejected = try #require(records.first { $0.message == "webhook rejected" })
        #expect(rejected.level == .debug)
        #expect(rejected.metadata["belay.webhook.source"] == "shop")
        #expect(rejected.metadata["belay.reason"] != nil)
        for secret in [Self.upstreamToken, Self.partnerKey, Self.callerKey, Self.shopToken, Self.webhookSecret] {
            let leaks = records.filter { $0.text.contains(secret) }
            #expect(leaks.isEmpty, "\(secret) appears in \(leaks.map(\.text))")
        }
    }

    @Test func thePostgreSQLPasswordIsRedactedAloneAndInItsURL() throws {
        let password = "pg-pass-Zq8w2"
        let url = "postgres://belay:\(password)@db.internal:5432/belay?sslmode=require"
        let config = try ConfigLoader(environment: [:]).load(yaml: #"storage: { url: "\#(url)" }"#)
        let logs = LogStore()
        let logger = Redactor(config: config).redacting(Logger(label: "t") { _ in LogStore.Handler(store: logs) })
        logger.error("connect failed for \(url)", metadata: ["detail": "auth failed with password \(password)"])
        let record = logs.records[0]
        #expect(!record.message.contains(password))
        #expect(!"\(record.metadata)".contains(password))
        #expect("\(config.storage)" == "postgres://<redacted>")
    }

    @Test func aRedactingLoggerRedactsMessagesMetadataAndSensitiveKeys() {
        let logs = LogStore()
        let redactor = Redactor(headers: ["X-Shop-Token"], secrets: ["Bearer \(Self.upstreamToken)", "short"])
        var logger = redactor.redacting(Logger(label: "t") { _ in LogStore.Handler(store: logs) })
        logger[metadataKey: "belay.note"] = .string("token=\(Self.upstreamToken)")
        logger.info(
            "calling with Bearer \(Self.upstreamToken)",
            metadata: ["x-shop-token": "anything", "list": .array([.string(Self.upstreamToken)]), "word": "short"]
        )
        let record = logs.records[0]
        #expect(record.message == "calling with <redacted>")
        #expect(record.metadata["belay.note"] == "token=<redacted>")
        #expect(record.metadata["x-shop-token"] == "<redacted>")
        #expect(record.metadata["list"] == .array(["<redacted>"]))
        // Values shorter than the minimum are redacted by header name only, never in text.
        #expect(record.metadata["word"] == "short")
    }

    @Test func sensitiveHeadersAreReplacedWhole() throws {
        let redactor = Redactor(headers: ["X-Shop-Token"])
        var fields = HTTPFields()
        fields[.authorization] = "Bearer x"
        fields[.cookie] = "a=b"
        fields[try #require(HTTPField.Name("X-Shop-Token"))] = "t"
        fields[.accept] = "application/json"
        let redacted = redactor.redact(fields)
        #expect(redacted[.authorization] == "<redacted>")
        #expect(redacted[.cookie] == "<redacted>")
        #expect(redacted[try #require(HTTPField.Name("x-shop-token"))] == "<redacted>")
        #expect(redacted[.accept] == "application/json")
    }

    @Test func aReloadTeachesEveryLoggerAlreadyMadeTheNewSecretsAndForgetsNone() throws {
        let loader = ConfigLoader(environment: [:])
        func config(_ header: String, _ token: String) throws -> GatewayConfig {
            try loader.load(
                yaml: """
                    upstreams:
                      pay:
                        endpoints: ["http://127.0.0.1:9001"]
                        headers: { \(header): "Bearer \(token)" }
                    """
            )
        }
        let logs = LogStore()
        let redactor = Redactor(config: try config("X-Old-Token", "old-token-value-1"))
        let copy = redactor
        let logger = redactor.redacting(Logger(label: "t") { _ in LogStore.Handler(store: logs) })
        #expect(!copy.isSensitive(header: "X-New-Token"))

        redactor.learn(from: try config("X-New-Token", "new-token-value-2"))
        logger.info("sent new-token-value-2, once old-token-value-1", metadata: ["x-new-token": "anything"])
        let record = try #require(logs.records.first)
        #expect(record.message == "sent <redacted>, once <redacted>")
        #expect(record.metadata["x-new-token"] == "<redacted>")
        #expect(copy.isSensitive(header: "X-New-Token") && copy.isSensitive(header: "x-old-token"))
        #expect(copy.redact("new-token-value-2") == "<redacted>")
    }
}
