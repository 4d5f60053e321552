public import Foundation

/// Whether an incident is still going on.
public enum IncidentStatus: String, Sendable, Hashable, CaseIterable, Codable {
    /// The upstream is not healthy, or has not been healthy long enough to close it.
    case open
    /// The upstream was healthy for the tracker's quiet period: over.
    case closed
}

/// One line of an incident's timeline: when, what (a short stable word such as
/// `breaker.opened`), and the detail in plain words.
public struct IncidentEvent: Sendable, Hashable, Codable {
    /// When it happened.
    public var at: Date
    /// What happened, a stable word: `first_failure`, `detected`, `breaker.opened`,
    /// `first_stale`, `probe.failing`, `recovered`, `closed`, an alert's kind.
    public var event: String
    /// In plain words.
    public var detail: String

    /// Creates a timeline entry.
    public init(at: Date, event: String, detail: String) {
        self.at = at
        self.event = event
        self.detail = detail
    }
}

/// What an incident did to callers: counted while it is open, by every instance that sees it.
public struct IncidentImpact: Sendable, Hashable, Codable {
    /// Calls answered with a 5xx (the upstream's, or Belay's refusal: circuit open, timeout).
    public var failed = 0
    /// Calls answered from the stale-if-error cache.
    public var stale = 0
    /// Calls answered by the upstream's configured fallback.
    public var fallback = 0
    /// Unsafe calls accepted into the durable queue instead of failing.
    public var queued = 0
    /// Deliveries to the upstream whose attempt failed while it was open.
    public var deliveriesDelayed = 0
    /// The longest any of those deliveries waited from its first failed attempt in the
    /// incident to its delivery (or to the incident's end), in milliseconds.
    public var longestDelayMilliseconds: Int64 = 0

    /// Creates an impact of zero, or of the given counts.
    public init(
        failed: Int = 0,
        stale: Int = 0,
        fallback: Int = 0,
        queued: Int = 0,
        deliveriesDelayed: Int = 0,
        longestDelayMilliseconds: Int64 = 0
    ) {
        self.failed = failed
        self.stale = stale
        self.fallback = fallback
        self.queued = queued
        self.deliveriesDelayed = deliveriesDelayed
        self.longestDelayMilliseconds = longestDelayMilliseconds
    }

    /// Whether nothing was counted.
    public var isZero: Bool { self == IncidentImpact() }

    /// The counts added up, the longest delay the longer of the two.
    public static func + (lhs: IncidentImpact, rhs: IncidentImpact) -> IncidentImpact {
        IncidentImpact(
            failed: lhs.failed + rhs.failed,
            stale: lhs.stale + rhs.stale,
            fallback: lhs.fallback + rhs.fallback,
            queued: lhs.queued + rhs.queued,
            deliveriesDelayed: lhs.deliveriesDelayed + rhs.deliveriesDelayed,
            longestDelayMilliseconds: max(lhs.longestDelayMilliseconds, rhs.longestDelayMilliseconds)
        )
    }
}

/// A period in which an upstream was down, degraded or burning its error budget fast: opened
/// and closed by the gateway's incident tracker, one open incident per upstream at a time
/// (across every instance sharing the store).
public struct Incident: Sendable, Hashable {
    /// `inc_` and a time-ordered UUID: ids sort oldest first.
    public var id: String
    /// The upstream concerned.
    public var upstream: String
    /// Open or closed.
    public var status: IncidentStatus
    /// Why it was opened, in plain words (`circuit open: 50% or more of at least 4 calls…`).
    public var cause: String
    /// Whether a failure drill was running on the upstream when it opened.
    public var drill: Bool
    /// When the trouble began: the first failure seen before it was detected (else its detection).
    public var openedAt: Date
    /// When Belay detected it: the upstream's state turned, or a burn-rate alert fired.
    public var detectedAt: Date
    /// When the upstream was seen healthy again (cleared if it relapsed before the close).
    public var recoveredAt: Date?
    /// When it was closed: healthy for the tracker's quiet period.
    public var closedAt: Date?
    /// What happened, oldest first.
    public var timeline: [IncidentEvent]
    /// What it did to callers.
    public var impact: IncidentImpact

    /// Creates an incident.
    public init(
        id: String,
        upstream: String,
        status: IncidentStatus = .open,
        cause: String,
        drill: Bool = false,
        openedAt: Date,
        detectedAt: Date,
        recoveredAt: Date? = nil,
        closedAt: Date? = nil,
        timeline: [IncidentEvent] = [],
        impact: IncidentImpact = IncidentImpact()
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
        self.timeline = timeline
        self.impact = impact
    }

    /// From the first failure to detection.
    public var timeToDetect: TimeInterval { max(detectedAt.timeIntervalSince(openedAt), 0) }

    /// From the first failure to recovery; nil while not recovered.
    public var timeToRecover: TimeInterval? { recoveredAt.map { max($0.timeIntervalSince(openedAt), 0) } }
}

/// A change to a stored incident, applied in one transaction: timeline entries appended,
/// impact added, recovery noted or cleared, the incident closed.
public struct IncidentChange: Sendable, Hashable {
    /// What a change does to the incident's recovery.
    public enum Recovery: Sendable, Hashable {
        /// Seen healthy again at this time (kept if one is noted already).
        case recovered(Date)
        /// Unhealthy again before it closed: the recovery is cleared.
        case relapsed
    }

    /// Entries appended to the timeline.
    public var events: [IncidentEvent] = []
    /// Counts added to the impact (the longest delay: the longer one kept).
    public var impact = IncidentImpact()
    /// The recovery noted or cleared, if it changes.
    public var recovery: Recovery?
    /// Set: the incident is closed at this time (only an open one).
    public var closedAt: Date?

    /// Creates a change.
    public init(
        events: [IncidentEvent] = [],
        impact: IncidentImpact = IncidentImpact(),
        recovery: Recovery? = nil,
        closedAt: Date? = nil
    ) {
        self.events = events
        self.impact = impact
        self.recovery = recovery
        self.closedAt = closedAt
    }

    /// Whether it changes nothing.
    public var isEmpty: Bool { events.isEmpty && impact.isZero && recovery == nil && closedAt == nil }
}

/// Which incidents to list.
public struct IncidentQuery: Sendable, Hashable {
    /// Only this upstream's.
    public var upstream: String?
    /// Only open or only closed ones.
    public var status: IncidentStatus?
    /// Continue after this id (a page's ``IncidentPage/nextCursor``).
    public var cursor: String?
    /// At most this many (1…200).
    public var limit: Int

    /// Creates a query.
    public init(upstream: String? = nil, status: IncidentStatus? = nil, cursor: String? = nil, limit: Int = 50) {
        self.upstream = upstream
        self.status = status
        self.cursor = cursor
        self.limit = limit
    }
}

/// A page of incidents, newest first.
public struct IncidentPage: Sendable, Hashable {
    /// The incidents, with their timelines.
    public var incidents: [Incident]
    /// The cursor of the next page; nil on the last.
    public var nextCursor: String?

    /// Creates a page.
    public init(incidents: [Incident], nextCursor: String?) {
        self.incidents = incidents
        self.nextCursor = nextCursor
    }
}

/// Incidents, kept for postmortems. SQLite and PostgreSQL implement it alike; with
/// PostgreSQL every instance sees, extends and closes the same incidents.
public protocol IncidentStore: Sendable {
    /// Stores `incident` (open, its timeline with it) unless its upstream has an open incident
    /// already; returns the open incident (the one stored, or the one found, with its timeline)
    /// and whether it was this call that opened it. Two instances opening one at once: one wins,
    /// the other gets the winner's.
    func openIncident(_ incident: Incident) async throws(StoreError) -> (incident: Incident, opened: Bool)

    /// Applies `change` to incident `id` in one transaction; false if there is none. A change to
    /// a closed incident only appends to its timeline and adds to its impact.
    @discardableResult
    func updateIncident(id: String, _ change: IncidentChange) async throws(StoreError) -> Bool

    /// One incident with its timeline.
    func incident(id: String) async throws(StoreError) -> Incident?

    /// The open incident of `upstream`, if any.
    func openIncident(upstream: String) async throws(StoreError) -> Incident?

    /// A page of incidents, newest first.
    func incidents(_ query: IncidentQuery) async throws(StoreError) -> IncidentPage

    /// Deletes up to `limit` incidents closed before `date`, oldest first, with their
    /// timelines, in one transaction. Returns how many; fewer than `limit`: none is left.
    func purgeIncidents(closedBefore date: Date, limit: Int) async throws(StoreError) -> Int
}
