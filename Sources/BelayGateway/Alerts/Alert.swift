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
    /// The kind of condition this alert clears, if it is a resolve: `breaker.closed` resolves
    /// `breaker.opened` for the same upstream and subject. Nil: the kind's own
    /// ``Kind/clears`` (if any) applies. Encoded as `resolves` only when set.
    public var resolves: Kind?

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
        at: Date,
        resolves: Kind? = nil
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
        self.resolves = resolves
    }

    enum CodingKeys: String, CodingKey {
        case kind, severity, summary, upstream, subject, since
        case lastError = "last_error"
        case nextAttemptAt = "next_attempt_at"
        case attempts, link, at, resolves
    }

    /// Alerts with the same key within the throttle window are sent once.
    public var throttleKey: String { "\(kind.rawValue) \(upstream ?? "") \(subject ?? "")" }

    /// The severity as a level; an unknown word counts as `warning`.
    public var level: AlertSeverity { AlertSeverity(rawValue: severity) ?? .warning }

    /// The kind of condition this alert resolves: ``resolves``, else its kind's ``Kind/clears``.
    public var resolvedKind: Kind? { resolves ?? kind.clears }

    /// The condition this alert raises (or, for a resolve, the one it clears): kind, upstream
    /// and subject.
    public var condition: AlertCondition {
        AlertCondition(kind: resolvedKind ?? kind, upstream: upstream, subject: subject)
    }

    /// The alert as JSON bytes (dates in ISO 8601, keys sorted).
    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(self)) ?? Data()
    }
}

extension Alert.Kind {
    /// The kind of condition an alert of this kind clears (for the same upstream and subject),
    /// if it is the natural end of one: `breaker.closed` clears `breaker.opened`,
    /// `endpoint.readmitted` clears `endpoint.ejected`, `probe.recovered` clears `probe.failing`.
    /// An alert may name another with ``Alert/resolves``.
    public var clears: Alert.Kind? {
        switch self {
        case .breakerClosed: .breakerOpened
        case .endpointReadmitted: .endpointEjected
        case .probeRecovered: .probeFailing
        default: nil
        }
    }

    /// A delivery alerted as still trying got through (resolves `delivery.still_trying`).
    public static let delivered = Alert.Kind(rawValue: "delivery.delivered")
}

/// How urgent an alert is, lowest first: a sink's `min_severity` picks the lowest it gets.
public enum AlertSeverity: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Something worth knowing that needs nobody: a circuit closed, a probe recovered.
    case info
    /// Belay is still handling it, but a person may want to look (still trying, ejected).
    case warning
    /// Needs a person now: a circuit open, a dead delivery, a failing probe.
    case critical

    private var rank: Int {
        switch self {
        case .info: 0
        case .warning: 1
        case .critical: 2
        }
    }

    public static func < (lhs: AlertSeverity, rhs: AlertSeverity) -> Bool { lhs.rank < rhs.rank }
}

/// What an alert is about, as a stable key: its kind, upstream and subject. A resolve names
/// the condition it clears; the same condition raised twice is one condition.
public struct AlertCondition: Sendable, Hashable, CustomStringConvertible {
    /// The kind of the raising alert.
    public var kind: Alert.Kind
    /// The upstream concerned.
    public var upstream: String?
    /// The thing concerned (a delivery id, an endpoint).
    public var subject: String?

    /// Creates a condition key.
    public init(kind: Alert.Kind, upstream: String?, subject: String?) {
        self.kind = kind
        self.upstream = upstream
        self.subject = subject
    }

    /// `kind upstream subject`, the same words as ``Alert/throttleKey``.
    public var description: String { "\(kind.rawValue) \(upstream ?? "") \(subject ?? "")" }
}
