import Crypto
import Foundation
import HTTPTypes

extension HTTPField.Name {
    /// GitHub's `sha256=<hex>` signature header.
    static let hubSignature256 = HTTPField.Name("X-Hub-Signature-256")!
    /// GitHub's delivery id, the event id.
    static let gitHubDelivery = HTTPField.Name("X-GitHub-Delivery")!
}

extension WebhookVerifier {
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`, keyed by the
    /// secret's UTF-8 bytes; no timestamp.
    func verifyGitHub(
        keys: [SymmetricKey],
        body: some DataProtocol,
        headers: HTTPFields
    ) -> Result<SignatureMatch, WebhookRejection> {
        let scheme = HMACScheme(
            header: .hubSignature256,
            algorithm: .sha256,
            encoding: .hex,
            prefix: "sha256=",
            idHeader: .gitHubDelivery
        )
        return verifyHMAC(keys: keys, scheme: scheme, body: body, headers: headers)
    }

    /// An HMAC of the raw body in one header, as the `hmac` scheme configures it. Each field
    /// line of the header is one candidate signature.
    func verifyHMAC(
        keys: [SymmetricKey],
        scheme: HMACScheme,
        body: some DataProtocol,
        headers: HTTPFields
    ) -> Result<SignatureMatch, WebhookRejection> {
        let name = scheme.header
        guard let lines = Self.values(of: name, in: headers) else {
            return .failure(WebhookRejection(code: .missingSignature, message: "the \(name) header is missing"))
        }
        guard lines.count <= Self.maximumSignatures else {
            return .failure(
                WebhookRejection(
                    code: .malformedSignature,
                    message: "the \(name) header holds more than \(Self.maximumSignatures) signatures"
                )
            )
        }
        var candidates: [[UInt8]] = []
        for line in lines where line.hasPrefix(scheme.prefix) {
            let text = line.dropFirst(scheme.prefix.count)
            let bytes =
                switch scheme.encoding {
                case .hex: ByteEncoding.bytes(hex: text)
                case .base64: ByteEncoding.bytes(base64: text)
                }
            if let bytes { candidates.append(bytes) }
        }
        guard !candidates.isEmpty else {
            let form = scheme.prefix.isEmpty ? "" : "'\(scheme.prefix)' followed by "
            return .failure(
                WebhookRejection(
                    code: .malformedSignature,
                    message:
                        "the \(name) header is not \(form)a \(scheme.encoding.rawValue) \(scheme.algorithm.rawValue.uppercased()) HMAC"
                )
            )
        }
        let macs = keys.map { key in
            switch scheme.algorithm {
            case .sha256: Array(HMAC<SHA256>.authenticationCode(for: body, using: key))
            case .sha512: Array(HMAC<SHA512>.authenticationCode(for: body, using: key))
            }
        }
        guard let index = Self.firstMatch(macs: macs, candidates: candidates) else {
            return .failure(
                WebhookRejection(
                    code: .signatureMismatch,
                    message: "the \(name) header \(Self.noMatch(keyCount: keys.count)) for this body"
                )
            )
        }
        return .success(SignatureMatch(secretIndex: index, eventIDHeader: scheme.idHeader))
    }
}
