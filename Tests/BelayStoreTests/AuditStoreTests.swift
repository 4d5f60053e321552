import Foundation
import GRDB
import Testing

@testable import BelayStore

func auditRecord(
    _ id: String,
    upstream: String = "pay",
    outcome: String = "success",
    at: Date = t0,
    path: String = "/v1/balance"
) -> AuditRecord {
    AuditRecord(
        requestID: id,
        upstream: upstream,
        consumer: "orders-app",
        method: "GET",
        path: path,
        receivedAt: at,
        durationMilliseconds: 12.5,
        status: outcome == "success" ? 200 : 503,
        outcome: outcome,
        attempts: [
            AuditAttempt(
                number: 1,
                endpoint: "a.example:443",
                status: 503,
                startedMilliseconds: 0.25,
                durationMilliseconds: 4.125,
                skipped: ["b.example:443"]
            ),
            AuditAttempt(
                number: 2,
                endpoint: "a.example:443",
                failure: "reset",
                startedMilliseconds: 6,
                durationMilliseconds: 1
            ),
        ],
        decisions: [
            AuditDecision(attempt: 1, kind: "endpoint_skipped", description: "skipped b.example:443 because ejected"),
            AuditDecision(attempt: 1, kind: "retry_scheduled", description: "retried because \"HTTP 503\"\n\t\u{1}é"),
        ]
    )
}

/// The audit store's contract, on SQLite and on PostgreSQL.
@Suite struct AuditStoreTests {
    @Test(arguments: StoreBackend.available)
    func aRecordIsReadBackWhole(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            var stale = auditRecord("r-2", outcome: "stale")
            stale.problem = nil
            stale.staleAgeMilliseconds = 14_000
            stale.consumer = nil
            try await store.insertAudit([auditRecord("r-1"), stale])
            #expect(try await store.auditRecord(requestID: "r-1") == auditRecord("r-1"))
            #expect(try await store.auditRecord(requestID: "r-2") == stale)
            #expect(try await store.auditRecord(requestID: "nobody") == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func aReusedRequestIDFindsTheNewestRecord(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            try await store.insertAudit([auditRecord("same", path: "/first")])
            try await store.insertAudit([auditRecord("same", path: "/second")])
            #expect(try await store.auditRecord(requestID: "same")?.path == "/second")
        }
    }

    @Test(arguments: StoreBackend.available)
    func pagesAreNewestFirstAndFiltered(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            try await store.insertAudit([
                auditRecord("r-1", at: t0),
                auditRecord("r-2", upstream: "ship", at: t0.addingTimeInterval(1)),
                auditRecord("r-3", outcome: "server_error", at: t0.addingTimeInterval(2)),
                auditRecord("r-4", at: t0.addingTimeInterval(3)),
                auditRecord("r-5", outcome: "server_error", at: t0.addingTimeInterval(4)),
            ])
            let first = try await store.auditRecords(AuditQuery(limit: 2))
            #expect(first.records.map(\.requestID) == ["r-5", "r-4"])
            let cursor = try #require(first.nextCursor)
            let second = try await store.auditRecords(AuditQuery(limit: 2, cursor: cursor))
            #expect(second.records.map(\.requestID) == ["r-3", "r-2"])
            let third = try await store.auditRecords(AuditQuery(limit: 2, cursor: second.nextCursor))
            #expect(third.records.map(\.requestID) == ["r-1"])
            #expect(third.nextCursor == nil)

            let pay = try await store.auditRecords(AuditQuery(upstream: "pay"))
            #expect(pay.records.map(\.requestID) == ["r-5", "r-4", "r-3", "r-1"])
            let failed = try await store.auditRecords(AuditQuery(outcome: "server_error"))
            #expect(failed.records.map(\.requestID) == ["r-5", "r-3"])
            let recent = try await store.auditRecords(AuditQuery(since: t0.addingTimeInterval(3)))
            #expect(recent.records.map(\.requestID) == ["r-5", "r-4"])
            let both = try await store.auditRecords(
                AuditQuery(upstream: "pay", outcome: "success", since: t0.addingTimeInterval(1))
            )
            #expect(both.records.map(\.requestID) == ["r-4"])
            let garbage = try await store.auditRecords(AuditQuery(cursor: "not-a-cursor"))
            #expect(garbage.records.isEmpty && garbage.nextCursor == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func retentionDeletesWhatIsTooOldInChunks(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            let old = (0..<(SQLiteStore.auditPruneChunk + 500)).map {
                auditRecord("old-\($0)", at: t0.addingTimeInterval(-8 * 86_400))
            }
            try await store.insertAudit(old)
            try await store.insertAudit([auditRecord("young", at: t0.addingTimeInterval(-6 * 86_400))])
            let before = try await store.auditBytes()
            let youngSize = SQLiteStore.estimatedSize(
                auditRecord("young"),
                trailBytes: AuditTrailJSON.encode(auditRecord("young")).utf8.count
            )
            let pruned = try await store.pruneAudit(olderThan: t0.addingTimeInterval(-7 * 86_400), maxBytes: 1 << 30)
            #expect(pruned.expired == old.count)
            #expect(pruned.trimmed == 0)
            #expect(pruned.bytes == youngSize)
            #expect(before > youngSize)
            #expect(try await store.auditRecords(AuditQuery()).records.map(\.requestID) == ["young"])
        }
    }

    @Test(arguments: StoreBackend.available)
    func retentionTrimsTheOldestUntilUnderTheSizeBudget(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            // Ids of one length, so every record has the same estimated size.
            try await store.insertAudit(
                (100..<200).map { auditRecord("r-\($0)", at: t0.addingTimeInterval(Double($0))) }
            )
            let total = try await store.auditBytes()
            let each = total / 100
            #expect(total == each * 100)
            let pruned = try await store.pruneAudit(olderThan: t0.addingTimeInterval(-86_400), maxBytes: each * 30 + 1)
            #expect(pruned.expired == 0)
            #expect(pruned.trimmed == 70)
            #expect(pruned.bytes == each * 30)
            let page = try await store.auditRecords(AuditQuery(limit: 500))
            #expect(page.records.count == 30)
            #expect(page.records.last?.requestID == "r-170")
            // Within the budget, nothing more goes.
            let again = try await store.pruneAudit(olderThan: t0.addingTimeInterval(-86_400), maxBytes: each * 30)
            #expect(again == AuditPruning(expired: 0, trimmed: 0, bytes: each * 30))
        }
    }
}

/// The size estimate measured against SQLite's file (PostgreSQL's pages differ).
@Suite struct SQLiteAuditStoreTests {
    /// The size estimate is what the size budget is enforced on: it must follow what the
    /// records really take on disk, within reason.
    @Test func theSizeEstimateFollowsTheDatabaseGrowth() async throws {
        try await withStore { store in
            func databaseBytes() async throws -> Int64 {
                try await store.pool.read { db in
                    let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                    let size = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 0
                    return pages * size
                }
            }
            let before = try await databaseBytes()
            for batch in 0..<10 {
                try await store.insertAudit(
                    (0..<500).map { index in
                        auditRecord(
                            "req-\(batch)-\(index)-\(UUID().uuidString)",
                            upstream: index % 2 == 0 ? "pay" : "shipping",
                            at: t0.addingTimeInterval(Double(batch * 500 + index)),
                            path: "/v1/orders/\(index)/items"
                        )
                    }
                )
            }
            let grown = try await databaseBytes() - before
            let estimated = try await store.auditBytes()
            let ratio = Double(estimated) / Double(grown)
            #expect((0.75...1.33).contains(ratio), "estimated \(estimated) bytes for \(grown) bytes of growth")
        }
    }
}
