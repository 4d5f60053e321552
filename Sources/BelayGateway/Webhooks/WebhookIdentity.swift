import Belay
import BelayStore
import Crypto
import Foundation

/// What identifies a verified event across re-sends, and the `webhook-id` its forwards carry.
///
/// `standard-webhooks` and `stripe` sign a timestamp (so a re-send is refused once outside
/// the tolerance) and an event id (`webhook-id`, the body's `/id`): the event is stored once
/// per event id, and its forwards carry Belay's id for it. `github` and `hmac` sign the body
/// alone: their id header (`X-GitHub-Delivery`, `id_header`) is not signed, so anyone holding
/// a captured delivery can send it again under a fresh id. For them the signed body is the
/// identity: a body seen within the source's `replay_window` is a repeat, and forwards carry
/// a `webhook-id` derived from the source and the body's digest, the same for every re-send.
enum WebhookIdentity {
    /// Whether events of `scheme` are deduplicated by their body's digest: their signature
    /// covers neither a timestamp nor an id.
    static func deduplicatesBody(_ scheme: GatewayConfig.WebhookSource.Scheme) -> Bool {
        switch scheme {
        case .github, .hmac: true
        case .standardWebhooks, .stripe: false
        }
    }

    /// The lowercase hex SHA-256 of `body`.
    static func digest(of body: Data) -> String {
        ByteEncoding.hex(SHA256.hash(data: body))
    }

    /// The body digest that makes a re-send of `body` to `source` received at `now` a repeat,
    /// for a source whose scheme needs one.
    static func bodyDigest(of body: Data, source: GatewayConfig.WebhookSource, at now: Date) -> BodyDigest? {
        guard deduplicatesBody(source.scheme) else { return nil }
        return BodyDigest(sha256: digest(of: body), expiresAt: now.addingTimeInterval(source.replayWindow.inSeconds))
    }

    /// The `webhook-id` (and idempotency key) of the forwards of the event stored as
    /// `eventID` with `body`: for a body-deduplicated scheme, `msg_` and 32 hex digits of the
    /// SHA-256 of the source's name, a zero byte and the body's digest; else `eventID`, which
    /// is stored once per provider event id.
    static func webhookID(eventID: String, body: Data, source: GatewayConfig.WebhookSource) -> String {
        guard deduplicatesBody(source.scheme) else { return eventID }
        var input = Data(source.name.utf8)
        input.append(0)
        input.append(Data(digest(of: body).utf8))
        return "msg_" + digest(of: input).prefix(32)
    }

    /// The header of a forward that names the event it forwards: its idempotency key is the
    /// event's stable identity, which for `github` and `hmac` is not the event id.
    static let eventHeader = "Belay-Webhook-Event"

    /// The id of the event `delivery` forwards: its `Belay-Webhook-Event` header (for a
    /// forward stored before that header existed, its idempotency key, then the event id).
    static func event(forwardedBy delivery: Delivery) -> String {
        delivery.headers.first { $0.name.caseInsensitiveCompare(eventHeader) == .orderedSame }?.value
            ?? delivery.idempotencyKey
    }
}
