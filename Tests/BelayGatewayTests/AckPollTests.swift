import BelayStore
import BelayTestKit
import BelayTestUpstream
import Foundation
import Logging
import NIOHTTP1
import Synchronization
import Testing

@testable import BelayGateway

/// Answers sends and lookups from two scripts and records both.
final class LookingSender: DeliverySender {
    private struct State {
        var sends: [SendResult]
        var lookups: [SendResult]
        var sent: [String] = []
        var looked: [String] = []
    }

    private let state: Mutex<State>
    /// Runs during each lookup, before it answers (the other system acting meanwhile).
    private let duringLookup: @Sendable () async -> Void

    init(
        sends: [SendResult] = [],
        lookups: [SendResult] = [],
        duringLookup: @escaping @Sendable () async -> Void = {}
    ) {
        state = Mutex(State(sends: sends, lookups: lookups))
        self.duringLookup = duringLookup
    }

    /// The idempotency key of each send, in order.
    var sent: [String] { state.withLock { $0.sent } }
    /// The path of each lookup, in order.
    var looked: [String] { state.withLock { $0.looked } }

    func send(_ delivery: Delivery) async -> SendResult {
        state.withLock { state in
            state.sent.append(delivery.idempotencyKey)
            return state.sends.isEmpty
                ? .answered(status: 201, retryAfter: nil, endpoint: "e:1") : state.sends.removeFirst()
        }
    }

    func look(_ delivery: Delivery, path: String) async -> SendResult {
        await duringLookup()
        return state.withLock { state in
            state.looked.append(path)
            return state.lookups.isEmpty
                ? .answered(status: 404, retryAfter: nil, endpoint: "e:1") : state.lookups.removeFirst()
        }
    }

    func pause(of upstream: String) -> Duration? { nil }
}

/// Confirmation by looking the order up (`ack.poll`) and the lookup before a resend whose
/// earlier send may have reached the provider (issue 13), on a ManualClock: the worker's claims
/// are driven one by one.
@Suite struct AckPollTests {
    let origin = Date(timeIntervalSince1970: 1_800_000_000)

    func withWorker(
        _ sender: LookingSender,
        every: Duration = .seconds(60),
        timeout: Duration = .seconds(150),
        schedule: [Duration] = [.zero, .seconds(5), .seconds(300)],
        _ body: (DeliveryWorker<ManualClock>, SQLiteStore, ManualClock, AlertLog) async throws -> Void
    ) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-poll-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
        let clock = ManualClock()
        var deliveries = GatewayConfig.Deliveries()
        deliveries.schedule = schedule
        var planner = DeliveryPlanner(deliveries)
        planner.ackPolls["pay"] = .init(path: "/v1/orders/{key}", every: every, until: [200])
        planner.ackTimeouts["pay"] = timeout
        let alerts = AlertLog()
        let worker = DeliveryWorker(
            store: store,
            sender: sender,
            planner: planner,
            upstreams: ["pay"],
            wall: WallClock(clock: clock, origin: origin),
            owner: "w1",
            alert: { alerts.record($0) },
            random: { 0.5 },  // no jitter: exact instants
            logger: Logger(label: "test")
        )
        _ = try await store.insert([
            NewDelivery(
                id: "dlv_1",
                upstream: "pay",
                method: "POST",
                path: "/v1/orders",
                idempotencyKey: "order 7",
                keyFromCaller: true,
                fingerprint: "f",
                requireAck: true,
                notBefore: origin,
                createdAt: origin
            )
        ])
        try await body(worker, store, clock, alerts)
    }

    /// Claims what is due and handles it; the reasons claimed.
    @discardableResult
    func runDue(_ worker: DeliveryWorker<ManualClock>) async -> [ClaimReason] {
        let claimed = await worker.claimDue()
        for item in claimed { await worker.handle(item) }
        return claimed.map(\.reason)
    }

    func stored(_ store: SQLiteStore) async throws -> (Delivery, [DeliveryAttempt]) {
        try #require(try await store.delivery(id: "dlv_1"))
    }

    @Test func theOrderIsLookedUpAtEachIntervalUntilTheProviderHasIt() async throws {
        let sender = LookingSender(lookups: [
            .answered(status: 404, retryAfter: nil, endpoint: "e:1"),
            .answered(status: 200, retryAfter: nil, endpoint: "e:1"),
        ])
        try await withWorker(sender) { worker, store, clock, alerts in
            #expect(await runDue(worker) == [.due])
            var (delivery, _) = try await stored(store)
            #expect(delivery.status == .delivered)
            // Looked up after `every`, not at the end of the wait.
            #expect(delivery.nextAttemptAt == origin.addingTimeInterval(60))
            clock.advance(by: .seconds(59))
            #expect(await runDue(worker).isEmpty)
            clock.advance(by: .seconds(1))
            #expect(await runDue(worker) == [.ackOverdue])
            (delivery, _) = try await stored(store)
            #expect(delivery.status == .delivered)
            #expect(delivery.nextAttemptAt == origin.addingTimeInterval(120))
            // The wait runs from the 2xx: a lookup does not move it.
            #expect(delivery.deliveredAt == origin)
            clock.advance(by: .seconds(60))
            #expect(await runDue(worker) == [.ackOverdue])
            let (confirmed, trail) = try await stored(store)
            #expect(confirmed.status == .acknowledged)
            #expect(confirmed.acknowledgedAt == origin.addingTimeInterval(120))
            #expect(confirmed.attemptCount == 1 && confirmed.nextAttemptAt == nil)
            #expect(trail.map(\.kind) == [.send, .lookup, .lookup])
            #expect(trail.map(\.statusCode) == [201, 404, 200])
            #expect(trail.map(\.number) == [1, 1, 1])
            #expect(
                trail[1].decision
                    == "not confirmed yet (GET /v1/orders/order%207 answered 404); looking again at 2027-01-15T08:02:00.000Z"
            )
            #expect(
                trail[2].decision == "acknowledged: GET /v1/orders/order%207 answered 200: the provider has the order"
            )
            #expect(sender.sent == ["order 7"])
            #expect(sender.looked == ["/v1/orders/order%207", "/v1/orders/order%207"])
            #expect(alerts.kinds.isEmpty)
        }
    }

    @Test func aLookupCutShortByACrashIsMadeAgainAndTheWaitGoesOn() async throws {
        let sender = LookingSender()  // every lookup: 404
        try await withWorker(sender) { worker, store, clock, alerts in
            await runDue(worker)
            clock.advance(by: .seconds(60))
            // The worker claims the lookup, then dies: a restart puts the delivery back, pending.
            #expect(await worker.claimDue().map(\.reason) == [.ackOverdue])
            _ = try await store.releaseAbandoned(now: origin.addingTimeInterval(60))
            #expect(await runDue(worker) == [.due])
            let (delivery, trail) = try await stored(store)
            // Looked up, not resent: the wait for the confirmation is not over.
            #expect(sender.sent == ["order 7"])
            #expect(delivery.status == .delivered && delivery.attemptCount == 1)
            #expect(delivery.nextAttemptAt == origin.addingTimeInterval(120))
            #expect(delivery.deliveredAt == origin)
            #expect(trail.map(\.kind) == [.send, .lookup])
            #expect(alerts.kinds.isEmpty)
        }
    }

    @Test(arguments: [false, true])
    func aWebhookConfirmationDuringTheLookupMeansNothingIsSentAgain(delivered: Bool) async throws {
        // The provider's webhook lands while Belay looks the order up (which says "not there").
        let store = Mutex<SQLiteStore?>(nil)
        let sender = LookingSender(
            sends: delivered ? [] : [.failed(errorClass: "timeout", detail: "no answer", endpoint: "e:1")],
            duringLookup: {
                guard let store = store.withLock({ $0 }) else { return }
                _ = try? await store.confirm(
                    DeliveryConfirmation(upstream: "pay", idempotencyKey: "order 7", event: "evt_1", at: Date())
                )
            }
        )
        try await withWorker(sender) { worker, sqlite, clock, _ in
            await runDue(worker)
            store.withLock { $0 = sqlite }
            clock.advance(by: delivered ? .seconds(150) : .seconds(5))
            await runDue(worker)
            let (delivery, _) = try await stored(sqlite)
            #expect(sender.looked.count == 1)
            #expect(sender.sent == ["order 7"])
            #expect(delivery.status == .acknowledged && delivery.ackEvent == "evt_1")
        }
    }

    @Test func aLookupHeldBackAtTheEndOfTheWaitStaysOverdueAndIsNotResentUnlookedUp() async throws {
        let sender = LookingSender(lookups: [.held(reason: "pay: bulkhead full", retryAfter: .seconds(2))])
        try await withWorker(sender, every: .seconds(300)) { worker, store, clock, _ in
            await runDue(worker)
            clock.advance(by: .seconds(150))
            #expect(await runDue(worker) == [.ackOverdue])
            let delivery = try await stored(store).0
            #expect(delivery.status == .delivered && delivery.nextAttemptAt == origin.addingTimeInterval(152))
            #expect(sender.sent == ["order 7"])
            clock.advance(by: .seconds(2))
            // Overdue still: looked up (404 now), then resent and alerted.
            #expect(await runDue(worker) == [.ackOverdue])
            #expect(sender.sent == ["order 7", "order 7"])
        }
    }

    @Test func noConfirmationByTheEndOfTheWaitIsLookedUpOnceMoreThenResentAndAlerted() async throws {
        let sender = LookingSender()  // every lookup: 404
        try await withWorker(sender) { worker, store, clock, alerts in
            await runDue(worker)
            clock.advance(by: .seconds(60))
            await runDue(worker)
            clock.advance(by: .seconds(60))
            await runDue(worker)
            // The last lookup falls on the wait's end (150 s), not at 180 s.
            let waiting = try await stored(store).0
            #expect(waiting.nextAttemptAt == origin.addingTimeInterval(150))
            clock.advance(by: .seconds(30))
            #expect(await runDue(worker) == [.ackOverdue])
            let (delivery, trail) = try await stored(store)
            #expect(sender.sent == ["order 7", "order 7"])
            #expect(sender.looked.count == 3)
            #expect(delivery.status == .delivered && delivery.attemptCount == 2)
            #expect(delivery.deliveredAt == origin.addingTimeInterval(150))
            // The lookup before the resend comes first in the trail.
            #expect(trail.map(\.kind) == [.send, .lookup, .lookup, .lookup, .send])
            #expect(trail[3].decision == "GET /v1/orders/order%207: not there; sending it again")
            #expect(trail[4].decision.hasPrefix("sent again, unconfirmed 150s after its 2xx: delivered (HTTP 201)"))
            #expect(alerts.kinds == [.ackOverdue])
        }
    }

    @Test func aTimedOutSendIsLookedUpBeforeItIsResentAndNotResentWhenThere() async throws {
        let sender = LookingSender(
            sends: [.failed(errorClass: "timeout", detail: "no answer within 2s", endpoint: "e:1")],
            lookups: [.answered(status: 200, retryAfter: nil, endpoint: "e:1")]
        )
        try await withWorker(sender) { worker, store, clock, alerts in
            await runDue(worker)
            var (delivery, _) = try await stored(store)
            #expect(delivery.status == .pending && delivery.lastError?.hasPrefix("timeout:") == true)
            clock.advance(by: .seconds(5))
            #expect(await runDue(worker) == [.due])
            let trail: [DeliveryAttempt]
            (delivery, trail) = try await stored(store)
            #expect(delivery.status == .acknowledged)
            #expect(sender.sent == ["order 7"])
            #expect(trail.map(\.kind) == [.send, .lookup])
            #expect(delivery.attemptCount == 1)
            #expect(delivery.deliveredAt == origin.addingTimeInterval(5))
            #expect(alerts.kinds.isEmpty)
        }
    }

    @Test func aResetSendWhoseOrderIsAbsentIsResentAfterTheLookup() async throws {
        let sender = LookingSender(sends: [.failed(errorClass: "reset", detail: "connection reset", endpoint: "e:1")])
        try await withWorker(sender) { worker, store, clock, _ in
            await runDue(worker)
            clock.advance(by: .seconds(5))
            await runDue(worker)
            let (delivery, trail) = try await stored(store)
            #expect(sender.sent == ["order 7", "order 7"])
            #expect(trail.map(\.kind) == [.send, .lookup, .send])
            #expect(trail.map(\.statusCode) == [nil, 404, 201])
            #expect(delivery.status == .delivered && delivery.attemptCount == 2)
        }
    }

    @Test func aLookupThatCannotTellHoldsTheResendBackOnTheSchedule() async throws {
        let sender = LookingSender(
            sends: [.failed(errorClass: "timeout", detail: "no answer within 2s", endpoint: "e:1")],
            lookups: [
                .answered(status: 503, retryAfter: nil, endpoint: "e:1"),
                .answered(status: 404, retryAfter: nil, endpoint: "e:1"),
            ]
        )
        try await withWorker(sender) { worker, store, clock, _ in
            await runDue(worker)
            clock.advance(by: .seconds(5))
            await runDue(worker)
            var (delivery, trail) = try await stored(store)
            // Not resent: the order may be there. An attempt all the same: the schedule bounds it.
            #expect(sender.sent == ["order 7"])
            #expect(delivery.status == .pending && delivery.attemptCount == 2)
            #expect(delivery.lastError == "unknown outcome: HTTP 503 from e:1; not resent, the order may be there")
            #expect(delivery.nextAttemptAt == origin.addingTimeInterval(305))
            #expect(trail.map(\.kind) == [.send, .lookup])
            clock.advance(by: .seconds(300))
            await runDue(worker)
            (delivery, trail) = try await stored(store)
            #expect(sender.sent == ["order 7", "order 7"])
            #expect(trail.map(\.kind) == [.send, .lookup, .lookup, .send])
            #expect(delivery.status == .delivered && delivery.attemptCount == 3)
        }
    }

    @Test func aFirstSendAndAFailedOneWithAnAnswerAreNotLookedUp() async throws {
        let sender = LookingSender(sends: [.answered(status: 503, retryAfter: nil, endpoint: "e:1")])
        try await withWorker(sender) { worker, store, clock, _ in
            await runDue(worker)
            clock.advance(by: .seconds(5))
            await runDue(worker)
            // A 503 is an answer: the order was refused, so it is resent without a look.
            #expect(sender.looked.isEmpty)
            #expect(sender.sent == ["order 7", "order 7"])
            let trail = try await stored(store).1
            #expect(trail.map(\.kind) == [.send, .send])
        }
    }
}

/// The same over real sockets: the test upstream plays a provider that confirms only when
/// asked (`GET /v1/…/{key}`), and one without idempotency keys whose first answer is lost.
@Suite struct AckPollSocketTests {
    @Test func aQueuedOrderIsConfirmedOnceTheProviderShowsIt() async throws {
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            upstreams:
              pay:
                endpoints: ["\(urls[0])"]
                ack: { poll: { path: "/v1/orders/{key}", every: 1s }, timeout: 1h }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            let upstream = gateway.upstreams[0]
            upstream.setBehavior(.always(201), for: "/v1/orders")
            upstream.setBehavior(.always(404), for: "/v1/orders/")
            let queued = try await gateway.queue(
                #"{"upstream":"pay","method":"POST","path":"/v1/orders","body":{"n":1},"idempotency_key":"order-77"}"#
            )
            #expect(queued.status == 202)
            let id = try #require(queued.problem?["id"] as? String)
            func view() async throws -> [String: Any] {
                try #require(try await gateway.send(.GET, "/v1/deliveries/\(id)").problem)
            }
            func kinds() async throws -> [String] {
                (try await view()["attempts"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
            }
            // Delivered, then looked up (404: not there yet) while it waits.
            try await gateway.eventually { try await kinds().count >= 2 }
            #expect(try await view()["status"] as? String == "delivered")
            upstream.setBehavior(.always(200), for: "/v1/orders/order-77")
            try await gateway.eventually { try await view()["status"] as? String == "acknowledged" }
            let trail = try #require(try await view()["attempts"] as? [[String: Any]])
            #expect(trail.first?["kind"] as? String == "send")
            #expect(trail.dropFirst().allSatisfy { $0["kind"] as? String == "lookup" })
            #expect(trail.last?["status_code"] as? Int == 200)
            #expect(try await view()["attempt_count"] as? Int == 1)
            let posts = upstream.requests.filter { $0.method == "POST" }
            let gets = upstream.requests.filter { $0.method == "GET" }
            #expect(posts.count == 1)
            #expect(!gets.isEmpty && gets.allSatisfy { $0.path == "/v1/orders/order-77" })
        }
    }

    @Test func aTimedOutSendToAProviderWithoutKeysIsLookedUpAndNotSentTwice() async throws {
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            upstreams:
              ship:
                endpoints: ["\(urls[0])"]
                # Long enough that a lookup answers within it on a busy machine; the POST hangs past it.
                timeouts: { attempt: 2s, total: 5s }
                ack: { poll: { path: "/v1/shipments/{key}", every: 1h }, timeout: 1h }
            # 3 s before the second attempt: time for the test to make the shipment show up first.
            deliveries: { schedule: [0s, 3s, 1h] }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            let upstream = gateway.upstreams[0]
            // The provider takes the shipment but its answer never comes back.
            upstream.setBehavior(UpstreamBehavior(hang: true), for: "/v1/shipments")
            upstream.setBehavior(.always(404), for: "/v1/shipments/")
            let queued = try await gateway.queue(
                #"{"upstream":"ship","method":"POST","path":"/v1/shipments","body":{"n":1},"idempotency_key":"shp-1"}"#
            )
            let id = try #require(queued.problem?["id"] as? String)
            func view() async throws -> [String: Any] {
                try #require(try await gateway.send(.GET, "/v1/deliveries/\(id)").problem)
            }
            try await gateway.eventually { try await view()["attempt_count"] as? Int == 1 }
            #expect((try await view()["last_error"] as? String)?.hasPrefix("timeout:") == true)
            // It is there now: the lookup before the resend finds it.
            upstream.setBehavior(.always(200), for: "/v1/shipments/shp-1")
            try await gateway.eventually { try await view()["status"] as? String == "acknowledged" }
            let trail = try #require(try await view()["attempts"] as? [[String: Any]])
            #expect(trail.map { $0["kind"] as? String } == ["send", "lookup"])
            #expect(upstream.requests.filter { $0.method == "POST" }.count == 1)
            // Looked up (a lookup is a GET: the policy may retry one that was slow on a busy machine).
            let gets = upstream.requests.filter { $0.method == "GET" }.map(\.path)
            #expect(!gets.isEmpty && gets.allSatisfy { $0 == "/v1/shipments/shp-1" })
        }
    }
}
