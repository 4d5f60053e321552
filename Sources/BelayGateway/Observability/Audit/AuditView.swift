import BelayAPI
import BelayStore
import Foundation

/// How audit records look in the management API (docs/audit.md; the ``BelayAPI`` types).
enum AuditView {
    /// A record with its attempts and decisions.
    static func record(_ record: AuditRecord) -> AuditRequestView {
        var view = AuditRequestView(
            id: record.requestID,
            upstream: record.upstream,
            method: record.method,
            path: record.path,
            receivedAt: record.receivedAt,
            durationMs: rounded(record.durationMilliseconds),
            status: record.status,
            outcome: record.outcome,
            attempts: record.attempts.map { attempt in
                AuditRequestView.Attempt(
                    number: attempt.number,
                    endpoint: attempt.endpoint,
                    startedMs: rounded(attempt.startedMilliseconds),
                    durationMs: rounded(attempt.durationMilliseconds),
                    status: attempt.status,
                    failure: attempt.failure,
                    skipped: attempt.skipped.isEmpty ? nil : attempt.skipped
                )
            },
            decisions: record.decisions.map {
                AuditRequestView.Decision(attempt: $0.attempt, kind: $0.kind, description: $0.description)
            }
        )
        view.consumer = record.consumer
        view.correlationID = record.correlationID
        view.problem = record.problem
        view.staleAgeSeconds = record.staleAgeMilliseconds.map { Double($0) / 1_000 }
        return view
    }

    /// Milliseconds to the microsecond.
    private static func rounded(_ milliseconds: Double) -> Double {
        (milliseconds * 1_000).rounded() / 1_000
    }
}
