public import Foundation

/// One proxied request as the audit trail keeps it: who called, what was asked, what came
/// back, and every attempt and decision in between ("show your work").
///
/// Holds no secrets: no headers, no bodies, no query string (the gateway records the path
/// only), and endpoints as `host:port`.
public struct AuditRecord: Sendable, Hashable {
    /// The request's id (`Belay-Request-Id`), always made by Belay (a time-ordered UUID), so
    /// no caller can choose another's.
    public var requestID: String
    /// The caller's own `X-Request-Id`, if it sent a plain one: searchable
    /// (``AuditQuery/correlationID``), never the key of the record.
    public var correlationID: String?
    /// The upstream's configured name.
    public var upstream: String
    /// The consumer that called, if consumers are configured.
    public var consumer: String?
    /// The request's method, e.g. `GET`.
    public var method: String
    /// The path forwarded to the upstream, without the query string.
    public var path: String
    /// When the gateway received the request (stored to the millisecond).
    public var receivedAt: Date
    /// How long the gateway took until the answer's head was ready, in milliseconds.
    public var durationMilliseconds: Double
    /// The status sent to the caller.
    public var status: Int
    /// The outcome in one word: `success`, `client_error`, `server_error`, `stale`, or the
    /// problem's code (`circuit-open`, `timeout`, …).
    public var outcome: String
    /// The problem code Belay answered with, if it answered with one.
    public var problem: String?
    /// The age of the stale-if-error answer served, in milliseconds, if one was.
    public var staleAgeMilliseconds: Int64?
    /// Every attempt, in order.
    public var attempts: [AuditAttempt]
    /// Every decision taken, in order.
    public var decisions: [AuditDecision]

    /// Creates a record.
    public init(
        requestID: String,
        upstream: String,
        consumer: String? = nil,
        method: String,
        path: String,
        receivedAt: Date,
        durationMilliseconds: Double,
        status: Int,
        outcome: String,
        problem: String? = nil,
        staleAgeMilliseconds: Int64? = nil,
        attempts: [AuditAttempt] = [],
        decisions: [AuditDecision] = [],
        correlationID: String? = nil
    ) {
        self.correlationID = correlationID
        self.requestID = requestID
        self.upstream = upstream
        self.consumer = consumer
        self.method = method
        self.path = path
        self.receivedAt = receivedAt
        self.durationMilliseconds = durationMilliseconds
        self.status = status
        self.outcome = outcome
        self.problem = problem
        self.staleAgeMilliseconds = staleAgeMilliseconds
        self.attempts = attempts
        self.decisions = decisions
    }
}

/// One attempt of an audited request.
public struct AuditAttempt: Sendable, Hashable, Codable {
    /// The attempt's number, 1-based.
    public var number: Int
    /// The endpoint tried, as `host:port`.
    public var endpoint: String
    /// The status it answered, if it answered.
    public var status: Int?
    /// The failure class when it did not answer: `connect`, `reset`, `timeout` or `other`.
    public var failure: String?
    /// When the attempt started, in milliseconds after the upstream call began.
    public var startedMilliseconds: Double
    /// How long it took until the answer's head (or the failure), in milliseconds.
    public var durationMilliseconds: Double
    /// Endpoints passed over for this attempt because they were ejected, as `host:port`.
    public var skipped: [String]

    /// Creates an attempt.
    public init(
        number: Int,
        endpoint: String,
        status: Int? = nil,
        failure: String? = nil,
        startedMilliseconds: Double,
        durationMilliseconds: Double,
        skipped: [String] = []
    ) {
        self.number = number
        self.endpoint = endpoint
        self.status = status
        self.failure = failure
        self.startedMilliseconds = startedMilliseconds
        self.durationMilliseconds = durationMilliseconds
        self.skipped = skipped
    }

    private enum CodingKeys: String, CodingKey {
        case number, endpoint, status, failure, skipped
        case startedMilliseconds = "started_ms"
        case durationMilliseconds = "duration_ms"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        number = try container.decode(Int.self, forKey: .number)
        endpoint = try container.decode(String.self, forKey: .endpoint)
        status = try container.decodeIfPresent(Int.self, forKey: .status)
        failure = try container.decodeIfPresent(String.self, forKey: .failure)
        startedMilliseconds = try container.decode(Double.self, forKey: .startedMilliseconds)
        durationMilliseconds = try container.decode(Double.self, forKey: .durationMilliseconds)
        skipped = try container.decodeIfPresent([String].self, forKey: .skipped) ?? []
    }
}

/// One decision taken for an audited request, in plain words.
public struct AuditDecision: Sendable, Hashable, Codable {
    /// The attempt it concerns (1-based; 0 when it concerns the request as a whole).
    public var attempt: Int
    /// A short, bounded name: `retry_scheduled`, `endpoint_skipped`, `served_stale`, …
    public var kind: String
    /// What was decided and why, e.g. `retried because HTTP 503 from api.pay.example:443;
    /// waited 1.2s for Retry-After`.
    public var description: String

    /// Creates a decision.
    public init(attempt: Int, kind: String, description: String) {
        self.attempt = attempt
        self.kind = kind
        self.description = description
    }
}

/// Which audit records to list: filters, a page size and where the previous page ended.
public struct AuditQuery: Sendable, Hashable {
    /// Only this upstream's requests.
    public var upstream: String?
    /// Only requests with this outcome (``AuditRecord/outcome``).
    public var outcome: String?
    /// Only requests received at or after this date.
    public var since: Date?
    /// Only requests that carried this `X-Request-Id`.
    public var correlationID: String?
    /// Only requests this consumer made (a consumer sees its own; `admin` all).
    public var consumer: String?
    /// Records per page, 1 to 500. Default 50.
    public var limit: Int = 50
    /// The `next_cursor` of the previous page; nil for the first (newest) page.
    public var cursor: String?

    /// Creates a query for the newest page of every request.
    public init(
        upstream: String? = nil,
        outcome: String? = nil,
        since: Date? = nil,
        limit: Int = 50,
        cursor: String? = nil,
        correlationID: String? = nil,
        consumer: String? = nil
    ) {
        self.correlationID = correlationID
        self.consumer = consumer
        self.upstream = upstream
        self.outcome = outcome
        self.since = since
        self.limit = limit
        self.cursor = cursor
    }
}

/// A page of audit records, newest first.
public struct AuditPage: Sendable {
    /// The records.
    public var records: [AuditRecord]
    /// The cursor of the next (older) page; nil on the last page.
    public var nextCursor: String?

    /// Creates a page.
    public init(records: [AuditRecord], nextCursor: String?) {
        self.records = records
        self.nextCursor = nextCursor
    }
}

/// What one retention pass deleted.
public struct AuditPruning: Sendable, Hashable {
    /// Records deleted for being older than the retention.
    public var expired: Int
    /// Records deleted (oldest first) to bring the audit trail under its size budget.
    public var trimmed: Int
    /// The audit trail's estimated size afterwards, in bytes (``AuditStore/auditBytes()``).
    public var bytes: Int64

    /// Creates a result.
    public init(expired: Int, trimmed: Int, bytes: Int64) {
        self.expired = expired
        self.trimmed = trimmed
        self.bytes = bytes
    }
}
