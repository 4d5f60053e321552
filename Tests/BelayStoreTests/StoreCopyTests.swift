import Foundation
import Logging
import PostgresNIO
import Testing

@testable import BelayStore

/// The SQLite history written here: deliveries in every status (with attempts, acks, caller
/// and ordering keys, consumers), webhook events with forwards and digests, audit records.
private let epoch = Date(timeIntervalSince1970: 1_750_000_000)

private func at(_ seconds: Double) -> Date { epoch.addingTimeInterval(seconds) }

/// When the copy runs: the delivery that was in flight is due then.
private let copyTime = at(100)

@Suite(
    .timeLimit(.minutes(2)),
    .enabled(if: CopyDatabase.isConfigured, Comment(rawValue: CopyDatabase.notConfigured))
)
struct StoreCopyTests {
    @Test func everythingComesBackThroughPostgresStore() async throws {
        try await withSource { source in
            try await fill(source)
            try await CopyDatabase.withTarget { target in
                var finished: [StoreCopy.Progress] = []
                let copy = StoreCopy(from: source, to: target, configuration: .init(batchSize: 3))
                let report = try await copy.run(now: copyTime) { if $0.isFinished { finished.append($0) } }
                #expect(report.matches, "\(report.counts)")
                #expect(report.released == 2)
                #expect(finished.map(\.table) == StoreCopy.Table.allCases)
                #expect(finished.allSatisfy { $0.done == $0.total && $0.present == 0 && $0.copied == $0.total })
                #expect(report.copied[.deliveries] == 14)
                #expect(report.counts.first { $0.name == "audit_usage.bytes" }?.target ?? 0 > 0)
                try await expectSameHistory(source, target)
                try await expectSameBehaviour(source, target)
            }
        }
    }

    @Test func aRunAfterAnInterruptionWritesOnlyWhatIsMissing() async throws {
        try await withSource { source in
            try await fill(source)
            try await CopyDatabase.withTarget { target in
                let copy = StoreCopy(from: source, to: target, configuration: .init(batchSize: 2, batchBytes: 1))
                #expect(try await copy.run(now: copyTime).matches)
                // Again: everything is there already.
                var again: [StoreCopy.Progress] = []
                let second = try await copy.run(now: copyTime) { if $0.isFinished { again.append($0) } }
                #expect(second.matches)
                #expect(second.copied.values.allSatisfy { $0 == 0 }, "\(second.copied)")
                #expect(again.allSatisfy { $0.present == $0.total })
                // An interrupted copy: the tail of each table is missing.
                try await CopyDatabase.execute(
                    in: target,
                    """
                    DELETE FROM audit_requests WHERE seq > 3;
                    DELETE FROM webhook_body_digests WHERE event_id <> 'evt_gh_1';
                    DELETE FROM delivery_attempts WHERE seq > 2;
                    DELETE FROM deliveries WHERE id = 'dlv_14_second';
                    """
                )
                let third = try await copy.run(now: copyTime)
                #expect(third.matches, "\(third.counts)")
                #expect(third.copied[.auditRequests] == 4)
                #expect(third.copied[.webhookBodyDigests] == 2)
                #expect(third.copied[.deliveryAttempts] == 3)
                #expect(third.copied[.deliveries] == 1)
                #expect(third.copied[.webhookEvents] == 0)
                try await expectSameHistory(source, target)
            }
        }
    }

    @Test func aTargetWithOtherRowsIsRefusedBeforeAnythingIsWritten() async throws {
        try await withSource { source in
            try await fill(source)
            try await CopyDatabase.withTarget { target in
                _ = try await target.insert([newDelivery("dlv_someone_else", upstream: "billing")])
                let error = await #expect(throws: StoreError.self) {
                    try await StoreCopy(from: source, to: target).run(now: copyTime)
                }
                #expect(error?.code == .refused)
                #expect(error?.message.contains("deliveries row dlv_someone_else") == true, "\(error?.message ?? "")")
                #expect(error?.message.contains(CopyDatabase.password ?? "\u{0}") == false)
                let counts = try await target.importCounts()
                #expect(counts.rows[.deliveries] == 1)
                #expect(counts.rows.filter { $0.key != .deliveries }.values.allSatisfy { $0 == 0 })
            }
        }
    }

    @Test func aSourceThatChangedAfterAnInterruptedCopyIsRefused() async throws {
        try await withSource { source in
            try await fill(source)
            try await CopyDatabase.withTarget { target in
                #expect(try await StoreCopy(from: source, to: target).run(now: copyTime).matches)
                // The gateway ran on SQLite again and cancelled a delivery already copied.
                guard case .changed = try await source.cancel(id: "dlv_01_pending", now: at(200)) else {
                    Issue.record("not cancelled")
                    return
                }
                let error = await #expect(throws: StoreError.self) {
                    try await StoreCopy(from: source, to: target).run(now: copyTime)
                }
                #expect(error?.code == .refused)
                #expect(error?.message.contains("dlv_01_pending") == true)
                #expect(try await target.delivery(id: "dlv_01_pending")?.0.status == .pending)
            }
        }
    }

    // MARK: what is compared

    /// Every delivery, attempt, event and audit record reads back the same, but the
    /// deliveries that were in flight: pending, due at the copy, no lease owner.
    private func expectSameHistory(_ source: SQLiteStore, _ target: PostgresStore) async throws {
        let ids = try await allDeliveries(source).map(\.id)
        #expect(try await allDeliveries(target).map(\.id) == ids)
        for id in ids {
            let (before, attempts) = try #require(try await source.delivery(id: id))
            var expected = before
            if before.status == .inFlight {
                expected.status = .pending
                expected.nextAttemptAt = copyTime
                expected.leaseOwner = nil
                expected.leaseExpiresAt = nil
                expected.updatedAt = copyTime
            }
            let (after, copiedAttempts) = try #require(try await target.delivery(id: id))
            #expect(after == expected)
            #expect(copiedAttempts == attempts)
        }
        let events = try await source.events(WebhookEventQuery(limit: 500))
        let copiedEvents = try await target.events(WebhookEventQuery(limit: 500))
        #expect(copiedEvents.events.map { $0.0 } == events.events.map { $0.0 })
        #expect(copiedEvents.events.map { $0.1 } == events.events.map { $0.1 })
        for event in events.events.map({ $0.0 }) {
            #expect(try await target.event(id: event.id) == event)
        }
        // The audit trail page by page: the same records and the same cursors.
        var query = AuditQuery(limit: 2)
        while true {
            let page = try await source.auditRecords(query)
            let copied = try await target.auditRecords(query)
            #expect(copied.records == page.records)
            #expect(copied.nextCursor == page.nextCursor)
            guard let next = page.nextCursor else { break }
            query.cursor = next
        }
        #expect(try await target.auditBytes() == source.auditBytes())
        let incidents = try await source.incidents(IncidentQuery())
        #expect(incidents.incidents.count == 2)
        #expect(try await target.incidents(IncidentQuery()) == incidents)
        var counts = try await source.counts()
        if let inFlight = counts.removeValue(forKey: .inFlight) { counts[.pending, default: 0] += inFlight }
        #expect(try await target.counts() == counts)
    }

    /// What the copied rows do: caller keys and body digests still find their first, an
    /// ordering key still holds back, and new rows come after the copied ones.
    private func expectSameBehaviour(_ source: SQLiteStore, _ target: PostgresStore) async throws {
        let repeatOutcome = try await target.insert([
            newDelivery("dlv_again", upstream: "shop", key: "order-1", consumer: "alice")
        ])
        guard case .repeated(let first) = repeatOutcome.first else {
            Issue.record("a caller key lost: \(repeatOutcome)")
            return
        }
        #expect(first.id == "dlv_01_pending")
        let reused = try await target.insert([
            newDelivery("dlv_other", upstream: "shop", key: "order-1", consumer: "alice", fingerprint: "changed")
        ])
        #expect(reused == [.keyReused(existingID: "dlv_01_pending")])
        let replay = try await target.ingest([githubEvent("evt_gh_replayed", eventID: "gh-99", body: "push-1")])
        guard case .repeated(let original) = replay.first else {
            Issue.record("a body digest lost: \(replay)")
            return
        }
        #expect(original.id == "evt_gh_1")

        // The second of an ordering key waits for the first; a new one waits for both.
        _ = try await target.insert([newDelivery("dlv_15_new", upstream: "ledger", ordering: "acct-1")])
        let claimed = try await target.claim(
            limits: ["ledger": 5],
            now: at(300),
            leaseUntil: at(400),
            owner: "pg-1"
        )
        #expect(claimed.map(\.delivery.id) == ["dlv_13_first"])
        let lease = try #require(claimed.first?.lease)
        #expect(
            try await target.finish(
                id: "dlv_13_first",
                lease: lease,
                outcome: delivered(at: at(301), number: 1)
            )
        )
        let next = try await target.claim(limits: ["ledger": 5], now: at(302), leaseUntil: at(400), owner: "pg-1")
        #expect(next.map(\.delivery.id) == ["dlv_14_second"])
        // Its attempt is the newest.
        #expect(try await target.delivery(id: "dlv_13_first")?.1.count == 1)

        // A new audit record is the newest.
        try await target.insertAudit([auditRecord(99)])
        #expect(try await target.auditRecords(AuditQuery(limit: 1)).records.first?.requestID == "req_99")
    }

    private func allDeliveries(_ store: some DeliveryStore) async throws -> [Delivery] {
        var all: [Delivery] = []
        var query = DeliveryQuery(limit: 4)
        while true {
            let page = try await store.deliveries(query)
            all += page.deliveries
            guard let next = page.nextCursor else { return all }
            query.cursor = next
        }
    }

    // MARK: the source

    private func withSource(_ body: (SQLiteStore) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-copy-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try await body(try SQLiteStore(path: folder.appendingPathComponent("belay.db").path))
    }

    /// Fills `store` through its public API only.
    private func fill(_ store: SQLiteStore) async throws {
        let body = Data([0x00, 0xFF, 0x7B, 0x0A])
        _ = try await store.insert([
            newDelivery(
                "dlv_01_pending",
                upstream: "shop",
                key: "order-1",
                consumer: "alice",
                // What COPY's text format escapes, and more than ASCII.
                headers: [DeliveryHeader(name: "X-Odd", value: "tab\tnewline\nreturn\rback\\slash \\N ünï €")],
                body: body,
                due: 3_600
            ),
            newDelivery(
                "dlv_02_same_key_other_consumer",
                upstream: "shop",
                key: "order-1",
                consumer: "bob",
                due: 3_600
            ),
            newDelivery("dlv_03_in_flight", upstream: "u-flight", key: "k-3"),
            newDelivery("dlv_04_delivered", upstream: "u-delivered"),
            newDelivery("dlv_05_acknowledged", upstream: "u-acked", ack: true),
            newDelivery("dlv_06_awaiting_ack", upstream: "u-awaiting", ack: true),
            newDelivery("dlv_07_dead", upstream: "u-dead"),
            newDelivery("dlv_08_cancelled", upstream: "u-cancelled", due: 3_600),
            newDelivery("dlv_09_early_ack", upstream: "u-early", ack: true),
            newDelivery("dlv_13_first", upstream: "ledger", ordering: "acct-1"),
            newDelivery("dlv_14_second", upstream: "ledger", ordering: "acct-1"),
        ])
        func claim(_ upstream: String, at seconds: Double) async throws -> ClaimedDelivery {
            let claimed = try await store.claim(
                limits: [upstream: 1],
                now: at(seconds),
                leaseUntil: at(seconds + 30),
                owner: "sqlite-gw"
            )
            return try #require(claimed.first)
        }
        _ = try await claim("u-flight", at: 1)
        let delivered = try await claim("u-delivered", at: 1)
        #expect(
            try await store.finish(
                id: delivered.delivery.id,
                lease: delivered.lease,
                outcome: self.delivered(at: at(2), number: 1)
            )
        )
        let acked = try await claim("u-acked", at: 1)
        var ackWait = self.delivered(at: at(2), number: 1)
        ackWait.nextAttemptAt = at(3_600)
        #expect(try await store.finish(id: acked.delivery.id, lease: acked.lease, outcome: ackWait))
        _ = try await store.acknowledge(id: acked.delivery.id, now: at(3))
        let awaiting = try await claim("u-awaiting", at: 1)
        #expect(try await store.finish(id: awaiting.delivery.id, lease: awaiting.lease, outcome: ackWait))
        let dead = try await claim("u-dead", at: 1)
        let retryLater = DeliveryOutcome(
            status: .pending,
            attempt: attempt(1, at: at(1), status: 503, decision: "retry at +10 s (HTTP 503)"),
            nextAttemptAt: at(11),
            lastError: "HTTP 503",
            escalated: false,
            at: at(2)
        )
        #expect(try await store.finish(id: dead.delivery.id, lease: dead.lease, outcome: retryLater))
        let again = try await claim("u-dead", at: 11)
        let gaveUp = DeliveryOutcome(
            status: .dead,
            attempt: attempt(2, at: at(11), status: 422, decision: "dead: HTTP 422 is permanent"),
            nextAttemptAt: nil,
            lastError: "HTTP 422\n\t{\"error\": \"C:\\\\temp\"}\r",
            escalated: true,
            at: at(12)
        )
        #expect(try await store.finish(id: again.delivery.id, lease: again.lease, outcome: gaveUp))
        _ = try await store.cancel(id: "dlv_08_cancelled", now: at(5))
        // Acknowledged while its attempt is in flight: noted, to take effect with the 2xx.
        _ = try await claim("u-early", at: 1)
        _ = try await store.acknowledge(id: "dlv_09_early_ack", now: at(4))

        for (index, body) in ["push-1", "push-2", "push-3"].enumerated() {
            _ = try await store.ingest([githubEvent("evt_gh_\(index + 1)", eventID: "gh-\(index + 1)", body: body)])
        }
        _ = try await store.ingest([
            NewWebhookEvent(
                id: "evt_stripe_1",
                source: "stripe",
                eventID: "evt_1",
                headers: [DeliveryHeader(name: "Stripe-Signature", value: "t=1,v1=ab")],
                body: Data(#"{"id":"evt_1"}"#.utf8),
                receivedAt: at(6),
                forward: nil
            )
        ])
        try await store.insertAudit((1...7).map(auditRecord))
        // A closed incident with its timeline, and an open one.
        for (index, upstream) in ["shop", "ledger"].enumerated() {
            let id = "inc_0\(index)"
            _ = try await store.openIncident(
                Incident(
                    id: id,
                    upstream: upstream,
                    cause: "circuit open: ünï",
                    drill: index == 0,
                    openedAt: at(Double(index)),
                    detectedAt: at(Double(index) + 1),
                    timeline: [IncidentEvent(at: at(Double(index)), event: "first_failure", detail: "HTTP 503\ttab")]
                )
            )
            try await store.updateIncident(
                id: id,
                IncidentChange(
                    events: [IncidentEvent(at: at(9), event: "recovered", detail: "healthy")],
                    impact: IncidentImpact(failed: 3 + index, stale: 1, longestDelayMilliseconds: 1_500),
                    recovery: .recovered(at(9)),
                    closedAt: index == 0 ? at(20) : nil
                )
            )
        }
    }

    private func newDelivery(
        _ id: String,
        upstream: String,
        key: String? = nil,
        consumer: String = "",
        headers: [DeliveryHeader] = [DeliveryHeader(name: "Content-Type", value: "application/json")],
        ack: Bool = false,
        ordering: String? = nil,
        body: Data? = Data(#"{"n":1}"#.utf8),
        due: Double = 0,
        fingerprint: String = "fp"
    ) -> NewDelivery {
        NewDelivery(
            id: id,
            upstream: upstream,
            method: "POST",
            path: "/v1/\(id)?q=1",
            headers: headers,
            body: body,
            idempotencyKey: key ?? "belay-\(id)",
            keyFromCaller: key != nil,
            fingerprint: fingerprint,
            requireAck: ack,
            notBefore: at(due),
            createdAt: epoch,
            orderingKey: ordering,
            consumer: consumer
        )
    }

    private func githubEvent(_ id: String, eventID: String, body: String) -> NewWebhookEvent {
        NewWebhookEvent(
            id: id,
            source: "github",
            eventID: eventID,
            headers: [DeliveryHeader(name: "X-GitHub-Event", value: "push")],
            body: Data(body.utf8),
            receivedAt: at(6),
            forward: newDelivery("dlv_for_\(id)", upstream: "webhook:github"),
            bodyDigest: BodyDigest(sha256: "sha-\(body)", expiresAt: at(86_400))
        )
    }

    private func attempt(_ number: Int, at start: Date, status: Int?, decision: String) -> DeliveryAttempt {
        DeliveryAttempt(
            number: number,
            startedAt: start,
            durationMilliseconds: 42,
            endpoint: "https://api.example.com",
            statusCode: status,
            errorClass: status == nil ? "timeout" : nil,
            decision: decision
        )
    }

    private func delivered(at date: Date, number: Int) -> DeliveryOutcome {
        DeliveryOutcome(
            status: .delivered,
            attempt: attempt(number, at: date.addingTimeInterval(-1), status: 200, decision: "delivered"),
            nextAttemptAt: nil,
            lastError: nil,
            escalated: false,
            at: date
        )
    }

    private func auditRecord(_ number: Int) -> AuditRecord {
        AuditRecord(
            requestID: "req_\(number)",
            upstream: number.isMultiple(of: 2) ? "shop" : "ledger",
            consumer: number.isMultiple(of: 3) ? "alice" : nil,
            method: "GET",
            path: "/v1/items/\(number)",
            receivedAt: at(Double(number)),
            durationMilliseconds: number == 6 ? 1.0e-7 : number == 7 ? 1.5e300 : 12.5,
            status: number == 5 ? 503 : 200,
            outcome: number == 5 ? "upstream-error" : "ok",
            problem: number == 5 ? "upstream-unavailable" : nil,
            staleAgeMilliseconds: number == 4 ? 1_500 : nil,
            attempts: [
                AuditAttempt(
                    number: 1,
                    endpoint: "primary",
                    status: 200,
                    startedMilliseconds: 0.5,
                    durationMilliseconds: 11
                )
            ],
            decisions: [AuditDecision(attempt: 1, kind: "retry", description: "no retry needed")],
            correlationID: "corr-\(number)"
        )
    }
}

/// The test database named by postgres-nio's variables; each test gets a schema of its own.
enum CopyDatabase {
    private static let environment = ProcessInfo.processInfo.environment

    /// Why these tests do not run, when they do not.
    static let notConfigured =
        "PostgreSQL not configured: set POSTGRES_HOSTNAME, POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and "
        + "POSTGRES_DB (eval \"$(scripts/pg-cluster.sh start)\")"

    static var isConfigured: Bool { environment["POSTGRES_HOSTNAME"].map { !$0.isEmpty } ?? false }
    static var host: String { environment["POSTGRES_HOSTNAME"] ?? "localhost" }
    static var port: Int { environment["POSTGRES_PORT"].flatMap(Int.init) ?? 5432 }
    static var user: String { environment["POSTGRES_USER"] ?? "postgres" }
    static var password: String? { environment["POSTGRES_PASSWORD"] }
    static var database: String { environment["POSTGRES_DB"] ?? user }

    /// The URL of the test database with its tables in `schema`.
    static func url(schema: String) -> String {
        func encoded(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
        }
        let credentials = encoded(user) + (password.map { ":" + encoded($0) } ?? "")
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(credentials)@\(hostText):\(port)/\(encoded(database))?sslmode=disable"
            + "&pool_size=4&options=-c%20search_path%3D\(schema)"
    }

    /// A schema name no other test uses.
    static func freshSchema() -> String {
        "belay_copy_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
    }

    /// Runs `body` with a store on a fresh schema, then drops the schema.
    static func withTarget(_ body: (PostgresStore) async throws -> Void) async throws {
        let schema = freshSchema()
        let store = try await PostgresStore.open(
            PostgresLocation(url: url(schema: schema)),
            logger: Logger(label: "belay.test.copy")
        )
        do {
            try await body(store)
        } catch {
            await drop(schema, store)
            throw error
        }
        await drop(schema, store)
    }

    private static func drop(_ schema: String, _ store: PostgresStore) async {
        try? await execute(in: store, "DROP SCHEMA \(schema) CASCADE")
        await store.close()
    }

    /// Runs `sql` (statements separated by `;`) on one of `store`'s connections.
    static func execute(in store: PostgresStore, _ sql: String) async throws {
        let statements = sql.split(separator: ";").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
        try await store.reading("run test SQL") { connection in
            for statement in statements {
                try await connection.run(PostgresQuery(unsafeSQL: statement), logger: store.logger)
            }
        }
    }
}
