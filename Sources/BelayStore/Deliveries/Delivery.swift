public import Foundation

/// Where a delivery stands (DESIGN.md, "Delivery semantics").
public enum DeliveryStatus: String, Sendable, Hashable, CaseIterable, Codable {
    /// Accepted and waiting for its next attempt.
    case pending
    /// A worker holds its lease and is sending it now.
    case inFlight = "in_flight"
    /// The upstream answered 2xx (and, when an acknowledgement is required, it is awaited).
    case delivered
    /// The receiving system acknowledged it.
    case acknowledged
    /// Every attempt failed, or the upstream refused it for good; it waits for a replay.
    case dead
    /// Cancelled before it was delivered.
    case cancelled

    /// Whether nothing more will happen to it without an operator (`delivered` awaiting an
    /// acknowledgement is not final).
    public var isFinal: Bool {
        switch self {
        case .acknowledged, .dead, .cancelled: true
        case .pending, .inFlight, .delivered: false
        }
    }
}

/// One header of a queued request.
public struct DeliveryHeader: Sendable, Hashable, Codable {
    /// The field name as given.
    public var name: String
    /// The value.
    public var value: String

    /// Creates a header.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A delivery to accept: what to send, where, and with which key.
public struct NewDelivery: Sendable, Hashable {
    /// The new delivery's id, e.g. `dlv_0194f2a1c3b2_9f8e7d6c5b4a3f21` (time-ordered).
    public var id: String
    /// The configured upstream to send it to.
    public var upstream: String
    /// The HTTP method, e.g. `POST`.
    public var method: String
    /// The path below the upstream's base path, starting with `/` (may hold a query).
    public var path: String
    /// Headers to send.
    public var headers: [DeliveryHeader]
    /// The body to send, if any.
    public var body: Data?
    /// The one idempotency key every attempt carries.
    public var idempotencyKey: String
    /// Whether the key came from the caller: the accept itself is then deduplicated by it.
    public var keyFromCaller: Bool
    /// A digest of everything above but the id, so a reused key with another payload is told
    /// apart from a repeat (422 against a replay of the first answer).
    public var fingerprint: String
    /// Whether the receiving system must acknowledge it (`POST …/ack`).
    public var requireAck: Bool
    /// The earliest time of the first attempt.
    public var notBefore: Date
    /// When it was accepted.
    public var createdAt: Date
    /// Deliveries of one upstream sharing this key are sent in the order accepted: one is
    /// not sent while an earlier one with the key is pending or in flight. Nil: unordered.
    public var orderingKey: String?
    /// The consumer that created it (its owner); empty for deliveries Belay makes itself
    /// (webhook forwards) and in open mode. Caller keys are unique per consumer and upstream.
    public var consumer: String

    /// Creates a delivery to accept.
    public init(
        id: String,
        upstream: String,
        method: String,
        path: String,
        headers: [DeliveryHeader] = [],
        body: Data? = nil,
        idempotencyKey: String,
        keyFromCaller: Bool,
        fingerprint: String,
        requireAck: Bool = false,
        notBefore: Date,
        createdAt: Date,
        orderingKey: String? = nil,
        consumer: String = ""
    ) {
        self.orderingKey = orderingKey
        self.consumer = consumer
        self.id = id
        self.upstream = upstream
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.idempotencyKey = idempotencyKey
        self.keyFromCaller = keyFromCaller
        self.fingerprint = fingerprint
        self.requireAck = requireAck
        self.notBefore = notBefore
        self.createdAt = createdAt
    }
}

/// A stored delivery.
public struct Delivery: Sendable, Hashable {
    /// The id.
    public var id: String
    /// The upstream it goes to.
    public var upstream: String
    /// The HTTP method.
    public var method: String
    /// The path below the upstream's base path.
    public var path: String
    /// Headers sent with every attempt.
    public var headers: [DeliveryHeader]
    /// The body, if any.
    public var body: Data?
    /// The idempotency key every attempt carries.
    public var idempotencyKey: String
    /// Whether an acknowledgement is required.
    public var requireAck: Bool
    /// Where it stands.
    public var status: DeliveryStatus
    /// Attempts made so far, replays included (a wait for an open breaker is not one).
    public var attemptCount: Int
    /// Attempts since it was accepted or last replayed: its place in the schedule.
    public var scheduleStep: Int
    /// When the next attempt is due (for `delivered` awaiting an ack: when the wait ends).
    public var nextAttemptAt: Date?
    /// When it was accepted.
    public var createdAt: Date
    /// When it last changed.
    public var updatedAt: Date
    /// When the upstream last answered 2xx.
    public var deliveredAt: Date?
    /// When it was acknowledged.
    public var acknowledgedAt: Date?
    /// The last failure, e.g. `HTTP 503 from api.pay.example:443` (never a secret).
    public var lastError: String?
    /// Whether the "still trying" alert was sent.
    public var escalated: Bool
    /// The worker holding it, while in flight.
    public var leaseOwner: String?
    /// When that lease runs out (another worker may then take it).
    public var leaseExpiresAt: Date?
    /// The fencing token of the latest claim: each claim gets a larger one, and a worker's
    /// writes change nothing once another claim has replaced its own.
    public var leaseToken: Int64
    /// The consumer that created it; empty for Belay's own (webhook forwards) and open mode.
    public var consumer: String
    /// When an acknowledgement arrived before any 2xx was recorded (while an attempt was in
    /// flight, or after failed ones): the delivery becomes `acknowledged` only when an attempt
    /// is recorded as delivered, never because of the early ack alone.
    public var ackReceivedAt: Date?
    /// The inbox event (its Belay id, `evt_…`) that confirmed or rejected it, for an upstream
    /// with `ack: { webhook }` (see ``DeliveryConfirmation``).
    public var ackEvent: String?
    /// The provider's reason, when that event rejected it (it is then `dead`).
    public var ackRejection: String?
    /// When "still trying" is due by age (`deliveries.notify_after` as a duration): set from
    /// its first failed attempt while it is not yet escalated.
    public var escalateAt: Date?

    /// Creates a stored delivery (stores build these from their rows).
    public init(
        id: String,
        upstream: String,
        method: String,
        path: String,
        headers: [DeliveryHeader],
        body: Data?,
        idempotencyKey: String,
        requireAck: Bool,
        status: DeliveryStatus,
        attemptCount: Int,
        scheduleStep: Int,
        nextAttemptAt: Date?,
        createdAt: Date,
        updatedAt: Date,
        deliveredAt: Date? = nil,
        acknowledgedAt: Date? = nil,
        lastError: String? = nil,
        escalated: Bool = false,
        leaseOwner: String? = nil,
        leaseExpiresAt: Date? = nil,
        leaseToken: Int64 = 0,
        consumer: String = "",
        ackReceivedAt: Date? = nil,
        ackEvent: String? = nil,
        ackRejection: String? = nil,
        escalateAt: Date? = nil
    ) {
        self.leaseToken = leaseToken
        self.consumer = consumer
        self.ackReceivedAt = ackReceivedAt
        self.ackEvent = ackEvent
        self.ackRejection = ackRejection
        self.escalateAt = escalateAt
        self.id = id
        self.upstream = upstream
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.idempotencyKey = idempotencyKey
        self.requireAck = requireAck
        self.status = status
        self.attemptCount = attemptCount
        self.scheduleStep = scheduleStep
        self.nextAttemptAt = nextAttemptAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.deliveredAt = deliveredAt
        self.acknowledgedAt = acknowledgedAt
        self.lastError = lastError
        self.escalated = escalated
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
    }
}

/// One attempt to deliver, with the decision taken after it; or a look at the provider
/// (`ack.poll`) to learn whether an order it was sent is there.
public struct DeliveryAttempt: Sendable, Hashable, Codable {
    /// What the row records.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// A send of the delivery: counted in ``Delivery/attemptCount`` and the schedule.
        case send
        /// A look at the provider (`GET` of the `ack.poll` path): whether the order is there.
        /// Kept in the trail between the sends; not counted as an attempt, but for one that
        /// could not tell and so held a resend back (``DeliveryOutcome/counts``).
        case lookup
    }

    /// 1 for the first attempt (a lookup carries the number of the send it follows, 0 if none).
    public var number: Int
    /// When it started.
    public var startedAt: Date
    /// How long it took, in milliseconds.
    public var durationMilliseconds: Int
    /// The endpoint that answered or failed, e.g. `api.pay.example:443`.
    public var endpoint: String?
    /// The upstream's status, if it answered.
    public var statusCode: Int?
    /// Why it failed without an answer: `connect`, `reset`, `timeout`, `circuit-open`…
    public var errorClass: String?
    /// What was decided, e.g. `retry at 2026-11-23T10:05:00Z (HTTP 503)` or `dead: HTTP 422 is permanent`.
    public var decision: String
    /// A send, or a lookup.
    public var kind: Kind

    /// Creates an attempt record.
    public init(
        number: Int,
        startedAt: Date,
        durationMilliseconds: Int,
        endpoint: String?,
        statusCode: Int?,
        errorClass: String?,
        decision: String,
        kind: Kind = .send
    ) {
        self.kind = kind
        self.number = number
        self.startedAt = startedAt
        self.durationMilliseconds = durationMilliseconds
        self.endpoint = endpoint
        self.statusCode = statusCode
        self.errorClass = errorClass
        self.decision = decision
    }
}

/// What accepting a delivery came to.
public enum AcceptOutcome: Sendable, Hashable {
    /// Stored durably now.
    case accepted(Delivery)
    /// The caller's key was accepted before with the same payload: that delivery.
    case repeated(Delivery)
    /// The caller's key was accepted before with another payload (422).
    case keyReused(existingID: String)
    /// A request with the same key is being accepted right now (409).
    case keyInFlight
}

/// Why a delivery was handed to a worker.
public enum ClaimReason: String, Sendable, Hashable {
    /// Its next attempt is due.
    case due
    /// Another worker's lease ran out (it crashed or stalled): resume.
    case leaseExpired = "lease-expired"
    /// It was delivered but no acknowledgement came within the wait: deliver again.
    case ackOverdue = "ack-overdue"
}

/// A delivery handed to a worker under a lease.
public struct ClaimedDelivery: Sendable, Hashable {
    /// The delivery, now `in_flight` and leased.
    public var delivery: Delivery
    /// Why it was handed out.
    public var reason: ClaimReason

    /// Creates a claim.
    public init(delivery: Delivery, reason: ClaimReason) {
        self.delivery = delivery
        self.reason = reason
    }

    /// The claim's lease: what every later write of the worker is fenced by.
    public var lease: Lease {
        Lease(owner: delivery.leaseOwner ?? "", token: delivery.leaseToken)
    }
}

/// A worker's hold on one claimed delivery: its owner's name and the claim's fencing token.
/// Renewing, finishing or recording an attempt with a lease that is no longer the delivery's
/// latest (it expired and another claim took it) changes nothing.
public struct Lease: Sendable, Hashable {
    /// The worker that claimed it.
    public var owner: String
    /// The claim's fencing token (larger for every new claim of the delivery).
    public var token: Int64

    /// Creates a lease.
    public init(owner: String, token: Int64) {
        self.owner = owner
        self.token = token
    }
}

/// What a worker writes back after handling a claimed delivery.
public struct DeliveryOutcome: Sendable, Hashable {
    /// The new status: `pending` (try again), `delivered`, `dead`, or `acknowledged` (a lookup
    /// found the order: ``DeliveryAttempt/Kind/lookup``).
    public var status: DeliveryStatus
    /// The attempt made, if the upstream was tried (a wait for an open breaker is not one).
    /// A `lookup` is kept in the trail but not counted; a `delivered` outcome after one (the
    /// order is not there yet) keeps the delivery's ``Delivery/deliveredAt``.
    public var attempt: DeliveryAttempt?
    /// Rows of the trail recorded before ``attempt``: the lookup made before a resend.
    public var lookups: [DeliveryAttempt] = []
    /// Whether it counts as an attempt (``Delivery/attemptCount`` and the schedule's step):
    /// a send does; a lookup does only when it held a resend back (it could not tell whether
    /// the order is there), so that the schedule still bounds the delivery.
    public var counts: Bool

    /// Whether it records a lookup alone (``attempt`` is one): a `delivered` outcome then keeps
    /// the delivery's ``Delivery/deliveredAt``, since nothing was sent.
    public var isLookup: Bool { attempt?.kind == .lookup }
    /// When to try next (`pending`), or when the ack wait ends (`delivered` with ack).
    public var nextAttemptAt: Date?
    /// The failure to show, if any.
    public var lastError: String?
    /// Set when the "still trying" alert was sent.
    public var escalated: Bool
    /// When this was decided.
    public var at: Date
    /// When "still trying" becomes due by age, if it is alerted by age: kept from the first
    /// attempt that sets it (later ones change nothing) until the delivery is replayed.
    public var escalateAt: Date?

    /// Creates an outcome.
    public init(
        status: DeliveryStatus,
        attempt: DeliveryAttempt?,
        nextAttemptAt: Date?,
        lastError: String?,
        escalated: Bool,
        at: Date,
        escalateAt: Date? = nil,
        lookups: [DeliveryAttempt] = [],
        counts: Bool? = nil
    ) {
        self.escalateAt = escalateAt
        self.lookups = lookups
        self.counts = counts ?? (attempt?.kind == .send)
        self.status = status
        self.attempt = attempt
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.escalated = escalated
        self.at = at
    }
}

/// Which deliveries to list, and from where.
public struct DeliveryQuery: Sendable, Hashable {
    /// Only this status, if set.
    public var status: DeliveryStatus?
    /// Only this upstream, if set.
    public var upstream: String?
    /// Only deliveries this consumer created, if set (a consumer sees its own; `admin` all).
    public var consumer: String?
    /// Only deliveries to these upstreams, if set (the upstreams a consumer may call).
    public var upstreams: Set<String>?
    /// Continue after this cursor (from the previous page's ``DeliveryPage/nextCursor``).
    public var cursor: String?
    /// Page size. Default 50.
    public var limit: Int

    /// Creates a query; newest first.
    public init(
        status: DeliveryStatus? = nil,
        upstream: String? = nil,
        consumer: String? = nil,
        upstreams: Set<String>? = nil,
        cursor: String? = nil,
        limit: Int = 50
    ) {
        self.status = status
        self.upstream = upstream
        self.consumer = consumer
        self.upstreams = upstreams
        self.cursor = cursor
        self.limit = limit
    }
}

/// A page of deliveries, newest first.
public struct DeliveryPage: Sendable, Hashable {
    /// The deliveries.
    public var deliveries: [Delivery]
    /// Pass as ``DeliveryQuery/cursor`` for the next page; nil on the last page.
    public var nextCursor: String?

    /// Creates a page.
    public init(deliveries: [Delivery], nextCursor: String?) {
        self.deliveries = deliveries
        self.nextCursor = nextCursor
    }
}

/// What an operator's transition (retry, cancel, acknowledge) came to.
public enum TransitionOutcome: Sendable, Hashable {
    /// Done: the delivery as it is now.
    case changed(Delivery)
    /// No delivery has that id.
    case notFound
    /// Not allowed from the delivery's current status.
    case conflict(DeliveryStatus)
}
