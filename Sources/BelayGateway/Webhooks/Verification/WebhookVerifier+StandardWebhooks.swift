import Crypto
import Foundation
import HTTPTypes

extension HTTPField.Name {
    /// Standard Webhooks' message id, also the event id.
    static let webhookID = HTTPField.Name("webhook-id")!
    /// Standard Webhooks' signed Unix timestamp in seconds.
    static let webhookTimestamp = HTTPField.Name("webhook-timestamp")!
    /// Standard Webhooks' space-separated `v1,<base64>` / `v1a,<base64>` signatures.
    static let webhookSignature = HTTPField.Name("webhook-signature")!
}

extension WebhookVerifier {
    /// Standard Webhooks: `v1` HMAC-SHA256 and `v1a` ed25519 over `{id}.{timestamp}.{body}`.
    func verifyStandardWebhooks(
        keys: [StandardWebhooksKey],
        body: some DataProtocol,
        headers: HTTPFields
    ) -> Result<SignatureMatch, WebhookRejection> {
        guard let signatureLines = Self.values(of: .webhookSignature, in: headers) else {
            return .failure(
                WebhookRejection(code: .missingSignature, message: "the webhook-signature header is missing")
            )
        }
        guard let id = headers[.webhookID], !id.isEmpty else {
            return .failure(
                WebhookRejection(
                    code: .missingEventID,
                    message: "the webhook-id header is missing; it is part of the signed content"
                )
            )
        }
        guard let timestampText = headers[.webhookTimestamp], !timestampText.isEmpty else {
            return .failure(
                WebhookRejection(code: .missingTimestamp, message: "the webhook-timestamp header is missing")
            )
        }
        guard let timestamp = Self.unixSeconds(timestampText) else {
            return .failure(
                WebhookRejection(
                    code: .malformedTimestamp,
                    message: "the webhook-timestamp header is not a whole number of Unix seconds"
                )
            )
        }

        // Each field line holds space-separated `version,signature` entries; unknown versions are skipped.
        var symmetric: [[UInt8]] = []
        var asymmetric: [[UInt8]] = []
        var entries = 0
        for line in signatureLines {
            for entry in line.split(separator: " ", omittingEmptySubsequences: true) {
                entries += 1
                guard entries <= Self.maximumSignatures else {
                    return .failure(
                        WebhookRejection(
                            code: .malformedSignature,
                            message: "the webhook-signature header holds more than \(Self.maximumSignatures) signatures"
                        )
                    )
                }
                guard let comma = entry.firstIndex(of: ",") else { continue }
                let version = entry[..<comma]
                guard version == "v1" || version == "v1a",
                    let bytes = ByteEncoding.bytes(base64: entry[entry.index(after: comma)...])
                else { continue }
                if version == "v1" { symmetric.append(bytes) } else { asymmetric.append(bytes) }
            }
        }
        guard !symmetric.isEmpty || !asymmetric.isEmpty else {
            return .failure(
                WebhookRejection(
                    code: .malformedSignature,
                    message: "the webhook-signature header holds no v1,<base64> or v1a,<base64> signature"
                )
            )
        }

        let signedPrefix = Array("\(id).\(timestampText).".utf8)
        var signedContent: [UInt8]?
        for (index, key) in keys.enumerated() {
            let matched: Bool
            switch key {
            case .secret(let secret):
                guard !symmetric.isEmpty else { continue }
                var mac = HMAC<SHA256>(key: secret)
                mac.update(data: signedPrefix)
                mac.update(data: body)
                let expected = Array(mac.finalize())
                matched = Self.firstMatch(macs: [expected], candidates: symmetric) != nil
            case .publicKey(let publicKey):
                guard !asymmetric.isEmpty else { continue }
                let content = signedContent ?? signedPrefix + Array(body)
                signedContent = content
                matched = asymmetric.contains { publicKey.isValidSignature($0, for: content) }
            }
            if matched {
                return .success(
                    SignatureMatch(
                        secretIndex: index,
                        timestamp: timestamp,
                        timestampOrigin: "webhook-timestamp",
                        eventIDHeader: .webhookID
                    )
                )
            }
        }
        return .failure(
            WebhookRejection(
                code: .signatureMismatch,
                message:
                    "the webhook-signature header \(Self.noMatch(keyCount: keys.count, kind: "key")) for this webhook-id, webhook-timestamp and body"
            )
        )
    }

    /// A Unix timestamp in seconds: ASCII digits only, no sign, fitting in an `Int64`.
    static func unixSeconds(_ text: some StringProtocol) -> Int64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int64(text)
    }
}
