import Belay
import BelayAPI
import BelayHTTP
public import BelayStore
import Foundation
import HTTPTypes

/// The audit trail's management API: one request's trail, and pages of them. Routes call it
/// and only translate HTTP; the behaviour is here.
public struct AuditService<C: Clock>: Sendable where C.Duration == Duration {
    /// The store.
    public let store: any AuditStore
    let recorder: AuditRecorder<C>?
    let wall: WallClock<C>

    /// - Parameters:
    ///   - recorder: the writer, if the audit trail is enabled: a request looked up by id
    ///     and not found yet is looked up again after it has written what it holds, so a
    ///     trail can be read as soon as its request has been answered.
    ///   - wall: calendar time, for `since` given as a duration (`15m`: the last 15 minutes).
    public init(store: any AuditStore, recorder: AuditRecorder<C>?, wall: WallClock<C>) {
        self.store = store
        self.recorder = recorder
        self.wall = wall
    }

    /// `GET /v1/requests/{id}`: the request with this id, with its attempts and decisions.
    /// With a `viewer` (a consumer without `admin`), only its own requests are found: another
    /// consumer's is a 404, as if it did not exist.
    public func show(_ id: String, requestID: String, viewer: String? = nil) async -> APIAnswer {
        do {
            // Asked before the lookup too: a request answered before this one arrived is then
            // written (found), or buffered or being written (flushed below, found then). Asked
            // only after, a write that committed during the lookup was missed by both.
            let pending = recorder?.hasBuffered ?? false
            var found = try await store.auditRecord(requestID: id)
            if found == nil, let recorder, pending || recorder.hasBuffered {
                await recorder.flush()
                found = try await store.auditRecord(requestID: id)
            }
            guard let record = found, viewer == nil || record.consumer == viewer else {
                return .problem(
                    ProblemDetails(.notFound, detail: "no proxied request has the id '\(id)'", requestID: requestID)
                )
            }
            return .json(200, AuditView.record(record))
        } catch {
            return storeFailure(error, requestID: requestID)
        }
    }

    /// `GET /v1/requests?upstream=&outcome=&since=&correlation_id=&limit=&cursor=`: a page,
    /// newest first; with a `viewer`, only its own requests.
    public func list(_ parameters: [String: String], requestID: String, viewer: String? = nil) async -> APIAnswer {
        var query = AuditQuery()
        query.upstream = parameters["upstream"]
        query.correlationID = parameters["correlation_id"]
        query.consumer = viewer
        if let outcome = parameters["outcome"] {
            guard ProxyExchange.outcomes.contains(outcome) else {
                return invalid(
                    "outcome",
                    "outcome must be success, client_error, server_error, stale or a problem code such as "
                        + "circuit-open or timeout (got '\(outcome)')",
                    requestID: requestID
                )
            }
            query.outcome = outcome
        }
        if let cursor = parameters["cursor"] {
            guard Int64(cursor).map({ $0 > 0 }) == true else {
                return invalid(
                    "cursor",
                    "cursor must be the next_cursor of a previous page (got '\(cursor)')",
                    requestID: requestID
                )
            }
            query.cursor = cursor
        }
        if let since = parameters["since"] {
            guard let date = Self.date(since, now: wall.now()) else {
                return invalid(
                    "since",
                    "since must be a date-time such as 2026-11-24T10:00:00Z or a duration back from now such as "
                        + "15m or 2h (got '\(since)')",
                    requestID: requestID
                )
            }
            query.since = date
        }
        if let limit = parameters["limit"] {
            guard let value = Int(limit), (1...500).contains(value) else {
                return invalid(
                    "limit",
                    "limit must be a whole number from 1 to 500 (got '\(limit)')",
                    requestID: requestID
                )
            }
            query.limit = value
        }
        do {
            let page = try await store.auditRecords(query)
            return .json(
                200,
                AuditRequestPage(requests: page.records.map(AuditView.record), nextCursor: page.nextCursor)
            )
        } catch {
            return storeFailure(error, requestID: requestID)
        }
    }

    /// An RFC 3339 date-time (fractional seconds optional), or a duration back from `now`.
    static func date(_ text: String, now: Date) -> Date? {
        if let duration = ConfigDuration.parse(text) {
            return now.addingTimeInterval(-duration.inSeconds)
        }
        return RFC3339.date(text)
    }

    private func invalid(_ field: String, _ detail: String, requestID: String) -> APIAnswer {
        .invalid(field, detail, requestID: requestID)
    }

    private func storeFailure(_ error: any Error, requestID: String) -> APIAnswer {
        .storeFailure(error, store: "audit", requestID: requestID)
    }
}
