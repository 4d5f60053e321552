import Belay
import BelayStore
import Foundation

/// What the tracker knows of one upstream between two evaluations.
struct Track: Sendable {
    /// The first failure of the current run of failures, and its words.
    var firstTrouble: Date?
    var firstTroubleDetail: String?
    /// The last failure: a run ends ``IncidentTracker/Configuration/failureRun`` after it.
    var lastTrouble: Date?
    /// The earliest `since` of a warning or critical alert heard in the run (a probe failing
    /// since its first failed probe, when no call failed).
    var earliestSign: Date?
    /// Since when the error budget burns fast (a `slo.fast_burn` alert, until its end).
    var fastBurnSince: Date?
    var fastBurnCause: String?
    /// Counted and noted since the last write.
    var impact = IncidentImpact()
    var events: [IncidentEvent] = []
    /// Entries left out (over the timeline limit) since the last write.
    var omitted = 0
    /// Entries this instance added to the open incident (or to the run).
    var noted = 0
    /// The once-per-incident entries noted already (`first_stale`, `first_fallback`, `first_queued`).
    var firsts: Set<String> = []
    /// Delayed deliveries: id → first failed attempt in the incident.
    var delayed: [String: Date] = [:]
    /// The incident this instance writes to.
    var open: OpenIncident?

    /// A failed (or retried, or stale) call at `at`.
    mutating func trouble(at: Date, detail: String, run: Duration) {
        if let last = lastTrouble, at.timeIntervalSince(last) > run.inSeconds, open == nil {
            forgetRun()
        }
        if firstTrouble == nil {
            firstTrouble = at
            firstTroubleDetail = detail
        }
        lastTrouble = max(lastTrouble ?? at, at)
    }

    /// Notes `event` the first time it happens in the incident (or the run that may become one).
    mutating func noteFirst(_ event: String, at: Date, detail: @autoclosure () -> String, limit: Int) {
        guard firsts.insert(event).inserted else { return }
        note(IncidentEvent(at: at, event: event, detail: detail()), limit: limit)
    }

    /// Notes a timeline entry, or counts it when over `limit`.
    mutating func note(_ event: IncidentEvent, limit: Int) {
        if noted < limit {
            events.append(event)
            noted += 1
        } else {
            omitted += 1
        }
    }

    /// A run of failures that never became an incident: forgotten.
    mutating func forgetRun() {
        firstTrouble = nil
        firstTroubleDetail = nil
        lastTrouble = nil
        earliestSign = nil
        impact = IncidentImpact()
        events = []
        omitted = 0
        noted = 0
        firsts = []
        delayed = [:]
    }

    /// What an evaluation decides, given the upstream's health now; takes what is to be
    /// written out of the track.
    mutating func step<C: Clock>(
        upstream: String,
        report: UpstreamHealthReport?,
        unhealthy: Bool,
        now: Date,
        configuration: IncidentTracker<C>.Configuration
    ) -> Step where C.Duration == Duration {
        let burning = fastBurnSince != nil
        guard var incident = open else {
            guard unhealthy || burning else {
                // Healthy and no incident: a run of failures that ended is forgotten (alerts
                // heard outside any run go with it); one that goes on starts at its failures of
                // the last `failureRun`, so that a trickle of errors does not date an incident
                // hours back.
                let run = configuration.failureRun.inSeconds
                if let last = lastTrouble ?? events.last?.at, now.timeIntervalSince(last) > run {
                    forgetRun()
                } else if let first = firstTrouble, now.timeIntervalSince(first) > run {
                    firstTrouble = lastTrouble
                    impact = IncidentImpact()
                    earliestSign = nil
                    events.removeAll { now.timeIntervalSince($0.at) > run }
                    noted = events.count
                }
                return .nothing
            }
            let state = report?.state
            let detectedAt: Date
            let cause: String
            if let report, unhealthy {
                detectedAt = min(report.since, now)
                // The reason says the state itself: `down — circuit open since 10:23 UTC, …`.
                cause = report.reason.isEmpty ? report.state.rawValue : report.reason
            } else {
                detectedAt = fastBurnSince ?? now
                cause = fastBurnCause ?? "the error budget burns fast"
            }
            let openedAt = min(firstTrouble ?? detectedAt, earliestSign ?? detectedAt, detectedAt)
            var timeline: [IncidentEvent] = []
            if openedAt < detectedAt {
                timeline.append(
                    IncidentEvent(
                        at: openedAt,
                        event: "first_failure",
                        detail: firstTroubleDetail ?? "first sign of trouble"
                    )
                )
            }
            let detected = IncidentEvent(at: detectedAt, event: "detected", detail: "\(upstream) is \(cause)")
            // What was heard before comes before the detection it led to (entries of one instant
            // keep the order they were written in).
            let taken = takeEvents()
            let opening = Opening(
                cause: cause,
                openedAt: openedAt,
                detectedAt: detectedAt,
                state: state,
                events: timeline + taken + [detected],
                joinEvents: [detected] + taken,
                impact: impact
            )
            impact = IncidentImpact()
            // Recorded at once, so that a second evaluation before the store answers does not
            // open another; the real id is set when it answers.
            open = OpenIncident(id: "", state: state, lastTroubledAt: now)
            return .open(opening)
        }
        guard !incident.id.isEmpty else { return .nothing }
        var change = IncidentChange()
        var closing = false
        if let state = report?.state, state != incident.state, unhealthy, incident.healthySince == nil {
            // Worse, or better but not healthy: the timeline says so.
            if let previous = incident.state {
                note(
                    IncidentEvent(
                        at: report?.since ?? now,
                        event: "state.\(state.rawValue)",
                        detail: "\(previous.rawValue) → \(state.rawValue): \(report?.reason ?? "")"
                    ),
                    limit: configuration.timelineLimit
                )
            }
            incident.state = state
        }
        if unhealthy || burning {
            incident.lastTroubledAt = now
            if let since = incident.healthySince {
                incident.healthySince = nil
                change.recovery = .relapsed
                note(
                    IncidentEvent(
                        at: now,
                        event: "relapsed",
                        detail: "\(report?.state.rawValue ?? "burning") again after "
                            + "\(HealthWords.span(.seconds(now.timeIntervalSince(since)))) healthy: \(report?.reason ?? "")"
                    ),
                    limit: configuration.timelineLimit
                )
                incident.state = report?.state
            }
        } else if let since = incident.healthySince {
            if now.timeIntervalSince(since) >= configuration.closeAfter.inSeconds {
                closing = true
                change.closedAt = now
                for (_, first) in delayed {
                    impact.longestDelayMilliseconds = max(
                        impact.longestDelayMilliseconds,
                        Int64(max(now.timeIntervalSince(first), 0) * 1_000)
                    )
                }
                events.append(
                    IncidentEvent(
                        at: now,
                        event: "closed",
                        detail: "closed after \(HealthWords.span(configuration.closeAfter)) healthy"
                    )
                )
            }
        } else {
            // Healthy since the state says, but not before it was last seen in trouble.
            let at = min(max(report?.since ?? now, incident.lastTroubledAt ?? .distantPast), now)
            incident.healthySince = at
            change.recovery = .recovered(at)
            note(
                IncidentEvent(
                    at: at,
                    event: "recovered",
                    detail: "healthy again: \(report?.reason ?? "answering normally")"
                ),
                limit: configuration.timelineLimit
            )
        }
        change.events = takeEvents()
        change.impact = impact
        impact = IncidentImpact()
        if closing {
            open = nil
            forgetRun()
        } else {
            open = incident
        }
        return .update(id: incident.id, change: change, closing: closing)
    }

    /// The entries noted since the last write, with a last one counting those left out.
    private mutating func takeEvents() -> [IncidentEvent] {
        var taken = events
        if omitted > 0, let last = taken.last ?? events.last {
            taken.append(
                IncidentEvent(
                    at: last.at,
                    event: "omitted",
                    detail: "\(omitted) more entries were left out of the timeline"
                )
            )
        }
        events = []
        omitted = 0
        return taken
    }

    /// An opening the store refused: what it carried is counted again, and the next
    /// evaluation tries again.
    mutating func restore(_ opening: Opening) {
        if open?.id.isEmpty == true { open = nil }
        impact = opening.impact + impact
        events = opening.events.filter { $0.event != "detected" && $0.event != "first_failure" } + events
    }

    /// A change the store refused: kept for the next write. A close is tried again: the
    /// incident counts as healthy since long enough, so the next healthy evaluation closes it.
    mutating func restore(_ change: IncidentChange, id: String, closing: Bool, closeAfter: Duration) {
        impact = change.impact + impact
        events = change.events.filter { $0.event != "closed" } + events
        if closing, open == nil, let closedAt = change.closedAt {
            open = OpenIncident(id: id, state: nil, healthySince: closedAt.addingTimeInterval(-closeAfter.inSeconds))
        }
    }
}

/// The incident an instance writes to: its id (empty while the store has not answered), the
/// state last seen, and since when it is healthy.
struct OpenIncident: Sendable {
    var id: String
    var state: HealthState?
    var healthySince: Date?
    /// The last evaluation that saw it unhealthy (or burning).
    var lastTroubledAt: Date?
}

/// An incident to open: what the store gets.
struct Opening: Sendable {
    var cause: String
    var openedAt: Date
    var detectedAt: Date
    var state: HealthState?
    /// The timeline of a new incident.
    var events: [IncidentEvent]
    /// What this instance adds to one another instance opened first.
    var joinEvents: [IncidentEvent]
    var impact: IncidentImpact
}

/// What one evaluation of an upstream decided.
enum Step: Sendable {
    case nothing
    case open(Opening)
    case update(id: String, change: IncidentChange, closing: Bool)
}
