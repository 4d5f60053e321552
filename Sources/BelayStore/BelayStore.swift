/// Durable records for the gateway: deliveries and their attempts, idempotency records,
/// webhook events and the audit log, behind one set of protocols with SQLite and
/// PostgreSQL implementations.
///
/// This layer arrives with the durable-delivery issue; until then it only fixes its place
/// in the layering (it may import `Belay`, GRDB and postgres-nio, never Hummingbird).
public enum BelayStore {
    /// The store layer's schema version; migrations bump it.
    public static let schemaVersion = 0
}
