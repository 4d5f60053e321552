public import Foundation
import Logging
import PostgresNIO

extension PostgresStore: DeliveryStore {
    /// True for a row of `deliveries` that no earlier delivery with its ordering key (same
    /// upstream, accepted before it) holds back by being pending or in flight.
    static let notBlocked = """
        (ordering_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM deliveries earlier
            WHERE earlier.upstream = deliveries.upstream AND earlier.ordering_key = deliveries.ordering_key
                AND earlier.seq < deliveries.seq AND earlier.status IN ('pending', 'in_flight')))
        """

    static let columns = """
        id, upstream, method, path, headers, body, idempotency_key, require_ack, status, attempt_count,
        schedule_step, due_at, created_at, updated_at, delivered_at, acknowledged_at, last_error, escalated,
        lease_owner, lease_token, consumer, ack_received_at, ack_event, ack_rejection, escalate_at
        """

    /// The columns an insert writes, in the order ``appendInsertValues(_:to:)`` binds them.
    private static let insertColumns = """
        id, upstream, method, path, headers, body, idempotency_key, caller_key, fingerprint, require_ack, status,
        due_at, created_at, updated_at, ordering_key, consumer
        """
    private static let insertColumnCount = 15

    public func insert(_ batch: [NewDelivery]) async throws(StoreError) -> [AcceptOutcome] {
        guard !batch.isEmpty else { return [] }
        let encoded = try batch.map { item throws(StoreError) in (item, try Self.encode(item.headers)) }
        return try await transaction("store \(batch.count) deliveries") { connection in
            // One statement for the batch. A caller key stored before (by this instance or any
            // other, even one committing right now: the unique index waits for it) is skipped
            // and resolved below.
            var bindings = PostgresBindings(capacity: batch.count * Self.insertColumnCount)
            var values: [String] = []
            values.reserveCapacity(batch.count)
            for (item, headers) in encoded {
                values.append(try Self.appendInsertValues(item, headers: headers, to: &bindings))
            }
            let sql = """
                INSERT INTO deliveries (\(Self.insertColumns)) VALUES \(values.joined(separator: ", "))
                ON CONFLICT (upstream, consumer, caller_key) WHERE caller_key IS NOT NULL DO NOTHING
                RETURNING id
                """
            let inserted = Set(
                try await connection.rows(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
                    .map { try $0.value("id", as: String.self) }
            )
            var outcomes: [AcceptOutcome] = []
            outcomes.reserveCapacity(batch.count)
            for (item, _) in encoded {
                if inserted.contains(item.id) {
                    outcomes.append(.accepted(Self.newRow(item)))
                    continue
                }
                guard
                    let existing = try await connection.rows(
                        """
                        SELECT \(unescaped: Self.columns), fingerprint FROM deliveries
                        WHERE upstream = \(item.upstream) AND consumer = \(item.consumer)
                            AND caller_key = \(item.idempotencyKey)
                        """,
                        logger: logger
                    ).first
                else {
                    throw StoreError(.io, "delivery \(item.id) was neither stored nor found by its key")
                }
                let fingerprint = try existing.value("fingerprint", as: String.self)
                if fingerprint == item.fingerprint {
                    outcomes.append(.repeated(try Self.delivery(existing)))
                } else {
                    outcomes.append(.keyReused(existingID: try existing.value("id", as: String.self)))
                }
            }
            try await self.announce(Set(batch.map(\.upstream)), on: connection)
            return outcomes
        }
    }

    /// Binds one new delivery's columns; returns its `($n, …)` tuple.
    static func appendInsertValues(
        _ item: NewDelivery,
        headers: String,
        to bindings: inout PostgresBindings
    ) throws -> String {
        let first = bindings.count + 1
        let created = item.createdAt.storeMilliseconds
        bindings.append(item.id)
        bindings.append(item.upstream)
        bindings.append(item.method)
        bindings.append(item.path)
        bindings.append(headers)
        try bindings.append(item.body)
        bindings.append(item.idempotencyKey)
        bindings.append(item.keyFromCaller ? item.idempotencyKey : nil)
        bindings.append(item.fingerprint)
        bindings.append(item.requireAck)
        bindings.append(item.notBefore.storeMilliseconds)
        bindings.append(created)
        bindings.append(created)
        bindings.append(item.orderingKey)
        bindings.append(item.consumer)
        let placeholders = (first..<(first + insertColumnCount)).map { "$\($0)" }
        // `status` is the constant 'pending', between require_ack and due_at.
        return "(" + placeholders[0..<10].joined(separator: ", ") + ", 'pending', "
            + placeholders[10...].joined(separator: ", ") + ")"
    }

    /// Inserts one new delivery in the transaction of `connection` (an inbox event's forward, a replay).
    func insertRow(_ item: NewDelivery, on connection: PostgresConnection) async throws -> Delivery {
        var bindings = PostgresBindings(capacity: Self.insertColumnCount)
        let values = try Self.appendInsertValues(item, headers: try Self.encode(item.headers), to: &bindings)
        try await connection.run(
            PostgresQuery(
                unsafeSQL: "INSERT INTO deliveries (\(Self.insertColumns)) VALUES \(values)",
                binds: bindings
            ),
            logger: logger
        )
        try await announce([item.upstream], on: connection)
        return Self.newRow(item)
    }

    /// The stored form of a delivery just accepted.
    static func newRow(_ item: NewDelivery) -> Delivery {
        Delivery(
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

    /// Tells every instance's idle workers (``watchDeliveries(_:)``) that deliveries of these
    /// upstreams may be due: sent when the transaction commits, and once per upstream however
    /// many rows changed.
    func announce(_ upstreams: Set<String>, on connection: PostgresConnection) async throws {
        for upstream in upstreams.sorted() {
            try await connection.run("SELECT pg_notify(\(channel), \(upstream))", logger: logger)
        }
    }

    public func claim(
        limits: [String: Int],
        inFlightLimit: Int?,
        now: Date,
        leaseUntil: Date,
        owner: String
    ) async throws(StoreError) -> [ClaimedDelivery] {
        let wanted = limits.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        guard !wanted.isEmpty else { return [] }
        return try await transaction("claim due deliveries") { connection in
            var claimed: [ClaimedDelivery] = []
            let nowMS = now.storeMilliseconds
            let untilMS = leaseUntil.storeMilliseconds
            // Upstreams in name order, so two instances' claims take their locks in one order.
            for (upstream, limit) in wanted {
                var take = limit
                if let inFlightLimit {
                    // Claims of one upstream are serialized across instances (a transaction-scoped
                    // advisory lock), so counting the unexpired leases first keeps the limit across
                    // every instance, not per instance. Counted apart, not in the claim's statement:
                    // a LIMIT the planner cannot read made it scan and hash the whole table.
                    let lock = "belay.claim.\(location.schema).\(upstream)"
                    try await connection.run("SELECT pg_advisory_xact_lock(hashtext(\(lock)))", logger: logger)
                    let busy =
                        try await connection.rows(
                            """
                            SELECT COUNT(*) AS busy FROM deliveries
                            WHERE upstream = \(upstream) AND status = 'in_flight' AND due_at > \(nowMS)
                            """,
                            logger: logger
                        ).first?.value("busy", as: Int.self) ?? 0
                    take = min(limit, inFlightLimit - busy)
                }
                guard take > 0 else { continue }
                // A new fencing token per claim: the previous claim's holder, if still running, is
                // fenced out. SKIP LOCKED: a row another transaction is changing is left to it.
                let rows = try await connection.rows(
                    """
                    WITH picked AS (
                        SELECT id, status AS was, due_at AS was_due, seq FROM deliveries
                        WHERE upstream = \(upstream) AND due_at IS NOT NULL AND due_at <= \(nowMS)
                            AND \(unescaped: Self.notBlocked)
                        ORDER BY due_at, seq LIMIT \(take)
                        FOR UPDATE SKIP LOCKED
                    )
                    UPDATE deliveries SET status = 'in_flight', lease_owner = \(owner),
                        lease_token = deliveries.lease_token + 1, due_at = \(untilMS), updated_at = \(nowMS)
                    FROM picked WHERE deliveries.id = picked.id
                    RETURNING \(unescaped: Self.qualifiedColumns), picked.was, picked.was_due, picked.seq
                    """,
                    logger: logger
                )
                // RETURNING keeps no order: oldest due first again, as picked.
                let ordered = try rows.map { row in
                    (row, try row.value("was_due", as: Int64.self), try row.value("seq", as: Int64.self))
                }.sorted { ($0.1, $0.2) < ($1.1, $1.2) }.map(\.0)
                for row in ordered {
                    let was = try row.value("was", as: String.self)
                    let reason: ClaimReason =
                        switch was {
                        case DeliveryStatus.inFlight.rawValue: .leaseExpired
                        case DeliveryStatus.delivered.rawValue: .ackOverdue
                        default: .due
                        }
                    claimed.append(ClaimedDelivery(delivery: try Self.delivery(row), reason: reason))
                }
            }
            // Upstream by upstream in name order, each oldest due first, as SQLite returns them.
            return claimed
        }
    }

    /// ``columns``, each naming the `deliveries` table (for statements joining another).
    static let qualifiedColumns = columns.split(separator: ",")
        .map { "deliveries." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        .joined(separator: ", ")

    public func finish(id: String, lease: Lease, outcome: DeliveryOutcome) async throws(StoreError) -> Bool {
        try await finishes.submit(PendingFinish(id: id, lease: lease, outcome: outcome))
    }

    /// Records a batch of finished attempts in one statement and one commit:
    /// the deliveries whose claim still holds (fenced by the claim's token, not only the owner's
    /// name) take their new state, their attempts are stored, and the upstreams of those due
    /// again are announced. True for each item whose claim held.
    ///
    /// A 2xx recorded after an acknowledgement arrived for it (while the attempt was in flight)
    /// makes that delivery `acknowledged` at once.
    static func finish(
        _ batch: [PendingFinish],
        client: PostgresClient,
        channel: String,
        logger: Logger
    ) async throws(StoreError) -> [Bool] {
        guard !batch.isEmpty else { return [] }
        var bindings = PostgresBindings(capacity: batch.count * finishInputTypes.count + 1)
        var rows: [String] = []
        rows.reserveCapacity(batch.count)
        for (index, item) in batch.enumerated() {
            let outcome = item.outcome
            let at = outcome.at.storeMilliseconds
            let attempt = outcome.attempt
            let first = bindings.count + 1
            bindings.append(Int64(index))
            bindings.append(item.id)
            bindings.append(item.lease.token)
            bindings.append(item.lease.owner)
            bindings.append(outcome.status.rawValue)
            bindings.append(outcome.nextAttemptAt?.storeMilliseconds)
            bindings.append(outcome.lastError)
            bindings.append(outcome.escalated)
            let counted = outcome.counts
            bindings.append(Int64(counted ? 1 : 0))
            // A lookup that did not find the order keeps `delivered_at`: the wait runs from the 2xx.
            bindings.append(outcome.status == .delivered && !outcome.isLookup ? at : nil)
            bindings.append(at)
            bindings.append(attempt.map { Int64($0.number) })
            bindings.append(attempt?.startedAt.storeMilliseconds)
            bindings.append(attempt.map { Int64($0.durationMilliseconds) })
            bindings.append(attempt?.endpoint)
            bindings.append(attempt?.statusCode.map { Int64($0) })
            bindings.append(attempt?.errorClass)
            bindings.append(attempt?.decision)
            bindings.append(outcome.escalateAt?.storeMilliseconds)
            bindings.append(attempt?.kind.rawValue)
            // Typed, so a column NULL in every row still has its type.
            let typed = finishInputTypes.enumerated().map { "$\(first + $0.offset)::\($0.element)" }
            rows.append("(" + typed.joined(separator: ", ") + ")")
        }
        bindings.append(channel)
        let channelParameter = "$\(bindings.count)"
        let acked = "input.status = 'delivered' AND deliveries.require_ack AND deliveries.ack_received_at IS NOT NULL"
        // The other system's confirmation (or rejection) noted while the attempt was in flight
        // settles the delivery, whatever the attempt came to (see ``ConfirmationStore``).
        let confirmed = "deliveries.ack_event IS NOT NULL AND deliveries.ack_rejection IS NULL"
        let rejected = "deliveries.ack_event IS NOT NULL AND deliveries.ack_rejection IS NOT NULL"
        let sql = """
            WITH input (n, id, token, owner, status, due, last_error, escalated, counted, delivered, at,
                number, started, duration, endpoint, code, class, decision, escalate_at, kind) AS (
                VALUES \(rows.joined(separator: ", "))
            ), changed AS (
                UPDATE deliveries SET
                    status = CASE WHEN \(rejected) THEN 'dead' WHEN \(confirmed) OR \(acked) THEN 'acknowledged'
                        ELSE input.status END,
                    due_at = CASE WHEN deliveries.ack_event IS NOT NULL OR \(acked) THEN NULL ELSE input.due END,
                    acknowledged_at = CASE WHEN \(acked) THEN deliveries.ack_received_at
                        WHEN \(confirmed) THEN COALESCE(deliveries.ack_received_at, input.at)
                        WHEN input.status = 'acknowledged' THEN COALESCE(deliveries.acknowledged_at, input.at)
                        ELSE deliveries.acknowledged_at END,
                    last_error = CASE WHEN \(rejected) THEN deliveries.ack_rejection
                        ELSE COALESCE(input.last_error, deliveries.last_error) END,
                    escalated = input.escalated,
                    escalate_at = COALESCE(deliveries.escalate_at, input.escalate_at),
                    attempt_count = deliveries.attempt_count + input.counted,
                    schedule_step = deliveries.schedule_step + input.counted,
                    delivered_at = CASE WHEN input.status = 'acknowledged'
                        THEN COALESCE(deliveries.delivered_at, input.at)
                        ELSE COALESCE(input.delivered, deliveries.delivered_at) END, lease_owner = NULL,
                    updated_at = input.at
                FROM input
                WHERE deliveries.id = input.id AND deliveries.lease_token = input.token
                    AND deliveries.lease_owner = input.owner AND deliveries.status = 'in_flight'
                RETURNING input.n, deliveries.upstream, input.due
            ), recorded AS (
                INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, endpoint,
                    status_code, error_class, decision, kind)
                SELECT input.id, input.number, input.started, input.duration, input.endpoint, input.code,
                    input.class, input.decision, input.kind
                FROM input JOIN changed ON changed.n = input.n
                WHERE input.number IS NOT NULL
                ORDER BY input.n
            ), announced AS (
                SELECT pg_notify(\(channelParameter), upstream)
                FROM (SELECT DISTINCT upstream FROM changed WHERE due IS NOT NULL) AS due_again
            )
            SELECT n, (SELECT COUNT(*) FROM announced) AS announced FROM changed
            """
        let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
        // In a transaction only for its isolation (READ COMMITTED, whatever the server's default):
        // a row another transaction changed meanwhile is judged as it is now, not refused.
        let held = try await transaction("record \(batch.count) delivery attempts", client: client, logger: logger) {
            connection in
            // The lookups made before a resend go first in the trail, recorded while the claim
            // holds: the row is locked until the commit, so the update below sees the same claim.
            for item in batch where !item.outcome.lookups.isEmpty {
                for lookup in item.outcome.lookups {
                    try await connection.run(
                        """
                        INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, endpoint,
                            status_code, error_class, decision, kind)
                        SELECT id, \(Int64(lookup.number))::bigint, \(lookup.startedAt.storeMilliseconds)::bigint,
                            \(Int64(lookup.durationMilliseconds))::bigint, \(lookup.endpoint)::text,
                            \(lookup.statusCode.map { Int64($0) })::bigint, \(lookup.errorClass)::text,
                            \(lookup.decision)::text, \(lookup.kind.rawValue)::text
                        FROM deliveries
                        WHERE id = \(item.id) AND lease_token = \(item.lease.token) AND lease_owner = \(item.lease.owner)
                            AND status = 'in_flight'
                        FOR UPDATE
                        """,
                        logger: logger
                    )
                }
            }
            return Set(try await connection.rows(query, logger: logger).map { try $0.value("n", as: Int64.self) })
        }
        return batch.indices.map { held.contains(Int64($0)) }
    }

    /// The SQL types of one row of ``finish(_:client:channel:logger:)``'s input, in bind order.
    private static let finishInputTypes = [
        "bigint", "text", "bigint", "text", "text", "bigint", "text", "boolean", "bigint", "bigint", "bigint",
        "bigint", "bigint", "bigint", "text", "bigint", "text", "text", "bigint", "text",
    ]

    public func renew(id: String, lease: Lease, until: Date) async throws(StoreError) -> Bool {
        try await transaction("renew the lease of delivery \(id)") { connection in
            try await connection.run(
                """
                UPDATE deliveries SET due_at = \(until.storeMilliseconds)
                WHERE id = \(id) AND lease_token = \(lease.token) AND lease_owner = \(lease.owner)
                    AND status = 'in_flight'
                RETURNING 1
                """,
                logger: logger
            ) == 1
        }
    }

    public func release(owner: String, now: Date) async throws(StoreError) {
        // Detached: it must happen even when the caller's task is cancelled (shutdown).
        try await uncancelled { () async throws(StoreError) in
            try await self.transaction("release the leases of \(owner)") { connection in
                let nowMS = now.storeMilliseconds
                let upstreams = try await connection.rows(
                    """
                    UPDATE deliveries SET status = 'pending', lease_owner = NULL, due_at = \(nowMS),
                        updated_at = \(nowMS)
                    WHERE lease_owner = \(owner) AND status = 'in_flight'
                    RETURNING upstream
                    """,
                    logger: self.logger
                ).map { try $0.value("upstream", as: String.self) }
                try await self.announce(Set(upstreams), on: connection)
            }
        }
    }

    public func releaseAbandoned(now: Date) async throws(StoreError) -> Int {
        // Other instances may hold leases: none is taken from them; an abandoned one expires.
        0
    }

    public func nextDue(upstreams: [String], owner: String) async throws(StoreError) -> Date? {
        guard !upstreams.isEmpty else { return nil }
        return try await reading("find the next due delivery") { connection in
            var earliest: Int64?
            for upstream in upstreams {
                let due = try await connection.rows(
                    """
                    SELECT MIN(due_at) AS due FROM deliveries
                    WHERE upstream = \(upstream) AND due_at IS NOT NULL
                        AND (lease_owner IS NULL OR lease_owner <> \(owner)) AND \(unescaped: Self.notBlocked)
                    """,
                    logger: logger
                ).first?.value("due", as: Int64?.self)
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
        try await reading("read the delivery of a key") { connection in
            guard
                let row = try await connection.rows(
                    """
                    SELECT \(unescaped: Self.columns), fingerprint FROM deliveries
                    WHERE upstream = \(upstream) AND consumer = \(consumer) AND caller_key = \(callerKey)
                    """,
                    logger: logger
                ).first
            else { return nil }
            return (try Self.delivery(row), try row.value("fingerprint", as: String.self))
        }
    }

    public func delivery(id: String) async throws(StoreError) -> (Delivery, [DeliveryAttempt])? {
        try await reading("read delivery \(id)") { connection in
            guard
                let row = try await connection.rows(
                    "SELECT \(unescaped: Self.columns) FROM deliveries WHERE id = \(id)",
                    logger: logger
                ).first
            else { return nil }
            let attempts = try await connection.rows(
                """
                SELECT number, started_at, duration_ms, endpoint, status_code, error_class, decision, kind
                FROM delivery_attempts WHERE delivery_id = \(id) ORDER BY seq
                """,
                logger: logger
            ).map { row in
                DeliveryAttempt(
                    number: try row.value("number"),
                    startedAt: Date(storeMilliseconds: try row.value("started_at")),
                    durationMilliseconds: try row.value("duration_ms"),
                    endpoint: try row.value("endpoint"),
                    statusCode: try row.value("status_code"),
                    errorClass: try row.value("error_class"),
                    decision: try row.value("decision"),
                    kind: DeliveryAttempt.Kind(rawValue: try row.value("kind", as: String.self)) ?? .send
                )
            }
            return (try Self.delivery(row), attempts)
        }
    }

    public func deliveries(_ query: DeliveryQuery) async throws(StoreError) -> DeliveryPage {
        try await reading("list deliveries") { connection in
            var conditions: [String] = []
            var bindings = PostgresBindings()
            func bind(_ value: String) -> String {
                bindings.append(value)
                return "$\(bindings.count)"
            }
            if let status = query.status { conditions.append("status = \(bind(status.rawValue))") }
            if let upstream = query.upstream { conditions.append("upstream = \(bind(upstream))") }
            if let consumer = query.consumer { conditions.append("consumer = \(bind(consumer))") }
            if let upstreams = query.upstreams {
                guard !upstreams.isEmpty else { return DeliveryPage(deliveries: [], nextCursor: nil) }
                conditions.append("upstream IN (\(upstreams.sorted().map(bind).joined(separator: ", ")))")
            }
            if let cursor = query.cursor { conditions.append("id < \(bind(cursor))") }
            let limit = max(1, min(query.limit, 500))
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            var rows = try await connection.rows(
                PostgresQuery(
                    unsafeSQL: "SELECT \(Self.columns) FROM deliveries \(filter) ORDER BY id DESC LIMIT \(limit + 1)",
                    binds: bindings
                ),
                logger: logger
            )
            let more = rows.count > limit
            if more { rows.removeLast() }
            let deliveries = try rows.map(Self.delivery)
            return DeliveryPage(deliveries: deliveries, nextCursor: more ? deliveries.last?.id : nil)
        }
    }

    public func retry(id: String, now: Date) async throws(StoreError) -> TransitionOutcome {
        let allowed: @Sendable (Delivery) -> Bool = { [.dead, .cancelled].contains($0.status) }
        return try await transition(id, now: now, allowed: allowed) { connection, nowMS in
            try await connection.run(
                """
                UPDATE deliveries SET status = 'pending', due_at = \(nowMS), schedule_step = 0, escalated = FALSE,
                    escalate_at = NULL, ack_event = NULL, ack_rejection = NULL, updated_at = \(nowMS) WHERE id = \(id)
                """,
                logger: self.logger
            )
            return true
        }
    }

    public func cancel(id: String, now: Date) async throws(StoreError) -> TransitionOutcome {
        let allowed: @Sendable (Delivery) -> Bool = { [.pending, .dead].contains($0.status) }
        return try await transition(id, now: now, allowed: allowed) { connection, nowMS in
            try await connection.run(
                "UPDATE deliveries SET status = 'cancelled', due_at = NULL, updated_at = \(nowMS) WHERE id = \(id)",
                logger: self.logger
            )
            return false
        }
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
        return try await transition(id, now: now, allowed: sent) { connection, nowMS in
            // As in SQLite: acknowledged now once a 2xx was recorded (a re-delivery in flight is
            // fenced out); before any 2xx the ack is noted and takes effect when one is recorded.
            try await connection.run(
                """
                UPDATE deliveries SET
                    status = CASE WHEN delivered_at IS NOT NULL THEN 'acknowledged' ELSE status END,
                    due_at = CASE WHEN delivered_at IS NOT NULL THEN NULL ELSE due_at END,
                    lease_owner = CASE WHEN delivered_at IS NOT NULL THEN NULL ELSE lease_owner END,
                    acknowledged_at = CASE WHEN delivered_at IS NOT NULL
                        THEN COALESCE(acknowledged_at, \(nowMS)) ELSE acknowledged_at END,
                    ack_received_at = COALESCE(ack_received_at, \(nowMS)),
                    updated_at = \(nowMS)
                WHERE id = \(id)
                """,
                logger: self.logger
            )
            return false
        }
    }

    public func counts() async throws(StoreError) -> [DeliveryStatus: Int] {
        let takenAt = statusCounts.now
        let reused = statusCounts.reusable(at: takenAt)
        let statuses = reused == nil ? DeliveryStatus.allCases : StatusCounts.exact
        var counts = try await reading("count deliveries") { connection in
            var counts: [DeliveryStatus: Int] = [:]
            let rows = try await connection.rows(
                """
                SELECT status, COUNT(*) AS count FROM deliveries
                WHERE status = ANY(\(statuses.map(\.rawValue))) GROUP BY status
                """,
                logger: logger
            )
            for row in rows {
                let count = try row.value("count", as: Int.self)
                if let status = DeliveryStatus(rawValue: try row.value("status")), count > 0 { counts[status] = count }
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
        try await reading("find the oldest pending delivery") { connection in
            try await connection.rows(
                "SELECT MIN(created_at) AS oldest FROM deliveries WHERE status IN ('pending', 'in_flight')",
                logger: logger
            ).first?.value("oldest", as: Int64?.self).map(Date.init(storeMilliseconds:))
        }
    }

    public func forgetKeys(acceptedBefore date: Date) async throws(StoreError) -> Int {
        try await transaction("forget old idempotency keys") { connection in
            try await connection.run(
                """
                UPDATE deliveries SET caller_key = NULL
                WHERE caller_key IS NOT NULL AND created_at < \(date.storeMilliseconds)
                RETURNING 1
                """,
                logger: logger
            )
        }
    }

    // MARK: helpers

    /// Changes one delivery if `allowed` by its current state, under a row lock; `change`
    /// returns whether the change may make it due (then workers are told).
    private func transition(
        _ id: String,
        now: Date,
        allowed: @escaping @Sendable (Delivery) -> Bool,
        change: @escaping @Sendable (PostgresConnection, Int64) async throws -> Bool
    ) async throws(StoreError) -> TransitionOutcome {
        try await transaction("change delivery \(id)") { connection in
            guard
                let row = try await connection.rows(
                    "SELECT \(unescaped: Self.columns) FROM deliveries WHERE id = \(id) FOR UPDATE",
                    logger: logger
                ).first
            else { return .notFound }
            let current = try Self.delivery(row)
            guard allowed(current) else { return .conflict(current.status) }
            let due = try await change(connection, now.storeMilliseconds)
            guard
                let updated = try await connection.rows(
                    "SELECT \(unescaped: Self.columns) FROM deliveries WHERE id = \(id)",
                    logger: logger
                ).first
            else { return .notFound }
            if due { try await announce([current.upstream], on: connection) }
            return .changed(try Self.delivery(updated))
        }
    }

    static func encode(_ headers: [DeliveryHeader]) throws(StoreError) -> String {
        do {
            return String(decoding: try JSONEncoder().encode(headers), as: UTF8.self)
        } catch {
            throw StoreError(.io, "cannot encode headers", underlying: error)
        }
    }

    static func decodeHeaders(_ text: String, of what: String) throws -> [DeliveryHeader] {
        do {
            return try JSONDecoder().decode([DeliveryHeader].self, from: Data(text.utf8))
        } catch {
            throw StoreError(.corrupt, "\(what) has unreadable headers", underlying: error)
        }
    }

    static func delivery(_ row: PostgresRandomAccessRow) throws -> Delivery {
        let id = try row.value("id", as: String.self)
        let statusText = try row.value("status", as: String.self)
        guard let status = DeliveryStatus(rawValue: statusText) else {
            throw StoreError(.corrupt, "delivery \(id) has an unknown status '\(statusText)'")
        }
        let headers = try decodeHeaders(try row.value("headers"), of: "delivery \(id)")
        let due = try row.value("due_at", as: Int64?.self).map(Date.init(storeMilliseconds:))
        func date(_ name: String) throws -> Date? {
            try row.value(name, as: Int64?.self).map(Date.init(storeMilliseconds:))
        }
        return Delivery(
            id: id,
            upstream: try row.value("upstream"),
            method: try row.value("method"),
            path: try row.value("path"),
            headers: headers,
            body: try row.value("body", as: Data?.self),
            idempotencyKey: try row.value("idempotency_key"),
            requireAck: try row.value("require_ack"),
            status: status,
            attemptCount: try row.value("attempt_count"),
            scheduleStep: try row.value("schedule_step"),
            nextAttemptAt: status == .inFlight ? nil : due,
            createdAt: Date(storeMilliseconds: try row.value("created_at")),
            updatedAt: Date(storeMilliseconds: try row.value("updated_at")),
            deliveredAt: try date("delivered_at"),
            acknowledgedAt: try date("acknowledged_at"),
            lastError: try row.value("last_error"),
            escalated: try row.value("escalated"),
            leaseOwner: try row.value("lease_owner"),
            leaseExpiresAt: status == .inFlight ? due : nil,
            leaseToken: try row.value("lease_token"),
            consumer: try row.value("consumer"),
            ackReceivedAt: try date("ack_received_at"),
            ackEvent: try row.value("ack_event"),
            ackRejection: try row.value("ack_rejection"),
            escalateAt: try date("escalate_at")
        )
    }
}

/// One finished attempt waiting for the group commit that records it.
struct PendingFinish: Sendable {
    var id: String
    var lease: Lease
    var outcome: DeliveryOutcome
}
