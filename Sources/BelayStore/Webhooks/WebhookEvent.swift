public import Foundation

/// A verified webhook to store: the raw request as it arrived, and its forward.
public struct NewWebhookEvent: Sendable, Hashable {
    /// Belay's id for it, e.g. `evt_01a20af6ae8e54b75469787ec3f9` (time-ordered); also the
    /// `webhook-id` of every forward, so the application deduplicates forwards by it.
    public var id: String
    /// The configured source, e.g. `stripe`.
    public var source: String
    /// The provider's id for the event (`webhook-id`, Stripe's `evt_…`, `X-GitHub-Delivery`):
    /// a second event with the same id from the same source is a repeat.
    public var eventID: String
    /// The headers as received (signature headers included).
    public var headers: [DeliveryHeader]
    /// The raw body bytes, as signed.
    public var body: Data
    /// When it arrived.
    public var receivedAt: Date
    /// The forward to schedule in the same transaction, if the source forwards.
    public var forward: NewDelivery?
    /// For a scheme whose signature covers no timestamp (`github`, `hmac`): the signed
    /// body's digest, which makes a later event of the source with the same body a repeat
    /// until the digest expires, whatever event id it carries. Nil: only the event id counts.
    public var bodyDigest: BodyDigest?

    /// Creates an event to store.
    public init(
        id: String,
        source: String,
        eventID: String,
        headers: [DeliveryHeader],
        body: Data,
        receivedAt: Date,
        forward: NewDelivery?,
        bodyDigest: BodyDigest? = nil
    ) {
        self.id = id
        self.source = source
        self.eventID = eventID
        self.headers = headers
        self.body = body
        self.receivedAt = receivedAt
        self.forward = forward
        self.bodyDigest = bodyDigest
    }
}

/// The digest of a webhook's signed body, remembered for a while so that a captured
/// delivery sent again (with a fresh, unsigned event id) is found to be a repeat.
public struct BodyDigest: Sendable, Hashable {
    /// The lowercase hex SHA-256 of the raw body.
    public var sha256: String
    /// Until when an event of the same source with this digest is a repeat (exclusive).
    public var expiresAt: Date

    /// Creates a digest.
    public init(sha256: String, expiresAt: Date) {
        self.sha256 = sha256
        self.expiresAt = expiresAt
    }
}

/// A stored webhook event.
public struct WebhookEvent: Sendable, Hashable {
    /// Belay's id.
    public var id: String
    /// The source.
    public var source: String
    /// The provider's event id.
    public var eventID: String
    /// The headers as received.
    public var headers: [DeliveryHeader]
    /// The raw body.
    public var body: Data
    /// When it arrived.
    public var receivedAt: Date
    /// The delivery that forwards it (the latest, after a replay), if the source forwards.
    public var deliveryID: String?

    /// Creates a stored event (stores build these from their rows).
    public init(
        id: String,
        source: String,
        eventID: String,
        headers: [DeliveryHeader],
        body: Data,
        receivedAt: Date,
        deliveryID: String?
    ) {
        self.id = id
        self.source = source
        self.eventID = eventID
        self.headers = headers
        self.body = body
        self.receivedAt = receivedAt
        self.deliveryID = deliveryID
    }
}

/// What storing a webhook event came to.
public enum IngestOutcome: Sendable, Hashable {
    /// Stored durably now (with its forward scheduled).
    case stored(WebhookEvent)
    /// The source sent this event id (or, within its replay window, this signed body)
    /// before: that event; nothing was stored.
    case repeated(WebhookEvent)
}

/// What a replay of a webhook event (``WebhookStore/reforward(eventID:as:)``) came to.
public enum ReforwardOutcome: Sendable, Hashable {
    /// No event has that id; nothing was stored.
    case notFound
    /// The event's current forward is still pending or in flight: that delivery. Nothing was
    /// stored (a replay now would send the event twice at once).
    case stillForwarding(Delivery)
    /// The new forward, stored; the event now points at it.
    case reforwarded(Delivery)
}

/// Which events to list, newest first.
public struct WebhookEventQuery: Sendable, Hashable {
    /// Only this source, if set.
    public var source: String?
    /// Only events whose forward has this status, if set.
    public var forwardStatus: DeliveryStatus?
    /// Continue after this cursor (the last id of the previous page).
    public var cursor: String?
    /// Page size. Default 50.
    public var limit: Int

    /// Creates a query.
    public init(source: String? = nil, forwardStatus: DeliveryStatus? = nil, cursor: String? = nil, limit: Int = 50) {
        self.source = source
        self.forwardStatus = forwardStatus
        self.cursor = cursor
        self.limit = limit
    }
}
