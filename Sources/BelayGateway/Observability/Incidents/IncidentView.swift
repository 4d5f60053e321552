public import BelayStore
public import Foundation

/// An incident as `GET /v1/incidents/{id}` answers it (DESIGN.md's shape), decoded again by
/// `belay incidents`.
public struct IncidentJSON: Codable, Sendable, Hashable {
    /// One timeline entry.
    public struct Entry: Codable, Sendable, Hashable {
        public var at: Date
        public var event: String
        public var detail: String
    }

    /// What it did to callers.
    public struct Impact: Codable, Sendable, Hashable {
        public var failed: Int
        public var stale: Int
        public var fallback: Int
        public var queued: Int
        public var deliveriesDelayed: Int
        public var longestDelaySeconds: Double

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

    /// The JSON of `incident`.
    public init(_ incident: Incident) {
        id = incident.id
        upstream = incident.upstream
        status = incident.status.rawValue
        cause = incident.cause
        drill = incident.drill
        openedAt = incident.openedAt
        detectedAt = incident.detectedAt
        recoveredAt = incident.recoveredAt
        closedAt = incident.closedAt
        timeToDetectSeconds = Self.seconds(incident.timeToDetect)
        timeToRecoverSeconds = incident.timeToRecover.map(Self.seconds)
        timeline = incident.timeline.map { Entry(at: $0.at, event: $0.event, detail: $0.detail) }
        impact = Impact(
            failed: incident.impact.failed,
            stale: incident.impact.stale,
            fallback: incident.impact.fallback,
            queued: incident.impact.queued,
            deliveriesDelayed: incident.impact.deliveriesDelayed,
            longestDelaySeconds: Self.seconds(Double(incident.impact.longestDelayMilliseconds) / 1_000)
        )
        link = "/v1/incidents/\(incident.id)"
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
    static func seconds(_ value: TimeInterval) -> Double { (value * 1_000).rounded() / 1_000 }
}

/// `GET /v1/incidents`: a page, newest first.
public struct IncidentListJSON: Codable, Sendable, Hashable {
    public var incidents: [IncidentJSON]
    public var nextCursor: String?

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

extension IncidentJSON {
    /// The encoder and decoder of the incident routes: ISO 8601 dates with milliseconds.
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.iso8601)
        }
        return encoder
    }

    /// Reads what ``encoder()`` wrote (with or without fractional seconds).
    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) {
                return date
            }
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle()) { return date }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
        }
        return decoder
    }
}
