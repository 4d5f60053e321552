public import Foundation

/// A webhook delivery whose signature ``WebhookVerifier`` accepted.
public struct VerifiedWebhook: Sendable, Hashable {
    /// The event's id, the key deliveries are deduplicated by: `webhook-id`, the Stripe
    /// event's `id`, `X-GitHub-Delivery`, the configured `id_header`, or the value at the
    /// configured `id_pointer`. Never empty; at most ``WebhookVerifier/maximumEventIDLength``
    /// bytes.
    public var eventID: String
    /// The timestamp the sender signed (`webhook-timestamp`, Stripe's `t=`); nil for schemes
    /// that sign none (`github`, `hmac`).
    public var signedAt: Date?
    /// Which of the source's configured secrets or keys matched, as an index into
    /// `WebhookSource.secrets`: during a rotation it shows when the old one falls out of use.
    public var secretIndex: Int

    /// Creates a verified webhook.
    public init(eventID: String, signedAt: Date?, secretIndex: Int) {
        self.eventID = eventID
        self.signedAt = signedAt
        self.secretIndex = secretIndex
    }
}
