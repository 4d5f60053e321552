import BelayStore
import ServiceLifecycle

/// Keeps the store open while the gateway runs and closes it at the end: first in the
/// service group, so it stops last, after every service that writes to the store.
struct StoreLifetime: Service {
    let store: any DeliveryStore

    func run() async throws {
        try? await gracefulShutdown()
        if let postgres = store as? PostgresStore { await postgres.close() }
    }
}

/// Wakes this instance's worker when any instance sharing the store makes deliveries due
/// (PostgreSQL's `LISTEN`/`NOTIFY`); the worker's idle poll covers a lost connection.
struct DeliveryWakeups: Service {
    let store: any SharedStore
    let wake: @Sendable () -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await store.watchDeliveries(wake)
        }
    }
}
