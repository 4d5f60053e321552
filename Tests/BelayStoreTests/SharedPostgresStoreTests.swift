import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import BelayStore

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` with `count` stores on one fresh schema: as many gateway instances sharing
/// one database. Closes them and drops the schema afterwards.
func withInstances<T>(
    _ count: Int = 2,
    poolSize: Int = 4,
    settings: [String: String] = [:],
    _ body: ([PostgresStore]) async throws -> T
) async throws -> T {
    try await TestPostgres.withSchema { schema in
        var stores: [PostgresStore] = []
        do {
            for _ in 0..<count {
                stores.append(try await TestPostgres.open(schema: schema, poolSize: poolSize, settings: settings))
            }
            let result = try await body(stores)
            for store in stores { await store.close() }
            return result
        } catch {
            for store in stores { await store.close() }
            throw error
        }
    }
}

/// Waits at most `seconds` for `body`; a test that would hang fails instead.
func within<T: Sendable>(
    seconds: Int = 10,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw Failure("\(what) did not happen within \(seconds) s")
        }
        return value
    }
}

/// Runs `body` `count` times at once, the `i`th on `stores[i % stores.count]`, and returns
/// every result (in no particular order).
func concurrently<T: Sendable>(
    _ count: Int,
    on stores: [PostgresStore],
    _ body: @escaping @Sendable (Int, PostgresStore) async throws -> T
) async throws -> [T] {
    try await withThrowingTaskGroup(of: T.self) { group in
        for index in 0..<count {
            let store = stores[index % stores.count]
            group.addTask { try await body(index, store) }
        }
        var results: [T] = []
        for try await result in group { results.append(result) }
        return results
    }
}

/// The server's default transaction isolation (a DBA may set one for every session):
/// Belay's transactions must hold whatever it is.
enum ServerDefault: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case readCommitted = "read committed"
    case repeatableRead = "repeatable read"
    case serializable

    var settings: [String: String] {
        switch self {
        case .readCommitted: [:]
        // A backslash keeps the space within the `options` word, as PostgreSQL reads it.
        case .repeatableRead: ["default_transaction_isolation": "repeatable\\ read"]
        case .serializable: ["default_transaction_isolation": "serializable"]
        }
    }

    var testDescription: String { "default_transaction_isolation = \(rawValue)" }
}

/// What only a shared database has: several gateway instances (here, several
/// `PostgresStore`s) on one schema at once.
@Suite(
    .enabled(if: TestPostgres.isConfigured, Comment(rawValue: TestPostgres.notConfigured)),
    .timeLimit(.minutes(2))
)
struct SharedPostgresStoreTests {
    private let lease = t0.addingTimeInterval(3_600)

    @Test(arguments: ServerDefault.allCases)
    func concurrentClaimsFromTwoInstancesNeverLeaseOneDeliveryTwice(_ server: ServerDefault) async throws {
        try await withInstances(settings: server.settings) { stores in
            _ = try await stores[0].insert((0..<120).map { newDelivery(String(format: "dlv_%03d", $0)) })
            // 12 workers over two instances, each claiming until nothing is left.
            let claimed = try await concurrently(12, on: stores) { index, store in
                var mine: [String] = []
                while true {
                    let batch = try await store.claim(
                        limits: ["pay": 4],
                        now: t0,
                        leaseUntil: self.lease,
                        owner: "w\(index)"
                    )
                    if batch.isEmpty { return mine }
                    mine += batch.map(\.delivery.id)
                }
            }.flatMap { $0 }
            #expect(claimed.count == 120)
            #expect(Set(claimed).count == 120)
            #expect(try await stores[1].counts() == [.inFlight: 120])
        }
    }

    @Test(arguments: ServerDefault.allCases)
    func theInFlightLimitHoldsAcrossInstances(_ server: ServerDefault) async throws {
        try await withInstances(settings: server.settings) { stores in
            _ = try await stores[0].insert((0..<40).map { newDelivery(String(format: "dlv_%03d", $0)) })
            _ = try await stores[0].insert((0..<3).map { newDelivery("dlv_ship_\($0)", upstream: "ship") })
            func claimAll() async throws -> [ClaimedDelivery] {
                try await concurrently(16, on: stores) { index, store in
                    try await store.claim(
                        limits: ["pay": 3, "ship": 3],
                        inFlightLimit: 7,
                        now: t0,
                        leaseUntil: self.lease,
                        owner: "w\(index)"
                    )
                }.flatMap { $0 }
            }
            let first = try await claimAll()
            let pay = first.filter { $0.delivery.upstream == "pay" }
            // 16 workers asking for 3 each: 7 of the upstream in flight, not 7 per instance.
            #expect(pay.count == 7)
            #expect(Set(pay.map(\.delivery.id)).count == 7)
            #expect(first.filter { $0.delivery.upstream == "ship" }.count == 3)
            // Two finish; only two more may start, whichever instance claims them.
            for claim in pay.prefix(2) {
                let done = DeliveryOutcome(
                    status: .delivered,
                    attempt: nil,
                    nextAttemptAt: nil,
                    lastError: nil,
                    escalated: false,
                    at: t0
                )
                #expect(try await stores[1].finish(id: claim.delivery.id, lease: claim.lease, outcome: done))
            }
            let second = try await claimAll()
            #expect(second.count == 2)
            #expect(Set(second.map(\.delivery.id)).isDisjoint(with: pay.map(\.delivery.id)))
            // An expired lease no longer counts: at its end all 7 places are free again.
            let later = try await stores[0].claim(
                limits: ["pay": 10],
                inFlightLimit: 7,
                now: lease,
                leaseUntil: lease.addingTimeInterval(30),
                owner: "w-late"
            )
            #expect(later.count == 7)
        }
    }

    @Test(arguments: ServerDefault.allCases)
    func oneCallerKeyAcceptedThroughTwoInstancesAtOnceIsOneDelivery(_ server: ServerDefault) async throws {
        try await withInstances(settings: server.settings) { stores in
            let outcomes = try await concurrently(16, on: stores) { index, store in
                try await store.insert([newDelivery("dlv_\(index)", key: "order-42")])[0]
            }
            let accepted = outcomes.compactMap { outcome -> Delivery? in
                if case .accepted(let delivery) = outcome { delivery } else { nil }
            }
            #expect(accepted.count == 1)
            let first = try #require(accepted.first)
            for outcome in outcomes {
                #expect(outcome.delivery?.id == first.id, "\(outcome)")
            }
            #expect(try await stores[0].counts() == [.pending: 1])
            // Another payload under the key, on either instance, is refused naming the first.
            let reused = try await concurrently(4, on: stores) { index, store in
                try await store.insert([newDelivery("dlv_other_\(index)", key: "order-42", fingerprint: "f2")])[0]
            }
            #expect(reused.allSatisfy { $0 == .keyReused(existingID: first.id) })
        }
    }

    @Test(arguments: ServerDefault.allCases)
    func oneWebhookEventPostedToTwoInstancesAtOnceIsStoredAndForwardedOnce(_ server: ServerDefault) async throws {
        try await withInstances(settings: server.settings) { stores in
            let outcomes = try await concurrently(16, on: stores) { index, store in
                try await store.ingest([newEvent("evt_\(index)", eventID: "evt_stripe_1")])[0]
            }
            let stored = outcomes.compactMap { outcome -> WebhookEvent? in
                if case .stored(let event) = outcome { event } else { nil }
            }
            #expect(stored.count == 1)
            let first = try #require(stored.first)
            for outcome in outcomes {
                if case .repeated(let event) = outcome { #expect(event.id == first.id) }
            }
            #expect(try await stores[1].counts() == [.pending: 1])
            #expect(try await stores[1].events(WebhookEventQuery()).events.map(\.0.id) == [first.id])
        }
    }

    @Test(arguments: ServerDefault.allCases)
    func oneBodyUnderDifferentEventIDsPostedToTwoInstancesAtOnceIsStoredOnce(_ server: ServerDefault) async throws {
        try await withInstances(settings: server.settings) { stores in
            let outcomes = try await concurrently(16, on: stores) { index, store in
                var event = newEvent("evt_\(index)", source: "github", eventID: "delivery-\(index)")
                event.body = Data(#"{"same":"body"}"#.utf8)
                event.bodyDigest = BodyDigest(sha256: "d1", expiresAt: t0.addingTimeInterval(300))
                return try await store.ingest([event])[0]
            }
            let stored = outcomes.compactMap { outcome -> WebhookEvent? in
                if case .stored(let event) = outcome { event } else { nil }
            }
            #expect(stored.count == 1)
            let first = try #require(stored.first)
            for outcome in outcomes {
                if case .repeated(let event) = outcome { #expect(event.id == first.id) }
            }
            // The repeats left nothing behind: one event, one forward.
            #expect(try await stores[0].events(WebhookEventQuery()).events.map(\.0.id) == [first.id])
            #expect(try await stores[0].counts() == [.pending: 1])
        }
    }

    /// Finishes are group-committed: one statement records a whole batch. A stale holder's
    /// finish in the same batch as the current holder's records nothing; each finish is judged
    /// by its own claim.
    @Test func aStaleFinishBatchedWithTheCurrentOneRecordsNothing() async throws {
        try await withInstances(1) { stores in
            let store = stores[0]
            _ = try await store.insert([newDelivery("dlv_1"), newDelivery("dlv_2")])
            let first = try await store.claim(
                limits: ["pay": 2],
                now: t0,
                leaseUntil: t0.addingTimeInterval(30),
                owner: "w"
            )
            // dlv_1's lease ends and the same worker name claims it again: a new token.
            let again = try await store.claim(
                limits: ["pay": 1],
                now: t0.addingTimeInterval(31),
                leaseUntil: t0.addingTimeInterval(61),
                owner: "w"
            )
            #expect(again.map(\.delivery.id) == ["dlv_1"])
            let stale = try #require(first.first { $0.delivery.id == "dlv_1" }).lease
            let other = try #require(first.first { $0.delivery.id == "dlv_2" }).lease
            let current = try #require(again.first).lease
            func outcome(_ status: DeliveryStatus, _ decision: String, next: Date? = nil) -> DeliveryOutcome {
                DeliveryOutcome(
                    status: status,
                    attempt: DeliveryAttempt(
                        number: 1,
                        startedAt: t0.addingTimeInterval(32),
                        durationMilliseconds: 5,
                        endpoint: "pay:443",
                        statusCode: status == .delivered ? 200 : 503,
                        errorClass: nil,
                        decision: decision
                    ),
                    nextAttemptAt: next,
                    lastError: status == .delivered ? nil : "HTTP 503",
                    escalated: false,
                    at: t0.addingTimeInterval(33)
                )
            }
            let held = try await PostgresStore.finish(
                [
                    PendingFinish(id: "dlv_1", lease: stale, outcome: outcome(.delivered, "stale")),
                    PendingFinish(id: "dlv_1", lease: current, outcome: outcome(.delivered, "current")),
                    PendingFinish(
                        id: "dlv_2",
                        lease: other,
                        outcome: outcome(.pending, "retry", next: t0.addingTimeInterval(90))
                    ),
                ],
                client: store.client,
                channel: store.channel,
                logger: store.logger
            )
            #expect(held == [false, true, true])
            let (one, oneAttempts) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(one.status == .delivered && one.attemptCount == 1 && one.leaseOwner == nil)
            #expect(oneAttempts.map(\.decision) == ["current"])
            let (two, twoAttempts) = try #require(try await store.delivery(id: "dlv_2"))
            #expect(two.status == .pending && two.nextAttemptAt == t0.addingTimeInterval(90))
            #expect(two.lastError == "HTTP 503")
            #expect(twoAttempts.map(\.decision) == ["retry"])
        }
    }

    @Test func anIdleInstanceIsToldAtOnceWhenAnotherMakesDeliveriesDue() async throws {
        try await withInstances { stores in
            let changes = Signals()
            let watcher = Task { await stores[0].watchDeliveries { changes.signal() } }
            defer { watcher.cancel() }
            try await waitUntilListening(on: stores[0].channel)
            /// Runs `action` on the other instance; the watching one must hear of it.
            func expectAnnouncement(of what: String, _ action: () async throws -> Void) async throws {
                let expected = changes.count + 1
                try await action()
                try await within("the announcement of \(what)") { await changes.wait(untilCount: expected) }
            }
            try await expectAnnouncement(of: "an accept") {
                _ = try await stores[1].insert([newDelivery("dlv_1")])
            }
            // Released by the other instance's worker (shutdown): due again at once.
            _ = try await stores[1].claim(limits: ["pay": 1], now: t0, leaseUntil: lease, owner: "w")
            try await expectAnnouncement(of: "a release") { try await stores[1].release(owner: "w", now: t0) }
            // Rescheduled by a failed attempt.
            _ = try await stores[1].claim(limits: ["pay": 1], now: t0, leaseUntil: lease, owner: "w")
            var failed = DeliveryOutcome(
                status: .pending,
                attempt: nil,
                nextAttemptAt: t0.addingTimeInterval(5),
                lastError: "HTTP 503",
                escalated: false,
                at: t0
            )
            try await expectAnnouncement(of: "a rescheduled attempt") {
                let finished = try await stores[1].finish(id: "dlv_1", owner: "w", outcome: failed)
                #expect(finished)
            }
            // Retried by an operator on the other instance.
            _ = try await stores[1].claim(
                limits: ["pay": 1],
                now: t0.addingTimeInterval(5),
                leaseUntil: lease,
                owner: "w"
            )
            failed.status = .dead
            failed.nextAttemptAt = nil
            #expect(try await stores[1].finish(id: "dlv_1", owner: "w", outcome: failed))
            try await expectAnnouncement(of: "a retry") {
                guard case .changed = try await stores[1].retry(id: "dlv_1", now: t0) else { throw Failure("no retry") }
            }
            // Cancelled, the watch ends.
            watcher.cancel()
            try await within("the end of the watch") { await watcher.value }
        }
    }

    /// The listening connection dies (a failover, an administrator's pg_terminate_backend):
    /// the watch listens again, says so (announcements may have been missed meanwhile), and
    /// hears the next one.
    @Test func aWatchThatLosesItsConnectionListensAgain() async throws {
        try await withInstances { stores in
            let changes = Signals()
            let watcher = Task { await stores[0].watchDeliveries { changes.signal() } }
            defer { watcher.cancel() }
            try await waitUntilListening(on: stores[0].channel)
            try await TestPostgres.execute(
                """
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE query = 'LISTEN "\(stores[0].channel)";'
                """
            )
            try await within("the call after listening again") { await changes.wait(untilCount: 1) }
            try await waitUntilListening(on: stores[0].channel)
            _ = try await stores[1].insert([newDelivery("dlv_1")])
            try await within("the announcement after listening again") { await changes.wait(untilCount: 2) }
        }
    }

    @Test func aJobRunsOnOneInstanceAtATime() async throws {
        try await withInstances { stores in
            let gate = Gate()
            let holder = Task {
                try await stores[0].exclusively("retention") { () async throws(StoreError) -> String in
                    await gate.enteredAndWait()
                    return "ran on 0"
                }
            }
            try await within("the first instance's run") { await gate.waitUntilEntered() }
            // While instance 0 runs it, instance 1 does not (nor does instance 0 a second time).
            let ran = Mutex(false)
            let refused = try await stores[1].exclusively("retention") { () async throws(StoreError) -> String in
                ran.withLock { $0 = true }
                return "ran on 1"
            }
            #expect(refused == nil)
            let again = try await stores[0].exclusively("retention") { () async throws(StoreError) in 1 }
            #expect(again == nil)
            #expect(ran.withLock { $0 } == false)
            // Another job is not held back.
            let other = try await stores[1].exclusively("audit-prune") { () async throws(StoreError) in 2 }
            #expect(other == 2)
            gate.open()
            #expect(try await holder.value == "ran on 0")
            // Released when it ends, even by a failure.
            await #expect(throws: StoreError.self) {
                try await stores[1].exclusively("retention") { () async throws(StoreError) -> Int in
                    throw StoreError(.io, "failed on purpose")
                }
            }
            let after = try await stores[0].exclusively("retention") { () async throws(StoreError) in 3 }
            #expect(after == 3)
        }
    }

    @Test func instancesStartingTogetherOnAFreshSchemaMigrateOnce() async throws {
        try await TestPostgres.withSchema { schema in
            let stores = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
                for _ in 0..<4 { group.addTask { try await TestPostgres.open(schema: schema, poolSize: 3) } }
                var stores: [PostgresStore] = []
                for try await store in group { stores.append(store) }
                return stores
            }
            for store in stores {
                #expect(try await store.appliedMigrations() == PostgresStore.migrations.map(\.name))
            }
            // Each migration recorded once, and the tables work from every instance.
            let recorded = try await stores[0].reading("count migrations") { connection in
                try await connection.rows("SELECT COUNT(*) AS n FROM belay_migrations", logger: stores[0].logger)
                    .first?.value("n", as: Int.self)
            }
            #expect(recorded == PostgresStore.migrations.count)
            _ = try await stores[3].insert([newDelivery("dlv_1")])
            #expect(try await stores[2].delivery(id: "dlv_1")?.0.status == .pending)
            for store in stores { await store.close() }
            // A restart on the migrated schema finds nothing to do.
            let again = try await TestPostgres.open(schema: schema, poolSize: 3)
            #expect(try await again.appliedMigrations() == PostgresStore.migrations.map(\.name))
            await again.close()
        }
    }

    @Test func aSharedDatabaseTakesNoLeaseFromAnotherInstance() async throws {
        try await withInstances { stores in
            _ = try await stores[0].insert([newDelivery("dlv_1")])
            _ = try await stores[0].claim(limits: ["pay": 1], now: t0, leaseUntil: lease, owner: "instance-0")
            // Instance 1 starting does not release what instance 0 holds; the lease expires instead.
            #expect(try await stores[1].releaseAbandoned(now: t0) == 0)
            #expect(try await stores[1].delivery(id: "dlv_1")?.0.status == .inFlight)
            #expect(try await stores[1].claim(limits: ["pay": 1], now: t0, leaseUntil: lease, owner: "i1").isEmpty)
            let taken = try await stores[1].claim(
                limits: ["pay": 1],
                now: lease,
                leaseUntil: lease.addingTimeInterval(30),
                owner: "instance-1"
            )
            #expect(taken.map(\.reason) == [.leaseExpired])
        }
    }

    /// More records than one statement takes are still one transaction: a batch that fails
    /// stores nothing (PostgreSQL refuses a NUL character in text, a way to make one fail).
    @Test func anAuditBatchLargerThanOneStatementIsOneTransaction() async throws {
        try await withInstances(1) { stores in
            var batch = (0..<2_500).map { auditRecord("r-\($0)") }
            batch[2_400].path = "/nul\u{0}"
            await #expect(throws: StoreError.self) { try await stores[0].insertAudit(batch) }
            #expect(try await stores[0].auditRecords(AuditQuery()).records.isEmpty)
            #expect(try await stores[0].auditBytes() == 0)
            batch[2_400].path = "/fine"
            try await stores[0].insertAudit(batch)
            #expect(try await stores[0].auditRecords(AuditQuery(limit: 1)).records.map(\.requestID) == ["r-2499"])
        }
    }

    @Test func aWrongPasswordIsAnOpenErrorThatNeverShowsThePassword() async throws {
        try await TestPostgres.withSchema { schema in
            let secret = "not-the-password-\(UUID().uuidString)"
            var url = TestPostgres.url(schema: schema)
            let at = try #require(url.range(of: "@"))
            let scheme = try #require(url.range(of: "://"))
            url.replaceSubrange(scheme.upperBound..<at.lowerBound, with: "\(TestPostgres.user):\(secret)")
            let error = try await #require(throws: StoreError.self) {
                _ = try await PostgresStore.open(
                    PostgresLocation(url: url),
                    logger: Logger(label: "belay.test.store")
                )
            }
            #expect(error.code == .open, "\(error)")
            // The server's reason, at once (not the pool's retries giving up a minute later).
            #expect("\(error)".contains("28P01"), "\(error)")
            #expect(!"\(error)".contains(secret))
            #expect(!String(reflecting: error).contains(secret))
        }
    }

    /// `sslmode`: `prefer` falls back to plain text on a server without TLS, `require` fails
    /// at once saying why; a server with TLS (scripts/pg-cluster.sh's has it) takes both.
    /// PostgresTLSTests checks the certificates, PostgresWithoutTLSTests the refusal.
    @Test func theSSLModeIsWhatTheServerMustOffer() async throws {
        try await TestPostgres.withSchema { schema in
            let base = TestPostgres.url(schema: schema)
            let offersTLS = try await {
                let store = try await PostgresStore.open(
                    PostgresLocation(url: base.replacingOccurrences(of: "sslmode=disable", with: "sslmode=prefer")),
                    logger: Logger(label: "belay.test.store")
                )
                let ssl = try await store.reading("read ssl") { connection in
                    try await connection.rows("SHOW ssl", logger: store.logger).first?.value("ssl", as: String.self)
                }
                await store.close()
                return ssl == "on"
            }()
            let url = base.replacingOccurrences(of: "sslmode=disable", with: "sslmode=require")
            if offersTLS {
                let store = try await PostgresStore.open(PostgresLocation(url: url), logger: Logger(label: "t"))
                await store.close()
            } else {
                let error = try await #require(throws: StoreError.self) {
                    _ = try await PostgresStore.open(PostgresLocation(url: url), logger: Logger(label: "t"))
                }
                #expect(error.code == .open, "\(error)")
                #expect("\(error)".localizedCaseInsensitiveContains("ssl"), "\(error)")
            }
        }
    }

    @Test func aServerThatIsNotThereIsAnOpenErrorNamingWhereItLooked() async throws {
        // A port the kernel just handed out and nothing listens on: the connection is refused.
        let port = try #require(freePort())
        let url = "postgres://belay:\(UUID().uuidString)@127.0.0.1:\(port)/belay?sslmode=disable&connect_timeout=5"
        let error = try await #require(throws: StoreError.self) {
            _ = try await PostgresStore.open(PostgresLocation(url: url), logger: Logger(label: "belay.test.store"))
        }
        #expect(error.code == .open, "\(error)")
        #expect("\(error)".contains("127.0.0.1:\(port)"), "\(error)")
    }
}

/// A TCP port on 127.0.0.1 nothing listens on now.
func freePort() -> Int? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0 else { return nil }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
    }
    guard named == 0 else { return nil }
    // Closed again on return, never listened on: a connection to it is refused.
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Waits (querying, never sleeping) until a session of the test database listens on `channel`.
func waitUntilListening(on channel: String) async throws {
    let connection = try await PostgresConnection.connect(
        configuration: PostgresConnection.Configuration(
            host: TestPostgres.host,
            port: TestPostgres.port,
            username: TestPostgres.user,
            password: TestPostgres.password,
            database: TestPostgres.database,
            tls: .disable
        ),
        id: 2,
        logger: Logger(label: "belay.test.admin")
    )
    defer { Task { try? await connection.close() } }
    let listen = #"LISTEN "\#(channel)";"#
    let deadline = ContinuousClock.now.advanced(by: .seconds(10))
    while ContinuousClock.now < deadline {
        let rows = try await connection.query(
            "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE state = 'idle' AND query = \(listen)",
            logger: connection.logger
        )
        for try await count in rows.decode(Int.self) where count > 0 { return }
    }
    throw Failure("nobody listens on \(channel)")
}

/// Counts signals; a task can wait until a count is reached (or it is cancelled).
final class Signals: Sendable {
    private struct State {
        var count = 0
        var waiters: [UUID: (Int, CheckedContinuation<Void, Never>)] = [:]
    }
    private let state = Mutex(State())

    var count: Int { state.withLock { $0.count } }

    func signal() {
        let ready = state.withLock { state in
            state.count += 1
            let ready = state.waiters.filter { $0.value.0 <= state.count }
            for id in ready.keys { state.waiters[id] = nil }
            return ready.values.map(\.1)
        }
        for waiter in ready { waiter.resume() }
    }

    /// Returns once `count` signals came, or the task is cancelled.
    func wait(untilCount count: Int) async {
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state in
                    if state.count >= count || Task.isCancelled { return true }
                    state.waiters[id] = (count, continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.1.resume()
        }
    }
}

/// Lets a test hold a job inside its run, and know when it got there.
final class Gate: Sendable {
    private let entered = Signals()
    private let opened = Signals()

    /// Marks the run as entered, then waits until ``open()``.
    func enteredAndWait() async {
        entered.signal()
        await opened.wait(untilCount: 1)
    }

    func waitUntilEntered() async { await entered.wait(untilCount: 1) }

    func open() { opened.signal() }
}
