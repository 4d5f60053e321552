import BelayGateway
import BelayStore
import Foundation
import Testing

@Suite struct DeliveryPlannerTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func planner(schedule: [Duration] = [.zero, .seconds(5), .seconds(300)], notifyAfter: Int = 2) -> DeliveryPlanner {
        var config = GatewayConfig.Deliveries()
        config.schedule = schedule
        config.notifyAfter = notifyAfter
        config.ackTimeout = .seconds(3_600)
        return DeliveryPlanner(config)
    }

    func delivery(step: Int = 0, requireAck: Bool = false, escalated: Bool = false) -> Delivery {
        Delivery(
            id: "dlv_1",
            upstream: "pay",
            method: "POST",
            path: "/v1/orders",
            headers: [],
            body: nil,
            idempotencyKey: "k",
            requireAck: requireAck,
            status: .inFlight,
            attemptCount: step,
            scheduleStep: step,
            nextAttemptAt: nil,
            createdAt: now,
            updatedAt: now,
            escalated: escalated
        )
    }

    @Test func a2xxDeliversAndWaitsForTheAckOnlyWhenOneIsRequired() {
        let plain = planner().decide(
            after: .answered(status: 201, retryAfter: nil, endpoint: "e"),
            for: delivery(),
            now: now,
            unit: 0.5
        )
        #expect(plain.status == .delivered && plain.nextAttemptAt == nil && plain.alert == nil && plain.countsAsAttempt)
        let acked = planner().decide(
            after: .answered(status: 200, retryAfter: nil, endpoint: "e"),
            for: delivery(requireAck: true),
            now: now,
            unit: 0.5
        )
        #expect(acked.status == .delivered && acked.nextAttemptAt == now.addingTimeInterval(3_600))
    }

    @Test(arguments: [400, 401, 403, 404, 409, 410, 422])
    func aPermanent4xxIsDeadAtOnce(status: Int) {
        let decision = planner().decide(
            after: .answered(status: status, retryAfter: nil, endpoint: "e"),
            for: delivery(),
            now: now,
            unit: 0.5
        )
        #expect(decision.status == .dead && decision.alert == .dead && decision.nextAttemptAt == nil)
        #expect(decision.lastError == "HTTP \(status)")
    }

    @Test(arguments: [301, 408, 429, 500, 502, 503, 504])
    func transientAnswersAreRetriedOnTheSchedule(status: Int) {
        // Attempt 1 failed: attempt 2 waits schedule[1] = 5 s; unit 0.5 puts the jitter at zero.
        let decision = planner().decide(
            after: .answered(status: status, retryAfter: nil, endpoint: "e"),
            for: delivery(),
            now: now,
            unit: 0.5
        )
        #expect(decision.status == .pending && decision.nextAttemptAt == now.addingTimeInterval(5))
        #expect(decision.countsAsAttempt && decision.alert == nil)
        #expect(decision.summary.hasPrefix("retry at "))
    }

    @Test func jitterStaysWithinTenPercent() {
        let planner = planner()
        for unit in stride(from: 0.0, through: 1.0, by: 0.01) {
            let next = planner.decide(
                after: .failed(errorClass: "connect", detail: "refused", endpoint: nil),
                for: delivery(step: 1),
                now: now,
                unit: unit
            ).nextAttemptAt
            let delay = next!.timeIntervalSince(now)
            #expect(delay >= 270 - 1e-6 && delay <= 330 + 1e-6)
        }
    }

    @Test func retryAfterPushesTheRetryLaterButNeverEarlier() {
        let later = planner().decide(
            after: .answered(status: 503, retryAfter: .seconds(60), endpoint: "e"),
            for: delivery(),
            now: now,
            unit: 0.5
        )
        #expect(later.nextAttemptAt == now.addingTimeInterval(60))
        let sooner = planner().decide(
            after: .answered(status: 429, retryAfter: .seconds(1), endpoint: "e"),
            for: delivery(),
            now: now,
            unit: 0.5
        )
        #expect(sooner.nextAttemptAt == now.addingTimeInterval(5))
    }

    @Test func anAbsurdRetryAfterWaitsNoLongerThanTheLongestStep() {
        let decision = planner().decide(
            after: .answered(status: 503, retryAfter: .seconds(9_999_999_999_999), endpoint: "e"),
            for: delivery(),
            now: now,
            unit: 0.5
        )
        #expect(decision.nextAttemptAt == now.addingTimeInterval(300))
    }

    @Test func stillTryingIsAlertedOnceAtNotifyAfterAndTheLastFailureIsDead() {
        let planner = planner(notifyAfter: 2)
        let failure = SendResult.failed(errorClass: "timeout", detail: "no answer", endpoint: "e")
        #expect(planner.decide(after: failure, for: delivery(step: 0), now: now, unit: 0.5).alert == nil)
        let second = planner.decide(after: failure, for: delivery(step: 1), now: now, unit: 0.5)
        #expect(second.alert == .stillTrying && second.status == .pending)
        #expect(
            planner.decide(after: failure, for: delivery(step: 1, escalated: true), now: now, unit: 0.5).alert == nil
        )
        let last = planner.decide(after: failure, for: delivery(step: 2, escalated: true), now: now, unit: 0.5)
        #expect(last.status == .dead && last.alert == .dead && last.lastError == "timeout: no answer")
        #expect(last.summary == "dead: 3 attempts failed (last: timeout: no answer)")
    }

    @Test func heldBackIsNotAnAttempt() {
        let decision = planner().decide(
            after: .held(reason: "pay: circuit open", retryAfter: .seconds(30)),
            for: delivery(step: 2),
            now: now,
            unit: 0.5
        )
        #expect(decision.status == .pending && !decision.countsAsAttempt && decision.alert == nil)
        #expect(decision.nextAttemptAt == now.addingTimeInterval(30))
    }

    @Test func aRefusalBeforeSendingIsDeadAtOnce() {
        let decision = planner().decide(
            after: .refused(reason: "the resource does not exist", errorClass: "verify", endpoint: nil),
            for: delivery(step: 0),
            now: now,
            unit: 0.5
        )
        #expect(decision.status == .dead && decision.countsAsAttempt && decision.alert == .dead)
        #expect(decision.summary == "dead: the resource does not exist")
    }

    @Test func anOverdueAckIsSentAgainUntilTheScheduleIsSpent() {
        #expect(planner().decideOverdueAck(for: delivery(step: 2, requireAck: true)) == nil)
        let end = planner().decideOverdueAck(for: delivery(step: 3, requireAck: true))
        #expect(end?.status == .dead && end?.alert == .dead && end?.countsAsAttempt == false)
    }
}
