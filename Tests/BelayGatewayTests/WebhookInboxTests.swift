import BelayTestUpstream
import Foundation
import HTTPTypes
import NIOHTTP1
import Testing

@testable import BelayGateway

/// The inbox's secret (providers sign with it) and Belay's own forward secret.
let inboxSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
let forwardSecret = "whsec_dGhpcyBpcyBiZWxheSdzIGZvcndhcmQgc2VjcmV0"

func inboxConfig(_ urls: [String], server: String = "") -> String {
    """
    server: { listen: "127.0.0.1:0"\(server.isEmpty ? "" : ", \(server)") }
    upstreams:
      pay: { endpoints: ["\(urls[0])"] }
    deliveries: { schedule: [0s, 100ms, 200ms] }
    webhooks:
      shop:
        verify: { scheme: standard-webhooks, secret: "\(inboxSecret)" }
        forward_to: "\(urls[0])/hooks/shop"
        forward_secret: "\(forwardSecret)"
    """
}

extension GatewayHarness {
    /// Posts `body` to the inbox signed as the provider would, `age` seconds ago.
    func deliverWebhook(
        _ body: String,
        id: String,
        age: Int = 0,
        secret: String = inboxSecret,
        source: String = "shop"
    ) async throws -> Answer {
        let signer = try #require(StandardWebhooksSigner(secret: Secret(secret)))
        let signed = signer.sign(id: id, timestamp: Date().addingTimeInterval(-Double(age)), body: Data(body.utf8))
        return try await send(
            .POST,
            "/webhooks/\(source)",
            headers: [("Content-Type", "application/json")] + signed.map { ($0.name.rawName, $0.value) },
            body: body
        )
    }

    func events(_ query: String = "") async throws -> [[String: Any]] {
        try await send(.GET, "/v1/webhooks/events\(query)").problem?["events"] as? [[String: Any]] ?? []
    }

    func eventually(_ condition: () async throws -> Bool) async throws {
        for _ in 0..<1_000 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("the condition never held")
    }
}

@Suite struct WebhookInboxTests {
    @Test func aVerifiedEventIsAcknowledgedThenForwardedSignedByBelay() async throws {
        try await GatewayHarness.run(config: .custom { inboxConfig($0) }) { gateway in
            let body = #"{"type":"order.paid","data":{"id":"ord_1"}}"#
            let answer = try await gateway.deliverWebhook(body, id: "msg_1")
            #expect(answer.status == 200)
            #expect(answer.problem?["duplicate"] as? Bool == false)
            let id = try #require(answer.problem?["id"] as? String)
            #expect(id.hasPrefix("evt_"))

            try await gateway.eventually { gateway.upstreams[0].requests.contains { $0.path == "/hooks/shop" } }
            let forwarded = try #require(gateway.upstreams[0].requests.first { $0.path == "/hooks/shop" })
            #expect(forwarded.method == "POST" && forwarded.bodySize == body.utf8.count)
            #expect(forwarded.headers["webhook-id"] == id)
            // Belay's signature verifies with Belay's forward secret, over the same bytes.
            let check = GatewayConfig.WebhookSource(
                name: "app",
                scheme: .standardWebhooks,
                secrets: [Secret(forwardSecret)]
            )
            var headers = HTTPFieldsBuilder()
            for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
                headers.add(name, forwarded.headers[name] ?? "")
            }
            let verified = try WebhookVerifier(source: check).verify(
                body: Data(body.utf8),
                headers: headers.fields,
                now: Date()
            )
            #expect((try? verified.get())?.eventID == id)

            try await gateway.eventually {
                (try await gateway.events()).first?["forward"].flatMap { ($0 as? [String: Any])?["status"] as? String }
                    == "delivered"
            }
            let events = try await gateway.events("?source=shop")
            #expect(events.count == 1 && events[0]["event_id"] as? String == "msg_1")
            let forward = events[0]["forward"] as? [String: Any]
            #expect((forward?["attempts"] as? [[String: Any]])?.count == 1)
        }
    }

    @Test func aRepeatIsAcknowledgedButNotStoredOrForwardedAgain() async throws {
        try await GatewayHarness.run(config: .custom { inboxConfig($0) }) { gateway in
            let body = #"{"n":1}"#
            let first = try await gateway.deliverWebhook(body, id: "msg_dup")
            let again = try await gateway.deliverWebhook(body, id: "msg_dup")
            #expect(first.status == 200 && again.status == 200)
            #expect(again.problem?["duplicate"] as? Bool == true)
            #expect(again.problem?["id"] as? String == first.problem?["id"] as? String)
            try await gateway.eventually { gateway.upstreams[0].requests.count >= 1 }
            #expect(try await gateway.events().count == 1)
            #expect(gateway.upstreams[0].requests.count == 1)
        }
    }

    @Test func aBadSignatureOrAStaleTimestampIs401AndNothingIsStored() async throws {
        try await GatewayHarness.run(config: .custom { inboxConfig($0) }) { gateway in
            let forged = try await gateway.deliverWebhook(
                #"{"n":1}"#,
                id: "msg_x",
                secret: "whsec_dGhpcyBpcyBub3QgdGhlIHJpZ2h0IHNlY3JldCE="
            )
            #expect(forged.status == 401 && forged.code == "signature-invalid")
            let stale = try await gateway.deliverWebhook(#"{"n":2}"#, id: "msg_y", age: 301)
            #expect(stale.status == 401 && stale.code == "signature-invalid")
            let unsigned = try await gateway.send(.POST, "/webhooks/shop", body: #"{"n":3}"#)
            #expect(unsigned.status == 401 && unsigned.header("Content-Type") == "application/problem+json")
            let unknown = try await gateway.deliverWebhook(#"{"n":4}"#, id: "msg_z", source: "nope")
            #expect(unknown.status == 404 && unknown.code == "not-found")
            #expect(try await gateway.events().isEmpty)
            #expect(gateway.upstreams[0].requests.isEmpty)
        }
    }

    @Test func eventsWithOneOrderingKeyAreForwardedInTheOrderReceived() async throws {
        let config = ConfigTemplate.custom { urls in
            inboxConfig(urls).replacingOccurrences(
                of: "    forward_secret:",
                with: "    order_by: \"/order\"\n    forward_secret:"
            )
        }
        try await GatewayHarness.run(config: config) { gateway in
            // The first forward fails twice before it is accepted.
            gateway.upstreams[0].setBehavior(UpstreamBehavior(statuses: [503, 503], status: 200), for: "/hooks")
            let first = try await gateway.deliverWebhook(#"{"order":"o1","step":1}"#, id: "m1")
            let second = try await gateway.deliverWebhook(#"{"order":"o1","step":2}"#, id: "m2")
            let other = try await gateway.deliverWebhook(#"{"order":"o2","step":1}"#, id: "m3")
            let ids = [first, second, other].map { $0.problem?["id"] as? String ?? "" }
            try await gateway.eventually { try await gateway.events("?status=delivered").count == 3 }
            let sent = gateway.upstreams[0].requests.compactMap { $0.headers["webhook-id"] }
            // o1's second event is not sent until its first was delivered (after a 503: the
            // two 503s go to whichever forwards come first); o2's event did not wait for o1.
            let firstDone = try #require(sent.lastIndex(of: ids[0]))
            let secondSent = try #require(sent.firstIndex(of: ids[1]))
            #expect(sent.filter { $0 == ids[0] }.count >= 2)
            #expect(firstDone < secondSent)
            #expect(sent.filter { $0 == ids[1] }.count == 1)
            #expect(try #require(sent.firstIndex(of: ids[2])) < firstDone)
        }
    }

    @Test func anOversizedWebhookIs413() async throws {
        try await GatewayHarness.run(config: .custom { inboxConfig($0, server: "max_body: 1KiB") }) { gateway in
            let answer = try await gateway.deliverWebhook(#"{"p":"\#(String(repeating: "x", count: 2_000))"}"#, id: "m")
            #expect(answer.status == 413 && answer.code == "payload-too-large")
        }
    }

    @Test func aDeadForwardIsListedAndAReplaySendsItAgain() async throws {
        // A 503 first, retried after 2 s (time to try a replay meanwhile), then 410 Gone.
        let config = ConfigTemplate.custom {
            inboxConfig($0).replacingOccurrences(of: "[0s, 100ms, 200ms]", with: "[0s, 2s, 200ms]")
        }
        try await GatewayHarness.run(config: config) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(statuses: [503], status: 410), for: "/hooks")
            let id = try #require(
                try await gateway.deliverWebhook(#"{"n":1}"#, id: "msg_gone").problem?["id"] as? String
            )
            // While its forward is still retrying, a replay would make a second forward.
            try await gateway.eventually { gateway.upstreams[0].requests.count >= 1 }
            let early = try await gateway.send(.POST, "/v1/webhooks/events/\(id)/replay")
            #expect(early.status == 409 && early.code == "conflict")
            try await gateway.eventually { try await gateway.events("?status=dead").count == 1 }
            gateway.upstreams[0].setBehavior(.always(204), for: "/hooks")
            let replay = try await gateway.send(.POST, "/v1/webhooks/events/\(id)/replay")
            #expect(replay.status == 202)
            try await gateway.eventually { try await gateway.events("?status=delivered").count == 1 }
            let webhookIDs = gateway.upstreams[0].requests.compactMap { $0.headers["webhook-id"] }
            #expect(webhookIDs == [id, id, id])
            #expect(try await gateway.send(.POST, "/v1/webhooks/events/evt_nope/replay").code == "not-found")
        }
    }
}

extension WebhookInboxTests {
    /// Replays sent at the same moment for a dead forward: one makes a new forward, the others
    /// are told it is still being forwarded (the check was outside the store's transaction, so
    /// several could pass it).
    @Test func concurrentReplaysMakeOneForward() async throws {
        try await GatewayHarness.run(config: .custom { inboxConfig($0) }) { gateway in
            gateway.upstreams[0].setBehavior(.always(410), for: "/hooks")
            let id = try #require(
                try await gateway.deliverWebhook(#"{"n":1}"#, id: "msg_race").problem?["id"] as? String
            )
            try await gateway.eventually { try await gateway.events("?status=dead").count == 1 }
            // Slow enough that the first replay's forward is still in flight while the rest arrive.
            gateway.upstreams[0].setBehavior(UpstreamBehavior(status: 204, latencyMilliseconds: 1_000), for: "/hooks")
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await gateway.send(.POST, "/v1/webhooks/events/\(id)/replay").status }
                }
                var all: [Int] = []
                for try await status in group { all.append(status) }
                return all
            }
            #expect(statuses.filter { $0 == 202 }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == 409 }.count == 7, "\(statuses)")
            try await gateway.eventually { try await gateway.events("?status=delivered").count == 1 }
            #expect(gateway.upstreams[0].requests.count == 2)
        }
    }
}

/// Builds `HTTPFields` by name.
struct HTTPFieldsBuilder {
    var fields = HTTPFields()
    mutating func add(_ name: String, _ value: String) {
        if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
    }
}
