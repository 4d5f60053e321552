import Crypto
public import Foundation
public import HTTPTypes

/// Signs outgoing webhooks with a Standard Webhooks `whsec_` secret, as Belay signs every
/// event it forwards, so the application verifies one scheme whatever the provider.
///
/// ```swift
/// guard let signer = StandardWebhooksSigner(secret: source.forwardSecret!) else { … }
/// var request = HTTPRequest(method: .post, scheme: "http", authority: "app", path: "/hooks")
/// request.headerFields.append(contentsOf: signer.sign(id: event.id, timestamp: Date(), body: body))
/// ```
///
/// The signature is `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the
/// base64-decoded part of the secret; ``WebhookVerifier`` and every Standard Webhooks
/// library verify it.
public struct StandardWebhooksSigner: Sendable {
    private let key: SymmetricKey

    /// Creates a signer; nil unless `secret` is `whsec_` followed by the base64 of 24–64
    /// bytes (what ``ConfigLoader`` accepts for `forward_secret`).
    public init?(secret: Secret) {
        guard case .success(.secret(let key)) = StandardWebhooksKey.parse(secret.value, allowPublicKey: false) else {
            return nil
        }
        self.key = key
    }

    /// The `webhook-id`, `webhook-timestamp` and `webhook-signature` headers for `body`.
    ///
    /// - Parameters:
    ///   - id: the message id, which receivers deduplicate by: keep it the same when the
    ///     same event is sent again.
    ///   - timestamp: when the message is sent; signed in whole Unix seconds (rounded down).
    ///   - body: the exact bytes that will be sent.
    public func sign(id: String, timestamp: Date, body: some DataProtocol) -> HTTPFields {
        let seconds = Int64(timestamp.timeIntervalSince1970.rounded(.down))
        var fields = HTTPFields()
        fields[.webhookID] = id
        fields[.webhookTimestamp] = String(seconds)
        fields[.webhookSignature] = signature(id: id, timestamp: seconds, body: body)
        return fields
    }

    /// The `webhook-signature` value, `v1,<base64>`, for `body` sent as message `id` at
    /// `timestamp` Unix seconds.
    public func signature(id: String, timestamp: Int64, body: some DataProtocol) -> String {
        var mac = HMAC<SHA256>(key: key)
        mac.update(data: Array("\(id).\(timestamp).".utf8))
        mac.update(data: body)
        return "v1," + Data(mac.finalize()).base64EncodedString()
    }
}
