/// Durable records for the gateway: deliveries and their attempts (``DeliveryStore``),
/// accepted through ``DeliveryIntake`` with group commit. ``SQLiteStore`` is the embedded
/// implementation; a PostgreSQL one fits behind the same protocols.
///
/// This layer imports `Belay`, GRDB and (later) postgres-nio, never Hummingbird.
public enum BelayStore {
    /// The newest schema migration this version of Belay knows.
    public static let latestMigration = "v9-lookups"
}
