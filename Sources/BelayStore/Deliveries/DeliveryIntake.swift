import Synchronization

/// Accepts deliveries durably and fast: concurrent accepts share one transaction and one
/// fsync (group commit), and each caller is answered only once its row is committed.
///
/// Caller keys follow the IETF Idempotency-Key draft: the same key with the same payload
/// returns the first delivery again, with another payload ``AcceptOutcome/keyReused(existingID:)``,
/// and while a request with that key is still being accepted here ``AcceptOutcome/keyInFlight``.
///
/// ```swift
/// let intake = DeliveryIntake(store: store)
/// switch try await intake.accept(newDelivery) {
/// case .accepted(let delivery), .repeated(let delivery): respond(202, delivery)
/// case .keyReused: respond(422)
/// case .keyInFlight: respond(409)
/// }
/// ```
public final class DeliveryIntake: Sendable {
    /// The store written to.
    public let store: any DeliveryStore
    private let commit: GroupCommit<NewDelivery, AcceptOutcome>
    private let keysInFlight = Mutex(Set<String>())

    /// Creates an intake writing to `store`, at most `maxBatch` deliveries per transaction.
    public init(store: any DeliveryStore, maxBatch: Int = 1_024) {
        self.store = store
        self.commit = GroupCommit(maxBatch: maxBatch) { (batch: [NewDelivery]) throws(StoreError) in
            try await store.insert(batch)
        }
    }

    /// Accepts `delivery`; returns once it is durable (or was found to be a repeat).
    public func accept(_ delivery: NewDelivery) async throws(StoreError) -> AcceptOutcome {
        // Keys are unique per consumer and upstream: another consumer's same key is not this one.
        let key =
            delivery.keyFromCaller
            ? "\(delivery.upstream)\u{0}\(delivery.consumer)\u{0}\(delivery.idempotencyKey)" : nil
        if let key {
            let taken = keysInFlight.withLock { keys in !keys.insert(key).inserted }
            if taken { return .keyInFlight }
        }
        defer {
            if let key { _ = keysInFlight.withLock { $0.remove(key) } }
        }
        return try await commit.submit(delivery)
    }
}
