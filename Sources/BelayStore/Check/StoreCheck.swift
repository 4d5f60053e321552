/// What `belay storage check` found in a store: whether its pages are sound, whether its
/// schema is at the version this Belay expects, and how much it holds.
///
/// A check only reads: it takes no lock a running gateway holds, applies no migration and
/// writes nothing, so it can run beside `belay serve` or on a backup.
///
/// ```swift
/// let check = try SQLiteStore.check(databaseAt: "./belay-data/belay.db")
/// if !check.isHealthy { for problem in check.problems { print(problem) } }
/// ```
public struct StoreCheck: Sendable, Hashable {
    /// Where the store is, as `storage.url` names it (a PostgreSQL password never appears).
    public var store: String
    /// What SQLite's `PRAGMA integrity_check` reported: empty when the file is sound. Nil when
    /// not checked (PostgreSQL, which checks its own pages).
    public var integrity: [String]?
    /// What `PRAGMA foreign_key_check` reported, one line per row that refers to a missing
    /// row: empty when none does. Nil when not checked (PostgreSQL enforces its keys).
    public var foreignKeys: [String]?
    /// The migrations the store says were applied, oldest first.
    public var appliedMigrations: [String]
    /// The migrations this Belay applies, in order.
    public var expectedMigrations: [String]
    /// Deliveries in each status (statuses with none are absent); nil when they could not be counted.
    public var deliveries: [DeliveryStatus: Int]?
    /// Events in the webhook inbox; nil when they could not be counted.
    public var webhookEvents: Int?
    /// Records in the audit trail (one per proxied request); nil when they could not be counted.
    public var auditRecords: Int?
    /// Reads that failed (a corrupt page, a missing table), in words.
    public var failures: [String]

    /// Creates a report.
    public init(
        store: String,
        integrity: [String]?,
        foreignKeys: [String]?,
        appliedMigrations: [String],
        expectedMigrations: [String],
        deliveries: [DeliveryStatus: Int]?,
        webhookEvents: Int?,
        auditRecords: Int?,
        failures: [String] = []
    ) {
        self.store = store
        self.integrity = integrity
        self.foreignKeys = foreignKeys
        self.appliedMigrations = appliedMigrations
        self.expectedMigrations = expectedMigrations
        self.deliveries = deliveries
        self.webhookEvents = webhookEvents
        self.auditRecords = auditRecords
        self.failures = failures
    }

    /// The expected migrations the store lacks, in order: an older Belay made it, and
    /// `belay serve` applies them when it starts.
    public var missingMigrations: [String] {
        let applied = Set(appliedMigrations)
        return expectedMigrations.filter { !applied.contains($0) }
    }

    /// Applied migrations this Belay does not know: a newer Belay migrated the store, and
    /// this one refuses to serve it.
    public var unknownMigrations: [String] {
        let expected = Set(expectedMigrations)
        return appliedMigrations.filter { !expected.contains($0) }
    }

    /// Every problem, in words, most serious first; empty when the store is healthy.
    public var problems: [String] {
        var problems: [String] = []
        for line in integrity ?? [] { problems.append("integrity: \(line)") }
        for line in foreignKeys ?? [] { problems.append("foreign key: \(line)") }
        problems.append(contentsOf: failures)
        if !unknownMigrations.isEmpty {
            problems.append(
                "migrated by a newer Belay: \(unknownMigrations.joined(separator: ", ")) unknown to this version; "
                    + "run that version or newer"
            )
        }
        if !missingMigrations.isEmpty {
            problems.append(
                "migrations missing: \(missingMigrations.joined(separator: ", ")) (an older Belay's store; "
                    + "belay serve applies them when it starts)"
            )
        }
        return problems
    }

    /// Whether the store is sound, complete and at this Belay's schema version.
    public var isHealthy: Bool { problems.isEmpty }
}
