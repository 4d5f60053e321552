public import BelayAPI
public import BelayStore
import Foundation

extension IncidentJSON {
    /// The JSON of `incident`.
    public init(_ incident: Incident) {
        self.init(
            id: incident.id,
            upstream: incident.upstream,
            status: incident.status.rawValue,
            cause: incident.cause,
            drill: incident.drill,
            openedAt: incident.openedAt,
            detectedAt: incident.detectedAt,
            recoveredAt: incident.recoveredAt,
            closedAt: incident.closedAt,
            timeToDetectSeconds: Self.seconds(incident.timeToDetect),
            timeToRecoverSeconds: incident.timeToRecover.map(Self.seconds),
            timeline: incident.timeline.map { Entry(at: $0.at, event: $0.event, detail: $0.detail) },
            impact: Impact(
                failed: incident.impact.failed,
                stale: incident.impact.stale,
                fallback: incident.impact.fallback,
                queued: incident.impact.queued,
                deliveriesDelayed: incident.impact.deliveriesDelayed,
                longestDelaySeconds: Self.seconds(Double(incident.impact.longestDelayMilliseconds) / 1_000)
            )
        )
    }
}
