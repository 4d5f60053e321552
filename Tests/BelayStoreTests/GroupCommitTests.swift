import Foundation
import Synchronization
import Testing

@testable import BelayStore

/// Holds writes until opened, and records each batch.
final class GatedWrites: Sendable {
    private struct State {
        var open = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        var batches: [[String]] = []
    }

    private let state = Mutex(State())

    var batches: [[String]] { state.withLock { $0.batches } }

    func write(_ batch: [String]) async -> [String] {
        state.withLock { $0.batches.append(batch) }
        await withCheckedContinuation { continuation in
            let open = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiting.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
        return batch.map { "stored \($0)" }
    }

    func open() {
        let waiting = state.withLock { state in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Waits (yielding, never sleeping) until `count` writes have started.
    func waitForWrites(_ count: Int) async {
        while state.withLock({ $0.batches.count }) < count { await Task.yield() }
    }
}

/// Waits, yielding, until `condition` holds.
func eventually(_ condition: () -> Bool) async {
    while !condition() { await Task.yield() }
}

@Suite struct GroupCommitTests {
    @Test func submissionsArrivingDuringAWriteShareTheNextOne() async throws {
        let writes = GatedWrites()
        let commit = GroupCommit<String, String>(maxBatch: 100) { batch throws(StoreError) in
            await writes.write(batch)
        }
        try await withThrowingTaskGroup(of: (String, String).self) { group in
            group.addTask { ("a", try await commit.submit("a")) }
            await writes.waitForWrites(1)
            for name in ["b", "c", "d", "e"] {
                group.addTask { (name, try await commit.submit(name)) }
            }
            await eventually { commit.queuedCount == 4 }
            writes.open()
            var results: [String: String] = [:]
            for try await (name, result) in group { results[name] = result }
            #expect(results == ["a": "stored a", "b": "stored b", "c": "stored c", "d": "stored d", "e": "stored e"])
        }
        #expect(writes.batches.count == 2)
        #expect(writes.batches[0] == ["a"])
        #expect(Set(writes.batches[1]) == ["b", "c", "d", "e"])
    }

    @Test func aBatchNeverExceedsTheMaximum() async throws {
        let writes = GatedWrites()
        let commit = GroupCommit<String, String>(maxBatch: 2) { batch throws(StoreError) in
            await writes.write(batch)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { _ = try await commit.submit("a") }
            await writes.waitForWrites(1)
            for name in ["b", "c", "d", "e", "f"] {
                group.addTask { _ = try await commit.submit(name) }
            }
            await eventually { commit.queuedCount == 5 }
            writes.open()
            try await group.waitForAll()
        }
        #expect(writes.batches.map(\.count) == [1, 2, 2, 1])
    }

    @Test func aFailedWriteFailsEveryoneInItsBatchAndTheNextBatchStillRuns() async throws {
        let calls = Mutex(0)
        let commit = GroupCommit<String, String>(maxBatch: 10) { batch throws(StoreError) in
            let call = calls.withLock { count in
                count += 1
                return count
            }
            if call == 1 { throw StoreError(.io, "disk full") }
            return batch
        }
        await #expect(throws: StoreError.self) { try await commit.submit("a") }
        #expect(try await commit.submit("b") == "b")
    }
}

/// A store whose inserts wait at a gate; everything else is unused here.
final class GatedStore: DeliveryStore {
    let writes = GatedWrites()

    func insert(_ batch: [NewDelivery]) async throws(StoreError) -> [AcceptOutcome] {
        _ = await writes.write(batch.map(\.id))
        return batch.map { .accepted(acceptedDelivery($0)) }
    }

    private func acceptedDelivery(_ item: NewDelivery) -> Delivery {
        Delivery(
            id: item.id,
            upstream: item.upstream,
            method: item.method,
            path: item.path,
            headers: item.headers,
            body: item.body,
            idempotencyKey: item.idempotencyKey,
            requireAck: item.requireAck,
            status: .pending,
            attemptCount: 0,
            scheduleStep: 0,
            nextAttemptAt: item.notBefore,
            createdAt: item.createdAt,
            updatedAt: item.createdAt
        )
    }

    func claim(
        limits: [String: Int],
        inFlightLimit: Int?,
        now: Date,
        leaseUntil: Date,
        owner: String
    ) async throws(StoreError)
        -> [ClaimedDelivery]
    { [] }
    func finish(id: String, lease: Lease, outcome: DeliveryOutcome) async throws(StoreError) -> Bool { false }
    func renew(id: String, lease: Lease, until: Date) async throws(StoreError) -> Bool { false }
    func release(owner: String, now: Date) async throws(StoreError) {}
    func releaseAbandoned(now: Date) async throws(StoreError) -> Int { 0 }
    func nextDue(upstreams: [String], owner: String) async throws(StoreError) -> Date? { nil }
    func delivery(id: String) async throws(StoreError) -> (Delivery, [DeliveryAttempt])? { nil }
    func delivery(
        upstream: String,
        consumer: String,
        callerKey: String
    ) async throws(StoreError) -> (delivery: Delivery, fingerprint: String)? { nil }
    func deliveries(_ query: DeliveryQuery) async throws(StoreError) -> DeliveryPage {
        DeliveryPage(deliveries: [], nextCursor: nil)
    }
    func retry(id: String, now: Date) async throws(StoreError) -> TransitionOutcome { .notFound }
    func cancel(id: String, now: Date) async throws(StoreError) -> TransitionOutcome { .notFound }
    func acknowledge(id: String, now: Date) async throws(StoreError) -> TransitionOutcome { .notFound }
    func counts() async throws(StoreError) -> [DeliveryStatus: Int] { [:] }
    func oldestPending() async throws(StoreError) -> Date? { nil }
    func forgetKeys(acceptedBefore date: Date) async throws(StoreError) -> Int { 0 }
    func purgeFinished(updatedBefore date: Date, limit: Int) async throws(StoreError) -> Int { 0 }
}

@Suite struct DeliveryIntakeTests {
    @Test func aKeyBeingAcceptedIsInFlightForASecondRequestAndFreeAfterwards() async throws {
        let store = GatedStore()
        let intake = DeliveryIntake(store: store)
        try await withThrowingTaskGroup(of: AcceptOutcome.self) { group in
            group.addTask { try await intake.accept(newDelivery("dlv_1", key: "k")) }
            await store.writes.waitForWrites(1)
            #expect(try await intake.accept(newDelivery("dlv_2", key: "k")) == .keyInFlight)
            // Another upstream's key of the same name is not the same key.
            group.addTask { try await intake.accept(newDelivery("dlv_3", upstream: "ship", key: "k")) }
            store.writes.open()
            var accepted: [String] = []
            for try await outcome in group { accepted += outcome.delivery.map { [$0.id] } ?? [] }
            #expect(Set(accepted) == ["dlv_1", "dlv_3"])
        }
        let after = try await intake.accept(newDelivery("dlv_4", key: "k"))
        #expect(after.delivery?.id == "dlv_4")
    }

    @Test(arguments: StoreBackend.available)
    func twoHundredConcurrentAcceptsAreAllStored(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            let intake = DeliveryIntake(store: store)
            try await withThrowingTaskGroup(of: AcceptOutcome.self) { group in
                for index in 0..<200 {
                    group.addTask { try await intake.accept(newDelivery(String(format: "dlv_%03d", index))) }
                }
                var accepted = 0
                for try await outcome in group {
                    if case .accepted = outcome { accepted += 1 }
                }
                #expect(accepted == 200)
            }
            #expect(try await store.counts() == [.pending: 200])
        }
    }
}
