import Crypto
import Foundation
import HTTPTypes
import Testing

@testable import BelayGateway

@Suite struct WebhookSigningTests {
    // The Standard Webhooks specification's published test vector.
    static let secret = Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    static let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    static let timestamp: Int64 = 1_614_265_330
    static let body = Array(#"{"test": 2432232314}"#.utf8)
    static let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    @Test func signingReproducesThePublishedVector() throws {
        let signer = try #require(StandardWebhooksSigner(secret: Self.secret))
        #expect(signer.signature(id: Self.id, timestamp: Self.timestamp, body: Self.body) == Self.signature)
        #expect(signer.signature(id: Self.id, timestamp: Self.timestamp, body: Data(Self.body)) == Self.signature)

        let headers = signer.sign(
            id: Self.id,
            timestamp: Date(timeIntervalSince1970: TimeInterval(Self.timestamp) + 0.999),
            body: Self.body
        )
        #expect(headers[.webhookID] == Self.id)
        #expect(headers[.webhookTimestamp] == "1614265330")
        #expect(headers[.webhookSignature] == Self.signature)
        #expect(headers.count == 3)
        #expect(headers.map(\.name.rawName) == ["webhook-id", "webhook-timestamp", "webhook-signature"])
    }

    @Test func aSignedForwardRoundTripsThroughTheVerifier() throws {
        let secret = Secret("whsec_" + Data((0..<64).map { UInt8($0) }).base64EncodedString())
        let signer = try #require(StandardWebhooksSigner(secret: secret))
        let verifier = try WebhookVerifier(
            source: .init(
                name: "belay",
                scheme: .standardWebhooks,
                secrets: [Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), secret]
            )
        )
        let now = Date(timeIntervalSince1970: 1_750_000_000)
        let body = Array(#"{"type": "charge.succeeded", "data": {"amount": 1000}}"#.utf8)
        let headers = signer.sign(id: "evt_forwarded_1", timestamp: now, body: body)
        #expect(
            verifier.verify(body: body, headers: headers, now: now)
                == .success(VerifiedWebhook(eventID: "evt_forwarded_1", signedAt: now, secretIndex: 1))
        )
        #expect(verifier.verify(body: body + [0x20], headers: headers, now: now) == .failure(verifier.mismatch))
        let late = verifier.verify(body: body, headers: headers, now: now.addingTimeInterval(301))
        #expect(throws: WebhookRejection.self) { try late.get() }
        if case .failure(let rejection) = late {
            #expect(rejection.code == .timestampOutsideTolerance)
        }
    }

    @Test func anEmptyBodyAndUnusualIDsSign() throws {
        let signer = try #require(StandardWebhooksSigner(secret: Self.secret))
        let key = SymmetricKey(data: Data(base64Encoded: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")!)
        for (id, body) in [("msg_1", [UInt8]()), ("a.b.c", Array("x".utf8)), ("ünï", Array("{}".utf8))] {
            let mac = HMAC<SHA256>.authenticationCode(for: Array("\(id).5.".utf8) + body, using: key)
            #expect(signer.signature(id: id, timestamp: 5, body: body) == "v1," + Data(mac).base64EncodedString())
        }
    }

    @Test(arguments: [
        "", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64", "whsec_AAAAAAAAAAAAAAAAAAAAAA==",
        "whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ])
    func onlyAWhsecSecretOf24To64BytesSigns(secret: String) {
        #expect(StandardWebhooksSigner(secret: Secret(secret)) == nil)
    }

    @Test func secretsOfTheSpecifiedSizesSign() {
        for size in [23, 24, 64, 65] {
            let secret = Secret("whsec_" + Data(repeating: 9, count: size).base64EncodedString())
            #expect((StandardWebhooksSigner(secret: secret) != nil) == (24...64).contains(size), "\(size) bytes")
        }
    }
}

extension WebhookVerifier {
    /// The rejection of a body that does not match a signature made with the second of two keys.
    fileprivate var mismatch: WebhookRejection {
        WebhookRejection(
            code: .signatureMismatch,
            message:
                "the webhook-signature header matches none of the 2 configured keys for this webhook-id, webhook-timestamp and body"
        )
    }
}
