import Foundation

/// One value of a copied row, typed as the PostgreSQL column takes it.
enum CopyValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
    case boolean(Bool)

    /// The bytes it holds, as far as a batch's memory budget is concerned.
    var size: Int {
        switch self {
        case .null, .boolean: 1
        case .integer, .real: 8
        case .text(let text): text.utf8.count
        case .blob(let data): data.count
        }
    }
}

/// One column of a copied table: its name in PostgreSQL, the SQLite expression that reads it
/// and the PostgreSQL type it is bound as.
struct CopyColumn: Sendable {
    enum Kind: Sendable {
        case integer, real, text, blob, boolean
    }

    var name: String
    var source: String
    var kind: Kind

    init(_ name: String, _ kind: Kind, source: String? = nil) {
        self.name = name
        self.source = source ?? name
        self.kind = kind
    }
}

/// How one table is copied: which columns, in which order the source is read (its keyed
/// batches), and which columns identify a row on both sides (to tell the rows of an
/// interrupted copy of the same source from anyone else's).
struct CopyTable: Sendable {
    /// Which table.
    var table: StoreCopy.Table
    /// Every column written, in the order of the rows' values.
    var columns: [CopyColumn]
    /// The SQLite expressions that order the source and resume after a batch: unique, and
    /// the order rows were written in where that matters (`rowid`, `seq`).
    var cursor: [CopyColumn]
    /// The columns that identify a row on both sides, and change when it does; the first
    /// `lookupCount` of them are a unique key of the PostgreSQL table (the target is paged and
    /// the source searched by them).
    var identity: [CopyColumn]
    var lookupCount: Int
    /// The table has a `GENERATED ALWAYS AS IDENTITY` column `seq` that the copy writes
    /// explicitly (`OVERRIDING SYSTEM VALUE`), then moves its sequence past the largest value.
    var setsIdentity: Bool

    var name: String { table.rawValue }

    /// The tables in the order they are copied: a row's references are copied before it.
    static let all: [CopyTable] = [
        deliveries, deliveryAttempts, webhookEvents, webhookBodyDigests, auditRequests, incidents, incidentEvents,
    ]

    /// Deliveries in SQLite `rowid` order, the `rowid` kept as PostgreSQL's `seq`: the order
    /// an ordering key's deliveries go out in (both stores compare it) is the same afterwards.
    ///
    /// One `in_flight` is copied as `pending`, due at the copy's `{now}`, its lease owner gone
    /// and its fencing token kept: what SQLite's own start after a stop does
    /// (``SQLiteStore/releaseAbandoned(now:)``), since the process that held the lease is gone.
    static let deliveries = CopyTable(
        table: .deliveries,
        columns: [
            CopyColumn("seq", .integer, source: "rowid"),
            CopyColumn("id", .text),
            CopyColumn("upstream", .text),
            CopyColumn("method", .text),
            CopyColumn("path", .text),
            CopyColumn("headers", .text),
            CopyColumn("body", .blob),
            CopyColumn("idempotency_key", .text),
            CopyColumn("caller_key", .text),
            CopyColumn("fingerprint", .text),
            CopyColumn("require_ack", .boolean),
            CopyColumn("status", .text, source: released("'pending'", else: "status")),
            CopyColumn("attempt_count", .integer),
            CopyColumn("schedule_step", .integer),
            CopyColumn("due_at", .integer, source: released("{now}", else: "due_at")),
            CopyColumn("created_at", .integer),
            CopyColumn("updated_at", .integer, source: released("{now}", else: "updated_at")),
            CopyColumn("delivered_at", .integer),
            CopyColumn("acknowledged_at", .integer),
            CopyColumn("last_error", .text),
            CopyColumn("escalated", .boolean),
            CopyColumn("lease_owner", .text, source: released("NULL", else: "lease_owner")),
            CopyColumn("lease_token", .integer),
            CopyColumn("consumer", .text),
            CopyColumn("ack_received_at", .integer),
            CopyColumn("ordering_key", .text),
            CopyColumn("ack_event", .text),
            CopyColumn("ack_rejection", .text),
            CopyColumn("escalate_at", .integer),
        ],
        cursor: [CopyColumn("rowid", .integer)],
        // What any change to a delivery changes too (a claim moves its lease token), so a
        // delivery that changed in SQLite after an interrupted copy wrote it is told apart.
        identity: [
            CopyColumn("id", .text),
            CopyColumn("seq", .integer, source: "rowid"),
            CopyColumn("status", .text, source: released("'pending'", else: "status")),
            CopyColumn("lease_token", .integer),
            CopyColumn("attempt_count", .integer),
            CopyColumn("caller_key", .text),
            CopyColumn("acknowledged_at", .integer),
            CopyColumn("ack_received_at", .integer),
        ],
        lookupCount: 1,
        setsIdentity: true
    )

    /// `value` for a delivery in flight, else `column`.
    private static func released(_ value: String, else column: String) -> String {
        "CASE WHEN status = 'in_flight' THEN \(value) ELSE \(column) END"
    }

    static let deliveryAttempts = CopyTable(
        table: .deliveryAttempts,
        columns: [
            CopyColumn("seq", .integer),
            CopyColumn("delivery_id", .text),
            CopyColumn("number", .integer),
            CopyColumn("started_at", .integer),
            CopyColumn("duration_ms", .integer),
            CopyColumn("endpoint", .text),
            CopyColumn("status_code", .integer),
            CopyColumn("error_class", .text),
            CopyColumn("decision", .text),
            CopyColumn("kind", .text),
        ],
        cursor: [CopyColumn("seq", .integer)],
        identity: [CopyColumn("seq", .integer), CopyColumn("delivery_id", .text)],
        lookupCount: 1,
        setsIdentity: true
    )

    static let webhookEvents = CopyTable(
        table: .webhookEvents,
        columns: [
            CopyColumn("id", .text),
            CopyColumn("source", .text),
            CopyColumn("event_id", .text),
            CopyColumn("headers", .text),
            CopyColumn("body", .blob),
            CopyColumn("received_at", .integer),
            CopyColumn("delivery_id", .text),
        ],
        cursor: [CopyColumn("rowid", .integer)],
        identity: [
            CopyColumn("id", .text), CopyColumn("source", .text), CopyColumn("event_id", .text),
            CopyColumn("delivery_id", .text),
        ],
        lookupCount: 1,
        setsIdentity: false
    )

    static let webhookBodyDigests = CopyTable(
        table: .webhookBodyDigests,
        columns: [
            CopyColumn("source", .text),
            CopyColumn("digest", .text),
            CopyColumn("event_id", .text),
            CopyColumn("expires_at", .integer),
        ],
        cursor: [CopyColumn("source", .text), CopyColumn("digest", .text)],
        identity: [
            CopyColumn("source", .text), CopyColumn("digest", .text), CopyColumn("event_id", .text),
            CopyColumn("expires_at", .integer),
        ],
        lookupCount: 2,
        setsIdentity: false
    )

    /// Audit records in `seq` order, `seq` kept: it is the page cursor of `GET /v1/requests`.
    static let auditRequests = CopyTable(
        table: .auditRequests,
        columns: [
            CopyColumn("seq", .integer),
            CopyColumn("request_id", .text),
            CopyColumn("upstream", .text),
            CopyColumn("consumer", .text),
            CopyColumn("method", .text),
            CopyColumn("path", .text),
            CopyColumn("received_at", .integer),
            CopyColumn("duration_ms", .real),
            CopyColumn("status", .integer),
            CopyColumn("outcome", .text),
            CopyColumn("problem", .text),
            CopyColumn("stale_age_ms", .integer),
            CopyColumn("trail", .text),
            CopyColumn("size", .integer),
            CopyColumn("correlation_id", .text),
        ],
        cursor: [CopyColumn("seq", .integer)],
        identity: [CopyColumn("seq", .integer), CopyColumn("request_id", .text)],
        lookupCount: 1,
        setsIdentity: true
    )
}

extension CopyTable {
    /// Incidents in `rowid` order; what changes as one goes on (its impact, its recovery, its
    /// close) is in its identity, so one that changed after an interrupted copy is told apart.
    static let incidents = CopyTable(
        table: .incidents,
        columns: [
            CopyColumn("id", .text),
            CopyColumn("upstream", .text),
            CopyColumn("status", .text),
            CopyColumn("cause", .text),
            CopyColumn("drill", .boolean),
            CopyColumn("opened_at", .integer),
            CopyColumn("detected_at", .integer),
            CopyColumn("recovered_at", .integer),
            CopyColumn("closed_at", .integer),
            CopyColumn("failed", .integer),
            CopyColumn("stale", .integer),
            CopyColumn("fallback", .integer),
            CopyColumn("queued", .integer),
            CopyColumn("deliveries_delayed", .integer),
            CopyColumn("longest_delay_ms", .integer),
        ],
        cursor: [CopyColumn("rowid", .integer)],
        identity: [
            CopyColumn("id", .text), CopyColumn("status", .text), CopyColumn("recovered_at", .integer),
            CopyColumn("closed_at", .integer), CopyColumn("failed", .integer), CopyColumn("stale", .integer),
            CopyColumn("deliveries_delayed", .integer),
        ],
        lookupCount: 1,
        setsIdentity: false
    )

    /// Timeline entries in `seq` order, `seq` kept (it orders entries of the same instant).
    static let incidentEvents = CopyTable(
        table: .incidentEvents,
        columns: [
            CopyColumn("seq", .integer),
            CopyColumn("incident_id", .text),
            CopyColumn("at", .integer),
            CopyColumn("event", .text),
            CopyColumn("detail", .text),
        ],
        cursor: [CopyColumn("seq", .integer)],
        identity: [CopyColumn("seq", .integer), CopyColumn("incident_id", .text)],
        lookupCount: 1,
        setsIdentity: true
    )
}

/// One batch read from the source: its rows, and the cursor to read the next one after.
struct CopyBatch: Sendable {
    var rows: [[CopyValue]]
    /// The cursor values of the last row; nil when the batch is empty (the table is done).
    var cursor: [CopyValue]?
}
