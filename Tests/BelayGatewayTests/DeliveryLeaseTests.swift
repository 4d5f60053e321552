import BelayStore
import BelayTestKit
import Foundation
import Logging
import Synchronization
import Testing

@testable import BelayGateway

/// A sender whose sends wait until released (answering 200) or cancelled.
final class GatedSender: DeliverySender {
    private struct State {
        var started = 0
        var cancelled = 0
        var released = false
        var gates: [CheckedContinuation<Bool, Never>] = []
        var startWaiters: [(Int, CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    var cancelledCount: Int { state.withLock { $0.cancelled } }

    func pause(of upstream: String) -> Duration? { nil }

    func send(_ delivery: Delivery) async -> SendResult {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.started += 1
            let ready = state.startWaiters.filter { $0.0 <= state.started }.map(\.1)
            state.startWaiters.removeAll { $0.0 <= state.started }
            return ready
        }
        for waiter in ready { waiter.resume() }
        let released = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let now = state.withLock { state -> Bool? in
                    if state.released { return true }
                    if Task.isCancelled { return false }
                    state.gates.append(continuation)
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let gates = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
                defer { state.gates = [] }
                return state.gates
            }
            for gate in gates { gate.resume(returning: false) }
        }
        guard released else {
            state.withLock { $0.cancelled += 1 }
            return .failed(errorClass: "other", detail: "cancelled", endpoint: nil)
        }
        return .answered(status: 200, retryAfter: nil, endpoint: "e:1")
    }

    /// Answers every send waiting now and every later one with 200.
    func release() {
        let gates = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.released = true
            defer { state.gates = [] }
            return state.gates
        }
        for gate in gates { gate.resume(returning: true) }
    }

    /// Waits until `count` sends have started.
    func waitForStarts(_ count: Int) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.started >= count { return true }
                state.startWaiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

/// Issue 11, "a delivery sent twice at the same time": a claim's lease is renewed while its
/// attempt runs, and an attempt whose lease was taken by another claim is cancelled and
/// records nothing.
@Suite(.timeLimit(.minutes(1))) struct DeliveryLeaseTests {
    let origin = Date(timeIntervalSince1970: 1_800_000_000)

    private func withWorker(
        _ body: (DeliveryWorker<ManualClock>, SQLiteStore, GatedSender, ManualClock) async throws -> Void
    ) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-lease-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
        let clock = ManualClock()
        let sender = GatedSender()
        var configuration = DeliveryWorker<ManualClock>.Configuration()
        configuration.idlePoll = .seconds(3_600)
        configuration.lease = .seconds(30)
        let worker = DeliveryWorker(
            store: store,
            sender: sender,
            planner: DeliveryPlanner(GatewayConfig.Deliveries()),
            configuration: configuration,
            upstreams: ["pay"],
            wall: WallClock(clock: clock, origin: origin),
            owner: "w1",
            random: { 0.5 },
            logger: Logger(label: "test")
        )
        _ = try await store.insert([
            NewDelivery(
                id: "dlv_1",
                upstream: "pay",
                method: "POST",
                path: "/v1/orders",
                idempotencyKey: "order-1",
                keyFromCaller: true,
                fingerprint: "f",
                notBefore: origin,
                createdAt: origin
            )
        ])
        try await body(worker, store, sender, clock)
    }

    /// The run loop's next planned wake at or after `target`, skipping earlier idle plans.
    private func wake(on clock: ManualClock, reaching target: ManualClock.Instant) async -> ManualClock.Instant {
        var wake = await clock.nextSleepScheduled()
        while wake > target { wake = await clock.nextSleepScheduled() }
        return wake
    }

    @Test func aLongAttemptKeepsItsLeaseAndIsRecorded() async throws {
        try await withWorker { worker, store, sender, clock in
            let run = Task { try await worker.run() }
            await sender.waitForStarts(1)
            // The loop wakes at a third of the lease to renew it, twice: the attempt outlives
            // the first lease's 30 s, and nobody else may claim the delivery meanwhile.
            #expect(await wake(on: clock, reaching: .init(offset: .seconds(10))) == .init(offset: .seconds(10)))
            clock.advance(to: .init(offset: .seconds(10)))
            #expect(await wake(on: clock, reaching: .init(offset: .seconds(20))) == .init(offset: .seconds(20)))
            let renewed = try #require(try await store.delivery(id: "dlv_1")?.0)
            #expect(renewed.leaseExpiresAt == origin.addingTimeInterval(40))
            clock.advance(to: .init(offset: .seconds(20)))
            #expect(await wake(on: clock, reaching: .init(offset: .seconds(30))) == .init(offset: .seconds(30)))
            clock.advance(to: .init(offset: .seconds(31)))
            let other = try await store.claim(
                limits: ["pay": 1],
                now: origin.addingTimeInterval(31),
                leaseUntil: origin.addingTimeInterval(61),
                owner: "w2"
            )
            #expect(other.isEmpty)
            sender.release()
            var polls = 0
            while try await store.delivery(id: "dlv_1")?.0.status != .delivered, polls < 10_000 {
                polls += 1
                await Task.yield()
            }
            run.cancel()
            try await run.value
            let (delivery, attempts) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(delivery.status == .delivered && attempts.count == 1)
            #expect(sender.cancelledCount == 0)
        }
    }

    @Test func anAttemptWhoseLeaseWasTakenIsCancelledAndRecordsNothing() async throws {
        try await withWorker { worker, store, sender, clock in
            let run = Task { try await worker.run() }
            await sender.waitForStarts(1)
            #expect(await wake(on: clock, reaching: .init(offset: .seconds(10))) == .init(offset: .seconds(10)))
            // Another instance takes the delivery over (as if w1's lease had run out unseen).
            #expect(try await store.releaseAbandoned(now: origin) == 1)
            let taken = try await store.claim(
                limits: ["pay": 1],
                now: origin,
                leaseUntil: origin.addingTimeInterval(30),
                owner: "w2"
            )
            #expect(taken.count == 1)
            clock.advance(to: .init(offset: .seconds(10)))
            var polls = 0
            while sender.cancelledCount == 0, polls < 100_000 {
                polls += 1
                await Task.yield()
            }
            #expect(sender.cancelledCount == 1)
            run.cancel()
            try await run.value
            // w2's claim stands: w1 recorded no attempt and did not release it.
            let (delivery, attempts) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(delivery.status == .inFlight && delivery.leaseOwner == "w2")
            #expect(attempts.isEmpty)
        }
    }
}
