public import Foundation

/// Something an operator should hear about, POSTed as JSON to every `alerts` sink.
///
/// ```json
/// {"kind":"delivery.still_trying","severity":"warning","summary":"…","upstream":"payments",
///  "subject":"dlv_…","since":"…","last_error":"HTTP 503 from api.pay.example:443",
///  "next_attempt_at":"…","attempts":3,"link":"/v1/deliveries/dlv_…","at":"…"}
/// ```
public struct Alert: Sendable, Hashable, Codable {
    /// What happened. New kinds may be added.
    public struct Kind: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible {
        public var rawValue: String

        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// A delivery failed `notify_after` attempts and is still being retried.
        public static let stillTrying = Kind(rawValue: "delivery.still_trying")
        /// A delivery failed for good and waits in the dead-letter queue.
        public static let dead = Kind(rawValue: "delivery.dead")
        /// A delivery was not acknowledged in time and is being sent again.
        public static let ackOverdue = Kind(rawValue: "delivery.ack_overdue")

        public var description: String { rawValue }
    }

    /// What happened.
    public var kind: Kind
    /// `warning` (still working on it) or `critical` (needs a person).
    public var severity: String
    /// One sentence for a person: what, why, what happens next.
    public var summary: String
    /// The upstream concerned.
    public var upstream: String?
    /// The thing concerned, e.g. a delivery id.
    public var subject: String?
    /// Since when the problem lasts.
    public var since: Date?
    /// The last error seen.
    public var lastError: String?
    /// When Belay tries next, if it does.
    public var nextAttemptAt: Date?
    /// Attempts made so far.
    public var attempts: Int?
    /// Where to look: a management API path.
    public var link: String?
    /// When the alert was raised.
    public var at: Date

    /// Creates an alert.
    public init(
        kind: Kind,
        severity: String,
        summary: String,
        upstream: String? = nil,
        subject: String? = nil,
        since: Date? = nil,
        lastError: String? = nil,
        nextAttemptAt: Date? = nil,
        attempts: Int? = nil,
        link: String? = nil,
        at: Date
    ) {
        self.kind = kind
        self.severity = severity
        self.summary = summary
        self.upstream = upstream
        self.subject = subject
        self.since = since
        self.lastError = lastError
        self.nextAttemptAt = nextAttemptAt
        self.attempts = attempts
        self.link = link
        self.at = at
    }

    enum CodingKeys: String, CodingKey {
        case kind, severity, summary, upstream, subject, since
        case lastError = "last_error"
        case nextAttemptAt = "next_attempt_at"
        case attempts, link, at
    }

    /// Alerts with the same key within the throttle window are sent once.
    public var throttleKey: String { "\(kind.rawValue) \(upstream ?? "") \(subject ?? "")" }

    /// The alert as JSON bytes (dates in ISO 8601, keys sorted).
    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(self)) ?? Data()
    }
}
