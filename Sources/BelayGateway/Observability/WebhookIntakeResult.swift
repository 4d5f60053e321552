/// What the webhook inbox did with one delivery, as ``GatewayMetrics`` counts it.
public enum WebhookIntakeResult: Sendable, Hashable {
    /// Verified and stored (with its forward, if the source forwards).
    case stored
    /// Verified, and already stored under its event id: acknowledged, not stored again.
    case duplicate
    /// Refused: `reason` is a bounded word, the verifier's rejection code (e.g.
    /// `signature-mismatch`), `unknown-source` or `store-unavailable`.
    case rejected(reason: String)
}
