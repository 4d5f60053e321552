import Crypto
import Foundation
import HTTPTypes

extension HTTPField.Name {
    /// Stripe's `t=<unix>,v1=<hex>[,v1=<hex>…]` signature header.
    static let stripeSignature = HTTPField.Name("Stripe-Signature")!
}

extension WebhookVerifier {
    /// Stripe: hex HMAC-SHA256 of `{t}.{body}` keyed by the `whsec_…` text itself; `v0` and
    /// unknown schemes in the header are ignored.
    func verifyStripe(
        keys: [SymmetricKey],
        body: some DataProtocol,
        headers: HTTPFields
    ) -> Result<SignatureMatch, WebhookRejection> {
        guard let lines = Self.values(of: .stripeSignature, in: headers) else {
            return .failure(
                WebhookRejection(code: .missingSignature, message: "the Stripe-Signature header is missing")
            )
        }
        var timestampText: Substring?
        var candidates: [[UInt8]] = []
        var sawV1 = false
        for item in lines.joined(separator: ",").split(separator: ",") {
            let pair = item.trimmingCharacters(in: .whitespaces)
            guard let equals = pair.firstIndex(of: "=") else { continue }
            let value = pair[pair.index(after: equals)...]
            switch pair[..<equals] {
            case "t":
                guard timestampText == nil else {
                    return .failure(
                        WebhookRejection(
                            code: .malformedSignature,
                            message: "the Stripe-Signature header has more than one t= timestamp"
                        )
                    )
                }
                timestampText = value
            case "v1":
                sawV1 = true
                guard candidates.count < Self.maximumSignatures else {
                    return .failure(
                        WebhookRejection(
                            code: .malformedSignature,
                            message:
                                "the Stripe-Signature header holds more than \(Self.maximumSignatures) v1 signatures"
                        )
                    )
                }
                if let bytes = ByteEncoding.bytes(hex: value) { candidates.append(bytes) }
            default:
                continue
            }
        }
        guard let timestampText else {
            return .failure(
                WebhookRejection(code: .malformedSignature, message: "the Stripe-Signature header has no t= timestamp")
            )
        }
        guard let timestamp = Self.unixSeconds(timestampText) else {
            return .failure(
                WebhookRejection(
                    code: .malformedSignature,
                    message: "the Stripe-Signature header's t= is not a whole number of Unix seconds"
                )
            )
        }
        guard sawV1 else {
            return .failure(
                WebhookRejection(code: .malformedSignature, message: "the Stripe-Signature header has no v1= signature")
            )
        }
        let signedPrefix = Array("\(timestampText).".utf8)
        let macs = keys.map { key in
            var mac = HMAC<SHA256>(key: key)
            mac.update(data: signedPrefix)
            mac.update(data: body)
            return Array(mac.finalize())
        }
        guard let index = Self.firstMatch(macs: macs, candidates: candidates) else {
            return .failure(
                WebhookRejection(
                    code: .signatureMismatch,
                    message: "the Stripe-Signature header \(Self.noMatch(keyCount: keys.count)) for this t= and body"
                )
            )
        }
        return .success(
            SignatureMatch(secretIndex: index, timestamp: timestamp, timestampOrigin: "Stripe-Signature's t=")
        )
    }
}
