import Crypto
import Foundation
import HTTPTypes
import Testing

@testable import BelayGateway

// MARK: helpers

private typealias Source = GatewayConfig.WebhookSource

private func verifier(
    _ scheme: Source.Scheme,
    secrets: [String],
    tolerance: Duration = .seconds(300),
    hmac: Source.HMACOptions? = nil,
    idPointer: String? = nil
) throws -> WebhookVerifier {
    try WebhookVerifier(
        source: Source(
            name: "test",
            scheme: scheme,
            secrets: secrets.map(Secret.init),
            tolerance: tolerance,
            hmac: hmac,
            idPointer: idPointer
        )
    )
}

private func fields(_ pairs: [(String, String)]) -> HTTPFields {
    var fields = HTTPFields()
    for (name, value) in pairs {
        fields.append(HTTPField(name: HTTPField.Name(name)!, value: value))
    }
    return fields
}

private func bytes(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

private func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
    Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

private func base64(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString()
}

private func date(_ seconds: Int64) -> Date {
    Date(timeIntervalSince1970: TimeInterval(seconds))
}

extension Result where Success == VerifiedWebhook, Failure == WebhookRejection {
    fileprivate var rejection: WebhookRejection? {
        if case .failure(let rejection) = self { rejection } else { nil }
    }

    fileprivate var verified: VerifiedWebhook? {
        try? get()
    }
}

// MARK: Standard Webhooks

@Suite struct StandardWebhooksVerificationTests {
    // The Standard Webhooks specification's published test vector.
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    static let timestamp: Int64 = 1_614_265_330
    static let body = bytes(#"{"test": 2432232314}"#)
    static let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    /// A second valid secret, for rotations.
    static let newSecret = "whsec_" + base64([UInt8](repeating: 7, count: 32))

    static func sign(_ secret: String, id: String, timestamp: String, body: [UInt8]) -> String {
        let key = ByteEncoding.bytes(base64: secret.dropFirst("whsec_".count))!
        return "v1," + base64(hmacSHA256(key: key, bytes("\(id).\(timestamp).") + body))
    }

    static func headers(
        id: String = id,
        timestamp: String = String(timestamp),
        signature: String = signature
    ) -> HTTPFields {
        fields([("webhook-id", id), ("webhook-timestamp", timestamp), ("webhook-signature", signature)])
    }

    @Test func thePublishedVectorVerifies() throws {
        let result = try verifier(.standardWebhooks, secrets: [Self.secret])
            .verify(body: Self.body, headers: Self.headers(), now: date(Self.timestamp))
        #expect(result == .success(VerifiedWebhook(eventID: Self.id, signedAt: date(Self.timestamp), secretIndex: 0)))
        // The helper computes the same signature the specification publishes.
        #expect(
            Self.sign(Self.secret, id: Self.id, timestamp: String(Self.timestamp), body: Self.body) == Self.signature
        )
    }

    @Test func dataBodiesVerifyToo() throws {
        let result = try verifier(.standardWebhooks, secrets: [Self.secret])
            .verify(body: Data(Self.body), headers: Self.headers(), now: date(Self.timestamp))
        #expect(result.verified?.eventID == Self.id)
    }

    @Test func aTamperedBodyIsRejected() throws {
        let result = try verifier(.standardWebhooks, secrets: [Self.secret])
            .verify(body: bytes(#"{"test": 2432232315}"#), headers: Self.headers(), now: date(Self.timestamp))
        #expect(result.rejection?.code == .signatureMismatch)
        #expect(result.rejection?.message.contains("webhook-signature") == true)
    }

    @Test func aReEncodedBodyIsRejected() throws {
        // The same JSON without the space: verification is over raw bytes, never a re-encoding.
        let result = try verifier(.standardWebhooks, secrets: [Self.secret])
            .verify(body: bytes(#"{"test":2432232314}"#), headers: Self.headers(), now: date(Self.timestamp))
        #expect(result.rejection?.code == .signatureMismatch)
    }

    @Test func aTamperedTimestampIsRejected() throws {
        let tampered = Self.timestamp + 1
        let result = try verifier(.standardWebhooks, secrets: [Self.secret])
            .verify(body: Self.body, headers: Self.headers(timestamp: String(tampered)), now: date(tampered))
        #expect(result.rejection?.code == .signatureMismatch)
    }

    @Test func aTamperedIDIsRejected() throws {
        let result = try verifier(.standardWebhooks, secrets: [Self.secret])
            .verify(body: Self.body, headers: Self.headers(id: "msg_other"), now: date(Self.timestamp))
        #expect(result.rejection?.code == .signatureMismatch)
    }

    @Test(arguments: [
        (0, true), (300, true), (301, false), (-300, true), (-301, false), (86_400, false), (-86_400, false),
    ])
    func theToleranceHoldsBothWays(secondsAfterSigning offset: Int64, accepted: Bool) throws {
        let result = try verifier(.standardWebhooks, secrets: [Self.secret])
            .verify(body: Self.body, headers: Self.headers(), now: date(Self.timestamp + offset))
        if accepted {
            #expect(result.verified?.signedAt == date(Self.timestamp))
        } else {
            let rejection = try #require(result.rejection)
            #expect(rejection.code == .timestampOutsideTolerance)
            #expect(rejection.message.contains("webhook-timestamp"))
            #expect(rejection.message.contains(offset > 0 ? "old" : "in the future"))
            #expect(rejection.message.contains("\(abs(offset)) s"))
        }
    }

    @Test func aFractionOfASecondPastTheToleranceIsRejected() throws {
        let verifier = try verifier(.standardWebhooks, secrets: [Self.secret])
        let late = date(Self.timestamp + 300).addingTimeInterval(0.001)
        #expect(
            verifier.verify(body: Self.body, headers: Self.headers(), now: late).rejection?.code
                == .timestampOutsideTolerance
        )
    }

    @Test func theToleranceIsConfigurable() throws {
        let verifier = try verifier(.standardWebhooks, secrets: [Self.secret], tolerance: .seconds(10))
        let atLimit = verifier.verify(body: Self.body, headers: Self.headers(), now: date(Self.timestamp + 10))
        let past = verifier.verify(body: Self.body, headers: Self.headers(), now: date(Self.timestamp + 11))
        #expect(atLimit.verified != nil)
        #expect(past.rejection?.code == .timestampOutsideTolerance)
        #expect(past.rejection?.message.contains("10s tolerance") == true)
    }

    @Test func aForgedSignatureIsNotReportedAsStale() throws {
        // The signature is checked first, so a stale forgery is a mismatch, not a clock problem.
        let result = try verifier(.standardWebhooks, secrets: [Self.secret])
            .verify(body: bytes("forged"), headers: Self.headers(), now: date(Self.timestamp + 86_400))
        #expect(result.rejection?.code == .signatureMismatch)
    }

    @Test func rotatedSecretsAreBothAccepted() throws {
        let verifier = try verifier(.standardWebhooks, secrets: [Self.secret, Self.newSecret])
        let now = date(Self.timestamp)
        let old = verifier.verify(body: Self.body, headers: Self.headers(), now: now)
        let newSignature = Self.sign(Self.newSecret, id: Self.id, timestamp: String(Self.timestamp), body: Self.body)
        let new = verifier.verify(body: Self.body, headers: Self.headers(signature: newSignature), now: now)
        #expect(old.verified?.secretIndex == 0)
        #expect(new.verified?.secretIndex == 1)

        let onlyNew = try WebhookVerifier(
            source: Source(name: "test", scheme: .standardWebhooks, secrets: [Secret(Self.newSecret)])
        )
        #expect(
            onlyNew.verify(body: Self.body, headers: Self.headers(), now: now).rejection?.code == .signatureMismatch
        )
    }

    @Test func anyOfSeveralSignaturesInOneHeaderPasses() throws {
        let verifier = try verifier(.standardWebhooks, secrets: [Self.newSecret])
        let newSignature = Self.sign(Self.newSecret, id: Self.id, timestamp: String(Self.timestamp), body: Self.body)
        let now = date(Self.timestamp)
        for header in [
            "\(Self.signature) \(newSignature)",
            "\(newSignature) \(Self.signature)",
            "v2,abc   v1a,\(base64([UInt8](repeating: 0, count: 64))) \(newSignature)",
            "v1,not-base64!! \(newSignature)",
        ] {
            let result = verifier.verify(body: Self.body, headers: Self.headers(signature: header), now: now)
            #expect(result.verified?.secretIndex == 0, "\(header)")
        }
        // Signatures split over two field lines count too.
        var headers = Self.headers()
        headers.append(HTTPField(name: .webhookSignature, value: newSignature))
        #expect(verifier.verify(body: Self.body, headers: headers, now: now).verified != nil)
    }

    @Test func aHeaderWithOnlyWrongSignaturesIsAMismatch() throws {
        let wrong = "v1," + base64([UInt8](repeating: 1, count: 32))
        let result = try verifier(.standardWebhooks, secrets: [Self.secret, Self.newSecret])
            .verify(body: Self.body, headers: Self.headers(signature: "\(wrong) \(wrong)"), now: date(Self.timestamp))
        #expect(result.rejection?.code == .signatureMismatch)
        #expect(result.rejection?.message.contains("none of the 2 configured keys") == true)
    }

    @Test(arguments: [
        "garbage", "v1", "v1,", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "v1,!!!!", "v1a,***",
        ",g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ])
    func malformedSignatureHeadersAreRejected(header: String) throws {
        let result = try verifier(.standardWebhooks, secrets: [Self.secret])
            .verify(body: Self.body, headers: Self.headers(signature: header), now: date(Self.timestamp))
        #expect(result.rejection?.code == .malformedSignature)
        #expect(result.rejection?.message.contains("webhook-signature") == true)
    }

    @Test func moreThanSixteenSignaturesAreRefused() throws {
        let verifier = try verifier(.standardWebhooks, secrets: [Self.secret])
        let now = date(Self.timestamp)
        let sixteen = Array(repeating: Self.signature, count: 16).joined(separator: " ")
        #expect(verifier.verify(body: Self.body, headers: Self.headers(signature: sixteen), now: now).verified != nil)
        let seventeen = sixteen + " " + Self.signature
        let result = verifier.verify(body: Self.body, headers: Self.headers(signature: seventeen), now: now)
        #expect(result.rejection?.code == .malformedSignature)
    }

    @Test func missingHeadersAreNamed() throws {
        let verifier = try verifier(.standardWebhooks, secrets: [Self.secret])
        let now = date(Self.timestamp)
        let cases: [(HTTPField.Name, WebhookRejection.Code)] = [
            (.webhookSignature, .missingSignature),
            (.webhookID, .missingEventID),
            (.webhookTimestamp, .missingTimestamp),
        ]
        for (name, code) in cases {
            var headers = Self.headers()
            headers[name] = nil
            let rejection = try #require(verifier.verify(body: Self.body, headers: headers, now: now).rejection)
            #expect(rejection.code == code)
            #expect(
                rejection.message == "the \(name) header is missing"
                    || rejection.message.hasPrefix("the \(name) header is missing;")
            )
            // An empty value is as good as none.
            headers[name] = ""
            #expect(verifier.verify(body: Self.body, headers: headers, now: now).rejection?.code == code)
        }
        #expect(verifier.verify(body: Self.body, headers: HTTPFields(), now: now).rejection?.code == .missingSignature)
    }

    @Test(arguments: ["1614265330.5", "-1614265330", "+1614265330", "abc", "1e9", "0x6037d4f2", "99999999999999999999"])
    func malformedTimestampsAreRejected(timestamp: String) throws {
        let result = try verifier(.standardWebhooks, secrets: [Self.secret])
            .verify(body: Self.body, headers: Self.headers(timestamp: timestamp), now: date(Self.timestamp))
        #expect(result.rejection?.code == .malformedTimestamp)
        #expect(result.rejection?.message.contains("webhook-timestamp") == true)
    }

    @Test func noMessageRevealsTheSecret() throws {
        let verifier = try verifier(.standardWebhooks, secrets: [Self.secret])
        var messages: [String] = []
        for headers in [
            Self.headers(), Self.headers(signature: "v1,AAAA"), Self.headers(signature: "x"), HTTPFields(),
            Self.headers(timestamp: "x"),
        ] {
            for now in [date(Self.timestamp), date(0)] {
                if let rejection = verifier.verify(body: bytes("{}"), headers: headers, now: now).rejection {
                    messages.append(rejection.description)
                }
            }
        }
        #expect(messages.count == 10)
        for message in messages {
            #expect(!message.contains("MfKQ9r8G"))
            #expect(!message.contains("g0hM9SsE"))
        }
    }

    @Test func theEventIDCanComeFromTheBody() throws {
        let body = bytes(#"{"type": "invoice.paid", "data": {"id": "inv_1"}}"#)
        let signature = Self.sign(Self.secret, id: Self.id, timestamp: String(Self.timestamp), body: body)
        let verifier = try verifier(.standardWebhooks, secrets: [Self.secret], idPointer: "/data/id")
        let result = verifier.verify(body: body, headers: Self.headers(signature: signature), now: date(Self.timestamp))
        #expect(result.verified?.eventID == "inv_1")

        let text = bytes("not json")
        let textSignature = Self.sign(Self.secret, id: Self.id, timestamp: String(Self.timestamp), body: text)
        let rejected = verifier.verify(
            body: text,
            headers: Self.headers(signature: textSignature),
            now: date(Self.timestamp)
        )
        #expect(rejected.rejection?.code == .bodyNotJSON)
        #expect(rejected.rejection?.message.contains("/data/id") == true)
    }

    @Test func eventIDsMustBeShort() throws {
        let verifier = try verifier(.standardWebhooks, secrets: [Self.secret])
        let now = date(Self.timestamp)
        for (id, accepted) in [(String(repeating: "a", count: 256), true), (String(repeating: "a", count: 257), false)]
        {
            let signature = Self.sign(Self.secret, id: id, timestamp: String(Self.timestamp), body: Self.body)
            let result = verifier.verify(body: Self.body, headers: Self.headers(id: id, signature: signature), now: now)
            if accepted {
                #expect(result.verified?.eventID == id)
            } else {
                #expect(
                    result.rejection
                        == WebhookRejection(
                            code: .invalidEventID,
                            message: "the webhook-id header is longer than 256 bytes"
                        )
                )
            }
        }
    }

    // MARK: v1a (ed25519)

    static func publicKeyText(_ key: Curve25519.Signing.PrivateKey) -> String {
        "whpk_" + base64(Array(key.publicKey.rawRepresentation))
    }

    static func signV1a(_ key: Curve25519.Signing.PrivateKey, body: [UInt8] = body) throws -> String {
        "v1a," + base64(Array(try key.signature(for: bytes("\(id).\(timestamp).") + body)))
    }

    @Test func anEd25519SignatureVerifiesWithItsPublicKey() throws {
        let key = Curve25519.Signing.PrivateKey()
        let verifier = try verifier(.standardWebhooks, secrets: [Self.secret, Self.publicKeyText(key)])
        let signature = try Self.signV1a(key)
        let result = verifier.verify(
            body: Self.body,
            headers: Self.headers(signature: signature),
            now: date(Self.timestamp)
        )
        #expect(result == .success(VerifiedWebhook(eventID: Self.id, signedAt: date(Self.timestamp), secretIndex: 1)))
        // Mixed with a v1 signature in one header.
        let mixed = verifier.verify(
            body: Self.body,
            headers: Self.headers(signature: "v1,AAAA \(signature)"),
            now: date(Self.timestamp)
        )
        #expect(mixed.verified?.secretIndex == 1)
    }

    @Test func anEd25519SignatureIsRejectedWhenWrong() throws {
        let key = Curve25519.Signing.PrivateKey()
        let other = Curve25519.Signing.PrivateKey()
        let verifier = try verifier(.standardWebhooks, secrets: [Self.publicKeyText(key)])
        let now = date(Self.timestamp)
        let byOther = try Self.signV1a(other)
        let tampered = try Self.signV1a(key, body: bytes("{}"))
        for signature in [byOther, tampered, "v1a," + base64([UInt8](repeating: 0, count: 64)), Self.signature] {
            let result = verifier.verify(body: Self.body, headers: Self.headers(signature: signature), now: now)
            #expect(result.rejection?.code == .signatureMismatch)
        }
        // A v1a signature is never checked against a whsec_ secret.
        let symmetric = try WebhookVerifier(
            source: Source(name: "test", scheme: .standardWebhooks, secrets: [Secret(Self.secret)])
        )
        let result = symmetric.verify(
            body: Self.body,
            headers: Self.headers(signature: try Self.signV1a(key)),
            now: now
        )
        #expect(result.rejection?.code == .signatureMismatch)
    }

    @Test func anEd25519SignatureOutsideTheToleranceIsRejected() throws {
        let key = Curve25519.Signing.PrivateKey()
        let verifier = try verifier(.standardWebhooks, secrets: [Self.publicKeyText(key)])
        let headers = Self.headers(signature: try Self.signV1a(key))
        #expect(verifier.verify(body: Self.body, headers: headers, now: date(Self.timestamp + 300)).verified != nil)
        #expect(
            verifier.verify(body: Self.body, headers: headers, now: date(Self.timestamp + 301)).rejection?.code
                == .timestampOutsideTolerance
        )
    }
}

// MARK: Stripe

@Suite struct StripeVerificationTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let timestamp: Int64 = 1_700_000_000
    static let body = bytes(#"{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "charge.succeeded"}"#)

    /// Stripe's signature: hex HMAC-SHA256 of "{t}.{body}" keyed by the whole secret's UTF-8 bytes.
    static func v1(_ secret: String = secret, timestamp: String = String(timestamp), body: [UInt8] = body) -> String {
        hex(hmacSHA256(key: bytes(secret), bytes("\(timestamp).") + body))
    }

    static func headers(_ value: String) -> HTTPFields {
        fields([("Stripe-Signature", value)])
    }

    @Test func aValidSignatureVerifiesAndNamesTheEvent() throws {
        let result = try verifier(.stripe, secrets: [Self.secret])
            .verify(
                body: Self.body,
                headers: Self.headers("t=\(Self.timestamp),v1=\(Self.v1())"),
                now: date(Self.timestamp)
            )
        #expect(
            result
                == .success(
                    VerifiedWebhook(
                        eventID: "evt_1NG8Du2eZvKYlo2CUI79vXWy",
                        signedAt: date(Self.timestamp),
                        secretIndex: 0
                    )
                )
        )
    }

    @Test func theKeyIsTheSecretTextNotItsBase64() throws {
        let decodedKey = ByteEncoding.bytes(base64: Self.secret.dropFirst("whsec_".count))!
        let wrong = hex(hmacSHA256(key: decodedKey, bytes("\(Self.timestamp).") + Self.body))
        let result = try verifier(.stripe, secrets: [Self.secret])
            .verify(
                body: Self.body,
                headers: Self.headers("t=\(Self.timestamp),v1=\(wrong)"),
                now: date(Self.timestamp)
            )
        #expect(result.rejection?.code == .signatureMismatch)
    }

    @Test func severalV1SignaturesV0AndUnknownSchemesAreHandled() throws {
        let verifier = try verifier(.stripe, secrets: [Self.secret])
        let now = date(Self.timestamp)
        let other = Self.v1("whsec_other")
        for header in [
            "t=\(Self.timestamp),v1=\(other),v1=\(Self.v1())",
            "t=\(Self.timestamp),v0=\(Self.v1()),v1=\(Self.v1())",
            "v1=\(Self.v1()), t=\(Self.timestamp), v9=zz, junk, scheme=x",
            "t=\(Self.timestamp),v1=\(Self.v1().uppercased())",
            "t=\(Self.timestamp),v1=nothex,v1=\(Self.v1())",
        ] {
            #expect(
                verifier.verify(body: Self.body, headers: Self.headers(header), now: now).verified != nil,
                "\(header)"
            )
        }
        // Only v0 (or other schemes) is not enough.
        let v0Only = verifier.verify(
            body: Self.body,
            headers: Self.headers("t=\(Self.timestamp),v0=\(Self.v1())"),
            now: now
        )
        #expect(v0Only.rejection?.code == .malformedSignature)
        #expect(v0Only.rejection?.message == "the Stripe-Signature header has no v1= signature")
    }

    @Test func rotatedSecretsAreBothAccepted() throws {
        let verifier = try verifier(.stripe, secrets: ["whsec_old", Self.secret])
        let now = date(Self.timestamp)
        let byOld = verifier.verify(
            body: Self.body,
            headers: Self.headers("t=\(Self.timestamp),v1=\(Self.v1("whsec_old"))"),
            now: now
        )
        let byNew = verifier.verify(
            body: Self.body,
            headers: Self.headers("t=\(Self.timestamp),v1=\(Self.v1())"),
            now: now
        )
        #expect(byOld.verified?.secretIndex == 0)
        #expect(byNew.verified?.secretIndex == 1)
    }

    @Test func tamperingIsDetected() throws {
        let verifier = try verifier(.stripe, secrets: [Self.secret])
        let now = date(Self.timestamp)
        let tamperedBody = verifier.verify(
            body: Self.body + bytes(" "),
            headers: Self.headers("t=\(Self.timestamp),v1=\(Self.v1())"),
            now: now
        )
        let tamperedTime = verifier.verify(
            body: Self.body,
            headers: Self.headers("t=\(Self.timestamp + 1),v1=\(Self.v1())"),
            now: now
        )
        #expect(tamperedBody.rejection?.code == .signatureMismatch)
        #expect(tamperedTime.rejection?.code == .signatureMismatch)
        #expect(tamperedTime.rejection?.message.contains("Stripe-Signature") == true)
    }

    @Test(arguments: [(300, true), (301, false), (-300, true), (-301, false)])
    func theToleranceHoldsBothWays(secondsAfterSigning offset: Int64, accepted: Bool) throws {
        let result = try verifier(.stripe, secrets: [Self.secret])
            .verify(
                body: Self.body,
                headers: Self.headers("t=\(Self.timestamp),v1=\(Self.v1())"),
                now: date(Self.timestamp + offset)
            )
        if accepted {
            #expect(result.verified != nil)
        } else {
            #expect(result.rejection?.code == .timestampOutsideTolerance)
            #expect(result.rejection?.message.contains("Stripe-Signature's t=") == true)
        }
    }

    @Test(arguments: [
        ("v1=abc", "the Stripe-Signature header has no t= timestamp"),
        ("t=abc,v1=00", "the Stripe-Signature header's t= is not a whole number of Unix seconds"),
        ("t=-5,v1=00", "the Stripe-Signature header's t= is not a whole number of Unix seconds"),
        ("t=1,t=2,v1=00", "the Stripe-Signature header has more than one t= timestamp"),
        ("t=1700000000", "the Stripe-Signature header has no v1= signature"),
        ("garbage", "the Stripe-Signature header has no t= timestamp"),
    ])
    func malformedHeadersAreRejected(header: String, message: String) throws {
        let result = try verifier(.stripe, secrets: [Self.secret])
            .verify(body: Self.body, headers: Self.headers(header), now: date(Self.timestamp))
        #expect(result.rejection == WebhookRejection(code: .malformedSignature, message: message))
    }

    @Test func aMissingHeaderIsRejected() throws {
        let result = try verifier(.stripe, secrets: [Self.secret])
            .verify(body: Self.body, headers: fields([("webhook-signature", "v1,x")]), now: date(Self.timestamp))
        #expect(
            result.rejection
                == WebhookRejection(code: .missingSignature, message: "the Stripe-Signature header is missing")
        )
    }

    @Test func theEventIDComesFromTheBody() throws {
        let verifier = try verifier(.stripe, secrets: [Self.secret])
        let now = date(Self.timestamp)
        func check(_ body: String) -> WebhookRejection? {
            let body = bytes(body)
            return verifier.verify(
                body: body,
                headers: Self.headers("t=\(Self.timestamp),v1=\(Self.v1(body: body))"),
                now: now
            ).rejection
        }
        #expect(check("evt_1 but not JSON")?.code == .bodyNotJSON)
        #expect(check("")?.code == .bodyNotJSON)
        #expect(check(#"{"id": "evt_1""#)?.code == .bodyNotJSON)
        #expect(
            check(#"{"object": "event"}"#)
                == WebhookRejection(code: .missingEventID, message: "the body's /id does not exist")
        )
        #expect(check(#"{"id": {"nested": 1}}"#)?.code == .missingEventID)
        #expect(check(#"{"id": ""}"#)?.code == .missingEventID)
        #expect(check(#"{"id": "evt_2"}"#) == nil)
    }

    @Test func aConfiguredPointerReplacesSlashID() throws {
        let body = bytes(#"{"id": "evt_1", "data": {"object": {"id": "ch_9"}}}"#)
        let result = try verifier(.stripe, secrets: [Self.secret], idPointer: "/data/object/id")
            .verify(
                body: body,
                headers: Self.headers("t=\(Self.timestamp),v1=\(Self.v1(body: body))"),
                now: date(Self.timestamp)
            )
        #expect(result.verified?.eventID == "ch_9")
    }
}

// MARK: GitHub

@Suite struct GitHubVerificationTests {
    static let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

    @Test func gitHubsDocumentedExampleVerifies() throws {
        // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
        let result = try verifier(.github, secrets: ["It's a Secret to Everybody"])
            .verify(
                body: bytes("Hello, World!"),
                headers: fields([
                    ("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
                    ("X-GitHub-Delivery", Self.delivery),
                ]),
                now: .distantFuture
            )
        #expect(result == .success(VerifiedWebhook(eventID: Self.delivery, signedAt: nil, secretIndex: 0)))
    }

    static func headers(secret: String, body: [UInt8], delivery: String? = delivery) -> HTTPFields {
        var pairs = [("X-Hub-Signature-256", "sha256=" + hex(hmacSHA256(key: bytes(secret), body)))]
        if let delivery { pairs.append(("X-GitHub-Delivery", delivery)) }
        return fields(pairs)
    }

    @Test func aComputedSignatureVerifiesAndRotationWorks() throws {
        let body = bytes(#"{"action": "opened", "number": 1}"#)
        let verifier = try verifier(.github, secrets: ["old-secret", "new-secret"])
        let byOld = verifier.verify(body: body, headers: Self.headers(secret: "old-secret", body: body), now: .now)
        let byNew = verifier.verify(body: body, headers: Self.headers(secret: "new-secret", body: body), now: .now)
        #expect(byOld.verified?.secretIndex == 0)
        #expect(byNew.verified?.secretIndex == 1)
        #expect(byNew.verified?.eventID == Self.delivery)
        #expect(byNew.verified?.signedAt == nil)
    }

    @Test func rejections() throws {
        let body = bytes("Hello, World!")
        let verifier = try verifier(.github, secrets: ["It's a Secret to Everybody"])
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        func check(_ pairs: [(String, String)], body: [UInt8] = body) -> WebhookRejection? {
            verifier.verify(body: body, headers: fields(pairs), now: .now).rejection
        }
        #expect(
            check([("X-Hub-Signature-256", good)], body: bytes("Hello, World?"))
                == WebhookRejection(
                    code: .signatureMismatch,
                    message: "the X-Hub-Signature-256 header does not match the configured secret for this body"
                )
        )
        #expect(
            check([("X-Hub-Signature", "sha1=abc"), ("X-GitHub-Delivery", "1")])
                == WebhookRejection(code: .missingSignature, message: "the X-Hub-Signature-256 header is missing")
        )
        #expect(check([("X-Hub-Signature-256", "sha1=abcd")])?.code == .malformedSignature)
        #expect(check([("X-Hub-Signature-256", String(good.dropFirst(7)))])?.code == .malformedSignature)
        #expect(check([("X-Hub-Signature-256", "sha256=xyz")])?.code == .malformedSignature)
        #expect(
            check([("X-Hub-Signature-256", "sha256=" + String(repeating: "0", count: 64))])?.code == .signatureMismatch
        )
        #expect(
            check([("X-Hub-Signature-256", good)])
                == WebhookRejection(code: .missingEventID, message: "the X-GitHub-Delivery header is missing")
        )
        // Uppercase hex is the same MAC.
        #expect(
            check([("X-Hub-Signature-256", "sha256=" + good.dropFirst(7).uppercased()), ("X-GitHub-Delivery", "1")])
                == nil
        )
    }

    @Test func theEventIDCanComeFromTheBody() throws {
        let body = bytes(#"{"hook_id": 123456789}"#)
        let result = try verifier(.github, secrets: ["s"], idPointer: "/hook_id")
            .verify(body: body, headers: Self.headers(secret: "s", body: body, delivery: nil), now: .now)
        #expect(result.verified?.eventID == "123456789")
    }
}

// MARK: hmac

@Suite struct HMACVerificationTests {
    static let body = bytes(#"{"event": {"id": "ev_42"}, "items": [{"id": 7}, {"id": 8}]}"#)

    @Test func sha256HexWithAnIDHeader() throws {
        let verifier = try verifier(
            .hmac,
            secrets: ["shh"],
            hmac: .init(header: "X-Signature", idHeader: "X-Event-Id")
        )
        let headers = fields([("X-Signature", hex(hmacSHA256(key: bytes("shh"), Self.body))), ("X-Event-Id", "ev_42")])
        let result = verifier.verify(body: Self.body, headers: headers, now: .now)
        #expect(result == .success(VerifiedWebhook(eventID: "ev_42", signedAt: nil, secretIndex: 0)))

        var noID = headers
        noID[HTTPField.Name("X-Event-Id")!] = nil
        #expect(
            verifier.verify(body: Self.body, headers: noID, now: .now).rejection
                == WebhookRejection(code: .missingEventID, message: "the X-Event-Id header is missing")
        )
    }

    @Test func sha512Base64WithAPrefix() throws {
        let verifier = try verifier(
            .hmac,
            secrets: ["old", "shh"],
            hmac: .init(header: "X-Hook-Signature", algorithm: .sha512, encoding: .base64, prefix: "sha512="),
            idPointer: "/event/id"
        )
        let mac = Array(HMAC<SHA512>.authenticationCode(for: Self.body, using: SymmetricKey(data: bytes("shh"))))
        #expect(mac.count == 64)
        let padded = base64(mac)
        #expect(padded.hasSuffix("=="))
        for value in ["sha512=" + padded, "sha512=" + padded.dropLast(2)] {
            let result = verifier.verify(body: Self.body, headers: fields([("X-Hook-Signature", value)]), now: .now)
            #expect(result == .success(VerifiedWebhook(eventID: "ev_42", signedAt: nil, secretIndex: 1)), "\(value)")
        }
        // The SHA-256 MAC of the same body, the prefix missing, hex instead of base64 or stray text all fail.
        let sha256 = base64(hmacSHA256(key: bytes("shh"), Self.body))
        let cases: [(String, WebhookRejection.Code)] = [
            ("sha512=" + sha256, .signatureMismatch),
            (padded, .malformedSignature),
            // Hex digits are base64 letters too: hex text decodes, to bytes that do not match.
            ("sha512=" + hex(mac), .signatureMismatch),
            ("sha512=" + padded + "!", .malformedSignature),
            ("sha512=", .malformedSignature),
        ]
        for (value, code) in cases {
            let result = verifier.verify(body: Self.body, headers: fields([("X-Hook-Signature", value)]), now: .now)
            #expect(result.rejection?.code == code, "\(value)")
        }
        let missing = verifier.verify(body: Self.body, headers: HTTPFields(), now: .now).rejection
        #expect(missing == WebhookRejection(code: .missingSignature, message: "the X-Hook-Signature header is missing"))
        let malformed = verifier.verify(body: Self.body, headers: fields([("X-Hook-Signature", "nope")]), now: .now)
        #expect(
            malformed.rejection?.message
                == "the X-Hook-Signature header is not 'sha512=' followed by a base64 SHA512 HMAC"
        )
    }

    @Test func eachFieldLineIsACandidate() throws {
        let verifier = try verifier(.hmac, secrets: ["shh"], hmac: .init(header: "X-Sig", idHeader: "X-Id"))
        let good = hex(hmacSHA256(key: bytes("shh"), Self.body))
        let headers = fields([("X-Sig", String(repeating: "0", count: 64)), ("X-Sig", good), ("X-Id", "1")])
        #expect(verifier.verify(body: Self.body, headers: headers, now: .now).verified != nil)
    }

    @Test(arguments: [
        ("/event/id", "ev_42"), ("/items/0/id", "7"), ("/items/1/id", "8"),
    ])
    func theEventIDByPointer(pointer: String, id: String) throws {
        let verifier = try verifier(.hmac, secrets: ["shh"], hmac: .init(header: "X-Sig"), idPointer: pointer)
        let headers = fields([("X-Sig", hex(hmacSHA256(key: bytes("shh"), Self.body)))])
        #expect(verifier.verify(body: Self.body, headers: headers, now: .now).verified?.eventID == id)
    }

    @Test func eventIDsFromTheBodyMustBePrintable() throws {
        let verifier = try verifier(.hmac, secrets: ["shh"], hmac: .init(header: "X-Sig"), idPointer: "/id")
        for (json, id) in [
            (#"{"id": "ünï-cødé"}"#, "ünï-cødé"), (#"{"id": "a\u0000b"}"#, nil), (#"{"id": "a\nb"}"#, nil),
            (#"{"id": "a\u007fb"}"#, nil), (#"{"id": "a\u0085b"}"#, nil),
        ] {
            let body = bytes(json)
            let headers = fields([("X-Sig", hex(hmacSHA256(key: bytes("shh"), body)))])
            let result = verifier.verify(body: body, headers: headers, now: .now)
            if let id {
                #expect(result.verified?.eventID == id)
            } else {
                #expect(
                    result.rejection
                        == WebhookRejection(code: .invalidEventID, message: "the body's /id holds control characters"),
                    "\(json)"
                )
            }
        }
    }

    @Test func escapedPointerTokensFindTheirMembers() throws {
        let body = bytes(#"{"a/b": {"m~n": "id-1", "m~0n": "wrong", "m/n": "wrong"}, "~1": "id-2"}"#)
        let headers = fields([("X-Sig", hex(hmacSHA256(key: bytes("shh"), body)))])
        for (pointer, id) in [
            ("/a~1b/m~0n", "id-1"), ("/~01", "id-2"), ("/a~1b/m~00n", "wrong"), ("/a~1b/m~1n", "wrong"),
        ] {
            let verifier = try verifier(.hmac, secrets: ["shh"], hmac: .init(header: "X-Sig"), idPointer: pointer)
            #expect(verifier.verify(body: body, headers: headers, now: .now).verified?.eventID == id, "\(pointer)")
        }
    }
}

// MARK: building verifiers

@Suite struct WebhookVerifierConfigurationTests {
    private func issues(_ source: Source) -> [String] {
        do {
            _ = try WebhookVerifier(source: source)
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func invalidSourcesAreRefusedWithTheirKeyPaths() {
        #expect(
            issues(Source(name: "sw", scheme: .standardWebhooks, secrets: [Secret("whsec_AAAA"), Secret("plain")])) == [
                "webhooks.sw.verify.secrets[0]: must decode to 24–64 bytes after whsec_ (got 3)",
                "webhooks.sw.verify.secrets[1]: must be a Standard Webhooks secret (whsec_ + base64) or public key (whpk_ + base64)",
            ]
        )
        #expect(issues(Source(name: "gh", scheme: .github, secrets: [])) == ["webhooks.gh.verify.secret: is required"])
        #expect(
            issues(Source(name: "h", scheme: .hmac, secrets: [Secret("s")])) == [
                "webhooks.h.verify.header: is required for scheme hmac"
            ]
        )
        #expect(
            issues(Source(name: "h", scheme: .hmac, secrets: [Secret("s")], hmac: .init(header: "Bad Header"))) == [
                "webhooks.h.verify.header: must be an HTTP header name (got 'Bad Header')",
                "webhooks.h.verify.id_header: is required for scheme hmac unless id_pointer is set: events are deduplicated by their id",
            ]
        )
        #expect(
            issues(Source(name: "s", scheme: .stripe, secrets: [Secret("whsec_x")], idPointer: "id")) == [
                "webhooks.s.verify.id_pointer: must be a JSON pointer starting with / such as /id (got 'id')"
            ]
        )
        #expect(issues(Source(name: "s", scheme: .stripe, secrets: [Secret("whsec_x")])) == [])
    }
}

// MARK: building blocks

@Suite struct WebhookVerificationBuildingBlockTests {
    @Test func constantTimeEquality() {
        let mac = [UInt8](repeating: 0xab, count: 32)
        #expect(ConstantTime.isEqual(mac, mac))
        #expect(ConstantTime.isEqual([UInt8](), [UInt8]()))
        var first = mac
        first[0] ^= 1
        var last = mac
        last[31] ^= 0x80
        #expect(!ConstantTime.isEqual(mac, first))
        #expect(!ConstantTime.isEqual(mac, last))
        #expect(!ConstantTime.isEqual(mac, mac.dropLast()))
        #expect(!ConstantTime.isEqual(mac, mac + [0xab]))
        #expect(!ConstantTime.isEqual(mac, [UInt8]()))
        // Any collection of bytes, compared by content.
        #expect(ConstantTime.isEqual(Data(mac), mac[...]))
    }

    @Test func hexAndBase64() {
        #expect(ByteEncoding.hex([0x00, 0x0f, 0xa5, 0xff]) == "000fa5ff")
        #expect(ByteEncoding.bytes(hex: "000fA5ff") == [0x00, 0x0f, 0xa5, 0xff])
        #expect(ByteEncoding.bytes(hex: "") == [])
        #expect(ByteEncoding.bytes(hex: "abc") == nil)
        #expect(ByteEncoding.bytes(hex: "zz") == nil)
        #expect(ByteEncoding.bytes(hex: "+1") == nil)
        #expect(ByteEncoding.bytes(base64: "AQID") == [1, 2, 3])
        #expect(ByteEncoding.bytes(base64: "AQI=") == [1, 2])
        #expect(ByteEncoding.bytes(base64: "AQI") == [1, 2])
        #expect(ByteEncoding.bytes(base64: "AQ") == [1])
        #expect(ByteEncoding.bytes(base64: "A") == nil)
        #expect(ByteEncoding.bytes(base64: "") == nil)
        #expect(ByteEncoding.bytes(base64: "AQ I=") == nil)
        #expect(ByteEncoding.bytes(base64: "AQ-_") == nil)
    }

    @Test func pointerSyntax() throws {
        #expect(try JSONPointer("").tokens == [])
        #expect(try JSONPointer("/").tokens == [""])
        #expect(try JSONPointer("/a~1b/m~0n").tokens == ["a/b", "m~n"])
        #expect(try JSONPointer("/~01").tokens == ["~1"])
        #expect(try JSONPointer("/~10").tokens == ["/0"])
        #expect(try JSONPointer("//x/").tokens == ["", "x", ""])
        for (text, message) in [
            ("id", "must be a JSON pointer starting with / such as /id (got 'id')"),
            ("#/id", "must be a JSON pointer starting with / such as /id (got '#/id')"),
            ("/a~2", "has '~2' in '/a~2': only ~0 (for ~) and ~1 (for /) are escapes"),
            ("/a~/b", "ends a token with a lone ~ in '/a~/b': write ~0 for ~"),
            ("/a~", "ends a token with a lone ~ in '/a~': write ~0 for ~"),
        ] {
            #expect(throws: JSONPointer.Invalid(message: message)) { try JSONPointer(text) }
        }
    }

    /// The example document and results of RFC 6901 §5.
    static let rfcDocument = Data(
        #"""
        {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8}
        """#.utf8
    )

    @Test(arguments: [
        ("", JSONPointer.Target.otherValue), ("/foo", .otherValue), ("/foo/0", .string("bar")),
        ("/foo/1", .string("baz")), ("/", .integer("0")), ("/a~1b", .integer("1")), ("/c%d", .integer("2")),
        ("/e^f", .integer("3")), ("/g|h", .integer("4")), (#"/i\j"#, .integer("5")), (#"/k"l"#, .integer("6")),
        ("/ ", .integer("7")), ("/m~0n", .integer("8")),
        ("/foo/2", .missing), ("/foo/-", .missing), ("/foo/01", .missing), ("/foo/+1", .missing),
        ("/bar", .missing), ("/foo/0/x", .missing), ("/a~1b/x", .missing),
    ])
    func theRFC6901Examples(pointer: String, target: JSONPointer.Target) throws {
        #expect(try JSONPointer(pointer).evaluate(in: Self.rfcDocument) == target)
    }

    @Test func pointerValuesOfEveryKind() throws {
        let document = Data(
            #"{"s": "x", "i": -12, "big": 18446744073709551615, "f": 1.5, "t": true, "n": null, "o": {}, "a": []}"#.utf8
        )
        let expected: [(String, JSONPointer.Target)] = [
            ("/s", .string("x")), ("/i", .integer("-12")), ("/big", .integer("18446744073709551615")),
            ("/f", .otherValue), ("/t", .otherValue), ("/n", .otherValue), ("/o", .otherValue), ("/a", .otherValue),
            ("/a/0", .missing),
        ]
        for (pointer, target) in expected {
            #expect(try JSONPointer(pointer).evaluate(in: document) == target, "\(pointer)")
        }
        #expect(try JSONPointer("").evaluate(in: Data(#""whole""#.utf8)) == .string("whole"))
        #expect(throws: (any Error).self) { try JSONPointer("/s").evaluate(in: Data("{\"s\": \"x\"} trailing".utf8)) }
        #expect(throws: (any Error).self) { try JSONPointer("/s").evaluate(in: Data(#"{"s": "x", "t": }"#.utf8)) }
    }
}
