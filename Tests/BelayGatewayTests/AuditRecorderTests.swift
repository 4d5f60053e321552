import Belay
import BelayHTTP
import BelayStore
import BelayTestKit
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import BelayGateway

/// An audit store in memory that records every batch and retention pass.
final class MemoryAuditStore: AuditStore {
    private struct State {
        var batches: [[AuditRecord]] = []
        var prunes: [(date: Date, maxBytes: Int64)] = []
        var failNext = false
        var holdLookup = false
        var lookupBegun = false
        var begunWaiter: CheckedContinuation<Void, Never>?
        var released = false
        var release: CheckedContinuation<Void, Never>?
        var waiters: [(ready: @Sendable (Int, Int) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    var batches: [[AuditRecord]] { state.withLock { $0.batches } }
    var records: [AuditRecord] { batches.flatMap { $0 } }
    var prunes: [(date: Date, maxBytes: Int64)] { state.withLock { $0.prunes } }

    func failNextInsert() { state.withLock { $0.failNext = true } }

    private func changed(_ change: (inout State) -> Void) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            change(&state)
            let records = state.batches.reduce(0) { $0 + $1.count }
            let prunes = state.prunes.count
            let ready = state.waiters.filter { $0.ready(records, prunes) }.map(\.continuation)
            state.waiters.removeAll { $0.ready(records, prunes) }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Waits until `ready(records written, retention passes)` holds.
    func wait(until ready: @escaping @Sendable (Int, Int) -> Bool) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if ready(state.batches.reduce(0) { $0 + $1.count }, state.prunes.count) { return true }
                state.waiters.append((ready, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    func insertAudit(_ batch: [AuditRecord]) async throws(StoreError) {
        let fail = state.withLock { state -> Bool in
            defer { state.failNext = false }
            return state.failNext
        }
        if fail { throw StoreError(.io, "simulated failure") }
        changed { $0.batches.append(batch) }
    }

    func auditRecord(requestID: String) async throws(StoreError) -> AuditRecord? {
        let answer = records.last { $0.requestID == requestID }
        let hold = state.withLock { state -> Bool in
            defer { state.holdLookup = false }
            return state.holdLookup
        }
        if hold {
            let begun = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.lookupBegun = true
                defer { state.begunWaiter = nil }
                return state.begunWaiter
            }
            begun?.resume()
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if state.released { return true }
                    state.release = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        }
        return answer
    }

    /// Makes the next lookup answer what was written when it began, and return only once
    /// ``releaseHeldLookup()`` is called: a read whose snapshot predates a write that commits
    /// meanwhile.
    func holdNextLookup() { state.withLock { $0.holdLookup = true } }

    /// Returns once the held lookup has begun.
    func waitForHeldLookup() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.lookupBegun { return true }
                state.begunWaiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Lets the held lookup return.
    func releaseHeldLookup() {
        let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.released = true
            defer { state.release = nil }
            return state.release
        }
        waiting?.resume()
    }

    func auditRecords(_ query: AuditQuery) async throws(StoreError) -> AuditPage {
        AuditPage(records: records.reversed(), nextCursor: nil)
    }

    func pruneAudit(olderThan date: Date, maxBytes: Int64) async throws(StoreError) -> AuditPruning {
        changed { $0.prunes.append((date, maxBytes)) }
        return AuditPruning(expired: 0, trimmed: 0, bytes: 0)
    }

    func auditBytes() async throws(StoreError) -> Int64 { 0 }
}

func exchange(_ id: String) -> ProxyExchange {
    ProxyExchange(
        requestID: id,
        upstream: "pay",
        method: "GET",
        path: "/v1/balance",
        receivedAt: Date(timeIntervalSince1970: 1_800_000_000),
        duration: .milliseconds(3),
        status: 200
    )
}

@Suite(.timeLimit(.minutes(1))) struct AuditRecorderTests {
    let origin = Date(timeIntervalSince1970: 1_800_000_000)
    let quiet: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }()

    func recorder(
        _ store: MemoryAuditStore,
        clock: ManualClock,
        _ configure: (inout AuditRecorder<ManualClock>.Configuration) -> Void = { _ in }
    ) -> AuditRecorder<ManualClock> {
        var configuration = AuditRecorder<ManualClock>.Configuration()
        configure(&configuration)
        return AuditRecorder(
            store: store,
            configuration: configuration,
            wall: WallClock(clock: clock, origin: origin),
            logger: quiet
        )
    }

    /// Runs `recorder` in a service group for `body`, then stops it gracefully.
    func running(
        _ recorder: AuditRecorder<ManualClock>,
        _ body: () async throws -> Void
    ) async throws {
        let group = ServiceGroup(
            configuration: .init(services: [recorder], gracefulShutdownSignals: [], logger: quiet)
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func observingOnlyBuffersAndAFullBatchIsWrittenAtOnce() async throws {
        let store = MemoryAuditStore()
        let clock = ManualClock()
        let audit = recorder(store, clock: clock) {
            $0.batchSize = 3
            $0.flushInterval = .seconds(1)
        }
        audit.observe(exchange("r-1"))
        audit.observe(exchange("r-2"))
        #expect(store.records.isEmpty)
        try await running(audit) {
            // The writer waits for the flush interval (after the retention pass at start).
            #expect(await clock.nextSleepScheduled() == clock.now.advanced(by: .seconds(1)))
            audit.observe(exchange("r-3"))
            await store.wait { records, _ in records == 3 }
            #expect(store.batches.map { $0.map(\.requestID) } == [["r-1", "r-2", "r-3"]])
            #expect(clock.now == .init(offset: .zero))
            // Less than a batch waits for the interval.
            let next = await clock.nextSleepScheduled()
            audit.observe(exchange("r-4"))
            #expect(store.records.count == 3)
            clock.advance(to: next)
            await store.wait { records, _ in records == 4 }
            #expect(store.batches.map(\.count) == [3, 1])
        }
    }

    @Test func aLongQueueIsWrittenInBatches() async throws {
        let store = MemoryAuditStore()
        let audit = recorder(store, clock: ManualClock()) { $0.batchSize = 500 }
        for index in 0..<1_200 { audit.observe(exchange("r-\(index)")) }
        await audit.flush()
        #expect(store.batches.map(\.count) == [500, 500, 200])
        #expect(store.records.map(\.requestID) == (0..<1_200).map { "r-\($0)" })
    }

    @Test func aFullBufferDropsTheOldestAndCountsThem() async throws {
        let store = MemoryAuditStore()
        let audit = recorder(store, clock: ManualClock()) { $0.bufferSize = 5 }
        for index in 0..<8 { audit.observe(exchange("r-\(index)")) }
        #expect(audit.droppedCount == 3)
        await audit.flush()
        #expect(store.records.map(\.requestID) == ["r-3", "r-4", "r-5", "r-6", "r-7"])
    }

    @Test func flushWaitsForTheRunningWriter() async throws {
        let store = MemoryAuditStore()
        let clock = ManualClock()
        let audit = recorder(store, clock: clock)
        try await running(audit) {
            _ = await clock.nextSleepScheduled()
            audit.observe(exchange("r-1"))
            audit.observe(exchange("r-2"))
            await audit.flush()
            #expect(store.records.map(\.requestID) == ["r-1", "r-2"])
            #expect(clock.now == .init(offset: .zero))
        }
    }

    @Test func gracefulShutdownWritesWhatIsLeft() async throws {
        let store = MemoryAuditStore()
        let clock = ManualClock()
        let audit = recorder(store, clock: clock)
        try await running(audit) {
            _ = await clock.nextSleepScheduled()
            audit.observe(exchange("r-1"))
            audit.observe(exchange("r-2"))
        }
        #expect(store.records.map(\.requestID) == ["r-1", "r-2"])
        #expect(clock.now == .init(offset: .zero))
    }

    @Test func aFailedWriteIsCountedAndTheNextOneGoesAhead() async throws {
        let store = MemoryAuditStore()
        let audit = recorder(store, clock: ManualClock())
        store.failNextInsert()
        audit.observe(exchange("r-1"))
        await audit.flush()
        #expect(audit.failedCount == 1)
        audit.observe(exchange("r-2"))
        await audit.flush()
        #expect(store.records.map(\.requestID) == ["r-2"])
    }

    @Test func retentionRunsAtStartThenEveryInterval() async throws {
        let store = MemoryAuditStore()
        let clock = ManualClock()
        let audit = recorder(store, clock: clock) {
            $0.retention = .seconds(86_400)
            $0.maxBytes = 5_000_000
            $0.pruneInterval = .seconds(300)
        }
        try await running(audit) {
            await store.wait { _, prunes in prunes == 1 }
            #expect(store.prunes.first?.date == origin.addingTimeInterval(-86_400))
            #expect(store.prunes.first?.maxBytes == 5_000_000)
            _ = await clock.nextSleepScheduled()
            clock.advance(by: .seconds(299))
            _ = await clock.nextSleepScheduled()
            #expect(store.prunes.count == 1)
            clock.advance(by: .seconds(1))
            await store.wait { _, prunes in prunes == 2 }
            #expect(store.prunes.last?.date == origin.addingTimeInterval(300 - 86_400))
        }
    }

    /// Review of issue 11: a trail read right after its request was answered was sometimes
    /// 404. The lookup missed the record while it was being written, and by the time the
    /// service asked whether anything was still buffered the write had committed: nothing to
    /// flush, so no second look.
    @Test func aRequestWrittenWhileItsLookupRanIsStillFound() async throws {
        let store = MemoryAuditStore()
        let clock = ManualClock()
        let recorder = recorder(store, clock: clock)
        let service = AuditService(store: store, recorder: recorder, wall: WallClock(clock: clock, origin: origin))
        recorder.observe(exchange("req-1"))
        store.holdNextLookup()
        async let shown = service.show("req-1", requestID: "r-1")
        await store.waitForHeldLookup()
        // The write commits while the lookup, which did not see it, is still out.
        await recorder.flush()
        #expect(store.records.map(\.requestID) == ["req-1"])
        store.releaseHeldLookup()
        #expect(await shown.status == 200)
    }

    @Test func configuredDefaultsAreTheIssues() {
        let defaults = AuditRecorder<ManualClock>.Configuration()
        #expect(defaults.retention == .seconds(7 * 86_400))
        #expect(defaults.maxBytes == 1 << 30)
        #expect(defaults.batchSize == 500)
        #expect(defaults.flushInterval == .milliseconds(250))
    }
}
