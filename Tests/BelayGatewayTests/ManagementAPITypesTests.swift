import BelayAPI
import BelayClient
import BelayStore
import Foundation
import Testing
import Yams

@testable import BelayGateway

/// The management API's Codable types (`BelayAPI`) against the OpenAPI document, and the
/// services' answers through them, as the CLI reads them.
@Suite struct ManagementAPITypesTests {
    /// Every key path of a JSON value (`forward.attempts[].kind`), to compare shapes.
    static func keyPaths(_ value: Any?, _ prefix: String = "") -> Set<String> {
        switch value {
        case let object as [String: Any]:
            var paths: Set<String> = []
            for (key, item) in object {
                let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                paths.insert(path)
                paths.formUnion(keyPaths(item, path))
            }
            return paths
        case let array as [Any]:
            return array.reduce(into: Set<String>()) { $0.formUnion(keyPaths($1, prefix + "[]")) }
        default:
            return []
        }
    }

    /// Decodes `json` as `type`, encodes it again, decodes that: equal values, and the same
    /// keys as the document's example (nothing dropped, renamed or added; explicit nulls kept).
    static func roundTrip<Value: Codable & Equatable>(_ type: Value.Type, _ json: Data, _ name: String) throws {
        let value = try ManagementJSON.decoder().decode(type, from: json)
        let encoded = try ManagementJSON.encode(value)
        #expect(try ManagementJSON.decoder().decode(type, from: encoded) == value, "\(name)")
        let example = try JSONSerialization.jsonObject(with: json)
        let again = try JSONSerialization.jsonObject(with: encoded)
        #expect(
            keyPaths(again) == keyPaths(example),
            "\(name): \(keyPaths(again).symmetricDifference(keyPaths(example)))"
        )
    }

    @Test func everyTypeReadsAndWritesItsSchemasExampleKeyForKey() throws {
        let yaml = String(decoding: ManagementContract.document, as: UTF8.self)
        let root = try #require(try Yams.load(yaml: yaml) as? [String: Any])
        let schemas = try #require((root["components"] as? [String: Any])?["schemas"] as? [String: Any])
        func example(_ name: String) throws -> Data {
            let schema = try #require(schemas[name] as? [String: Any], "no schema \(name)")
            return try JSONSerialization.data(withJSONObject: try #require(schema["example"], "\(name) has no example"))
        }
        try Self.roundTrip(DeliveryAccepted.self, try example("DeliveryAccepted"), "DeliveryAccepted")
        try Self.roundTrip(DeliverySummary.self, try example("DeliverySummary"), "DeliverySummary")
        try Self.roundTrip(DeliveryAttemptView.self, try example("DeliveryAttempt"), "DeliveryAttempt")
        try Self.roundTrip(DeliveryDetail.self, try example("DeliveryDetail"), "DeliveryDetail")
        try Self.roundTrip(DeliveryPage.self, try example("DeliveryPage"), "DeliveryPage")
        try Self.roundTrip(WebhookReceipt.self, try example("WebhookReceipt"), "WebhookReceipt")
        try Self.roundTrip(WebhookForward.self, try example("WebhookForward"), "WebhookForward")
        try Self.roundTrip(WebhookEventView.self, try example("WebhookEvent"), "WebhookEvent")
        try Self.roundTrip(WebhookEventPage.self, try example("WebhookEventPage"), "WebhookEventPage")
        try Self.roundTrip(WebhookReplay.self, try example("WebhookReplay"), "WebhookReplay")
        try Self.roundTrip(AuditRequestView.self, try example("AuditRequest"), "AuditRequest")
        try Self.roundTrip(AuditRequestPage.self, try example("AuditRequestPage"), "AuditRequestPage")
        try Self.roundTrip(DrillView.self, try example("Drill"), "Drill")
        try Self.roundTrip(DrillList.self, try example("DrillList"), "DrillList")
        try Self.roundTrip(IncidentJSON.self, try example("Incident"), "Incident")
        try Self.roundTrip(IncidentListJSON.self, try example("IncidentList"), "IncidentList")
        try Self.roundTrip(ReloadOutcomeView.self, try example("ReloadApplied"), "ReloadApplied")
        try Self.roundTrip(UpstreamHealthView.self, try example("UpstreamHealth"), "UpstreamHealth")
        try Self.roundTrip(UpstreamList.self, try example("UpstreamList"), "UpstreamList")
        try Self.roundTrip(UpstreamDetail.self, try example("UpstreamDetail"), "UpstreamDetail")
        try Self.roundTrip(StatusView.self, try example("StatusSummary"), "StatusSummary")
    }

    /// Found by the round trip above: the date-time formatter truncates, and `…00.012Z` read
    /// back is a hair below 12 ms, so it was written `…00.011Z`.
    @Test func aDateTimeReadIsWrittenBackToTheMillisecond() throws {
        for text in [
            "2026-11-23T10:00:00.012Z", "2026-11-23T09:58:41.007Z", "2026-11-23T10:00:04.310Z",
            "2026-11-23T23:59:59.999Z", "1970-01-01T00:00:00.000Z",
        ] {
            #expect(ManagementJSON.format(try #require(ManagementJSON.parse(text))) == text)
        }
        #expect(ManagementJSON.format(Date(timeIntervalSince1970: 1.0004)) == "1970-01-01T00:00:01.000Z")
        #expect(ManagementJSON.format(Date(timeIntervalSince1970: 59.9996)) == "1970-01-01T00:01:00.000Z")
        #expect(ManagementJSON.parse("2026-11-23T10:00:00Z") != nil && ManagementJSON.parse("yesterday") == nil)
    }

    /// What the CLI puts in a path or a query is percent-encoded whole: a value holding `&`,
    /// `=`, `#`, `/`, a space, a control or a non-ASCII letter stays one value.
    @Test func theClientEncodesEveryValueItSends() {
        #expect(
            ManagementClient.path(
                "/v1/deliveries",
                [("upstream", "a&b=c"), ("status", nil), ("cursor", "x y#/\u{1}é")]
            )
                == "/v1/deliveries?upstream=a%26b%3Dc&cursor=x%20y%23%2F%01%C3%A9"
        )
        #expect(ManagementClient.path("/v1/requests", [("since", nil)]) == "/v1/requests")
        #expect(ManagementClient.escaped("dlv_0194-._~") == "dlv_0194-._~")
        #expect(ManagementClient.escaped("../admin/reload") == "..%2Fadmin%2Freload")
    }

    @Test func aJSONBodyIsKeptValueForValueAndAnyOtherAsBase64() throws {
        let json = Data(#"{"body":{"amount":1000,"ratio":0.25,"id":9007199254740993,"tags":["a",null,true]}}"#.utf8)
        struct Holder: Codable { var body: JSONValue }
        let holder = try JSONDecoder().decode(Holder.self, from: json)
        #expect(
            holder.body
                == .object([
                    "amount": .integer(1000), "ratio": .number(0.25), "id": .integer(9_007_199_254_740_993),
                    "tags": .array([.string("a"), .null, .bool(true)]),
                ])
        )
        #expect(String(decoding: try ManagementJSON.encode(holder), as: UTF8.self).contains("9007199254740993"))
    }

    @Test func theInboxShowsOneEventWithItsForwardAndTheCLIRendersIt() async throws {
        let inbox = try WebhookReplayTests.Inbox(WebhookReplayTests.github)
        defer { inbox.remove() }
        let received = await inbox.post(#"{"action":"opened"}"#, id: "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        let id = try #require(received.json["id"] as? String)

        let shown = await inbox.service.show(id, requestID: "r")
        #expect(shown.status == 200)
        let event = try ManagementJSON.decoder().decode(WebhookEventView.self, from: shown.body)
        #expect(event.id == id && event.source == "gh" && event.eventID == "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        let forward = try #require(event.forward)
        #expect(forward.delivery.upstream == "webhook:gh" && forward.delivery.status == "pending")
        #expect(forward.attempts == [])
        let table = WebhookTable.show(event)
        #expect(table.contains("source          gh") && table.contains("forward status  pending"))
        #expect(table.hasSuffix("no attempts yet"))

        // The list has the same event, and an unknown id is 404 naming it.
        let page = try ManagementJSON.decoder().decode(
            WebhookEventPage.self,
            from: await inbox.service.list([:], requestID: "r").body
        )
        #expect(page.events == [event] && page.nextCursor == nil)
        #expect(WebhookTable.list(page).split(separator: "\n").last?.hasPrefix(id) == true)
        let missing = await inbox.service.show("evt_nope", requestID: "r")
        #expect(missing.status == 404)
        #expect(String(decoding: missing.body, as: UTF8.self).contains("evt_nope"))
    }

    @Test func aRecordedRequestReadsAsTheCLIShowsIt() throws {
        var record = AuditRequestView(
            id: "01936f3e-8c2a-7b4d-9e1f-2a3b4c5d6e7f",
            upstream: "payments",
            method: "POST",
            path: "/v1/charges",
            receivedAt: Date(timeIntervalSince1970: 1_800_000_000),
            durationMs: 41.5,
            status: 200,
            outcome: "success",
            attempts: [
                .init(
                    number: 1,
                    endpoint: "a:443",
                    startedMs: 0.04,
                    durationMs: 20.5,
                    status: 503,
                    failure: nil,
                    skipped: nil
                ),
                .init(
                    number: 2,
                    endpoint: "b:443",
                    startedMs: 21,
                    durationMs: 20,
                    status: 200,
                    failure: nil,
                    skipped: nil
                ),
            ],
            decisions: [.init(attempt: 1, kind: "retry_scheduled", description: "HTTP 503; retry in 1 ms")]
        )
        record.consumer = "shop"
        let shown = RequestTable.show(record)
        #expect(shown.contains("consumer        shop") && shown.contains("duration        41.5 ms"))
        #expect(shown.contains("1  0.04   20.5  a:443     HTTP 503"))
        #expect(shown.contains("#1     retry_scheduled  HTTP 503; retry in 1 ms"))
        let list = RequestTable.list(AuditRequestPage(requests: [record], nextCursor: "17"))
        #expect(list.hasSuffix("more: --cursor 17"))
        #expect(list.split(separator: "\n")[1].contains("POST /v1/charges  200     success  2         41.5"))
    }
}
