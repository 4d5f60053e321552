public import Foundation

/// A delivery without its headers, body or attempts (`DeliverySummary` in the contract): a
/// row of `GET /v1/deliveries`, the answer of a transition.
public struct DeliverySummary: Codable, Sendable, Equatable {
    /// `dlv_` and 28 hex digits.
    public var id: String
    /// The upstream it goes to; `webhook:<source>` for a forward of the webhook inbox.
    public var upstream: String
    public var method: String
    /// The path below the upstream's base URL; empty for a webhook forward.
    public var path: String
    /// `pending`, `in_flight`, `delivered`, `acknowledged`, `dead` or `cancelled`.
    public var status: String
    public var requireAck: Bool
    /// The key every attempt carries.
    public var idempotencyKey: String
    public var attemptCount: Int
    public var createdAt: Date
    public var updatedAt: Date
    /// When the next attempt is due; sent as `null` when none is.
    public var nextAttemptAt: Date?
    public var deliveredAt: Date?
    public var acknowledgedAt: Date?
    /// An acknowledgement that came before any 2xx was recorded.
    public var ackReceivedAt: Date?
    /// The other system's word on it (`ack.webhook`).
    public var confirmation: DeliveryConfirmationView?
    /// The consumer that created it; absent for Belay's own and in open mode.
    public var consumer: String?
    public var lastError: String?
    public var leaseExpiresAt: Date?
    /// `true` once the "still trying" alert was sent; absent before.
    public var escalated: Bool?
    /// On `GET` answers, for a `pending` delivery whose upstream's breaker is open: why it waits.
    public var waiting: String?
    /// `/v1/deliveries/{id}`.
    public var location: String

    public init(
        id: String,
        upstream: String,
        method: String,
        path: String,
        status: String,
        requireAck: Bool,
        idempotencyKey: String,
        attemptCount: Int,
        createdAt: Date,
        updatedAt: Date,
        nextAttemptAt: Date?
    ) {
        self.id = id
        self.upstream = upstream
        self.method = method
        self.path = path
        self.status = status
        self.requireAck = requireAck
        self.idempotencyKey = idempotencyKey
        self.attemptCount = attemptCount
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.nextAttemptAt = nextAttemptAt
        self.location = "/v1/deliveries/\(id)"
    }

    enum CodingKeys: String, CodingKey {
        case id, upstream, method, path, status, consumer, confirmation, escalated, waiting, location
        case requireAck = "require_ack"
        case idempotencyKey = "idempotency_key"
        case attemptCount = "attempt_count"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case nextAttemptAt = "next_attempt_at"
        case deliveredAt = "delivered_at"
        case acknowledgedAt = "acknowledged_at"
        case ackReceivedAt = "ack_received_at"
        case lastError = "last_error"
        case leaseExpiresAt = "lease_expires_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(upstream, forKey: .upstream)
        try container.encode(method, forKey: .method)
        try container.encode(path, forKey: .path)
        try container.encode(status, forKey: .status)
        try container.encode(requireAck, forKey: .requireAck)
        try container.encode(idempotencyKey, forKey: .idempotencyKey)
        try container.encode(attemptCount, forKey: .attemptCount)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(nextAttemptAt, forKey: .nextAttemptAt)  // null when none is due
        try container.encodeIfPresent(deliveredAt, forKey: .deliveredAt)
        try container.encodeIfPresent(acknowledgedAt, forKey: .acknowledgedAt)
        try container.encodeIfPresent(ackReceivedAt, forKey: .ackReceivedAt)
        try container.encodeIfPresent(confirmation, forKey: .confirmation)
        try container.encodeIfPresent(consumer, forKey: .consumer)
        try container.encodeIfPresent(lastError, forKey: .lastError)
        try container.encodeIfPresent(leaseExpiresAt, forKey: .leaseExpiresAt)
        try container.encodeIfPresent(escalated, forKey: .escalated)
        try container.encodeIfPresent(waiting, forKey: .waiting)
        try container.encode(location, forKey: .location)
    }
}

/// The other system's word on a delivery (`ack.webhook`): the inbox event, whether it
/// confirmed (and when) or rejected (and why).
public struct DeliveryConfirmationView: Codable, Sendable, Equatable {
    /// The inbox event's id.
    public var event: String
    /// `confirmed` or `rejected`.
    public var outcome: String
    /// Why it was rejected.
    public var reason: String?
    /// When it confirmed.
    public var at: Date?
    /// `true` when it takes effect once the attempt in flight is recorded.
    public var pendingAttempt: Bool?

    public init(event: String, outcome: String, reason: String? = nil, at: Date? = nil, pendingAttempt: Bool? = nil) {
        self.event = event
        self.outcome = outcome
        self.reason = reason
        self.at = at
        self.pendingAttempt = pendingAttempt
    }

    enum CodingKeys: String, CodingKey {
        case event, outcome, reason, at
        case pendingAttempt = "pending_attempt"
    }
}

/// One attempt of a delivery and the decision taken after it, or a look at the provider
/// (`ack.poll`).
public struct DeliveryAttemptView: Codable, Sendable, Equatable {
    /// 1 for the first send; a lookup carries the number of the send it follows.
    public var number: Int
    /// `send`, or `lookup` (a `GET` of the `ack.poll` path).
    public var kind: String
    public var startedAt: Date
    public var durationMs: Int
    /// `host:port` of the endpoint that answered or failed.
    public var endpoint: String?
    public var statusCode: Int?
    /// Why it failed without an answer: `connect`, `reset`, `timeout`, …
    public var errorClass: String?
    /// What was decided, e.g. `delivered (HTTP 201)`.
    public var decision: String

    public init(
        number: Int,
        kind: String,
        startedAt: Date,
        durationMs: Int,
        endpoint: String?,
        statusCode: Int?,
        errorClass: String?,
        decision: String
    ) {
        self.number = number
        self.kind = kind
        self.startedAt = startedAt
        self.durationMs = durationMs
        self.endpoint = endpoint
        self.statusCode = statusCode
        self.errorClass = errorClass
        self.decision = decision
    }

    enum CodingKeys: String, CodingKey {
        case number, kind, endpoint, decision
        case startedAt = "started_at"
        case durationMs = "duration_ms"
        case statusCode = "status_code"
        case errorClass = "error_class"
    }
}

/// A delivery with its headers (sensitive values as `<redacted>`), its body and every attempt
/// (`GET /v1/deliveries/{id}`): the summary's fields, then these.
public struct DeliveryDetail: Codable, Sendable, Equatable {
    public var summary: DeliverySummary
    public var headers: [String: String]
    /// The body, when it is JSON with a JSON `Content-Type`.
    public var body: JSONValue?
    /// Any other body's bytes, base64.
    public var bodyBase64: String?
    /// Every attempt, oldest first.
    public var attempts: [DeliveryAttemptView]

    public init(
        summary: DeliverySummary,
        headers: [String: String],
        body: JSONValue?,
        bodyBase64: String?,
        attempts: [DeliveryAttemptView]
    ) {
        self.summary = summary
        self.headers = headers
        self.body = body
        self.bodyBase64 = bodyBase64
        self.attempts = attempts
    }

    enum CodingKeys: String, CodingKey {
        case headers, body, attempts
        case bodyBase64 = "body_base64"
    }

    public init(from decoder: any Decoder) throws {
        summary = try DeliverySummary(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        headers = try container.decode([String: String].self, forKey: .headers)
        // `"body": null` is a JSON body of null, not no body.
        body = try container.contains(.body) ? container.decode(JSONValue.self, forKey: .body) : nil
        bodyBase64 = try container.decodeIfPresent(String.self, forKey: .bodyBase64)
        attempts = try container.decode([DeliveryAttemptView].self, forKey: .attempts)
    }

    public func encode(to encoder: any Encoder) throws {
        try summary.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(headers, forKey: .headers)
        try container.encodeIfPresent(body, forKey: .body)
        try container.encodeIfPresent(bodyBase64, forKey: .bodyBase64)
        try container.encode(attempts, forKey: .attempts)
    }
}

/// A page of deliveries, newest first (`GET /v1/deliveries`).
public struct DeliveryPage: Codable, Sendable, Equatable {
    public var deliveries: [DeliverySummary]
    /// The `cursor` of the next (older) page; sent as `null` on the last page.
    public var nextCursor: String?

    public init(deliveries: [DeliverySummary], nextCursor: String?) {
        self.deliveries = deliveries
        self.nextCursor = nextCursor
    }

    enum CodingKeys: String, CodingKey {
        case deliveries
        case nextCursor = "next_cursor"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(deliveries, forKey: .deliveries)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}

/// The `202` of a delivery taken for later (`POST /v1/deliveries`, or a write the proxy queued
/// while its upstream was down).
public struct DeliveryAccepted: Codable, Sendable, Equatable {
    public var id: String
    public var status: String
    /// `/v1/deliveries/{id}`.
    public var location: String
    /// Why the proxy queued a write instead of sending it; absent for `POST /v1/deliveries`.
    public var queuedBecause: String?

    public init(id: String, status: String, queuedBecause: String? = nil) {
        self.id = id
        self.status = status
        self.location = "/v1/deliveries/\(id)"
        self.queuedBecause = queuedBecause
    }

    enum CodingKeys: String, CodingKey {
        case id, status, location
        case queuedBecause = "queued_because"
    }
}
