import BelayAPI
import BelayStore
import BelayTestKit
import BelayTestUpstream
import Foundation
import HTTPTypes
import Logging
import NIOHTTP1
import Synchronization
import Testing

@testable import BelayGateway

/// A sender whose sends wait until the test lets each one answer: an attempt "in flight".
final class HeldSender: DeliverySender {
    private struct State {
        var started = 0
        var startWaiters: [(Int, CheckedContinuation<Void, Never>)] = []
        var gates: [CheckedContinuation<SendResult, Never>] = []
    }

    private let state = Mutex(State())

    func send(_ delivery: Delivery) async -> SendResult {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.started += 1
                state.gates.append(continuation)
                let ready = state.startWaiters.filter { $0.0 <= state.started }.map(\.1)
                state.startWaiters.removeAll { $0.0 <= state.started }
                return ready
            }
            for waiter in ready { waiter.resume() }
        }
    }

    func pause(of upstream: String) -> Duration? { nil }

    /// Waits until `count` sends have started.
    func waitForStarts(_ count: Int) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.started >= count { return true }
                state.startWaiters.append((count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Lets the oldest waiting send answer `result`.
    func answer(_ result: SendResult) {
        let gate = state.withLock { $0.gates.isEmpty ? nil : $0.gates.removeFirst() }
        gate?.resume(returning: result)
    }
}

/// Confirmation by webhook, no confirmation, and "still trying" by age (issue 13), on a
/// ManualClock: the inbox and the worker share one store, as in the gateway.
@Suite struct AckConfirmationTests {
    static let origin = Date(timeIntervalSince1970: 1_800_000_000)
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    static func config(
        schedule: String = "[0s, 5s, 5m]",
        notifyAfter: String = "3",
        ack: String = "{ webhook: warehouse, match: /data/order_id, timeout: 10m, "
            + "failure: { pointer: /type, values: [order.rejected, 422] } }"
    ) throws -> GatewayConfig {
        try ConfigLoader(environment: [:]).load(
            yaml: """
                upstreams:
                  pay:
                    endpoints: ["http://127.0.0.1:9"]
                    ack: \(ack)
                deliveries: { schedule: \(schedule), notify_after: \(notifyAfter) }
                webhooks:
                  warehouse:
                    verify: { scheme: standard-webhooks, secret: "\(secret)" }
                """
        )
    }

    /// One store, an inbox and a worker on `clock`, alerts from both in `alerts`.
    struct Rig {
        let store: SQLiteStore
        let clock: ManualClock
        let wall: WallClock<ManualClock>
        let inbox: WebhookService<ManualClock>
        let worker: DeliveryWorker<ManualClock>
        let alerts: AlertLog

        /// Posts a signed event, as the warehouse would, now.
        func post(_ body: String, id: String) async throws -> (status: Int, json: [String: Any]) {
            let signer = try #require(StandardWebhooksSigner(secret: Secret(AckConfirmationTests.secret)))
            var headers = signer.sign(id: id, timestamp: wall.now(), body: Data(body.utf8))
            headers[.contentType] = "application/json"
            let answer = await inbox.receive(
                source: "warehouse",
                body: Data(body.utf8),
                headers: headers,
                requestID: "r"
            )
            let json = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any] ?? [:]
            return (answer.status, json)
        }

        /// Accepts a delivery to `pay` as the API does (the upstream's `ack` makes it wait).
        func accept(_ id: String, key: String, consumer: String = "") async throws {
            var delivery = NewDelivery(
                id: id,
                upstream: "pay",
                method: "POST",
                path: "/v1/orders",
                idempotencyKey: key,
                keyFromCaller: true,
                fingerprint: "f",
                requireAck: true,
                notBefore: wall.now(),
                createdAt: wall.now()
            )
            delivery.consumer = consumer
            _ = try await store.insert([delivery])
        }

        func delivery(_ id: String) async throws -> Delivery {
            try #require(try await store.delivery(id: id)?.0)
        }

        /// Claims what is due and handles it.
        func sendDue() async {
            for item in await worker.claimDue() { await worker.handle(item) }
        }
    }

    static func withRig(
        _ config: GatewayConfig,
        sender: any DeliverySender,
        _ body: (Rig) async throws -> Void
    ) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-ack-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
        let clock = ManualClock()
        let wall = WallClock(clock: clock, origin: origin)
        let alerts = AlertLog()
        var configuration = DeliveryWorker<ManualClock>.Configuration()
        configuration.idlePoll = .seconds(1_000_000)
        configuration.lease = .seconds(1_000_000)
        let worker = DeliveryWorker(
            store: store,
            sender: sender,
            planner: DeliveryPlanner(config),
            configuration: configuration,
            upstreams: ["pay"],
            wall: wall,
            owner: "w1",
            alert: { alerts.record($0) },
            random: { 0.5 },
            logger: Logger(label: "test")
        )
        let inbox = WebhookService(
            store: store,
            config: config,
            wall: wall,
            logger: Logger(label: "test"),
            alert: { alerts.record($0) }
        )
        try await body(Rig(store: store, clock: clock, wall: wall, inbox: inbox, worker: worker, alerts: alerts))
    }

    @Test func aSignedEventAcknowledgesTheDeliveryAndItsTrailShowsTheEvent() async throws {
        try await Self.withRig(try Self.config(), sender: ScriptedSender([])) { rig in
            try await rig.accept("dlv_1", key: "order-1")
            await rig.sendDue()
            let delivered = try await rig.delivery("dlv_1")
            #expect(delivered.status == .delivered)
            #expect(delivered.nextAttemptAt == Self.origin.addingTimeInterval(600))  // ack.timeout, not ack_timeout
            rig.clock.advance(by: .seconds(3))
            let answer = try await rig.post(#"{"type":"order.accepted","data":{"order_id":"order-1"}}"#, id: "msg_1")
            #expect(answer.status == 200)
            let event = try #require(answer.json["id"] as? String)
            let (acked, attempts) = try #require(try await rig.store.delivery(id: "dlv_1"))
            #expect(acked.status == .acknowledged)
            #expect(acked.acknowledgedAt == Self.origin.addingTimeInterval(3))
            let view = DeliveryView.full(acked, attempts: attempts, redactor: Redactor(config: try Self.config()))
            let confirmation = try #require(view.summary.confirmation)
            #expect(confirmation.event == event)
            #expect(confirmation.outcome == "confirmed")
            #expect(confirmation.at == Self.origin.addingTimeInterval(3))
            #expect(rig.alerts.kinds.isEmpty)
            // Past the wait: nothing is sent again.
            rig.clock.advance(by: .seconds(3_600))
            #expect(await rig.worker.claimDue().isEmpty)
        }
    }

    /// The race of every fast provider: the warehouse confirms while Belay's attempt is still in
    /// flight, before the 2xx is recorded. It still confirms, and the attempt is in the trail.
    @Test func anEventBeforeTheTwoHundredIsRecordedStillConfirms() async throws {
        let sender = HeldSender()
        try await Self.withRig(try Self.config(), sender: sender) { rig in
            try await rig.accept("dlv_1", key: "order-1")
            let claimed = await rig.worker.claimDue()
            #expect(claimed.count == 1)
            let attempt = Task { for item in claimed { await rig.worker.handle(item) } }
            await sender.waitForStarts(1)
            let answer = try await rig.post(#"{"data":{"order_id":"order-1"}}"#, id: "msg_early")
            #expect(answer.status == 200)
            let noted = try await rig.delivery("dlv_1")
            #expect(noted.status == .inFlight && noted.ackEvent == answer.json["id"] as? String)
            sender.answer(.answered(status: 201, retryAfter: nil, endpoint: "e"))
            await attempt.value
            let (acked, attempts) = try #require(try await rig.store.delivery(id: "dlv_1"))
            #expect(acked.status == .acknowledged && acked.deliveredAt != nil)
            #expect(attempts.map(\.statusCode) == [201])
        }
    }

    /// The warehouse confirms while the attempt is in flight, and that attempt then fails (the
    /// provider took the order, the answer was lost). The delivery is settled by the
    /// confirmation; the worker's "still trying" (first failure, `notify_after: 1`) or "dead"
    /// (the schedule's last step) alert would page someone about an order that went through.
    @Test(arguments: [("[0s, 5s, 5m]", "1"), ("[0s]", "1")])
    func aConfirmationDuringAFailingAttemptRaisesNoAlert(schedule: String, notifyAfter: String) async throws {
        let sender = HeldSender()
        let config = try Self.config(schedule: schedule, notifyAfter: notifyAfter)
        try await Self.withRig(config, sender: sender) { rig in
            try await rig.accept("dlv_1", key: "order-1")
            let claimed = await rig.worker.claimDue()
            let attempt = Task { for item in claimed { await rig.worker.handle(item) } }
            await sender.waitForStarts(1)
            #expect(try await rig.post(#"{"data":{"order_id":"order-1"}}"#, id: "msg_early").status == 200)
            sender.answer(.failed(errorClass: "timeout", detail: "no answer in 2s", endpoint: "e"))
            await attempt.value
            let (acked, attempts) = try #require(try await rig.store.delivery(id: "dlv_1"))
            #expect(acked.status == .acknowledged)
            #expect(attempts.map(\.errorClass) == ["timeout"])
            #expect(rig.alerts.kinds.isEmpty, "\(rig.alerts.kinds)")
        }
    }

    /// A rejection noted while the attempt is in flight was alerted when it came (critical);
    /// the failing attempt adds no "still trying" about a delivery that is dead.
    @Test func aRejectionDuringAFailingAttemptIsAlertedOnce() async throws {
        let sender = HeldSender()
        try await Self.withRig(try Self.config(notifyAfter: "1"), sender: sender) { rig in
            try await rig.accept("dlv_1", key: "order-1")
            let claimed = await rig.worker.claimDue()
            let attempt = Task { for item in claimed { await rig.worker.handle(item) } }
            await sender.waitForStarts(1)
            let body = #"{"type":"order.rejected","data":{"order_id":"order-1"}}"#
            #expect(try await rig.post(body, id: "msg_no").status == 200)
            sender.answer(.answered(status: 503, retryAfter: nil, endpoint: "e"))
            await attempt.value
            #expect(try await rig.delivery("dlv_1").status == .dead)
            #expect(rig.alerts.kinds == [.rejected])
        }
    }

    @Test func anEventNamingNoDeliveryIsAnswered200AndKeptInTheInbox() async throws {
        try await Self.withRig(try Self.config(), sender: ScriptedSender([])) { rig in
            try await rig.accept("dlv_1", key: "order-1")
            await rig.sendDue()
            let answer = try await rig.post(#"{"data":{"order_id":"order-999"}}"#, id: "msg_stray")
            #expect(answer.status == 200 && answer.json["duplicate"] as? Bool == false)
            let kept = try await rig.store.events(WebhookEventQuery(source: "warehouse"))
            #expect(kept.events.map(\.0.eventID) == ["msg_stray"])
            #expect(try await rig.delivery("dlv_1").status == .delivered)
            // No key at the pointer at all: the same.
            let keyless = try await rig.post(#"{"data":{}}"#, id: "msg_keyless")
            #expect(keyless.status == 200)
            #expect(try await rig.store.events(WebhookEventQuery(source: "warehouse")).events.count == 2)
        }
    }

    @Test func aRejectionMakesTheDeliveryDeadWithTheProvidersReasonAndAlerts() async throws {
        try await Self.withRig(try Self.config(), sender: ScriptedSender([])) { rig in
            try await rig.accept("dlv_1", key: "order-1")
            await rig.sendDue()
            let answer = try await rig.post(#"{"type":"order.rejected","data":{"order_id":"order-1"}}"#, id: "msg_no")
            #expect(answer.status == 200)
            let dead = try await rig.delivery("dlv_1")
            #expect(dead.status == .dead)
            let event = try #require(answer.json["id"] as? String)
            #expect(dead.lastError == "rejected by warehouse (webhook event \(event)): order.rejected")
            #expect(rig.alerts.kinds == [.rejected])
            let alert = try #require(rig.alerts.all.first)
            #expect(alert.subject == "dlv_1" && alert.severity == "critical")
            #expect(alert.summary.contains("order-1") && alert.summary.contains("order.rejected"))
            // Sent again by the provider: nothing more, no second alert.
            #expect(
                try await rig.post(#"{"type":"order.rejected","data":{"order_id":"order-1"}}"#, id: "msg_no").status
                    == 200
            )
            #expect(rig.alerts.kinds == [.rejected])
        }
    }

    /// Keys are per consumer; at the provider, one key is one order. Two consumers' deliveries
    /// sharing a key on one upstream are both confirmed.
    @Test func aConfirmationSettlesBothConsumersDeliveriesWithTheKey() async throws {
        try await Self.withRig(try Self.config(), sender: ScriptedSender([])) { rig in
            try await rig.accept("dlv_1", key: "order-1", consumer: "shop")
            try await rig.accept("dlv_2", key: "order-1", consumer: "crm")
            await rig.sendDue()
            _ = try await rig.post(#"{"data":{"order_id":"order-1"}}"#, id: "msg_1")
            #expect(try await rig.delivery("dlv_1").status == .acknowledged)
            #expect(try await rig.delivery("dlv_2").status == .acknowledged)
        }
    }

    /// A number at the pointer is compared as its JSON text.
    @Test func aNumericKeyMatchesAsItsJSONText() async throws {
        try await Self.withRig(try Self.config(), sender: ScriptedSender([])) { rig in
            try await rig.accept("dlv_1", key: "4711")
            await rig.sendDue()
            _ = try await rig.post(#"{"data":{"order_id":4711}}"#, id: "msg_1")
            #expect(try await rig.delivery("dlv_1").status == .acknowledged)
        }
    }

    /// No confirmation within ack.timeout: sent again with the same key and alerted (what, since
    /// when), as often as the schedule has attempts; then dead.
    @Test func noConfirmationResendsWithTheSameKeyThenDies() async throws {
        let sender = ScriptedSender([])
        try await Self.withRig(try Self.config(), sender: sender) { rig in
            try await rig.accept("dlv_1", key: "order-1")
            await rig.sendDue()
            rig.clock.advance(by: .seconds(599))
            #expect(await rig.worker.claimDue().isEmpty)
            rig.clock.advance(by: .seconds(1))
            await rig.sendDue()
            #expect(sender.sent.map(\.key) == ["order-1", "order-1"])
            let overdue = try #require(rig.alerts.all.first)
            #expect(overdue.kind == .ackOverdue && overdue.since == Self.origin)
            #expect(overdue.summary.contains("order-1") && overdue.summary.contains("warehouse"))
            #expect(overdue.summary.contains(Self.origin.iso8601) && overdue.summary.contains("10m"))
            let again = try await rig.delivery("dlv_1")
            #expect(again.status == .delivered && again.nextAttemptAt == Self.origin.addingTimeInterval(1_200))
            rig.clock.advance(by: .seconds(600))
            await rig.sendDue()
            rig.clock.advance(by: .seconds(600))
            await rig.sendDue()
            // Three sends, the schedule's three attempts: then dead, and said so.
            #expect(sender.sent.count == 3)
            let dead = try await rig.delivery("dlv_1")
            #expect(dead.status == .dead && dead.lastError == "no acknowledgement within 10m")
            #expect(rig.alerts.kinds == [.ackOverdue, .ackOverdue, .dead])
        }
    }

    /// notify_after: 20m with a 4 h gap in the schedule: "still trying" 20 minutes after the
    /// first failed attempt, while the worker waits out the gap, not 4 h later.
    @Test func stillTryingIsAlertedByAgeDuringALongGap() async throws {
        let failure = SendResult.answered(status: 503, retryAfter: nil, endpoint: "a:1")
        let sender = ScriptedSender([failure, failure, failure])
        let config = try Self.config(schedule: "[0s, 5s, 4h, 1d]", notifyAfter: "20m")
        #expect(config.deliveries.notifyAge == .seconds(1_200))
        try await Self.withRig(config, sender: sender) { rig in
            try await rig.accept("dlv_1", key: "order-1")
            let run = Task { try await rig.worker.run() }
            await sender.waitForSends(1)
            #expect(await nextSleep(on: rig.clock, reaching: .init(offset: .seconds(5))))
            rig.clock.advance(to: .init(offset: .seconds(5)))
            await sender.waitForSends(2)
            // The next attempt is 4 h away; the worker wakes at 20 m for the alert.
            #expect(await nextSleep(on: rig.clock, reaching: .init(offset: .seconds(1_200))))
            #expect(rig.alerts.kinds.isEmpty)
            rig.clock.advance(to: .init(offset: .seconds(1_200)))
            #expect(await nextSleep(on: rig.clock, reaching: .init(offset: .seconds(5 + 14_400))))
            run.cancel()
            try await run.value
            #expect(rig.alerts.kinds == [.stillTrying])
            let alert = try #require(rig.alerts.all.first)
            #expect(alert.since == Self.origin && alert.attempts == 2)
            #expect(alert.nextAttemptAt == Self.origin.addingTimeInterval(5 + 14_400))
            #expect(alert.at == Self.origin.addingTimeInterval(1_200))
            #expect(try await rig.delivery("dlv_1").escalated)
        }
    }

    /// `{ attempts, after }`: whichever comes first; here the count.
    @Test func stillTryingByCountStillWorksBesideAge() async throws {
        let failure = SendResult.answered(status: 503, retryAfter: nil, endpoint: "a:1")
        let sender = ScriptedSender([failure, failure])
        let config = try Self.config(schedule: "[0s, 5s, 4h]", notifyAfter: "{ attempts: 2, after: 1h }")
        #expect(config.deliveries.notifyAfter == 2 && config.deliveries.notifyAge == .seconds(3_600))
        try await Self.withRig(config, sender: sender) { rig in
            try await rig.accept("dlv_1", key: "order-1")
            await rig.sendDue()
            rig.clock.advance(by: .seconds(5))
            await rig.sendDue()
            #expect(rig.alerts.kinds == [.stillTrying])
            // Already escalated: the hour passing raises nothing more.
            rig.clock.advance(by: .seconds(3_600))
            await rig.worker.escalateAged()
            #expect(rig.alerts.kinds == [.stillTrying])
        }
    }
}

/// The same flow over real sockets: a queued order, the 2xx from the upstream, the provider's
/// signed confirmation to the inbox, and the delivery's view naming it.
@Suite struct AckConfirmationSocketTests {
    @Test func aQueuedOrderIsConfirmedByTheProvidersWebhook() async throws {
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            upstreams:
              pay:
                endpoints: ["\(urls[0])"]
                ack: { webhook: shop, match: /data/order_id, timeout: 1h }
            webhooks:
              shop:
                verify: { scheme: standard-webhooks, secret: "\(inboxSecret)" }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            let queued = try await gateway.queue(
                #"{"upstream":"pay","method":"POST","path":"/v1/orders","body":{"n":1},"idempotency_key":"order-77"}"#
            )
            #expect(queued.status == 202)
            let id = try #require(queued.problem?["id"] as? String)
            func view() async throws -> [String: Any] {
                try #require(try await gateway.send(.GET, "/v1/deliveries/\(id)").problem)
            }
            try await gateway.eventually { try await view()["status"] as? String == "delivered" }
            // Waiting for the confirmation, whatever the caller asked.
            #expect(try await view()["require_ack"] as? Bool == true)
            let stray = try await gateway.deliverWebhook(#"{"data":{"order_id":"order-1"}}"#, id: "msg_stray")
            #expect(stray.status == 200)
            #expect(try await view()["status"] as? String == "delivered")
            let confirmed = try await gateway.deliverWebhook(#"{"data":{"order_id":"order-77"}}"#, id: "msg_ok")
            #expect(confirmed.status == 200)
            let shown = try await view()
            #expect(shown["status"] as? String == "acknowledged")
            let confirmation = try #require(shown["confirmation"] as? [String: Any])
            #expect(confirmation["event"] as? String == confirmed.problem?["id"] as? String)
            #expect(try await gateway.events("?source=shop").count == 2)
        }
    }

    /// An upstream with `ack` on `urls[0]`, alerts to `urls[1]` as JSON.
    static func config(ack: String, deliveries: String = "{ schedule: [0s, 5s, 5m] }") -> ConfigTemplate {
        .custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            upstreams:
              pay:
                endpoints: ["\(urls[0])"]
                ack: \(ack)
            deliveries: \(deliveries)
            webhooks:
              shop:
                verify: { scheme: standard-webhooks, secret: "\(inboxSecret)" }
            alerts: [ { url: "\(urls[1])/alerts" } ]
            """
        }
    }

    @Test func aConfirmationWhileTheSendIsStillInFlightConfirmsIt() async throws {
        let config = Self.config(ack: "{ webhook: shop, match: /data/order_id, timeout: 1h }")
        try await GatewayHarness.run(upstreams: 2, config: config) { gateway in
            let upstream = gateway.upstreams[0]
            // A fast provider: its webhook comes before its 2xx does.
            upstream.setBehavior(UpstreamBehavior(status: 201, latencyMilliseconds: 500), for: "/v1/orders")
            let queued = try await gateway.queue(
                #"{"upstream":"pay","method":"POST","path":"/v1/orders","body":{"n":1},"idempotency_key":"order-78"}"#
            )
            let id = try #require(queued.problem?["id"] as? String)
            func view() async throws -> [String: Any] {
                try #require(try await gateway.send(.GET, "/v1/deliveries/\(id)").problem)
            }
            await upstream.waitForArrivals(1)
            let confirmed = try await gateway.deliverWebhook(#"{"data":{"order_id":"order-78"}}"#, id: "msg_early")
            #expect(confirmed.status == 200)
            try await gateway.eventually { try await view()["status"] as? String == "acknowledged" }
            let confirmation = try #require(try await view()["confirmation"] as? [String: Any])
            #expect(confirmation["event"] as? String == confirmed.problem?["id"] as? String)
            #expect(try await view()["attempt_count"] as? Int == 1)
            #expect(upstream.requests.filter { $0.method == "POST" }.count == 1)
        }
    }

    @Test func aRejectionByWebhookMakesItDeadWithTheReasonAndAlerts() async throws {
        let config = Self.config(
            ack: "{ webhook: shop, match: /data/order_id, failure: { pointer: /type, values: [order.rejected] } }"
        )
        try await GatewayHarness.run(upstreams: 2, config: config) { gateway in
            let queued = try await gateway.queue(
                #"{"upstream":"pay","method":"POST","path":"/v1/orders","body":{"n":1},"idempotency_key":"order-79"}"#
            )
            let id = try #require(queued.problem?["id"] as? String)
            func view() async throws -> [String: Any] {
                try #require(try await gateway.send(.GET, "/v1/deliveries/\(id)").problem)
            }
            try await gateway.eventually { try await view()["status"] as? String == "delivered" }
            let rejected = try await gateway.deliverWebhook(
                #"{"type":"order.rejected","data":{"order_id":"order-79"}}"#,
                id: "msg_no"
            )
            #expect(rejected.status == 200)
            let shown = try await view()
            #expect(shown["status"] as? String == "dead")
            #expect((shown["last_error"] as? String)?.hasPrefix("rejected by shop (webhook event evt_") == true)
            #expect((shown["confirmation"] as? [String: Any])?["outcome"] as? String == "rejected")
            let sink = gateway.upstreams[1]
            try await gateway.eventually {
                sink.requests.contains { $0.path == "/alerts" && $0.body?.contains("delivery.rejected") == true }
            }
        }
    }

    @Test func stillTryingIsAlertedByAgeInTheGapBetweenAttempts() async throws {
        // A one-hour gap in the schedule: the alert comes after 1 s, not after the next attempt.
        let config = Self.config(
            ack: "{ webhook: shop, match: /data/order_id }",
            deliveries: "{ schedule: [0s, 1h], notify_after: 1s }"
        )
        try await GatewayHarness.run(upstreams: 2, config: config) { gateway in
            gateway.upstreams[0].setBehavior(.always(503))
            let queued = try await gateway.queue(
                #"{"upstream":"pay","method":"POST","path":"/v1/orders","body":{"n":1},"idempotency_key":"order-80"}"#
            )
            let id = try #require(queued.problem?["id"] as? String)
            let sink = gateway.upstreams[1]
            try await gateway.eventually {
                sink.requests.contains { $0.path == "/alerts" && $0.body?.contains("delivery.still_trying") == true }
            }
            let shown = try #require(try await gateway.send(.GET, "/v1/deliveries/\(id)").problem)
            #expect(shown["status"] as? String == "pending" && shown["attempt_count"] as? Int == 1)
            #expect(shown["escalated"] as? Bool == true)
        }
    }
}
