public import Foundation

/// An incident as `GET /v1/incidents/{id}` answers it (DESIGN.md's shape), decoded again by
/// `belay incidents` (with ``ManagementJSON``).
public struct IncidentJSON: Codable, Sendable, Hashable {
    /// One timeline entry.
    public struct Entry: Codable, Sendable, Hashable {
        public var at: Date
        public var event: String
        public var detail: String

        public init(at: Date, event: String, detail: String) {
            self.at = at
            self.event = event
            self.detail = detail
        }
    }

    /// What it did to callers.
    public struct Impact: Codable, Sendable, Hashable {
        public var failed: Int
        public var stale: Int
        public var fallback: Int
        public var queued: Int
        public var deliveriesDelayed: Int
        public var longestDelaySeconds: Double

        public init(
            failed: Int,
            stale: Int,
            fallback: Int,
            queued: Int,
            deliveriesDelayed: Int,
            longestDelaySeconds: Double
        ) {
            self.failed = failed
            self.stale = stale
            self.fallback = fallback
            self.queued = queued
            self.deliveriesDelayed = deliveriesDelayed
            self.longestDelaySeconds = longestDelaySeconds
        }

        enum CodingKeys: String, CodingKey {
            case failed, stale, fallback, queued
            case deliveriesDelayed = "deliveries_delayed"
            case longestDelaySeconds = "longest_delay_s"
        }
    }

    public var id: String
    public var upstream: String
    public var status: String
    public var cause: String
    public var drill: Bool
    public var openedAt: Date
    public var detectedAt: Date
    public var recoveredAt: Date?
    public var closedAt: Date?
    public var timeToDetectSeconds: Double
    public var timeToRecoverSeconds: Double?
    public var timeline: [Entry]
    public var impact: Impact
    public var link: String

    public init(
        id: String,
        upstream: String,
        status: String,
        cause: String,
        drill: Bool,
        openedAt: Date,
        detectedAt: Date,
        recoveredAt: Date?,
        closedAt: Date?,
        timeToDetectSeconds: Double,
        timeToRecoverSeconds: Double?,
        timeline: [Entry],
        impact: Impact
    ) {
        self.id = id
        self.upstream = upstream
        self.status = status
        self.cause = cause
        self.drill = drill
        self.openedAt = openedAt
        self.detectedAt = detectedAt
        self.recoveredAt = recoveredAt
        self.closedAt = closedAt
        self.timeToDetectSeconds = timeToDetectSeconds
        self.timeToRecoverSeconds = timeToRecoverSeconds
        self.timeline = timeline
        self.impact = impact
        self.link = "/v1/incidents/\(id)"
    }

    enum CodingKeys: String, CodingKey {
        case id, upstream, status, cause, drill
        case openedAt = "opened_at"
        case detectedAt = "detected_at"
        case recoveredAt = "recovered_at"
        case closedAt = "closed_at"
        case timeToDetectSeconds = "time_to_detect_s"
        case timeToRecoverSeconds = "time_to_recover_s"
        case timeline, impact, link
    }

    // Nulls are written, not left out: every key of the documented shape is always there.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(upstream, forKey: .upstream)
        try container.encode(status, forKey: .status)
        try container.encode(cause, forKey: .cause)
        try container.encode(drill, forKey: .drill)
        try container.encode(openedAt, forKey: .openedAt)
        try container.encode(detectedAt, forKey: .detectedAt)
        try container.encode(recoveredAt, forKey: .recoveredAt)
        try container.encode(closedAt, forKey: .closedAt)
        try container.encode(timeToDetectSeconds, forKey: .timeToDetectSeconds)
        try container.encode(timeToRecoverSeconds, forKey: .timeToRecoverSeconds)
        try container.encode(timeline, forKey: .timeline)
        try container.encode(impact, forKey: .impact)
        try container.encode(link, forKey: .link)
    }

    /// Seconds to the millisecond.
    public static func seconds(_ value: TimeInterval) -> Double { (value * 1_000).rounded() / 1_000 }
}

/// `GET /v1/incidents`: a page, newest first.
public struct IncidentListJSON: Codable, Sendable, Hashable {
    public var incidents: [IncidentJSON]
    public var nextCursor: String?

    public init(incidents: [IncidentJSON], nextCursor: String?) {
        self.incidents = incidents
        self.nextCursor = nextCursor
    }

    enum CodingKeys: String, CodingKey {
        case incidents
        case nextCursor = "next_cursor"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(incidents, forKey: .incidents)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}
