import BelayStore
import Foundation

/// How audit records look in the management API's JSON (docs/audit.md).
enum AuditView {
    /// A record with its attempts and decisions.
    static func record(_ record: AuditRecord) -> [String: Any] {
        var view: [String: Any] = [
            "id": record.requestID,
            "upstream": record.upstream,
            "method": record.method,
            "path": record.path,
            "received_at": record.receivedAt.iso8601,
            "duration_ms": rounded(record.durationMilliseconds),
            "status": record.status,
            "outcome": record.outcome,
            "location": "/v1/requests/\(record.requestID)",
        ]
        if let consumer = record.consumer { view["consumer"] = consumer }
        if let correlationID = record.correlationID { view["correlation_id"] = correlationID }
        if let problem = record.problem { view["problem"] = problem }
        if let stale = record.staleAgeMilliseconds { view["stale_age_s"] = Double(stale) / 1_000 }
        view["attempts"] = record.attempts.map { attempt -> [String: Any] in
            var item: [String: Any] = [
                "number": attempt.number,
                "endpoint": attempt.endpoint,
                "started_ms": rounded(attempt.startedMilliseconds),
                "duration_ms": rounded(attempt.durationMilliseconds),
            ]
            if let status = attempt.status { item["status"] = status }
            if let failure = attempt.failure { item["failure"] = failure }
            if !attempt.skipped.isEmpty { item["skipped"] = attempt.skipped }
            return item
        }
        view["decisions"] = record.decisions.map { decision -> [String: Any] in
            ["attempt": decision.attempt, "kind": decision.kind, "description": decision.description]
        }
        return view
    }

    /// Milliseconds to the microsecond.
    private static func rounded(_ milliseconds: Double) -> Double {
        (milliseconds * 1_000).rounded() / 1_000
    }
}
