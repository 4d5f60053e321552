import BelayGateway
import BelayHTTP
import Testing

/// One `upstreams.<name>` section read alone, for `ResilientHTTPClient` and
/// `ResilienceMiddleware` inside an application (issue 17).
@Suite struct UpstreamPolicyYAMLTests {
    let loader = ConfigLoader(environment: [:])

    @Test func anUpstreamSectionAloneGivesTheApplicationItsPolicy() throws {
        let policy = try loader.upstreamPolicy(
            named: "payments",
            yaml: """
                endpoints: ["https://api.pay.example", "https://backup.pay.example/v2"]
                retry: { max_attempts: 4, base: 50ms }
                idempotency: { header: Idempotency-Key }
                """
        )
        #expect(policy.name == "payments")
        #expect(policy.endpoints.map(\.host) == ["api.pay.example", "backup.pay.example"])
        #expect(policy.endpoints[1].basePath == "/v2")
        #expect(policy.maxAttempts == 4 && policy.retryBase == .milliseconds(50))
        #expect(policy.idempotencyHeader == "Idempotency-Key")
        // The gateway's defaults for what is not written.
        #expect(policy.attemptTimeout == .seconds(2) && policy.totalTimeout == .seconds(10))
        // Issues name the key and the section's own line.
        #expect(throws: ConfigError.self) {
            try loader.upstreamPolicy(
                named: "payments",
                yaml: "endpoints: [\"https://a.example\"]\nretry: { max_attempts: 0 }"
            )
        }
        do {
            _ = try loader.upstreamPolicy(
                named: "payments",
                yaml: "endpoints: [\"https://a.example\"]\nretry: { max_attempts: 0 }"
            )
        } catch {
            #expect(error.issues.map(\.path) == ["upstreams.payments.retry.max_attempts"])
            #expect(error.issues.map(\.line) == [2])
        }
    }
}
