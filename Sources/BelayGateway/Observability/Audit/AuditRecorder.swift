import Belay
public import BelayStore
import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
import Synchronization

/// Records every proxied request in the audit trail, off the request's path.
///
/// As a ``ProxyObserver``, ``observe(_:)`` only appends the exchange to a bounded buffer
/// under a lock (when the buffer is full, the oldest exchange is dropped and counted): no
/// encoding, no I/O, no waiting. As a `Service`, it writes what was buffered in batches of
/// up to ``Configuration/batchSize`` per transaction: as soon as a batch is full, and at
/// least every ``Configuration/flushInterval``; on graceful shutdown it writes what is
/// left. It also enforces retention: at start, then every ``Configuration/pruneInterval``,
/// records older than ``Configuration/retention`` are deleted, then the oldest until the
/// audit trail is within ``Configuration/maxBytes``.
///
/// `buildApplication` makes one from the `audit` config and runs it as a service; made by
/// hand, it must run as a service too (or be flushed), or nothing is written:
///
/// ```swift
/// let recorder = AuditRecorder(store: store, wall: WallClock.system(ContinuousClock()), logger: logger)
/// let services = ServiceGroup(configuration: .init(services: [recorder], logger: logger))
/// ```
public final class AuditRecorder<C: Clock>: ProxyObserver, Service, Sendable where C.Duration == Duration {
    /// How much is buffered, how it is written and how long it is kept.
    public struct Configuration: Sendable, Hashable {
        /// Exchanges held while waiting to be written; past it the oldest are dropped. Default 10,000.
        public var bufferSize = 10_000
        /// Records written per transaction, at most. Default 500.
        public var batchSize = 500
        /// The longest an exchange waits in the buffer before being written. Default 250 ms.
        public var flushInterval: Duration = .milliseconds(250)
        /// How long records are kept. Default 7 days.
        public var retention: Duration = .seconds(7 * 86_400)
        /// The audit trail's size budget in (estimated) bytes. Default 1 GiB.
        public var maxBytes: Int64 = 1 << 30
        /// How often retention is enforced. Default 5 minutes.
        public var pruneInterval: Duration = .seconds(300)

        /// Creates the default configuration.
        public init() {}
    }

    private struct Waiter {
        var target: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var buffer: CircularBuffer<ProxyExchange>
        /// Exchanges observed so far: the next one's sequence number.
        var observed = 0
        /// The sequence number of the first exchange of each batch being written.
        var writing: [Int] = []
        var dropped = 0
        var failed = 0
        var running = false
        var stopping = false
        var waiters: [Waiter] = []

        /// Every exchange before this one has been written, failed to be written, or dropped.
        var settledBefore: Int {
            let buffered = observed - buffer.count
            return writing.min().map { min($0, buffered) } ?? buffered
        }
    }

    /// The configuration in force.
    public let configuration: Configuration
    private let store: any AuditStore
    private let wall: WallClock<C>
    private let logger: Logger
    private let state: Mutex<State>
    private let doorbell = Doorbell()

    /// - Parameters:
    ///   - store: where records are written.
    ///   - configuration: buffer, batches and retention.
    ///   - wall: calendar time (for retention) and the clock the writer sleeps on.
    ///   - logger: where write failures and retention passes are logged.
    public init(
        store: any AuditStore,
        configuration: Configuration = Configuration(),
        wall: WallClock<C>,
        logger: Logger
    ) {
        var configuration = configuration
        configuration.bufferSize = max(configuration.bufferSize, 1)
        configuration.batchSize = max(configuration.batchSize, 1)
        self.configuration = configuration
        self.store = store
        self.wall = wall
        self.logger = logger
        self.state = Mutex(State(buffer: CircularBuffer(initialCapacity: min(configuration.bufferSize, 1_024))))
    }

    /// Buffers `exchange` for writing; returns at once (O(1), one short lock).
    public func observe(_ exchange: ProxyExchange) {
        let capacity = configuration.bufferSize
        let batch = configuration.batchSize
        let fullBatch = state.withLock { state -> Bool in
            if state.buffer.count >= capacity {
                state.buffer.removeFirst()
                state.dropped += 1
            }
            state.buffer.append(exchange)
            state.observed += 1
            return state.buffer.count == batch
        }
        if fullBatch { doorbell.ring() }
    }

    /// Whether exchanges are buffered or being written: a lookup that misses may find one after
    /// ``flush()``.
    public var hasBuffered: Bool { state.withLock { !$0.buffer.isEmpty || !$0.writing.isEmpty } }

    /// Exchanges dropped because the buffer was full (the store could not keep up).
    public var droppedCount: Int { state.withLock { $0.dropped } }

    /// Exchanges lost because their batch could not be written.
    public var failedCount: Int { state.withLock { $0.failed } }

    /// Returns once every exchange observed before the call has been written (or dropped,
    /// or failed to be written). While the service runs, it wakes the writer and waits for
    /// it; otherwise it writes them itself.
    public func flush() async {
        let running = state.withLock { $0.running }
        guard running else {
            await drain()
            return
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { state -> Bool in
                if state.settledBefore >= state.observed || !state.running { return true }
                state.waiters.append(Waiter(target: state.observed, continuation: continuation))
                return false
            }
            if done {
                continuation.resume()
            } else {
                doorbell.ring()
            }
        }
    }

    public func run() async throws {
        state.withLock { $0.running = true }
        let clock = wall.clock
        await withGracefulShutdownHandler {
            await self.prune()
            var nextPrune = clock.now.advanced(by: self.configuration.pruneInterval)
            while !Task.isCancelled, !self.state.withLock({ $0.stopping }) {
                let wake = min(clock.now.advanced(by: self.configuration.flushInterval), nextPrune)
                await self.doorbell.wait(until: wake, clock: clock)
                await self.drain()
                if clock.now >= nextPrune {
                    await self.prune()
                    nextPrune = clock.now.advanced(by: self.configuration.pruneInterval)
                }
            }
            // Whatever the server observed before it stopped.
            await self.drain()
        } onGracefulShutdown: {
            self.state.withLock { $0.stopping = true }
            self.doorbell.ring()
        }
        let waiters = state.withLock { state -> [Waiter] in
            state.running = false
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.continuation.resume() }
    }

    /// Writes everything buffered, a batch per transaction.
    private func drain() async {
        while true {
            let (batch, first) = state.withLock { state -> ([ProxyExchange], Int) in
                let first = state.observed - state.buffer.count
                let count = min(state.buffer.count, configuration.batchSize)
                var batch: [ProxyExchange] = []
                batch.reserveCapacity(count)
                for _ in 0..<count { batch.append(state.buffer.removeFirst()) }
                if count > 0 { state.writing.append(first) }
                return (batch, first)
            }
            guard !batch.isEmpty else { return }
            await write(batch, first: first)
        }
    }

    /// Writes `batch`, whose first exchange has the sequence number `first`.
    private func write(_ batch: [ProxyExchange], first: Int) async {
        let records = batch.map(AuditNarration.record)
        var failed = false
        do {
            try await store.insertAudit(records)
        } catch {
            failed = true
            logger.error(
                "audit records could not be written; they are lost",
                metadata: ["belay.audit.count": "\(batch.count)", "belay.error": "\(error)"]
            )
        }
        let ready = state.withLock { state -> [Waiter] in
            if let index = state.writing.firstIndex(of: first) { state.writing.remove(at: index) }
            if failed { state.failed += batch.count }
            let settled = state.settledBefore
            let ready = state.waiters.filter { $0.target <= settled }
            state.waiters.removeAll { $0.target <= settled }
            return ready
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    /// Enforces retention: by age, then by size.
    private func prune() async {
        let cutoff = wall.now().addingTimeInterval(-configuration.retention.inSeconds)
        do {
            // One instance at a time when several share the store.
            let maxBytes = configuration.maxBytes
            let prune: @Sendable () async throws(StoreError) -> AuditPruning = {
                try await self.store.pruneAudit(olderThan: cutoff, maxBytes: maxBytes)
            }
            let pruned: AuditPruning?
            if let shared = store as? any SharedStore {
                pruned = try await shared.exclusively("audit-retention", prune)  // nil: another instance prunes
            } else {
                pruned = try await prune()
            }
            guard let pruned else { return }
            if pruned.expired > 0 || pruned.trimmed > 0 {
                logger.info(
                    "audit retention deleted old records",
                    metadata: [
                        "belay.audit.expired": "\(pruned.expired)", "belay.audit.trimmed": "\(pruned.trimmed)",
                        "belay.audit.bytes": "\(pruned.bytes)",
                    ]
                )
            }
        } catch {
            logger.error("audit retention failed", metadata: ["belay.error": "\(error)"])
        }
    }
}
