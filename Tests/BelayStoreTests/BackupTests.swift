import Dispatch
import Foundation
import GRDB
import Synchronization
import Testing

@testable import BelayStore

/// `belay storage backup`: a consistent copy of a live SQLite store.
@Suite(.timeLimit(.minutes(2)))
struct BackupTests {
    /// What the accepting task and the backup's progress callback share.
    private final class Accepts: Sendable {
        /// Ids whose insert returned (committed), in order.
        let committed = Mutex<[String]>([])
        /// Ids whose insert began after the backup's first step was taken.
        let startedDuringBackup = Mutex<Set<String>>([])
        /// Set by the backup's first progress call.
        let backupRunning = Mutex(false)
        let stop = Mutex(false)
        /// The backup's progress calls so far.
        let steps = Mutex(0)
        /// Signalled after each commit.
        let commits = DispatchSemaphore(value: 0)
    }

    @Test func aBackupTakenWhileDeliveriesAreAcceptedHoldsEveryAcceptCommittedBeforeItBegan() async throws {
        try await withFolder { folder in
            let store = try SQLiteStore(path: folder + "/belay.db")
            // A few hundred pages, so that the copy takes many steps of 8 pages.
            let body = Data(repeating: UInt8(ascii: "x"), count: 2_000)
            _ = try await store.insert((0..<400).map { delivery("dlv_seed_\($0)", body: body) })
            let accepts = Accepts()
            let writer = Task {
                var number = 0
                while !accepts.stop.withLock({ $0 }) {
                    number += 1
                    let id = "dlv_live_\(number)"
                    if accepts.backupRunning.withLock({ $0 }) {
                        _ = accepts.startedDuringBackup.withLock { $0.insert(id) }
                    }
                    _ = try await store.insert([delivery(id, body: body)])
                    accepts.committed.withLock { $0.append(id) }
                    accepts.commits.signal()
                }
            }
            // Some accepts committed before the backup begins: recorded, then the backup starts.
            for _ in 0..<20 { await wait(accepts.commits) }
            let before = accepts.committed.withLock { $0 }
            let copy = folder + "/copy.db"
            let copied = try await store.backup(to: copy, pagesPerStep: 8) { _ in
                let first = accepts.steps.withLock { count in
                    count += 1
                    return count == 1
                }
                guard first else { return }
                // Accepts go on while the backup holds its snapshot: wait for several to commit
                // (each one began after this point) before the copy goes on.
                accepts.backupRunning.withLock { $0 = true }
                while accepts.commits.wait(timeout: .now()) == .success {}
                for _ in 0..<6 { _ = accepts.commits.wait(timeout: .now() + 30) }
            }
            accepts.stop.withLock { $0 = true }
            try await writer.value
            #expect(accepts.steps.withLock { $0 } > 10)
            #expect(copied.isFinished && copied.pagesCopied == copied.pageCount && copied.pageCount > 80)
            let during = accepts.startedDuringBackup.withLock { $0 }
            #expect(during.count >= 5, "accepts went on during the backup")

            let check = try SQLiteStore.check(databaseAt: copy)
            #expect(check.isHealthy, "\(check.problems)")
            let restored = try SQLiteStore(path: copy)
            for id in before {
                #expect(try await restored.delivery(id: id) != nil, "\(id) was committed before the backup began")
            }
            for id in during {
                #expect(try await restored.delivery(id: id) == nil, "\(id) began after the snapshot")
            }
            let restoredCount = try await restored.counts()[.pending] ?? 0
            #expect(restoredCount >= 400 + before.count)
            // The original lost nothing either.
            let all = accepts.committed.withLock { $0 }
            #expect(try await store.counts()[.pending] == 400 + all.count)
        }
    }

    @Test func aBackupOfTheFileBesideARunningGatewayNeedsNoLock() async throws {
        try await withFolder { folder in
            let path = folder + "/belay.db"
            let store = try SQLiteStore(path: path)
            _ = try await store.insert([delivery("dlv_1"), delivery("dlv_2")])
            try await store.insertAudit([auditRecord("r-1")])
            // The store holds the gateway's lock; the file-based backup does not need it.
            let copy = folder + "/copy.db"
            let copied = try await SQLiteStore.backup(databaseAt: path, to: copy)
            #expect(copied.isFinished && copied.bytes == copied.pageCount * copied.pageSize)
            // Nothing but the copy is left beside it: the temporary file was moved, not copied (before a
            // read-only check opens the copy and leaves its -wal and -shm).
            let left = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains("copy") }
            #expect(left == ["copy.db"])
            let check = try SQLiteStore.check(databaseAt: copy)
            #expect(check.isHealthy, "\(check.problems)")
            #expect(check.deliveries == [.pending: 2])
            #expect(check.auditRecords == 1)
            _ = store
        }
    }

    @Test func anExistingFileIsReplacedOnlyWhenAskedAndNeverTheDatabaseItself() async throws {
        try await withFolder { folder in
            let path = folder + "/belay.db"
            let store = try SQLiteStore(path: path)
            _ = try await store.insert([delivery("dlv_1")])
            let copy = folder + "/copy.db"
            try Data("an older backup".utf8).write(to: URL(fileURLWithPath: copy))
            let refused = await #expect(throws: StoreError.self) { try await store.backup(to: copy) }
            #expect(refused?.code == .refused)
            #expect(try String(contentsOfFile: copy, encoding: .utf8) == "an older backup")
            try await store.backup(to: copy, replacing: true)
            #expect(try SQLiteStore.check(databaseAt: copy).deliveries == [.pending: 1])
            // Even with replacing, the database being copied is not a target.
            let itself = await #expect(throws: StoreError.self) { try await store.backup(to: path, replacing: true) }
            #expect(itself?.code == .refused)
            #expect(try await store.delivery(id: "dlv_1") != nil)
            let noFolder = await #expect(throws: StoreError.self) {
                try await store.backup(to: folder + "/missing/copy.db")
            }
            #expect(noFolder?.code == .open)
        }
    }

    // MARK: check

    @Test func aHealthyStoreIsReportedWithItsCounts() async throws {
        try await withFolder { folder in
            let store = try SQLiteStore(path: folder + "/belay.db")
            _ = try await store.insert([delivery("dlv_1"), delivery("dlv_2"), delivery("dlv_3")])
            _ = try await store.claim(limits: ["pay": 1], now: t0, leaseUntil: t0.addingTimeInterval(30), owner: "gw")
            _ = try await store.ingest([newEvent("whe_1", eventID: "evt_1"), newEvent("whe_2", eventID: "evt_2")])
            try await store.insertAudit([auditRecord("r-1"), auditRecord("r-2"), auditRecord("r-3")])
            let check = try await store.check()
            #expect(check.isHealthy, "\(check.problems)")
            #expect(check.integrity == [] && check.foreignKeys == [])
            #expect(check.appliedMigrations == SQLiteStore.migrator.migrations)
            #expect(check.missingMigrations.isEmpty && check.unknownMigrations.isEmpty)
            // Two forwards of the events are deliveries too.
            #expect(check.deliveries == [.pending: 4, .inFlight: 1])
            #expect(check.webhookEvents == 2)
            #expect(check.auditRecords == 3)
            #expect(try SQLiteStore.check(databaseAt: store.path) == check)
        }
    }

    @Test func aMissingOrUnknownMigrationIsNamed() async throws {
        try await withFolder { folder in
            let path = folder + "/belay.db"
            do {
                let store = try SQLiteStore(path: path)
                _ = try await store.insert([delivery("dlv_1")])
            }
            let database = try DatabaseQueue(path: path)
            try await database.write { db in
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v6-retention'")
                try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
            }
            try database.close()
            let check = try SQLiteStore.check(databaseAt: path)
            #expect(!check.isHealthy)
            #expect(check.missingMigrations == ["v6-retention"])
            #expect(check.unknownMigrations == ["v99-from-the-future"])
            #expect(check.problems.contains { $0.contains("migrated by a newer Belay: v99-from-the-future") })
            #expect(check.problems.contains { $0.contains("migrations missing: v6-retention") })
            #expect(check.integrity == [] && check.deliveries == [.pending: 1])
        }
    }

    @Test func aDamagedFileIsReportedNotHealthy() async throws {
        try await withFolder { folder in
            let path = folder + "/belay.db"
            do {
                let store = try SQLiteStore(path: path)
                let body = Data(repeating: UInt8(ascii: "y"), count: 3_000)
                _ = try await store.insert((0..<200).map { delivery("dlv_\($0)", body: body) })
            }
            // Everything in the main file, then pages in its middle overwritten.
            let database = try DatabaseQueue(path: path)
            try await database.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
            try database.close()
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            let size = try handle.seekToEnd()
            #expect(size > 40 * 4_096)
            try handle.seek(toOffset: 20 * 4_096)
            try handle.write(contentsOf: Data(repeating: 0xA5, count: 10 * 4_096))
            try handle.close()
            let check = try SQLiteStore.check(databaseAt: path)
            #expect(!check.isHealthy)
            #expect(!(check.integrity ?? []).isEmpty || !check.failures.isEmpty, "\(check)")

            // A file that is not a database at all.
            let text = folder + "/notes.db"
            try Data(String(repeating: "not a database\n", count: 400).utf8).write(to: URL(fileURLWithPath: text))
            let notDatabase = try SQLiteStore.check(databaseAt: text)
            #expect(!notDatabase.isHealthy)
            #expect(notDatabase.problems.first?.contains("not a database") == true, "\(notDatabase.problems)")
            // No file: an error, not a report.
            let missing = #expect(throws: StoreError.self) { try SQLiteStore.check(databaseAt: folder + "/none.db") }
            #expect(missing?.code == .open)
        }
    }

    // MARK: helpers

    private func delivery(_ id: String, body: Data = Data(#"{"order":1}"#.utf8)) -> NewDelivery {
        NewDelivery(
            id: id,
            upstream: "pay",
            method: "POST",
            path: "/v1/orders",
            body: body,
            idempotencyKey: "gen-\(id)",
            keyFromCaller: false,
            fingerprint: "f1",
            notBefore: t0,
            createdAt: t0
        )
    }

    /// Waits for one signal without holding a thread of the cooperative pool.
    private func wait(_ semaphore: DispatchSemaphore) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                _ = semaphore.wait(timeout: .now() + 30)
                continuation.resume()
            }
        }
    }

    /// A fresh folder for one test, removed afterwards.
    private func withFolder(_ body: (String) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-backup-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await body(folder.path)
    }
}
