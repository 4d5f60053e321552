import BelayGateway
import BelayTestUpstream
import Foundation
import NIOHTTP1
import Testing

/// A caller learns the names of only the upstreams it may call: an upstream it may not use and
/// one that does not exist are refused alike, and no answer lists another upstream's name.
@Suite struct UpstreamNamesTests {
    static let config = ConfigTemplate.custom { urls in
        """
        server: { listen: "127.0.0.1:0" }
        consumers:
          nosy: { key_sha256: "\(sha256Hex("nosy-key"))", scopes: ["deliveries:write"] }
          payer: { key_sha256: "\(sha256Hex("payer-key"))", scopes: ["proxy:pay", "deliveries:write"] }
          wide: { key_sha256: "\(sha256Hex("wide-key"))", scopes: ["proxy:*", "deliveries:write"] }
          ops: { key_sha256: "\(sha256Hex("ops-key"))", scopes: ["admin"] }
        upstreams:
          pay: { endpoints: ["\(urls[0])"] }
          vault-ledger: { endpoints: ["\(urls[0])"] }
        """
    }

    private static func queue(_ upstream: String) -> String {
        #"{"upstream":"\#(upstream)","method":"POST","path":"/v1/x"}"#
    }

    /// The problem's fields other than its request id, with `name` (the upstream asked for)
    /// written as `<name>`: two answers that compare equal tell the caller nothing apart.
    private static func shape(_ answer: GatewayHarness.Answer, asked name: String) -> String {
        var problem = answer.problem ?? [:]
        problem["request_id"] = nil
        let text = problem.keys.sorted().map { "\($0)=\(problem[$0].map { "\($0)" } ?? "")" }.joined(separator: " ")
        return "\(answer.status) " + text.replacingOccurrences(of: name, with: "<name>")
    }

    @Test func aDeliveryToAnUpstreamTheCallerMayNotUseLooksLikeOneThatDoesNotExist() async throws {
        try await GatewayHarness.run(config: Self.config) { gateway in
            for key in ["nosy-key", "payer-key"] {
                let auth = [("Authorization", "Bearer \(key)")]
                let forbidden = try await gateway.queue(Self.queue("vault-ledger"), headers: auth)
                let missing = try await gateway.queue(Self.queue("nope"), headers: auth)
                #expect(forbidden.status == 403 && forbidden.code == "forbidden", "\(key): \(forbidden.body)")
                #expect(forbidden.problem?["field"] as? String == "/upstream")
                #expect(
                    Self.shape(forbidden, asked: "vault-ledger") == Self.shape(missing, asked: "nope"),
                    "\(key): \(forbidden.body) vs \(missing.body)"
                )
                #expect(!missing.body.contains("vault-ledger"), "\(key): \(missing.body)")
                #expect(key == "payer-key" || !missing.body.contains("pay"), "\(key): \(missing.body)")
            }
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func anUnknownUpstreamIsListedAgainstOnlyTheUpstreamsTheCallerMayUse() async throws {
        try await GatewayHarness.run(config: Self.config) { gateway in
            for key in ["wide-key", "ops-key"] {
                let missing = try await gateway.queue(Self.queue("nope"), headers: [("Authorization", "Bearer \(key)")])
                #expect(missing.status == 404 && missing.code == "unknown-upstream", "\(key): \(missing.body)")
                #expect(missing.problem?["field"] as? String == "/upstream")
                let detail = missing.problem?["detail"] as? String ?? ""
                #expect(detail.contains("pay") && detail.contains("vault-ledger"), "\(key): \(detail)")
            }
        }
    }

    @Test func theProxyRefusesAnUpstreamTheCallerMayNotUseAsOneThatDoesNotExist() async throws {
        try await GatewayHarness.run(config: Self.config) { gateway in
            let auth = [("Authorization", "Bearer payer-key")]
            let forbidden = try await gateway.send(.GET, "/proxy/vault-ledger/v1/x", headers: auth)
            let missing = try await gateway.send(.GET, "/proxy/nope/v1/x", headers: auth)
            #expect(forbidden.status == 403)
            #expect(Self.shape(forbidden, asked: "vault-ledger") == Self.shape(missing, asked: "nope"))
            #expect(!missing.body.contains("vault-ledger"))
        }
    }
}
