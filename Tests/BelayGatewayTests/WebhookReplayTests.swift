import BelayStore
import BelayTestKit
import Crypto
import Foundation
import HTTPTypes
import Logging
import Testing

@testable import BelayGateway

/// Replays of schemes whose signature covers no timestamp (`github`, `hmac`): a captured
/// delivery sent again under a fresh, unsigned id header.
@Suite struct WebhookReplayTests {
    static let secret = "It's a Secret to Everybody"
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// A webhook service over a fresh store, its clock at `t0` and moved by hand.
    struct Inbox {
        let service: WebhookService<ManualClock>
        let store: SQLiteStore
        let clock: ManualClock
        let folder: URL

        init(_ yaml: String) throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-replay-\(UUID())")
            store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
            clock = ManualClock()
            let config = try ConfigLoader(environment: [:]).load(yaml: yaml)
            service = WebhookService(
                store: store,
                config: config,
                wall: WallClock(clock: clock, origin: WebhookReplayTests.t0),
                logger: Logger(label: "test")
            )
        }

        /// Posts `body` to `source`, signed over the body with `secret`, under `id` in `idHeader`.
        func post(
            _ body: String,
            id: String,
            source: String = "gh",
            idHeader: String = "X-GitHub-Delivery",
            signatureHeader: String = "X-Hub-Signature-256",
            prefix: String = "sha256="
        ) async -> (status: Int, json: [String: Any]) {
            let mac = HMAC<SHA256>.authenticationCode(
                for: Data(body.utf8),
                using: SymmetricKey(data: Data(WebhookReplayTests.secret.utf8))
            )
            var headers = HTTPFields()
            headers[HTTPField.Name(signatureHeader)!] = prefix + ByteEncoding.hex(mac)
            headers[HTTPField.Name(idHeader)!] = id
            headers[.contentType] = "application/json"
            let answer = await service.receive(source: source, body: Data(body.utf8), headers: headers, requestID: "r")
            return (answer.status, Self.json(answer))
        }

        static func json(_ answer: APIAnswer) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] ?? [:]
        }

        /// The forwards stored, oldest first.
        func forwards() async throws -> [Delivery] {
            try await store.deliveries(DeliveryQuery(limit: 500)).deliveries.reversed()
        }

        func remove() { try? FileManager.default.removeItem(at: folder) }
    }

    static let github = """
        server: { listen: "127.0.0.1:0" }
        webhooks:
          gh:
            verify: { scheme: github, secret: "\(secret)" }
            forward_to: "http://127.0.0.1:9/hooks/gh"
            forward_secret: "whsec_dGhpcyBpcyBiZWxheSdzIGZvcndhcmQgc2VjcmV0"
        """

    @Test func aGitHubDeliveryReSentUnderAFreshDeliveryIDIsADuplicate() async throws {
        let inbox = try Inbox(Self.github)
        defer { inbox.remove() }
        let body = #"{"action":"opened","number":7}"#
        let first = await inbox.post(body, id: "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        #expect(first.status == 200 && first.json["duplicate"] as? Bool == false)
        // The attacker's copy: the same signed body, a fresh (unsigned) delivery id.
        inbox.clock.advance(by: .seconds(3_600))
        let replay = await inbox.post(body, id: "0b6a8c1e-0000-4000-8000-000000000001")
        #expect(replay.status == 200)
        #expect(replay.json["duplicate"] as? Bool == true)
        #expect(replay.json["id"] as? String == first.json["id"] as? String)
        #expect(try await inbox.store.events(WebhookEventQuery()).events.count == 1)
        #expect(try await inbox.forwards().count == 1)
    }

    @Test func anHMACEventReSentUnderAFreshIDHeaderIsADuplicate() async throws {
        let inbox = try Inbox(
            """
            server: { listen: "127.0.0.1:0" }
            webhooks:
              shop:
                verify: { scheme: hmac, secret: "\(Self.secret)", header: X-Signature, id_header: X-Event-Id }
                forward_to: "http://127.0.0.1:9/hooks/shop"
            """
        )
        defer { inbox.remove() }
        let body = #"{"order":42}"#
        let post = { (id: String) in
            await inbox.post(
                body,
                id: id,
                source: "shop",
                idHeader: "X-Event-Id",
                signatureHeader: "X-Signature",
                prefix: ""
            )
        }
        #expect(await post("e1").json["duplicate"] as? Bool == false)
        #expect(await post("e2").json["duplicate"] as? Bool == true)
        #expect(try await inbox.forwards().count == 1)
    }

    @Test func theForwardsWebhookIDIsTheSameForEveryReSendOfOneBody() async throws {
        let inbox = try Inbox(
            Self.github.replacingOccurrences(of: "    forward_to:", with: "    replay_window: 1h\n    forward_to:")
        )
        defer { inbox.remove() }
        let body = #"{"action":"closed","number":8}"#
        _ = await inbox.post(body, id: "d-1")
        // Past the window the re-send is stored and forwarded again (the window is what a
        // provider that sends one body twice on purpose needs), under the same webhook-id:
        // the receiving application deduplicates it.
        inbox.clock.advance(by: .seconds(3_601))
        let later = await inbox.post(body, id: "d-2")
        #expect(later.json["duplicate"] as? Bool == false)
        let forwards = try await inbox.forwards()
        #expect(forwards.count == 2)
        #expect(Set(forwards.map(\.idempotencyKey)).count == 1)
        let key = try #require(forwards.first?.idempotencyKey)
        #expect(key.hasPrefix("msg_") && key.count == 36)
        // Derived from the source and the body, never from the unsigned header.
        #expect(!key.contains("d-1") && !key.contains("d-2"))
        // Each forward names the event it forwards.
        let events = forwards.map { WebhookIdentity.event(forwardedBy: $0) }
        #expect(
            events == [
                try #require(await inbox.store.events(WebhookEventQuery()).events.last?.0.id),
                later.json["id"] as? String,
            ]
        )
        // Another body, another id.
        inbox.clock.advance(by: .seconds(1))
        _ = await inbox.post(#"{"action":"closed","number":9}"#, id: "d-3")
        #expect(Set(try await inbox.forwards().map(\.idempotencyKey)).count == 2)
    }

    @Test func theWindowEndsAndExpiredDigestsArePurged() async throws {
        let inbox = try Inbox(
            Self.github.replacingOccurrences(of: "    forward_to:", with: "    replay_window: 10m\n    forward_to:")
        )
        defer { inbox.remove() }
        let body = #"{"ping":true}"#
        _ = await inbox.post(body, id: "a")
        inbox.clock.advance(by: .seconds(599))
        #expect(await inbox.post(body, id: "b").json["duplicate"] as? Bool == true)
        inbox.clock.advance(by: .seconds(1))
        // Exactly at the end of the window, the digest no longer blocks.
        #expect(await inbox.post(body, id: "c").json["duplicate"] as? Bool == false)
        // That event's digest expires 10 minutes after it: one purge at +20m deletes the first
        // digest's replacement only once it has expired.
        #expect(try await inbox.store.purgeBodyDigests(expiredBy: Self.t0.addingTimeInterval(1_199), limit: 500) == 0)
        #expect(try await inbox.store.purgeBodyDigests(expiredBy: Self.t0.addingTimeInterval(1_200), limit: 500) == 1)
        inbox.clock.advance(by: .seconds(1))
        #expect(await inbox.post(body, id: "d").json["duplicate"] as? Bool == false)
    }

    @Test func timestampedSchemesKeepTheEventIDAsWebhookID() async throws {
        let inbox = try Inbox(
            """
            server: { listen: "127.0.0.1:0" }
            webhooks:
              sw:
                verify: { scheme: standard-webhooks, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
                forward_to: "http://127.0.0.1:9/hooks/sw"
            """
        )
        defer { inbox.remove() }
        let signer = try #require(StandardWebhooksSigner(secret: Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")))
        var headers = HTTPFields()
        for field in signer.sign(id: "msg_1", timestamp: Self.t0, body: Data("{}".utf8)) { headers.append(field) }
        let answer = await inbox.service.receive(source: "sw", body: Data("{}".utf8), headers: headers, requestID: "r")
        #expect(answer.status == 200)
        let id = try #require(Inbox.json(answer)["id"] as? String)
        #expect(try await inbox.forwards().map(\.idempotencyKey) == [id])
    }
}
