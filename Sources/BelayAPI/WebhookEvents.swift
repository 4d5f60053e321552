public import Foundation

/// The inbox's answer to a provider (`POST /webhooks/{source}`).
public struct WebhookReceipt: Codable, Sendable, Equatable {
    /// Belay's id of the event; the first event's for a repeat.
    public var id: String
    /// The provider's event id.
    public var eventID: String
    /// Whether the event had been received before.
    public var duplicate: Bool

    public init(id: String, eventID: String, duplicate: Bool) {
        self.id = id
        self.eventID = eventID
        self.duplicate = duplicate
    }

    enum CodingKeys: String, CodingKey {
        case id, duplicate
        case eventID = "event_id"
    }
}

/// The delivery that forwards an event (its latest, after a replay), with its attempts.
public struct WebhookForward: Codable, Sendable, Equatable {
    public var delivery: DeliverySummary
    /// Every attempt, oldest first; nil if the delivery vanished while the page was read.
    public var attempts: [DeliveryAttemptView]?

    public init(delivery: DeliverySummary, attempts: [DeliveryAttemptView]?) {
        self.delivery = delivery
        self.attempts = attempts
    }

    enum CodingKeys: String, CodingKey {
        case attempts
    }

    public init(from decoder: any Decoder) throws {
        delivery = try DeliverySummary(from: decoder)
        attempts = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(
            [DeliveryAttemptView].self,
            forKey: .attempts
        )
    }

    public func encode(to encoder: any Encoder) throws {
        try delivery.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(attempts, forKey: .attempts)
    }
}

/// One event of the inbox.
public struct WebhookEventView: Codable, Sendable, Equatable {
    /// Belay's id (`evt_` and 28 hex digits).
    public var id: String
    public var source: String
    /// The provider's event id.
    public var eventID: String
    public var receivedAt: Date
    /// The size of the raw body.
    public var bytes: Int
    /// Its forward; sent as `null` when the source does not forward.
    public var forward: WebhookForward?

    public init(id: String, source: String, eventID: String, receivedAt: Date, bytes: Int, forward: WebhookForward?) {
        self.id = id
        self.source = source
        self.eventID = eventID
        self.receivedAt = receivedAt
        self.bytes = bytes
        self.forward = forward
    }

    enum CodingKeys: String, CodingKey {
        case id, source, bytes, forward
        case eventID = "event_id"
        case receivedAt = "received_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(source, forKey: .source)
        try container.encode(eventID, forKey: .eventID)
        try container.encode(receivedAt, forKey: .receivedAt)
        try container.encode(bytes, forKey: .bytes)
        try container.encode(forward, forKey: .forward)
    }
}

/// A page of inbox events, newest first (`GET /v1/webhooks/events`).
public struct WebhookEventPage: Codable, Sendable, Equatable {
    public var events: [WebhookEventView]
    /// The `cursor` of the next (older) page; sent as `null` on the last page.
    public var nextCursor: String?

    public init(events: [WebhookEventView], nextCursor: String?) {
        self.events = events
        self.nextCursor = nextCursor
    }

    enum CodingKeys: String, CodingKey {
        case events
        case nextCursor = "next_cursor"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(events, forKey: .events)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}

/// The answer of a replay (`POST /v1/webhooks/events/{id}/replay`): the event's id and the new
/// forward.
public struct WebhookReplay: Codable, Sendable, Equatable {
    public var id: String
    public var forward: DeliverySummary

    public init(id: String, forward: DeliverySummary) {
        self.id = id
        self.forward = forward
    }
}
