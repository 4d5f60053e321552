import BelayStore
import BelayTestKit
import Foundation
import Logging
import Synchronization
import Testing

@testable import BelayGateway

/// Answers sends from a script and records them.
final class ScriptedSender: DeliverySender {
    private struct State {
        var script: [SendResult]
        var sent: [(id: String, key: String)] = []
        var pauses: [String: Duration] = [:]
        var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state: Mutex<State>

    init(_ script: [SendResult]) {
        state = Mutex(State(script: script))
    }

    var sent: [(id: String, key: String)] { state.withLock { $0.sent } }

    func setPause(_ pause: Duration?, for upstream: String) {
        state.withLock { $0.pauses[upstream] = pause }
    }

    func send(_ delivery: Delivery) async -> SendResult {
        let (result, ready) = state.withLock { state -> (SendResult, [CheckedContinuation<Void, Never>]) in
            state.sent.append((delivery.id, delivery.idempotencyKey))
            let result =
                state.script.isEmpty
                ? .answered(status: 200, retryAfter: nil, endpoint: "e") : state.script.removeFirst()
            let count = state.sent.count
            let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
            state.waiters.removeAll { $0.count <= count }
            return (result, ready)
        }
        for continuation in ready { continuation.resume() }
        return result
    }

    func pause(of upstream: String) -> Duration? { state.withLock { $0.pauses[upstream] } }

    /// Waits until `count` sends have been made.
    func waitForSends(_ count: Int) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.sent.count >= count { return true }
                state.waiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

/// Alerts raised, in order.
final class AlertLog: Sendable {
    private let alerts = Mutex<[Alert]>([])
    func record(_ alert: Alert) { alerts.withLock { $0.append(alert) } }
    var kinds: [Alert.Kind] { alerts.withLock { $0.map(\.kind) } }
    var all: [Alert] { alerts.withLock { $0 } }
}

/// Takes recorded sleeps until one ends at `target`: true if none ended before it.
func nextSleep(on clock: ManualClock, reaching target: ManualClock.Instant) async -> Bool {
    for _ in 0..<3 {
        let wake = await clock.nextSleepScheduled()
        if wake == target { return true }
        if wake < target {
            Issue.record("the worker planned to wake at \(wake), before \(target)")
            return false
        }
    }
    Issue.record("the worker never planned to wake at \(target)")
    return false
}

@Suite struct DeliveryWorkerTests {
    let origin = Date(timeIntervalSince1970: 1_800_000_000)

    func withWorker(
        _ script: [SendResult],
        schedule: [Duration] = [.zero, .seconds(5), .seconds(300)],
        notifyAfter: Int = 2,
        idlePoll: Duration = .seconds(3_600),
        // Longer than any test's schedule: lease renewals never show among the planned wakes.
        lease: Duration = .seconds(1_000_000),
        upstreams: [String] = ["pay"],
        _ body: (DeliveryWorker<ManualClock>, SQLiteStore, ScriptedSender, ManualClock, AlertLog) async throws -> Void
    ) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-worker-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
        let clock = ManualClock()
        let sender = ScriptedSender(script)
        var deliveries = GatewayConfig.Deliveries()
        deliveries.schedule = schedule
        deliveries.notifyAfter = notifyAfter
        var configuration = DeliveryWorker<ManualClock>.Configuration()
        configuration.idlePoll = idlePoll
        configuration.lease = lease
        configuration.concurrency = 2
        let alerts = AlertLog()
        let worker = DeliveryWorker(
            store: store,
            sender: sender,
            planner: DeliveryPlanner(deliveries),
            configuration: configuration,
            upstreams: upstreams,
            wall: WallClock(clock: clock, origin: origin),
            owner: "w1",
            alert: { alerts.record($0) },
            random: { 0.5 },  // no jitter: exact instants
            logger: Logger(label: "test")
        )
        try await body(worker, store, sender, clock, alerts)
    }

    func accept(_ store: SQLiteStore, _ id: String, at date: Date, upstream: String = "pay") async throws {
        _ = try await store.insert([
            NewDelivery(
                id: id,
                upstream: upstream,
                method: "POST",
                path: "/v1/orders",
                idempotencyKey: "key-\(id)",
                keyFromCaller: false,
                fingerprint: "f",
                notBefore: date,
                createdAt: date
            )
        ])
    }

    @Test func failuresAreRetriedOnTheScheduleUntilDelivered() async throws {
        let script: [SendResult] = [
            .answered(status: 503, retryAfter: nil, endpoint: "a:1"),
            .failed(errorClass: "connect", detail: "refused", endpoint: "a:1"),
            .answered(status: 201, retryAfter: nil, endpoint: "b:2"),
        ]
        try await withWorker(script) { worker, store, sender, clock, alerts in
            try await accept(store, "dlv_1", at: origin)
            let run = Task { try await worker.run() }
            await sender.waitForSends(1)
            // 503 at t0: the worker sleeps until the schedule's 5 s (it may first go idle while
            // the attempt is in flight).
            #expect(await nextSleep(on: clock, reaching: .init(offset: .seconds(5))))
            clock.advance(to: .init(offset: .seconds(5)))
            await sender.waitForSends(2)
            // Refused at t0+5s: next after 300 s. (The loop may first go idle while that
            // attempt is in flight, but it never plans to wake before the attempt is due.)
            #expect(await nextSleep(on: clock, reaching: .init(offset: .seconds(305))))
            clock.advance(to: .init(offset: .seconds(305)))
            await sender.waitForSends(3)
            // Delivered; then nothing is due, so the worker plans only its idle poll.
            #expect(await nextSleep(on: clock, reaching: .init(offset: .seconds(305 + 3_600))))
            var polls = 0
            // Delivered, and the "still trying" alert resolved (raised just after the record).
            while try await store.delivery(id: "dlv_1")?.0.status != .delivered || alerts.kinds.count < 2,
                polls < 10_000
            {
                polls += 1
                await Task.yield()
            }
            run.cancel()
            try await run.value

            let (delivery, attempts) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(delivery.status == .delivered && delivery.attemptCount == 3)
            #expect(delivery.deliveredAt == origin.addingTimeInterval(305))
            try #require(attempts.count == 3)
            #expect(attempts.map(\.number) == [1, 2, 3])
            #expect(attempts.map(\.statusCode) == [503, nil, 201])
            #expect(attempts.map(\.errorClass) == [nil, "connect", nil])
            #expect(
                attempts.map(\.startedAt) == [origin, origin.addingTimeInterval(5), origin.addingTimeInterval(305)]
            )
            #expect(attempts[0].decision == "retry at 2027-01-15T08:00:05.000Z (HTTP 503 from a:1)")
            #expect(attempts[2].decision == "delivered (HTTP 201)")
            // Every attempt carried the delivery's one key.
            #expect(sender.sent.map(\.key) == ["key-dlv_1", "key-dlv_1", "key-dlv_1"])
            // The second failure reached notify_after = 2; the delivery resolves that alert.
            #expect(alerts.kinds == [.stillTrying, .delivered])
            #expect(alerts.all.last?.resolves == .stillTrying && alerts.all.last?.severity == "info")
        }
    }

    @Test func theLastFailureIsDeadAndAlertedThenAReplayDeliversIt() async throws {
        let failure = SendResult.answered(status: 500, retryAfter: nil, endpoint: "a:1")
        try await withWorker([failure, failure], schedule: [.zero, .seconds(1)], notifyAfter: 1) {
            worker,
            store,
            sender,
            clock,
            alerts in
            try await accept(store, "dlv_1", at: origin)
            for item in await worker.claimDue() { await worker.handle(item) }
            clock.advance(by: .seconds(1))
            for item in await worker.claimDue() { await worker.handle(item) }
            let dead = try #require(try await store.delivery(id: "dlv_1")?.0)
            #expect(dead.status == .dead && dead.lastError == "HTTP 500 from a:1")
            #expect(alerts.kinds == [.stillTrying, .dead])
            #expect(alerts.all[1].severity == "critical" && alerts.all[1].link == "/v1/deliveries/dlv_1")

            guard case .changed = try await store.retry(id: "dlv_1", now: origin.addingTimeInterval(2)) else {
                Issue.record("replay refused")
                return
            }
            clock.advance(by: .seconds(1))
            for item in await worker.claimDue() { await worker.handle(item) }
            let replayed = try #require(try await store.delivery(id: "dlv_1"))
            #expect(replayed.0.status == .delivered && replayed.0.attemptCount == 3 && replayed.1.count == 3)
            #expect(sender.sent.count == 3)
        }
    }

    @Test func aDeadWebhookForwardIsAlertedAsAWebhookEventWithItsReplay() async throws {
        let failure = SendResult.answered(status: 500, retryAfter: nil, endpoint: "hooks:3000")
        try await withWorker([failure], schedule: [.zero], notifyAfter: 5, upstreams: ["webhook:stripe"]) {
            worker,
            store,
            _,
            _,
            alerts in
            try await accept(store, "dlv_9", at: origin, upstream: "webhook:stripe")
            for item in await worker.claimDue() { await worker.handle(item) }
            let alert = try #require(alerts.all.first)
            #expect(alerts.kinds == [.webhookDead])
            #expect(alert.severity == "critical")
            #expect(alert.subject == "key-dlv_9")  // the event id is the forward's idempotency key
            #expect(alert.link == "/v1/webhooks/events?source=stripe")
            #expect(alert.since == origin)
            #expect(alert.summary.contains("POST /v1/webhooks/events/key-dlv_9/replay"))
            #expect(
                alert.summary.hasPrefix("webhook event key-dlv_9 from stripe could not be forwarded after 1 attempts")
            )
        }
    }

    @Test func whenOtherWorkersHoldTheWholeConcurrencyItLooksAgainShortlyInsteadOfSpinning() async throws {
        try await withWorker([]) { worker, store, _, _, _ in
            for id in ["dlv_1", "dlv_2", "dlv_3"] { try await accept(store, id, at: origin) }
            // Another instance holds the upstream's whole concurrency (2) under long leases.
            let taken = try await store.claim(
                limits: ["pay": 2],
                now: origin,
                leaseUntil: origin.addingTimeInterval(600),
                owner: "other"
            )
            #expect(taken.count == 2)
            #expect(await worker.claimDue().isEmpty)
            // dlv_3 is due now, but looking again at once would only claim nothing again.
            #expect(await worker.nextWake() == origin.addingTimeInterval(0.1))
        }
    }

    @Test func anUpstreamWithAnOpenBreakerIsNotClaimedFromAndNoAttemptIsSpent() async throws {
        try await withWorker([]) { worker, store, sender, clock, _ in
            try await accept(store, "dlv_1", at: origin)
            sender.setPause(.seconds(30), for: "pay")
            #expect(await worker.claimDue().isEmpty)
            #expect(await worker.nextWake() == origin.addingTimeInterval(30))
            sender.setPause(nil, for: "pay")
            let claimed = await worker.claimDue()
            #expect(claimed.map(\.delivery.id) == ["dlv_1"])
        }
    }

    @Test func aHeldSendWaitsWithoutSpendingAnAttempt() async throws {
        try await withWorker([.held(reason: "pay: bulkhead full", retryAfter: .seconds(2))]) {
            worker,
            store,
            sender,
            clock,
            _ in
            try await accept(store, "dlv_1", at: origin)
            for item in await worker.claimDue() { await worker.handle(item) }
            let (held, attempts) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(held.status == .pending && held.attemptCount == 0 && attempts.isEmpty)
            #expect(held.nextAttemptAt == origin.addingTimeInterval(2))
        }
    }

    @Test func concurrencyPerUpstreamIsBounded() async throws {
        try await withWorker([]) { worker, store, _, _, _ in
            for index in 1...5 { try await accept(store, "dlv_\(index)", at: origin) }
            // Concurrency 2: two are claimed, the rest wait until those finish.
            let first = await worker.claimDue()
            #expect(first.count == 2)
            #expect(await worker.claimDue().isEmpty)
            for item in first { await worker.handle(item) }
        }
    }

    @Test func anOverdueAckIsAlertedAndDeliveredAgainWithTheSameKey() async throws {
        try await withWorker([]) { worker, store, sender, clock, alerts in
            _ = try await store.insert([
                NewDelivery(
                    id: "dlv_1",
                    upstream: "pay",
                    method: "POST",
                    path: "/v1/orders",
                    idempotencyKey: "order-7",
                    keyFromCaller: true,
                    fingerprint: "f",
                    requireAck: true,
                    notBefore: origin,
                    createdAt: origin
                )
            ])
            for item in await worker.claimDue() { await worker.handle(item) }
            let delivered = try #require(try await store.delivery(id: "dlv_1")?.0)
            #expect(delivered.status == .delivered)
            #expect(delivered.nextAttemptAt == origin.addingTimeInterval(3_600))
            clock.advance(by: .seconds(3_600))
            let overdue = await worker.claimDue()
            #expect(overdue.map(\.reason) == [.ackOverdue])
            for item in overdue { await worker.handle(item) }
            #expect(alerts.kinds == [.ackOverdue])
            #expect(sender.sent.map(\.key) == ["order-7", "order-7"])
        }
    }
}
