import BelayTestKit
import Foundation
import GRDB
import Testing

@testable import BelayStore

let day: TimeInterval = 86_400

/// Retention's contract, on SQLite and on PostgreSQL.
@Suite struct RetentionTests {
    @Test(arguments: StoreBackend.available)
    func finishedDeliveriesPastTheCutoffArePurgedWithTheirAttemptsInBatches(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            let old = t0.addingTimeInterval(-31 * day)
            _ = try await store.insert(
                ["dlv_delivered", "dlv_acked", "dlv_cancelled", "dlv_dead", "dlv_pending", "dlv_flight", "dlv_waiting"]
                    .map { newDelivery($0, requireAck: $0 == "dlv_waiting" || $0 == "dlv_acked", at: old) }
                    + [newDelivery("dlv_recent", at: t0)]
            )
            try await addAttempts(
                store,
                [("dlv_dead", 1, "dead"), ("dlv_dead", 2, "dead"), ("dlv_recent", 1, "delivered")]
            )
            try await setStatus(store, "dlv_delivered", .delivered, updatedAt: old)
            try await setStatus(store, "dlv_acked", .acknowledged, updatedAt: old)
            try await setStatus(store, "dlv_cancelled", .cancelled, updatedAt: old)
            try await setStatus(store, "dlv_dead", .dead, updatedAt: old)
            try await setStatus(store, "dlv_flight", .inFlight, updatedAt: old, dueAt: old)
            // Delivered, but its acknowledgement is still awaited: not finished.
            try await setStatus(store, "dlv_waiting", .delivered, updatedAt: old, dueAt: old)
            try await setStatus(store, "dlv_recent", .delivered, updatedAt: t0)

            let cutoff = t0.addingTimeInterval(-30 * day)
            #expect(try await store.purgeFinished(updatedBefore: cutoff, limit: 3) == 3)
            #expect(try await store.purgeFinished(updatedBefore: cutoff, limit: 3) == 1)
            #expect(try await store.purgeFinished(updatedBefore: cutoff, limit: 3) == 0)
            for gone in ["dlv_delivered", "dlv_acked", "dlv_cancelled", "dlv_dead"] {
                #expect(try await store.delivery(id: gone) == nil)
            }
            for kept in ["dlv_pending", "dlv_flight", "dlv_waiting", "dlv_recent"] {
                #expect(try await store.delivery(id: kept) != nil)
            }
            #expect(try await attemptDeliveryIDs(store) == ["dlv_recent"])
        }
    }

    @Test(arguments: StoreBackend.available)
    func aPurgedForwardLeavesItsEventWithoutAForward(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            var event = newEvent("evt_1", eventID: "e1")
            event.receivedAt = t0.addingTimeInterval(-40 * day)
            _ = try await store.ingest([event])
            try await setStatus(store, "dlv_for_evt_1", .delivered, updatedAt: t0.addingTimeInterval(-40 * day))
            #expect(try await store.purgeFinished(updatedBefore: t0.addingTimeInterval(-30 * day), limit: 500) == 1)
            #expect(try await store.event(id: "evt_1")?.deliveryID == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func oldEventsArePurgedButNeverOneWhoseForwardIsUnfinished(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            let old = t0.addingTimeInterval(-31 * day)
            let events = [
                ("evt_done", true), ("evt_none", false), ("evt_pending", true), ("evt_waiting", true),
                ("evt_dead", true), ("evt_recent", true),
            ].map { id, forward in
                var event = newEvent(id, eventID: id, forward: forward)
                event.receivedAt = id == "evt_recent" ? t0 : old
                if id == "evt_waiting" { event.forward?.requireAck = true }
                return event
            }
            _ = try await store.ingest(events)
            try await setStatus(store, "dlv_for_evt_done", .delivered, updatedAt: old)
            try await setStatus(store, "dlv_for_evt_waiting", .delivered, updatedAt: old, dueAt: t0)
            try await setStatus(store, "dlv_for_evt_dead", .dead, updatedAt: old)
            try await setStatus(store, "dlv_for_evt_recent", .delivered, updatedAt: t0)

            let cutoff = t0.addingTimeInterval(-30 * day)
            #expect(try await store.purgeEvents(receivedBefore: cutoff, limit: 2) == 2)
            #expect(try await store.purgeEvents(receivedBefore: cutoff, limit: 2) == 1)
            #expect(try await store.purgeEvents(receivedBefore: cutoff, limit: 2) == 0)
            let left = try await store.events(WebhookEventQuery()).events.map(\.0.id).sorted()
            #expect(left == ["evt_pending", "evt_recent", "evt_waiting"])
        }
    }

    @Test(arguments: StoreBackend.available)
    func aBodySeenWithinItsWindowIsARepeatWhateverItsEventID(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            func event(_ id: String, at offset: TimeInterval) -> NewWebhookEvent {
                var event = newEvent(id, source: "github", eventID: "delivery-\(id)")
                event.body = Data(#"{"same":"body"}"#.utf8)
                event.receivedAt = t0.addingTimeInterval(offset)
                event.bodyDigest = BodyDigest(sha256: "d1", expiresAt: event.receivedAt.addingTimeInterval(60))
                return event
            }
            let outcomes = try await store.ingest([event("evt_1", at: 0), event("evt_2", at: 1)])
            guard case .stored = outcomes[0], case .repeated(let first) = outcomes[1] else {
                throw Failure("expected stored then repeated: \(outcomes)")
            }
            #expect(first.id == "evt_1")
            #expect(try await store.delivery(id: "dlv_for_evt_2") == nil)
            // Another source's digest is another body.
            var other = event("evt_3", at: 2)
            other.source = "shop"
            guard case .stored = try await store.ingest([other])[0] else { throw Failure("another source") }
            // At the end of the window it no longer blocks; the new event holds the digest now.
            guard case .stored = try await store.ingest([event("evt_4", at: 60)])[0] else {
                throw Failure("the window ended")
            }
            guard case .repeated(let holder) = try await store.ingest([event("evt_5", at: 61)])[0] else {
                throw Failure("the new window")
            }
            #expect(holder.id == "evt_4")
            #expect(try await store.purgeBodyDigests(expiredBy: t0.addingTimeInterval(62), limit: 500) == 1)
            #expect(try await store.purgeBodyDigests(expiredBy: t0.addingTimeInterval(120), limit: 500) == 1)
            guard case .stored = try await store.ingest([event("evt_6", at: 121)])[0] else {
                throw Failure("purged")
            }
        }
    }

    @Test(arguments: StoreBackend.available)
    func smallHistoriesAreAlwaysCountedExactly(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1"), newDelivery("dlv_2")])
            try await setStatus(store, "dlv_1", .delivered, updatedAt: t0)
            #expect(try await store.counts() == [.delivered: 1, .pending: 1])
            try await setStatus(store, "dlv_2", .acknowledged, updatedAt: t0)
            #expect(try await store.counts() == [.delivered: 1, .acknowledged: 1])
        }
    }
}

/// What depends on SQLite: its query plans, and history counts with a small threshold.
@Suite struct SQLiteRetentionTests {
    @Test func thePurgeWalksTheFinishedIndexOnly() async throws {
        try await withStore { store in
            let plan = try await store.pool.read { db in
                try Row.fetchAll(
                    db,
                    sql: "EXPLAIN QUERY PLAN " + SQLiteStore.purgeSelection,
                    arguments: [1, 500]
                ).map { $0["detail"] as String }
            }
            // One range of the partial index, already in purge order: no scan, no sort.
            #expect(plan == ["SEARCH deliveries USING INDEX deliveries_finished (updated_at<?)"])
        }
    }

    @Test func historyCountsAreReusedOnceLargeUntilTheyAreOld() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let clock = ManualClock()
        let store = try SQLiteStore(
            path: folder.appendingPathComponent("belay.db").path,
            clock: clock,
            historyCountsMaxAge: .seconds(30),
            historyCountsThreshold: 3
        )
        _ = try await store.insert((1...6).map { newDelivery("dlv_\($0)") })
        for id in ["dlv_1", "dlv_2", "dlv_3"] { try await setStatus(store, id, .delivered, updatedAt: t0) }
        try await setStatus(store, "dlv_4", .dead, updatedAt: t0)
        #expect(try await store.counts() == [.delivered: 3, .dead: 1, .pending: 2])
        // The history (3 rows, at the threshold) is reused; the other statuses are exact.
        try await setStatus(store, "dlv_5", .delivered, updatedAt: t0)
        try await setStatus(store, "dlv_6", .dead, updatedAt: t0)
        #expect(try await store.counts() == [.delivered: 3, .dead: 2])
        clock.advance(by: .seconds(29))
        #expect(try await store.counts() == [.delivered: 3, .dead: 2])
        clock.advance(by: .seconds(1))
        #expect(try await store.counts() == [.delivered: 4, .dead: 2])
        // A purge counts again at once.
        #expect(try await store.purgeFinished(updatedBefore: t0.addingTimeInterval(1), limit: 500) == 6)
        #expect(try await store.counts() == [:])
    }
}
