public import Foundation

/// A failure drill (`POST`, `DELETE` and `GET /v1/upstreams/{name}/faults`).
public struct DrillView: Codable, Sendable, Equatable {
    /// `drl_` and hex digits.
    public var id: String
    public var upstream: String
    /// `error`, `latency`, `reset` or `outage`.
    public var kind: String
    /// The share of calls it hits, 0–1.
    public var ratio: Double
    /// The status an `error` drill answers with.
    public var status: Int?
    /// The delay a `latency` drill adds.
    public var latencyMs: Double?
    /// The fault in words: `500ms added to every attempt`.
    public var summary: String
    public var durationSeconds: Double
    public var startedAt: Date
    /// The consumer that started it.
    public var startedBy: String
    public var endsAt: Date
    public var active: Bool
    /// When it ended; sent as `null` while it runs.
    public var endedAt: Date?
    /// `expired` or `deleted`; sent as `null` while it runs.
    public var ending: String?
    /// Who ended it early; sent as `null` otherwise.
    public var endedBy: String?

    public init(
        id: String,
        upstream: String,
        kind: String,
        ratio: Double,
        summary: String,
        durationSeconds: Double,
        startedAt: Date,
        startedBy: String,
        endsAt: Date,
        active: Bool
    ) {
        self.id = id
        self.upstream = upstream
        self.kind = kind
        self.ratio = ratio
        self.summary = summary
        self.durationSeconds = durationSeconds
        self.startedAt = startedAt
        self.startedBy = startedBy
        self.endsAt = endsAt
        self.active = active
    }

    enum CodingKeys: String, CodingKey {
        case id, upstream, kind, ratio, status, summary, active, ending
        case latencyMs = "latency_ms"
        case durationSeconds = "duration_seconds"
        case startedAt = "started_at"
        case startedBy = "started_by"
        case endsAt = "ends_at"
        case endedAt = "ended_at"
        case endedBy = "ended_by"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(upstream, forKey: .upstream)
        try container.encode(kind, forKey: .kind)
        try container.encode(ratio, forKey: .ratio)
        try container.encodeIfPresent(status, forKey: .status)
        try container.encodeIfPresent(latencyMs, forKey: .latencyMs)
        try container.encode(summary, forKey: .summary)
        try container.encode(durationSeconds, forKey: .durationSeconds)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(startedBy, forKey: .startedBy)
        try container.encode(endsAt, forKey: .endsAt)
        try container.encode(active, forKey: .active)
        try container.encode(endedAt, forKey: .endedAt)
        try container.encode(ending, forKey: .ending)
        try container.encode(endedBy, forKey: .endedBy)
    }
}

/// An upstream's drills (`GET /v1/upstreams/{name}/faults`): the one in force, then the ended
/// ones, newest first.
public struct DrillList: Codable, Sendable, Equatable {
    public var upstream: String
    /// The drill in force; sent as `null` when none is.
    public var active: DrillView?
    public var drills: [DrillView]

    public init(upstream: String, active: DrillView?, drills: [DrillView]) {
        self.upstream = upstream
        self.active = active
        self.drills = drills
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(upstream, forKey: .upstream)
        try container.encode(active, forKey: .active)
        try container.encode(drills, forKey: .drills)
    }

    enum CodingKeys: String, CodingKey {
        case upstream, active, drills
    }
}
