import Belay
public import BelayStore
import Foundation
public import Logging
public import ServiceLifecycle

/// Deletes what retention lets go (`retention:` in the config), at start and then every
/// ``Configuration/interval``:
///
/// 1. inbox events received more than ``Configuration/webhookEvents`` ago, with their raw
///    bodies and headers, except an event whose forward is still unfinished (pending, in
///    flight, or delivered and waiting for its acknowledgement);
/// 2. finished deliveries (delivered without an acknowledgement required, acknowledged,
///    cancelled, dead) last updated more than ``Configuration/deliveries`` ago, with their
///    attempts: a dead delivery stays that long, for a retry;
/// 3. the body digests of `github` and `hmac` events whose replay window has ended;
/// 4. incidents closed more than ``Configuration/incidents`` ago, with their timelines (when
///    the store keeps incidents).
///
/// Each kind is deleted in transactions of at most ``Configuration/batchSize`` rows, so a
/// purge holds the store's writer only briefly at a time: accepts and the delivery worker's
/// writes go between two batches.
///
/// ```swift
/// let retention = RetentionService(store: store, configuration: .init(config.retention), wall: wall, logger: logger)
/// let services = ServiceGroup(configuration: .init(services: [retention], logger: logger))
/// ```
public final class RetentionService<C: Clock>: Service, Sendable where C.Duration == Duration {
    /// How long each kind is kept, and how it is purged.
    public struct Configuration: Sendable, Hashable {
        /// How long a finished delivery is kept after its last update. Default 30 days.
        public var deliveries: Duration = .seconds(30 * 86_400)
        /// How long an inbox event is kept after it arrived. Default 30 days.
        public var webhookEvents: Duration = .seconds(30 * 86_400)
        /// How long a closed incident is kept after it closed. Default 365 days.
        public var incidents: Duration = .seconds(365 * 86_400)
        /// Rows deleted per transaction, at most. Default 500.
        public var batchSize = 500
        /// How often a purge runs. Default 5 minutes.
        public var interval: Duration = .seconds(300)

        /// Creates the default configuration.
        public init() {}

        /// The configuration of the config's `retention:` section.
        public init(_ retention: GatewayConfig.Retention) {
            deliveries = retention.deliveries
            webhookEvents = retention.webhookEvents
            incidents = retention.incidents
        }
    }

    /// What one purge deleted.
    public struct Pass: Sendable, Hashable {
        /// Finished deliveries deleted (with their attempts).
        public var deliveries = 0
        /// Inbox events deleted.
        public var webhookEvents = 0
        /// Body digests deleted (their replay window had ended).
        public var bodyDigests = 0
        /// Closed incidents deleted (with their timelines).
        public var incidents = 0

        /// Creates a pass that deleted nothing yet.
        public init() {}
    }

    /// The configuration in force.
    public let configuration: Configuration
    private let store: any DeliveryStore & WebhookStore
    private let wall: WallClock<C>
    private let logger: Logger

    /// - Parameters:
    ///   - store: where deliveries and inbox events are deleted.
    ///   - configuration: how long each kind is kept.
    ///   - wall: calendar time (ages are measured on it) and the clock slept on between purges.
    ///   - logger: where each purge that deleted something (`info`) and each failure (`error`) is logged.
    public init(
        store: any DeliveryStore & WebhookStore,
        configuration: Configuration = Configuration(),
        wall: WallClock<C>,
        logger: Logger
    ) {
        var configuration = configuration
        configuration.batchSize = max(configuration.batchSize, 1)
        self.configuration = configuration
        self.store = store
        self.wall = wall
        self.logger = logger
    }

    public func run() async throws {
        let clock = wall.clock
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.purge()
                do {
                    try await clock.sleep(until: clock.now.advanced(by: self.configuration.interval), tolerance: nil)
                } catch {
                    return
                }
            }
        }
    }

    /// Purges once, now: events first (a purged event no longer holds its forward), then
    /// deliveries, then digests. A failure is logged and the rest is left for the next purge.
    /// With a store several instances share, one instance at a time purges: the others skip
    /// the pass (an empty ``Pass``) while one runs.
    @discardableResult
    public func purge() async -> Pass {
        guard let shared = store as? any SharedStore else { return await purgeHere() }
        do {
            if let pass = try await shared.exclusively("retention", { await self.purgeHere() }) { return pass }
            logger.debug("retention skipped this pass: another instance is running it")
        } catch {
            logger.error("retention could not take its lock", metadata: ["belay.error": "\(error)"])
        }
        return Pass()
    }

    private func purgeHere() async -> Pass {
        let now = wall.now()
        let batch = configuration.batchSize
        var pass = Pass()
        do {
            let events = now.addingTimeInterval(-configuration.webhookEvents.inSeconds)
            pass.webhookEvents = try await Self.inBatches(of: batch) { () async throws(StoreError) -> Int in
                try await self.store.purgeEvents(receivedBefore: events, limit: batch)
            }
            let deliveries = now.addingTimeInterval(-configuration.deliveries.inSeconds)
            pass.deliveries = try await Self.inBatches(of: batch) { () async throws(StoreError) -> Int in
                try await self.store.purgeFinished(updatedBefore: deliveries, limit: batch)
            }
            pass.bodyDigests = try await Self.inBatches(of: batch) { () async throws(StoreError) -> Int in
                try await self.store.purgeBodyDigests(expiredBy: now, limit: batch)
            }
            if let incidents = store as? any IncidentStore {
                let closed = now.addingTimeInterval(-configuration.incidents.inSeconds)
                pass.incidents = try await Self.inBatches(of: batch) { () async throws(StoreError) -> Int in
                    try await incidents.purgeIncidents(closedBefore: closed, limit: batch)
                }
            }
        } catch {
            logger.error("retention could not delete old records", metadata: ["belay.error": "\(error)"])
        }
        if pass != Pass() {
            logger.info(
                "retention deleted old records",
                metadata: [
                    "belay.retention.deliveries": "\(pass.deliveries)",
                    "belay.retention.webhook_events": "\(pass.webhookEvents)",
                    "belay.retention.body_digests": "\(pass.bodyDigests)",
                    "belay.retention.incidents": "\(pass.incidents)",
                ]
            )
        }
        return pass
    }

    /// Runs `step` (one transaction deleting at most `batch` rows) until it deletes fewer,
    /// letting other work run between two; returns the total deleted.
    private static func inBatches(
        of batch: Int,
        _ step: () async throws(StoreError) -> Int
    ) async throws(StoreError) -> Int {
        var total = 0
        while !Task.isCancelled {
            let deleted = try await step()
            total += deleted
            if deleted < batch { break }
            await Task.yield()
        }
        return total
    }
}
