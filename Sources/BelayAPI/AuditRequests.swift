public import Foundation

/// The audit trail of one proxied request (`GET /v1/requests/{id}`): every attempt and decision.
public struct AuditRequestView: Codable, Sendable, Equatable {
    /// The request's id (its `Belay-Request-Id`).
    public var id: String
    public var upstream: String
    /// The consumer that made it; absent in open mode.
    public var consumer: String?
    /// The caller's `X-Request-Id`, when it sent one.
    public var correlationID: String?
    public var method: String
    public var path: String
    public var receivedAt: Date
    public var durationMs: Double
    /// The status the caller got.
    public var status: Int
    /// What became of it: `success`, `client_error`, `server_error`, `stale`, `fallback`, `queued`, or a problem code.
    public var outcome: String
    /// The problem code, when Belay answered with one.
    public var problem: String?
    /// The age of a stale answer, in seconds.
    public var staleAgeSeconds: Double?
    /// `/v1/requests/{id}`.
    public var location: String
    public var attempts: [Attempt]
    public var decisions: [Decision]

    /// One attempt upstream.
    public struct Attempt: Codable, Sendable, Equatable {
        public var number: Int
        /// `host:port`.
        public var endpoint: String
        /// When it started, in milliseconds after the request was received.
        public var startedMs: Double
        public var durationMs: Double
        /// The upstream's status, if it answered.
        public var status: Int?
        /// `connect`, `reset`, `timeout`, `other` or `cancelled`, if it did not.
        public var failure: String?
        /// The endpoints skipped before this one, and why.
        public var skipped: [String]?

        public init(
            number: Int,
            endpoint: String,
            startedMs: Double,
            durationMs: Double,
            status: Int?,
            failure: String?,
            skipped: [String]?
        ) {
            self.number = number
            self.endpoint = endpoint
            self.startedMs = startedMs
            self.durationMs = durationMs
            self.status = status
            self.failure = failure
            self.skipped = skipped
        }

        enum CodingKeys: String, CodingKey {
            case number, endpoint, status, failure, skipped
            case startedMs = "started_ms"
            case durationMs = "duration_ms"
        }
    }

    /// A decision of the pipeline, after the attempt it names (0: before any).
    public struct Decision: Codable, Sendable, Equatable {
        public var attempt: Int
        /// `retry_scheduled`, `rejected`, `failover`, …
        public var kind: String
        public var description: String

        public init(attempt: Int, kind: String, description: String) {
            self.attempt = attempt
            self.kind = kind
            self.description = description
        }
    }

    public init(
        id: String,
        upstream: String,
        method: String,
        path: String,
        receivedAt: Date,
        durationMs: Double,
        status: Int,
        outcome: String,
        attempts: [Attempt],
        decisions: [Decision]
    ) {
        self.id = id
        self.upstream = upstream
        self.method = method
        self.path = path
        self.receivedAt = receivedAt
        self.durationMs = durationMs
        self.status = status
        self.outcome = outcome
        self.location = "/v1/requests/\(id)"
        self.attempts = attempts
        self.decisions = decisions
    }

    enum CodingKeys: String, CodingKey {
        case id, upstream, consumer, method, path, status, outcome, problem, location, attempts, decisions
        case correlationID = "correlation_id"
        case receivedAt = "received_at"
        case durationMs = "duration_ms"
        case staleAgeSeconds = "stale_age_s"
    }
}

/// A page of the audit trail, newest first (`GET /v1/requests`).
public struct AuditRequestPage: Codable, Sendable, Equatable {
    public var requests: [AuditRequestView]
    /// The `cursor` of the next (older) page; sent as `null` on the last page.
    public var nextCursor: String?

    public init(requests: [AuditRequestView], nextCursor: String?) {
        self.requests = requests
        self.nextCursor = nextCursor
    }

    enum CodingKeys: String, CodingKey {
        case requests
        case nextCursor = "next_cursor"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(requests, forKey: .requests)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}
