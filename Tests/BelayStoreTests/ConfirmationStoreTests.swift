import Foundation
import Testing

@testable import BelayStore

/// The other system's confirmation (issue 13), on SQLite and on PostgreSQL.
@Suite struct ConfirmationStoreTests {
    private func outcome(
        _ status: DeliveryStatus,
        at: Date,
        next: Date? = nil,
        number: Int = 1,
        code: Int? = 200,
        escalateAt: Date? = nil
    ) -> DeliveryOutcome {
        DeliveryOutcome(
            status: status,
            attempt: DeliveryAttempt(
                number: number,
                startedAt: at,
                durationMilliseconds: 5,
                endpoint: "api.pay.example:443",
                statusCode: code,
                errorClass: nil,
                decision: "test"
            ),
            nextAttemptAt: next,
            lastError: status == .pending ? "HTTP 503" : nil,
            escalated: false,
            at: at,
            escalateAt: escalateAt
        )
    }

    private func confirmation(
        _ key: String,
        event: String = "evt_1",
        rejection: String? = nil,
        at: Date
    )
        -> DeliveryConfirmation
    {
        DeliveryConfirmation(upstream: "pay", idempotencyKey: key, event: event, rejection: rejection, at: at)
    }

    private func claimOne(_ store: AnyStore, at: Date) async throws -> ClaimedDelivery {
        try #require(
            try await store.claim(limits: ["pay": 1], now: at, leaseUntil: at.addingTimeInterval(30), owner: "w").first
        )
    }

    @Test(arguments: StoreBackend.available)
    func aConfirmationAfterTheTwoHundredAcknowledgesAndNamesTheEvent(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let confirmations = try #require(store as? any ConfirmationStore)
            _ = try await store.insert([newDelivery("dlv_1", key: "order-1", requireAck: true)])
            let claim = try await claimOne(store, at: t0)
            let waitEnds = t0.addingTimeInterval(3_600)
            #expect(
                try await store.finish(
                    id: "dlv_1",
                    lease: claim.lease,
                    outcome: outcome(.delivered, at: t0, next: waitEnds)
                )
            )
            let settled = try await confirmations.confirm(confirmation("order-1", at: t0.addingTimeInterval(2)))
            #expect(settled.map(\.id) == ["dlv_1"])
            let (stored, attempts) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(stored.status == .acknowledged)
            #expect(stored.ackEvent == "evt_1" && stored.ackRejection == nil)
            #expect(stored.acknowledgedAt == t0.addingTimeInterval(2))
            #expect(stored.nextAttemptAt == nil)
            #expect(attempts.count == 1)
            // Received again: nothing more happens, nothing else is named.
            #expect(try await confirmations.confirm(confirmation("order-1", event: "evt_2", at: t0)).isEmpty)
            #expect(try await store.delivery(id: "dlv_1")?.0.ackEvent == "evt_1")
            // Nothing is due any more: the wait for the confirmation is over.
            #expect(try await store.nextDue(upstreams: ["pay"], owner: "x") == nil)
        }
    }

    /// The race of every fast provider: the confirmation lands while the attempt is in flight,
    /// before Belay recorded the 2xx. The 2xx's record then makes it acknowledged, the attempt kept.
    @Test(arguments: StoreBackend.available)
    func aConfirmationBeforeTheTwoHundredIsRecordedStillConfirms(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let confirmations = try #require(store as? any ConfirmationStore)
            _ = try await store.insert([
                newDelivery("dlv_1", key: "order-1", requireAck: true),
                newDelivery("dlv_2", key: "order-2", requireAck: true),
            ])
            let claims = try await store.claim(
                limits: ["pay": 2],
                now: t0,
                leaseUntil: t0.addingTimeInterval(30),
                owner: "w"
            )
            #expect(claims.count == 2)
            let noted = try await confirmations.confirm(confirmation("order-1", at: t0.addingTimeInterval(1)))
            #expect(noted.map(\.status) == [.inFlight])
            #expect(noted.first?.ackEvent == "evt_1")
            // The lease still holds: the worker records its 2xx.
            #expect(
                try await store.finish(
                    id: "dlv_1",
                    lease: claims[0].lease,
                    outcome: outcome(.delivered, at: t0.addingTimeInterval(2), next: t0.addingTimeInterval(3_602))
                )
            )
            let (acked, attempts) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(acked.status == .acknowledged && acked.acknowledgedAt == t0.addingTimeInterval(1))
            #expect(acked.nextAttemptAt == nil && acked.deliveredAt == t0.addingTimeInterval(2))
            #expect(attempts.map(\.statusCode) == [200])
            // dlv_2's attempt timed out after the provider took the order: its confirmation
            // settles it all the same, and it is not sent again.
            _ = try await confirmations.confirm(confirmation("order-2", event: "evt_2", at: t0.addingTimeInterval(1)))
            #expect(
                try await store.finish(
                    id: "dlv_2",
                    lease: claims[1].lease,
                    outcome: outcome(.pending, at: t0.addingTimeInterval(2), next: t0.addingTimeInterval(7), code: nil)
                )
            )
            let timedOut = try #require(try await store.delivery(id: "dlv_2")?.0)
            #expect(timedOut.status == .acknowledged && timedOut.ackEvent == "evt_2")
            #expect(timedOut.nextAttemptAt == nil)
        }
    }

    /// The confirmation and the worker's record race for real: whichever commits first, the
    /// delivery ends acknowledged with its attempt recorded.
    @Test(arguments: StoreBackend.available)
    func aConfirmationRacingTheRecordOfTheTwoHundredIsNeverLost(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let confirmations = try #require(store as? any ConfirmationStore)
            let count = 20
            _ = try await store.insert(
                (0..<count).map { newDelivery("dlv_\($0)", key: "order-\($0)", requireAck: true) }
            )
            let claims = try await store.claim(
                limits: ["pay": count],
                now: t0,
                leaseUntil: t0.addingTimeInterval(30),
                owner: "w"
            )
            #expect(claims.count == count)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for claim in claims {
                    let id = claim.delivery.id
                    let key = claim.delivery.idempotencyKey
                    group.addTask {
                        let done = t0.addingTimeInterval(2)
                        let recorded = try await store.finish(
                            id: id,
                            lease: claim.lease,
                            outcome: self.outcome(.delivered, at: done, next: t0.addingTimeInterval(3_600))
                        )
                        #expect(recorded)
                    }
                    group.addTask {
                        _ = try await confirmations.confirm(
                            self.confirmation(key, event: "evt_\(id)", at: t0.addingTimeInterval(1))
                        )
                    }
                }
                try await group.waitForAll()
            }
            for claim in claims {
                let (stored, attempts) = try #require(try await store.delivery(id: claim.delivery.id))
                #expect(stored.status == .acknowledged, "\(stored.id)")
                #expect(stored.ackEvent == "evt_\(stored.id)")
                #expect(attempts.count == 1)
            }
        }
    }

    @Test(arguments: StoreBackend.available)
    func aRejectionMakesTheDeliveryDeadWithTheProvidersReason(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let confirmations = try #require(store as? any ConfirmationStore)
            _ = try await store.insert([
                newDelivery("dlv_1", key: "order-1", requireAck: true),
                newDelivery("dlv_2", key: "order-2", requireAck: true),
            ])
            let claims = try await store.claim(
                limits: ["pay": 2],
                now: t0,
                leaseUntil: t0.addingTimeInterval(30),
                owner: "w"
            )
            #expect(
                try await store.finish(
                    id: "dlv_1",
                    lease: claims[0].lease,
                    outcome: outcome(.delivered, at: t0, next: t0.addingTimeInterval(3_600))
                )
            )
            let rejected = try await confirmations.confirm(
                confirmation("order-1", rejection: "card_declined", at: t0.addingTimeInterval(1))
            )
            #expect(rejected.map(\.status) == [.dead])
            let dead = try #require(try await store.delivery(id: "dlv_1")?.0)
            #expect(dead.status == .dead && dead.lastError == "card_declined" && dead.ackRejection == "card_declined")
            #expect(dead.acknowledgedAt == nil && dead.nextAttemptAt == nil)
            // Rejected while in flight: dead once its 2xx is recorded.
            _ = try await confirmations.confirm(
                confirmation("order-2", event: "evt_2", rejection: "out_of_stock", at: t0)
            )
            #expect(
                try await store.finish(
                    id: "dlv_2",
                    lease: claims[1].lease,
                    outcome: outcome(.delivered, at: t0.addingTimeInterval(2), next: t0.addingTimeInterval(3_600))
                )
            )
            let late = try #require(try await store.delivery(id: "dlv_2")?.0)
            #expect(late.status == .dead && late.lastError == "out_of_stock" && late.acknowledgedAt == nil)
            // A replay forgets the rejection: the next 2xx is judged afresh.
            guard case .changed(let replayed) = try await store.retry(id: "dlv_2", now: t0.addingTimeInterval(10))
            else { throw Failure("replay refused") }
            #expect(replayed.ackEvent == nil && replayed.ackRejection == nil && replayed.status == .pending)
        }
    }

    /// Keys are per consumer in Belay, but one name of an order at the provider: two consumers'
    /// deliveries sharing a key on one upstream are both settled; another upstream's are not.
    @Test(arguments: StoreBackend.available)
    func aConfirmationSettlesEveryDeliveryOfItsUpstreamWithTheKey(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let confirmations = try #require(store as? any ConfirmationStore)
            var shop = newDelivery("dlv_1", key: "order-1", requireAck: true)
            shop.consumer = "shop"
            var crm = newDelivery("dlv_2", key: "order-1", requireAck: true)
            crm.consumer = "crm"
            let elsewhere = newDelivery("dlv_3", upstream: "ship", key: "order-1", requireAck: true)
            _ = try await store.insert([shop, crm, elsewhere])
            let settled = try await confirmations.confirm(confirmation("order-1", at: t0.addingTimeInterval(1)))
            #expect(settled.map(\.id) == ["dlv_1", "dlv_2"])
            #expect(settled.allSatisfy { $0.status == .acknowledged })
            #expect(try await store.delivery(id: "dlv_3")?.0.status == .pending)
            #expect(try await confirmations.confirm(confirmation("no-such-order", at: t0)).isEmpty)
        }
    }

    /// `notify_after: 20m`: a delivery waiting out a long gap of its schedule is escalated once
    /// its first failed attempt is that old, by one caller only.
    @Test(arguments: StoreBackend.available)
    func aDeliveryWaitingBetweenAttemptsIsEscalatedByAgeOnce(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let escalations = try #require(store as? any EscalationStore)
            _ = try await store.insert([newDelivery("dlv_1"), newDelivery("dlv_2", at: t0.addingTimeInterval(60))])
            let first = try await claimOne(store, at: t0)
            let escalateAt = t0.addingTimeInterval(1_200)
            let later = t0.addingTimeInterval(14_400)
            #expect(
                try await store.finish(
                    id: first.delivery.id,
                    lease: first.lease,
                    outcome: outcome(.pending, at: t0, next: later, code: 503, escalateAt: escalateAt)
                )
            )
            #expect(try await escalations.nextEscalation(upstreams: ["pay"]) == escalateAt)
            #expect(try await escalations.nextEscalation(upstreams: ["ship"]) == nil)
            #expect(try await escalations.escalateAged(upstreams: ["pay"], now: t0.addingTimeInterval(1_199)).isEmpty)
            let due = try await escalations.escalateAged(upstreams: ["pay"], now: escalateAt)
            #expect(due.map(\.id) == ["dlv_1"])
            #expect(due.first?.escalated == true && due.first?.nextAttemptAt == later)
            #expect(try await escalations.escalateAged(upstreams: ["pay"], now: later).isEmpty)
            #expect(try await escalations.nextEscalation(upstreams: ["pay"]) == nil)
            // The first failed attempt's instant is kept by later attempts.
            let again = try #require(
                try await store.claim(
                    limits: ["pay": 2],
                    now: later,
                    leaseUntil: later.addingTimeInterval(30),
                    owner: "w"
                )
                .first { $0.delivery.id == "dlv_1" }
            )
            _ = try await store.finish(
                id: "dlv_1",
                lease: again.lease,
                outcome: outcome(
                    .pending,
                    at: later,
                    next: later.addingTimeInterval(60),
                    number: 2,
                    code: 503,
                    escalateAt: later.addingTimeInterval(1_200)
                )
            )
            #expect(try await store.delivery(id: "dlv_1")?.0.escalateAt == escalateAt)
        }
    }
}
