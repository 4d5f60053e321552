import BelayStore
import Foundation
import Logging

/// "Still trying" by age, and the alert of a delivery whose confirmation is overdue.
extension DeliveryWorker {
    /// The store's age escalation, when `notify_after` has a duration (nil otherwise: nothing
    /// to look for).
    private var escalations: (any EscalationStore)? {
        planner.notifyAge == nil ? nil : store as? any EscalationStore
    }

    /// When "still trying" becomes due by age for a delivery whose attempt just failed: the
    /// attempt's start plus `notify_after`'s duration (the store keeps the first such instant:
    /// the first failed attempt's).
    func escalateAt(after attempt: DeliveryAttempt?, decision: DeliveryPlanner.Decision) -> Date? {
        guard let age = planner.notifyAge, let attempt, decision.status == .pending else { return nil }
        return attempt.startedAt.adding(age)
    }

    /// Alerts "still trying" for every delivery waiting between attempts whose first failed
    /// attempt was `notify_after` ago: a long gap in the schedule is not silence.
    func escalateAged() async {
        guard let escalations, let age = planner.notifyAge else { return }
        let now = wall.now()
        let due: [Delivery]
        do {
            due = try await escalations.escalateAged(upstreams: upstreams, now: now)
        } catch {
            logger.error("could not escalate deliveries by age", metadata: ["belay.error": "\(error)"])
            return
        }
        for delivery in due {
            let first = (delivery.escalateAt ?? now).adding(.zero - age)
            alert(
                Alert(
                    kind: .stillTrying,
                    severity: "warning",
                    summary: "\(delivery.upstream) delivery \(delivery.id) is still not delivered "
                        + "\(ConfigDuration.format(age)) after its first failed attempt at \(first.iso8601): "
                        + "\(delivery.attemptCount) attempts failed (last: \(delivery.lastError ?? "unknown")); "
                        + "still trying, next at \(delivery.nextAttemptAt?.iso8601 ?? "?")",
                    upstream: delivery.upstream,
                    subject: delivery.id,
                    since: first,
                    lastError: delivery.lastError,
                    nextAttemptAt: delivery.nextAttemptAt,
                    attempts: delivery.attemptCount,
                    link: "/v1/deliveries/\(delivery.id)",
                    at: now
                )
            )
        }
    }

    /// The next instant a delivery's "still trying" becomes due by age, if any.
    func nextEscalation() async -> Date? {
        guard let escalations else { return nil }
        do {
            return try await escalations.nextEscalation(upstreams: upstreams)
        } catch {
            logger.error("could not read the next escalation by age", metadata: ["belay.error": "\(error)"])
            return nil
        }
    }

    /// The alert for a delivery sent again because its acknowledgement did not come: what is
    /// unconfirmed (the delivery, its idempotency key, who should have confirmed) and since when.
    func ackOverdueAlert(for delivery: Delivery, at now: Date) -> Alert {
        let timeout = ConfigDuration.format(planner.ackTimeout(for: delivery.upstream))
        let since = delivery.deliveredAt ?? delivery.updatedAt
        let awaited =
            planner.ackSources[delivery.upstream].map { "a confirming \($0) webhook event" }
            ?? "an acknowledgement"
        return Alert(
            kind: .ackOverdue,
            severity: "warning",
            summary: "\(delivery.upstream) delivery \(delivery.id) (idempotency key \(delivery.idempotencyKey)) "
                + "is unconfirmed since its 2xx at \(since.iso8601): no \(awaited) within \(timeout); "
                + "sending it again with the same idempotency key (attempt \(delivery.scheduleStep + 1) of "
                + "\(planner.schedule.count))",
            upstream: delivery.upstream,
            subject: delivery.id,
            since: since,
            attempts: delivery.attemptCount,
            link: "/v1/deliveries/\(delivery.id)",
            at: now
        )
    }
}
