public import Foundation
import GRDB

extension SQLiteStore: DeliveryStore {
    /// True for a row of `deliveries` that no earlier delivery with its ordering key (same
    /// upstream, inserted before it) holds back by being pending or in flight.
    static let notBlocked = """
        (ordering_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM deliveries earlier
            WHERE earlier.upstream = deliveries.upstream AND earlier.ordering_key = deliveries.ordering_key
                AND earlier.rowid < deliveries.rowid AND earlier.status IN ('pending', 'in_flight')))
        """

    static let columns = """
        id, upstream, method, path, headers, body, idempotency_key, require_ack, status, attempt_count,
        schedule_step, due_at, created_at, updated_at, delivered_at, acknowledged_at, last_error, escalated,
        lease_owner, lease_token, consumer, ack_received_at, ack_event, ack_rejection, escalate_at
        """

    public func insert(_ batch: [NewDelivery]) async throws(StoreError) -> [AcceptOutcome] {
        try await writing("store \(batch.count) deliveries") { db in
            var outcomes: [AcceptOutcome] = []
            outcomes.reserveCapacity(batch.count)
            for item in batch {
                if item.keyFromCaller,
                    let existing = try Row.fetchOne(
                        db,
                        sql: """
                            SELECT \(Self.columns), fingerprint FROM deliveries
                            WHERE upstream = ? AND consumer = ? AND caller_key = ?
                            """,
                        arguments: [item.upstream, item.consumer, item.idempotencyKey]
                    )
                {
                    let fingerprint: String = existing["fingerprint"]
                    if fingerprint == item.fingerprint {
                        outcomes.append(.repeated(try Self.delivery(existing)))
                    } else {
                        outcomes.append(.keyReused(existingID: existing["id"]))
                    }
                    continue
                }
                outcomes.append(.accepted(try Self.insertRow(item, into: db)))
            }
            return outcomes
        }
    }

    /// Inserts one new delivery, `pending` and due at its `notBefore`.
    static func insertRow(_ item: NewDelivery, into db: Database) throws -> Delivery {
        let created = item.createdAt.storeMilliseconds
        try db.execute(
            sql: """
                INSERT INTO deliveries (id, upstream, method, path, headers, body, idempotency_key, caller_key,
                    fingerprint, require_ack, status, due_at, created_at, updated_at, ordering_key, consumer)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)
                """,
            arguments: [
                item.id, item.upstream, item.method, item.path, try encode(item.headers), item.body,
                item.idempotencyKey, item.keyFromCaller ? item.idempotencyKey : nil, item.fingerprint,
                item.requireAck, item.notBefore.storeMilliseconds, created, created, item.orderingKey,
                item.consumer,
            ]
        )
        return Delivery(
            id: item.id,
            upstream: item.upstream,
            method: item.method,
            path: item.path,
            headers: item.headers,
            body: item.body,
            idempotencyKey: item.idempotencyKey,
            requireAck: item.requireAck,
            status: .pending,
            attemptCount: 0,
            scheduleStep: 0,
            nextAttemptAt: item.notBefore,
            createdAt: item.createdAt,
            updatedAt: item.createdAt,
            consumer: item.consumer
        )
    }

    public func claim(
        limits: [String: Int],
        inFlightLimit: Int?,
        now: Date,
        leaseUntil: Date,
        owner: String
    ) async throws(StoreError) -> [ClaimedDelivery] {
        try await writing("claim due deliveries") { db in
            var claimed: [ClaimedDelivery] = []
            let nowMS = now.storeMilliseconds
            for (upstream, wanted) in limits.sorted(by: { $0.key < $1.key }) where wanted > 0 {
                var limit = wanted
                if let inFlightLimit {
                    // Writes are serialized: the count cannot change before the claim below.
                    let busy =
                        try Int.fetchOne(
                            db,
                            sql: """
                                SELECT COUNT(*) FROM deliveries
                                WHERE upstream = ? AND status = 'in_flight' AND due_at > ?
                                """,
                            arguments: [upstream, nowMS]
                        ) ?? 0
                    limit = min(wanted, inFlightLimit - busy)
                    if limit <= 0 { continue }
                }
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(Self.columns) FROM deliveries
                        WHERE upstream = ? AND due_at IS NOT NULL AND due_at <= ? AND \(Self.notBlocked)
                        ORDER BY due_at LIMIT ?
                        """,
                    arguments: [upstream, nowMS, limit]
                )
                for row in rows {
                    var delivery = try Self.delivery(row)
                    let reason: ClaimReason
                    switch delivery.status {
                    case .inFlight: reason = .leaseExpired
                    case .delivered: reason = .ackOverdue
                    default: reason = .due
                    }
                    // A new fencing token: the previous claim's holder, if still running, is fenced out.
                    let token = delivery.leaseToken + 1
                    try db.execute(
                        sql: """
                            UPDATE deliveries SET status = 'in_flight', lease_owner = ?, lease_token = ?, due_at = ?,
                                updated_at = ?
                            WHERE id = ?
                            """,
                        arguments: [owner, token, leaseUntil.storeMilliseconds, nowMS, delivery.id]
                    )
                    delivery.status = .inFlight
                    delivery.leaseOwner = owner
                    delivery.leaseToken = token
                    delivery.leaseExpiresAt = leaseUntil
                    delivery.nextAttemptAt = nil
                    delivery.updatedAt = now
                    claimed.append(ClaimedDelivery(delivery: delivery, reason: reason))
                }
            }
            return claimed
        }
    }

    public func finish(id: String, lease: Lease, outcome: DeliveryOutcome) async throws(StoreError) -> Bool {
        try await writing("record the attempt of delivery \(id)") { db in
            let at = outcome.at.storeMilliseconds
            let counted = outcome.counts ? 1 : 0
            // Fenced by the claim's token, not only the owner's name: a worker whose lease
            // expired and was claimed again (even by itself) records nothing. A lookup that did
            // not find the order keeps `delivered_at` (the wait for a confirmation runs from the
            // 2xx); one that found it confirms the delivery.
            try db.execute(
                sql: """
                    UPDATE deliveries SET status = :status, due_at = :due, last_error = COALESCE(:error, last_error),
                        escalated = :escalated, attempt_count = attempt_count + :counted,
                        schedule_step = schedule_step + :counted,
                        delivered_at = CASE WHEN :status = 'delivered' AND :lookup = 0 THEN :at
                            WHEN :status = 'acknowledged' THEN COALESCE(delivered_at, :at) ELSE delivered_at END,
                        acknowledged_at = CASE WHEN :status = 'acknowledged' THEN COALESCE(acknowledged_at, :at)
                            ELSE acknowledged_at END,
                        escalate_at = COALESCE(escalate_at, :escalateAt), lease_owner = NULL, updated_at = :at
                    WHERE id = :id AND lease_token = :token AND lease_owner = :owner AND status = 'in_flight'
                    """,
                arguments: [
                    "status": outcome.status.rawValue, "due": outcome.nextAttemptAt?.storeMilliseconds,
                    "error": outcome.lastError, "escalated": outcome.escalated, "counted": counted,
                    "lookup": outcome.isLookup, "at": at,
                    "escalateAt": outcome.escalateAt?.storeMilliseconds, "id": id, "token": lease.token,
                    "owner": lease.owner,
                ]
            )
            guard db.changesCount == 1 else { return false }
            if outcome.status == .delivered {
                // An acknowledgement that came while the attempt was in flight takes effect now
                // that the 2xx is recorded.
                try db.execute(
                    sql: """
                        UPDATE deliveries SET status = 'acknowledged', due_at = NULL,
                            acknowledged_at = ack_received_at
                        WHERE id = ? AND ack_received_at IS NOT NULL AND require_ack = 1
                        """,
                    arguments: [id]
                )
            }
            // The other system's confirmation (or rejection) that came while the attempt was in
            // flight settles the delivery now, whatever the attempt came to.
            try db.execute(sql: Self.settleNoted, arguments: [id])
            for attempt in outcome.lookups + (outcome.attempt.map { [$0] } ?? []) {
                try db.execute(
                    sql: """
                        INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, endpoint,
                            status_code, error_class, decision, kind)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        id, attempt.number, attempt.startedAt.storeMilliseconds, attempt.durationMilliseconds,
                        attempt.endpoint, attempt.statusCode, attempt.errorClass, attempt.decision,
                        attempt.kind.rawValue,
                    ]
                )
            }
            return true
        }
    }

    public func renew(id: String, lease: Lease, until: Date) async throws(StoreError) -> Bool {
        try await writing("renew the lease of delivery \(id)") { db in
            try db.execute(
                sql: """
                    UPDATE deliveries SET due_at = ?
                    WHERE id = ? AND lease_token = ? AND lease_owner = ? AND status = 'in_flight'
                    """,
                arguments: [until.storeMilliseconds, id, lease.token, lease.owner]
            )
            return db.changesCount == 1
        }
    }

    public func release(owner: String, now: Date) async throws(StoreError) {
        // A synchronous write: it must happen even when the caller's task is cancelled
        // (shutdown), which GRDB's async write would refuse.
        do {
            try releaseNow(owner: owner, now: now)
        } catch {
            throw StoreError(.io, "cannot release the leases of \(owner)", underlying: error)
        }
    }

    private func releaseNow(owner: String, now: Date) throws {
        try pool.write { db in
            let nowMS = now.storeMilliseconds
            try db.execute(
                sql: """
                    UPDATE deliveries SET status = 'pending', lease_owner = NULL, due_at = ?, updated_at = ?
                    WHERE lease_owner = ? AND status = 'in_flight'
                    """,
                arguments: [nowMS, nowMS, owner]
            )
        }
    }

    public func releaseAbandoned(now: Date) async throws(StoreError) -> Int {
        // This process holds the database's exclusive lock: no other worker can hold a lease.
        try await writing("release abandoned leases") { db in
            let nowMS = now.storeMilliseconds
            try db.execute(
                sql: """
                    UPDATE deliveries SET status = 'pending', lease_owner = NULL, due_at = ?, updated_at = ?
                    WHERE status = 'in_flight'
                    """,
                arguments: [nowMS, nowMS]
            )
            return db.changesCount
        }
    }

    public func nextDue(upstreams: [String], owner: String) async throws(StoreError) -> Date? {
        guard !upstreams.isEmpty else { return nil }
        return try await reading("find the next due delivery") { db in
            var earliest: Int64?
            for upstream in upstreams {
                let due = try Int64.fetchOne(
                    db,
                    sql: """
                        SELECT MIN(due_at) FROM deliveries
                        WHERE upstream = ? AND due_at IS NOT NULL AND (lease_owner IS NULL OR lease_owner != ?)
                            AND \(Self.notBlocked)
                        """,
                    arguments: [upstream, owner]
                )
                if let due { earliest = min(earliest ?? due, due) }
            }
            return earliest.map(Date.init(storeMilliseconds:))
        }
    }

    public func delivery(
        upstream: String,
        consumer: String,
        callerKey: String
    ) async throws(StoreError) -> (delivery: Delivery, fingerprint: String)? {
        try await reading("read the delivery of a key") { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT \(Self.columns), fingerprint FROM deliveries
                        WHERE upstream = ? AND consumer = ? AND caller_key = ?
                        """,
                    arguments: [upstream, consumer, callerKey]
                )
            else { return nil }
            let fingerprint: String = row["fingerprint"]
            return (try Self.delivery(row), fingerprint)
        }
    }

    public func delivery(id: String) async throws(StoreError) -> (Delivery, [DeliveryAttempt])? {
        try await reading("read delivery \(id)") { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT \(Self.columns) FROM deliveries WHERE id = ?",
                    arguments: [id]
                )
            else { return nil }
            let attempts = try Row.fetchAll(
                db,
                sql: """
                    SELECT number, started_at, duration_ms, endpoint, status_code, error_class, decision, kind
                    FROM delivery_attempts WHERE delivery_id = ? ORDER BY seq
                    """,
                arguments: [id]
            ).map { row in
                DeliveryAttempt(
                    number: row["number"],
                    startedAt: Date(storeMilliseconds: row["started_at"]),
                    durationMilliseconds: row["duration_ms"],
                    endpoint: row["endpoint"],
                    statusCode: row["status_code"],
                    errorClass: row["error_class"],
                    decision: row["decision"],
                    kind: DeliveryAttempt.Kind(rawValue: row["kind"]) ?? .send
                )
            }
            return (try Self.delivery(row), attempts)
        }
    }

    public func deliveries(_ query: DeliveryQuery) async throws(StoreError) -> DeliveryPage {
        try await reading("list deliveries") { db in
            var conditions: [String] = []
            var arguments: StatementArguments = []
            if let status = query.status {
                conditions.append("status = ?")
                arguments += [status.rawValue]
            }
            if let upstream = query.upstream {
                conditions.append("upstream = ?")
                arguments += [upstream]
            }
            if let consumer = query.consumer {
                conditions.append("consumer = ?")
                arguments += [consumer]
            }
            if let upstreams = query.upstreams {
                guard !upstreams.isEmpty else { return DeliveryPage(deliveries: [], nextCursor: nil) }
                conditions.append(
                    "upstream IN (\(Array(repeating: "?", count: upstreams.count).joined(separator: ", ")))"
                )
                for upstream in upstreams.sorted() { arguments += [upstream] }
            }
            if let cursor = query.cursor {
                conditions.append("id < ?")
                arguments += [cursor]
            }
            let limit = max(1, min(query.limit, 500))
            arguments += [limit + 1]
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            var rows = try Row.fetchAll(
                db,
                sql: "SELECT \(Self.columns) FROM deliveries \(filter) ORDER BY id DESC LIMIT ?",
                arguments: arguments
            )
            let more = rows.count > limit
            if more { rows.removeLast() }
            let deliveries = try rows.map(Self.delivery)
            return DeliveryPage(deliveries: deliveries, nextCursor: more ? deliveries.last?.id : nil)
        }
    }

    public func retry(id: String, now: Date) async throws(StoreError) -> TransitionOutcome {
        try await transition(
            id,
            now: now,
            allowed: { [.dead, .cancelled].contains($0.status) },
            change: { db, nowMS in
                try db.execute(
                    sql: """
                        UPDATE deliveries SET status = 'pending', due_at = ?, schedule_step = 0, escalated = 0,
                            escalate_at = NULL, ack_event = NULL, ack_rejection = NULL, updated_at = ? WHERE id = ?
                        """,
                    arguments: [nowMS, nowMS, id]
                )
            }
        )
    }

    public func cancel(id: String, now: Date) async throws(StoreError) -> TransitionOutcome {
        try await transition(
            id,
            now: now,
            allowed: { [.pending, .dead].contains($0.status) },
            change: { db, nowMS in
                try db.execute(
                    sql: "UPDATE deliveries SET status = 'cancelled', due_at = NULL, updated_at = ? WHERE id = ?",
                    arguments: [nowMS, id]
                )
            }
        )
    }

    public func acknowledge(id: String, now: Date) async throws(StoreError) -> TransitionOutcome {
        // Only a delivery that asked for an acknowledgement, and only once it has been sent:
        // an ack must never stop a delivery that was not sent.
        let sent: @Sendable (Delivery) -> Bool = { delivery in
            guard delivery.requireAck else { return false }
            switch delivery.status {
            case .inFlight, .delivered, .acknowledged: return true
            case .pending: return delivery.attemptCount > 0
            case .dead, .cancelled: return false
            }
        }
        return try await transition(
            id,
            now: now,
            allowed: sent,
            change: { db, nowMS in
                // Once a 2xx has been recorded (delivered, or being sent again because the ack was
                // overdue): acknowledged now, and a re-delivery in flight is fenced out. Before any
                // 2xx (the first attempt in flight, or pending after failed ones): the ack is
                // noted and takes effect when a 2xx is recorded (``finish``); the lease and the
                // schedule are untouched, so a failing attempt is still retried.
                try db.execute(
                    sql: """
                        UPDATE deliveries SET
                            status = CASE WHEN delivered_at IS NOT NULL THEN 'acknowledged' ELSE status END,
                            due_at = CASE WHEN delivered_at IS NOT NULL THEN NULL ELSE due_at END,
                            lease_owner = CASE WHEN delivered_at IS NOT NULL THEN NULL ELSE lease_owner END,
                            acknowledged_at = CASE WHEN delivered_at IS NOT NULL
                                THEN COALESCE(acknowledged_at, ?) ELSE acknowledged_at END,
                            ack_received_at = COALESCE(ack_received_at, ?),
                            updated_at = ?
                        WHERE id = ?
                        """,
                    arguments: [nowMS, nowMS, nowMS, id]
                )
            }
        )
    }

    public func counts() async throws(StoreError) -> [DeliveryStatus: Int] {
        // One range of `deliveries_status` per status, so the cost is the rows counted; the
        // history (delivered, acknowledged), once large, is counted at most every
        // `historyCountsMaxAge` (see `StatusCounts`).
        let takenAt = statusCounts.now
        let reused = statusCounts.reusable(at: takenAt)
        let statuses = reused == nil ? DeliveryStatus.allCases : StatusCounts.exact
        var counts = try await reading("count deliveries") { db in
            var counts: [DeliveryStatus: Int] = [:]
            for status in statuses {
                let count =
                    try Int.fetchOne(
                        db,
                        sql: "SELECT COUNT(*) FROM deliveries WHERE status = ?",
                        arguments: [status.rawValue]
                    ) ?? 0
                if count > 0 { counts[status] = count }
            }
            return counts
        }
        if let reused {
            counts.merge(reused) { current, _ in current }
        } else {
            statusCounts.keep(counts.filter { StatusCounts.history.contains($0.key) }, takenAt: takenAt)
        }
        return counts
    }

    public func oldestPending() async throws(StoreError) -> Date? {
        try await reading("find the oldest pending delivery") { db in
            try Int64.fetchOne(
                db,
                sql: "SELECT MIN(created_at) FROM deliveries WHERE status IN ('pending', 'in_flight')"
            ).map(Date.init(storeMilliseconds:))
        }
    }

    public func forgetKeys(acceptedBefore date: Date) async throws(StoreError) -> Int {
        try await writing("forget old idempotency keys") { db in
            try db.execute(
                sql: "UPDATE deliveries SET caller_key = NULL WHERE caller_key IS NOT NULL AND created_at < ?",
                arguments: [date.storeMilliseconds]
            )
            return db.changesCount
        }
    }

    // MARK: helpers

    private func transition(
        _ id: String,
        now: Date,
        allowed: @escaping @Sendable (Delivery) -> Bool,
        change: @escaping @Sendable (Database, Int64) throws -> Void
    ) async throws(StoreError) -> TransitionOutcome {
        try await writing("change delivery \(id)") { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT \(Self.columns) FROM deliveries WHERE id = ?",
                    arguments: [id]
                )
            else { return .notFound }
            let current = try Self.delivery(row)
            guard allowed(current) else { return .conflict(current.status) }
            try change(db, now.storeMilliseconds)
            guard
                let updated = try Row.fetchOne(
                    db,
                    sql: "SELECT \(Self.columns) FROM deliveries WHERE id = ?",
                    arguments: [id]
                )
            else { return .notFound }
            return .changed(try Self.delivery(updated))
        }
    }

    static func encode(_ headers: [DeliveryHeader]) throws -> String {
        String(decoding: try JSONEncoder().encode(headers), as: UTF8.self)
    }

    static func delivery(_ row: Row) throws -> Delivery {
        let statusText: String = row["status"]
        guard let status = DeliveryStatus(rawValue: statusText) else {
            throw StoreError(.corrupt, "delivery \(row["id"] as String) has an unknown status '\(statusText)'")
        }
        let headersText: String = row["headers"]
        let headers: [DeliveryHeader]
        do {
            headers = try JSONDecoder().decode([DeliveryHeader].self, from: Data(headersText.utf8))
        } catch {
            throw StoreError(.corrupt, "delivery \(row["id"] as String) has unreadable headers", underlying: error)
        }
        let due = (row["due_at"] as Int64?).map(Date.init(storeMilliseconds:))
        return Delivery(
            id: row["id"],
            upstream: row["upstream"],
            method: row["method"],
            path: row["path"],
            headers: headers,
            body: row["body"],
            idempotencyKey: row["idempotency_key"],
            requireAck: row["require_ack"],
            status: status,
            attemptCount: row["attempt_count"],
            scheduleStep: row["schedule_step"],
            nextAttemptAt: status == .inFlight ? nil : due,
            createdAt: Date(storeMilliseconds: row["created_at"]),
            updatedAt: Date(storeMilliseconds: row["updated_at"]),
            deliveredAt: (row["delivered_at"] as Int64?).map(Date.init(storeMilliseconds:)),
            acknowledgedAt: (row["acknowledged_at"] as Int64?).map(Date.init(storeMilliseconds:)),
            lastError: row["last_error"],
            escalated: row["escalated"],
            leaseOwner: row["lease_owner"],
            leaseExpiresAt: status == .inFlight ? due : nil,
            leaseToken: row["lease_token"],
            consumer: row["consumer"],
            ackReceivedAt: (row["ack_received_at"] as Int64?).map(Date.init(storeMilliseconds:)),
            ackEvent: row["ack_event"],
            ackRejection: row["ack_rejection"],
            escalateAt: (row["escalate_at"] as Int64?).map(Date.init(storeMilliseconds:))
        )
    }
}
