import Foundation
import Testing

@testable import BelayStore

let t0 = Date(timeIntervalSince1970: 1_800_000_000)

func newDelivery(
    _ id: String,
    upstream: String = "pay",
    key: String? = nil,
    fingerprint: String = "f1",
    requireAck: Bool = false,
    at: Date = t0
) -> NewDelivery {
    NewDelivery(
        id: id,
        upstream: upstream,
        method: "POST",
        path: "/v1/orders",
        headers: [DeliveryHeader(name: "Content-Type", value: "application/json")],
        body: Data(#"{"order":1}"#.utf8),
        idempotencyKey: key ?? "gen-\(id)",
        keyFromCaller: key != nil,
        fingerprint: fingerprint,
        requireAck: requireAck,
        notBefore: at,
        createdAt: at
    )
}

extension AcceptOutcome {
    var delivery: Delivery? {
        switch self {
        case .accepted(let delivery), .repeated(let delivery): delivery
        case .keyReused, .keyInFlight: nil
        }
    }
}

/// The delivery store's contract, on SQLite and on PostgreSQL.
@Suite struct DeliveryStoreTests {
    @Test(arguments: StoreBackend.available)
    func anAcceptedDeliveryReadsBackWhole(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            let outcomes = try await store.insert([newDelivery("dlv_1")])
            guard case .accepted(let accepted) = outcomes.first else {
                Issue.record("not accepted: \(outcomes)")
                return
            }
            #expect(accepted.status == .pending)
            let (stored, attempts) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(stored == accepted)
            #expect(stored.headers == [DeliveryHeader(name: "Content-Type", value: "application/json")])
            #expect(stored.body == Data(#"{"order":1}"#.utf8))
            #expect(stored.nextAttemptAt == t0)
            #expect(attempts.isEmpty)
            #expect(try await store.delivery(id: "dlv_missing") == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func aCallersKeyFindsItsDeliveryPerUpstreamAndConsumer(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            var shops = newDelivery("dlv_1", key: "k1", fingerprint: "a")
            shops.consumer = "shop"
            _ = try await store.insert([shops, newDelivery("dlv_2", fingerprint: "b")])
            let found = try await store.delivery(upstream: "pay", consumer: "shop", callerKey: "k1")
            #expect(found?.delivery.id == "dlv_1" && found?.fingerprint == "a")
            // Another consumer's, another upstream's, and a key Belay made are not found.
            #expect(try await store.delivery(upstream: "pay", consumer: "", callerKey: "k1") == nil)
            #expect(try await store.delivery(upstream: "ship", consumer: "shop", callerKey: "k1") == nil)
            #expect(try await store.delivery(upstream: "pay", consumer: "", callerKey: "gen-dlv_2") == nil)
            // A forgotten key is not found either.
            _ = try await store.forgetKeys(acceptedBefore: t0.addingTimeInterval(1))
            #expect(try await store.delivery(upstream: "pay", consumer: "shop", callerKey: "k1") == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func aCallerKeyRepeatsTheFirstAcceptOrIsRefusedWithAnotherPayload(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1", key: "k1", fingerprint: "a")])
            let outcomes = try await store.insert([
                newDelivery("dlv_2", key: "k1", fingerprint: "a"),
                newDelivery("dlv_3", key: "k1", fingerprint: "b"),
                newDelivery("dlv_4", upstream: "ship", key: "k1", fingerprint: "b"),
                newDelivery("dlv_5", key: "k2", fingerprint: "a"),
                newDelivery("dlv_6", key: "k2", fingerprint: "a"),
            ])
            #expect(outcomes[0].delivery?.id == "dlv_1")
            guard case .repeated = outcomes[0] else { throw Failure("expected repeated") }
            #expect(outcomes[1] == .keyReused(existingID: "dlv_1"))
            guard case .accepted = outcomes[2] else { throw Failure("a key is scoped to its upstream") }
            guard case .accepted = outcomes[3] else { throw Failure("expected accepted") }
            // The same key twice in one batch: the second repeats the first.
            guard case .repeated(let repeated) = outcomes[4], repeated.id == "dlv_5" else {
                throw Failure("expected dlv_5 repeated")
            }
            #expect(try await store.counts() == [.pending: 3])
        }
    }

    @Test(arguments: StoreBackend.available)
    func theOldestPendingDeliveryIsTheOldestNotYetDeliveredInFlightIncluded(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            #expect(try await store.oldestPending() == nil)
            _ = try await store.insert([
                newDelivery("dlv_1", at: t0.addingTimeInterval(1)),
                newDelivery("dlv_2", at: t0.addingTimeInterval(2)),
                newDelivery("dlv_3", at: t0.addingTimeInterval(3)),
            ])
            #expect(try await store.oldestPending() == t0.addingTimeInterval(1))
            // In flight still waits to be delivered.
            let claimed = try await store.claim(
                limits: ["pay": 1],
                now: t0.addingTimeInterval(10),
                leaseUntil: t0.addingTimeInterval(40),
                owner: "w"
            )
            #expect(claimed.map(\.delivery.id) == ["dlv_1"])
            #expect(try await store.oldestPending() == t0.addingTimeInterval(1))
            let delivered = DeliveryOutcome(
                status: .delivered,
                attempt: nil,
                nextAttemptAt: nil,
                lastError: nil,
                escalated: false,
                at: t0.addingTimeInterval(11)
            )
            #expect(try await store.finish(id: "dlv_1", owner: "w", outcome: delivered))
            #expect(try await store.oldestPending() == t0.addingTimeInterval(2))
            _ = try await store.cancel(id: "dlv_2", now: t0.addingTimeInterval(12))
            #expect(try await store.oldestPending() == t0.addingTimeInterval(3))
        }
    }

    @Test(arguments: StoreBackend.available)
    func forgottenKeysAcceptAgain(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1", key: "k1", at: t0)])
            _ = try await store.insert([newDelivery("dlv_2", key: "k2", at: t0.addingTimeInterval(100))])
            #expect(try await store.forgetKeys(acceptedBefore: t0.addingTimeInterval(50)) == 1)
            let again = try await store.insert([
                newDelivery("dlv_3", key: "k1", fingerprint: "z"), newDelivery("dlv_4", key: "k2", fingerprint: "z"),
            ])
            guard case .accepted = again[0] else { throw Failure("k1 was forgotten") }
            #expect(again[1] == .keyReused(existingID: "dlv_2"))
        }
    }

    /// One claim of many hands them out oldest due first, upstream by upstream in name order,
    /// whatever order they were accepted in.
    @Test(arguments: StoreBackend.available)
    func aLargeClaimComesOldestDueFirst(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            // Accepted newest due first, in several batches.
            let offsets = (0..<60).map { (($0 * 37) % 60) }
            for chunk in stride(from: 0, to: offsets.count, by: 20) {
                _ = try await store.insert(
                    offsets[chunk..<(chunk + 20)].map { offset in
                        newDelivery(
                            String(format: "dlv_%02d", offset),
                            upstream: offset % 3 == 0 ? "ship" : "pay",
                            at: t0.addingTimeInterval(Double(offset))
                        )
                    }
                )
            }
            let claimed = try await store.claim(
                limits: ["pay": 100, "ship": 100],
                now: t0.addingTimeInterval(100),
                leaseUntil: t0.addingTimeInterval(200),
                owner: "w"
            )
            let pay = (0..<60).filter { $0 % 3 != 0 }.map { String(format: "dlv_%02d", $0) }
            let ship = (0..<60).filter { $0 % 3 == 0 }.map { String(format: "dlv_%02d", $0) }
            #expect(claimed.map(\.delivery.id) == pay + ship)
        }
    }

    @Test(arguments: StoreBackend.available)
    func claimsOnlyWhatIsDueUpToEachUpstreamsLimitOldestFirst(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([
                newDelivery("dlv_1", at: t0.addingTimeInterval(2)),
                newDelivery("dlv_2", at: t0.addingTimeInterval(1)),
                newDelivery("dlv_3", at: t0.addingTimeInterval(3)),
                newDelivery("dlv_4", at: t0.addingTimeInterval(60)),
                newDelivery("dlv_5", upstream: "ship", at: t0),
            ])
            let now = t0.addingTimeInterval(10)
            let lease = now.addingTimeInterval(30)
            let claimed = try await store.claim(limits: ["pay": 2], now: now, leaseUntil: lease, owner: "w1")
            #expect(claimed.map(\.delivery.id) == ["dlv_2", "dlv_1"])
            #expect(claimed.allSatisfy { $0.reason == .due && $0.delivery.status == .inFlight })
            #expect(claimed.allSatisfy { $0.delivery.leaseOwner == "w1" && $0.delivery.leaseExpiresAt == lease })
            let next = try await store.claim(limits: ["pay": 5], now: now, leaseUntil: lease, owner: "w2")
            #expect(next.map(\.delivery.id) == ["dlv_3"])
            // w1's and w2's leases end at t0+40s; dlv_4 is due at t0+60s.
            #expect(try await store.nextDue(upstreams: ["pay"], owner: "w9") == t0.addingTimeInterval(40))
            #expect(try await store.nextDue(upstreams: ["pay"], owner: "w1") == t0.addingTimeInterval(40))
            #expect(try await store.nextDue(upstreams: ["ship"], owner: "w1") == t0)
            #expect(try await store.nextDue(upstreams: [], owner: "w1") == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func anInFlightLimitCountsEveryWorkersUnexpiredLeases(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert((1...5).map { newDelivery("dlv_\($0)", at: t0.addingTimeInterval(Double($0))) })
            let now = t0.addingTimeInterval(10)
            let lease = now.addingTimeInterval(30)
            let first = try await store.claim(
                limits: ["pay": 2],
                inFlightLimit: 3,
                now: now,
                leaseUntil: lease,
                owner: "w1"
            )
            #expect(first.map(\.delivery.id) == ["dlv_1", "dlv_2"])
            // Another worker asks for 5, but only one more fits under the limit of 3 in flight.
            let second = try await store.claim(
                limits: ["pay": 5],
                inFlightLimit: 3,
                now: now,
                leaseUntil: lease,
                owner: "w2"
            )
            #expect(second.map(\.delivery.id) == ["dlv_3"])
            let full = try await store.claim(
                limits: ["pay": 5],
                inFlightLimit: 3,
                now: now,
                leaseUntil: lease,
                owner: "w3"
            )
            #expect(full.isEmpty)
            // Expired leases hold no slot: once they end, their deliveries are claimed again.
            let later = lease.addingTimeInterval(1)
            let after = try await store.claim(
                limits: ["pay": 5],
                inFlightLimit: 3,
                now: later,
                leaseUntil: later.addingTimeInterval(30),
                owner: "w3"
            )
            #expect(after.count == 3)
        }
    }

    @Test(arguments: StoreBackend.available)
    func anExpiredLeaseIsTakenOverAndTheOldOwnerIsFencedOut(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1")])
            let first = try await store.claim(
                limits: ["pay": 1],
                now: t0,
                leaseUntil: t0.addingTimeInterval(30),
                owner: "crashed"
            )
            #expect(first.count == 1)
            #expect(
                try await store.claim(limits: ["pay": 1], now: t0.addingTimeInterval(29), leaseUntil: t0, owner: "w2")
                    .isEmpty
            )
            let taken = try await store.claim(
                limits: ["pay": 1],
                now: t0.addingTimeInterval(30),
                leaseUntil: t0.addingTimeInterval(60),
                owner: "w2"
            )
            #expect(taken.map(\.reason) == [.leaseExpired])
            let late = DeliveryOutcome(
                status: .delivered,
                attempt: nil,
                nextAttemptAt: nil,
                lastError: nil,
                escalated: false,
                at: t0
            )
            #expect(try await store.finish(id: "dlv_1", owner: "crashed", outcome: late) == false)
            #expect(try await store.finish(id: "dlv_1", owner: "w2", outcome: late) == true)
            #expect(try await store.delivery(id: "dlv_1")?.0.status == .delivered)
        }
    }

    @Test(arguments: StoreBackend.available)
    func finishingRecordsTheAttemptAndTheNextTime(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1")])
            _ = try await store.claim(limits: ["pay": 1], now: t0, leaseUntil: t0.addingTimeInterval(30), owner: "w")
            let attempt = DeliveryAttempt(
                number: 1,
                startedAt: t0,
                durationMilliseconds: 12,
                endpoint: "127.0.0.1:9",
                statusCode: 503,
                errorClass: nil,
                decision: "retry in 5s"
            )
            let outcome = DeliveryOutcome(
                status: .pending,
                attempt: attempt,
                nextAttemptAt: t0.addingTimeInterval(5),
                lastError: "HTTP 503",
                escalated: false,
                at: t0
            )
            #expect(try await store.finish(id: "dlv_1", owner: "w", outcome: outcome))
            let (delivery, attempts) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(delivery.status == .pending)
            #expect(delivery.attemptCount == 1 && delivery.scheduleStep == 1)
            #expect(delivery.nextAttemptAt == t0.addingTimeInterval(5))
            #expect(delivery.lastError == "HTTP 503")
            #expect(delivery.leaseOwner == nil)
            #expect(attempts == [attempt])
            // A wait for an open breaker is not an attempt.
            _ = try await store.claim(
                limits: ["pay": 1],
                now: t0.addingTimeInterval(5),
                leaseUntil: t0.addingTimeInterval(35),
                owner: "w"
            )
            let wait = DeliveryOutcome(
                status: .pending,
                attempt: nil,
                nextAttemptAt: t0.addingTimeInterval(30),
                lastError: nil,
                escalated: false,
                at: t0.addingTimeInterval(5)
            )
            #expect(try await store.finish(id: "dlv_1", owner: "w", outcome: wait))
            let after = try #require(try await store.delivery(id: "dlv_1"))
            #expect(after.0.attemptCount == 1 && after.1.count == 1 && after.0.lastError == "HTTP 503")
        }
    }

    @Test(arguments: StoreBackend.available)
    func lookupsAreKeptInTheTrailUncountedAndOneThatFindsTheOrderAcknowledgesIt(
        _ backend: StoreBackend
    ) async throws {
        func row(_ number: Int, _ kind: DeliveryAttempt.Kind, _ status: Int, at: Date) -> DeliveryAttempt {
            DeliveryAttempt(
                number: number,
                startedAt: at,
                durationMilliseconds: 3,
                endpoint: "127.0.0.1:9",
                statusCode: status,
                errorClass: nil,
                decision: "\(kind.rawValue) \(status)",
                kind: kind
            )
        }
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1", requireAck: true)])
            func claim(at date: Date) async throws {
                _ = try await store.claim(
                    limits: ["pay": 1],
                    now: date,
                    leaseUntil: date.addingTimeInterval(30),
                    owner: "w"
                )
            }
            try await claim(at: t0)
            let sent = DeliveryOutcome(
                status: .delivered,
                attempt: row(1, .send, 201, at: t0),
                nextAttemptAt: t0.addingTimeInterval(60),
                lastError: nil,
                escalated: false,
                at: t0
            )
            #expect(try await store.finish(id: "dlv_1", owner: "w", outcome: sent))
            // Not there yet: still delivered, its 2xx time kept, not an attempt.
            let t1 = t0.addingTimeInterval(60)
            try await claim(at: t1)
            let notYet = DeliveryOutcome(
                status: .delivered,
                attempt: row(1, .lookup, 404, at: t1),
                nextAttemptAt: t0.addingTimeInterval(120),
                lastError: nil,
                escalated: false,
                at: t1
            )
            #expect(try await store.finish(id: "dlv_1", owner: "w", outcome: notYet))
            var (stored, trail) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(stored.status == .delivered && stored.deliveredAt == t0 && stored.attemptCount == 1)
            // A resend after a lookup: the lookup first in the trail, then the send.
            let t2 = t0.addingTimeInterval(120)
            try await claim(at: t2)
            let resent = DeliveryOutcome(
                status: .delivered,
                attempt: row(2, .send, 201, at: t2.addingTimeInterval(1)),
                nextAttemptAt: t0.addingTimeInterval(180),
                lastError: nil,
                escalated: false,
                at: t2.addingTimeInterval(1),
                lookups: [row(1, .lookup, 404, at: t2)]
            )
            #expect(try await store.finish(id: "dlv_1", owner: "w", outcome: resent))
            (stored, trail) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(
                stored.attemptCount == 2 && stored.scheduleStep == 2 && stored.deliveredAt == t2.addingTimeInterval(1)
            )
            // The order is there: acknowledged, nothing more due.
            let t3 = t0.addingTimeInterval(180)
            try await claim(at: t3)
            let found = DeliveryOutcome(
                status: .acknowledged,
                attempt: row(2, .lookup, 200, at: t3),
                nextAttemptAt: nil,
                lastError: nil,
                escalated: false,
                at: t3
            )
            #expect(try await store.finish(id: "dlv_1", owner: "w", outcome: found))
            (stored, trail) = try #require(try await store.delivery(id: "dlv_1"))
            #expect(stored.status == .acknowledged && stored.acknowledgedAt == t3 && stored.attemptCount == 2)
            #expect(trail.map(\.kind) == [.send, .lookup, .lookup, .send, .lookup])
            #expect(trail.map(\.statusCode) == [201, 404, 404, 201, 200])
            #expect(try await store.nextDue(upstreams: ["pay"], owner: "w") == nil)
            // A lookup whose claim was replaced records nothing, its rows included.
            _ = try await store.insert([newDelivery("dlv_2", requireAck: true)])
            _ = try await store.claim(limits: ["pay": 1], now: t3, leaseUntil: t3.addingTimeInterval(30), owner: "w")
            let stale = Lease(owner: "w", token: 0)
            let lost = DeliveryOutcome(
                status: .pending,
                attempt: row(1, .send, 503, at: t3),
                nextAttemptAt: t3,
                lastError: nil,
                escalated: false,
                at: t3,
                lookups: [row(0, .lookup, 404, at: t3)]
            )
            #expect(try await store.finish(id: "dlv_2", lease: stale, outcome: lost) == false)
            #expect(try await store.delivery(id: "dlv_2")?.1.isEmpty == true)
        }
    }

    @Test(arguments: StoreBackend.available)
    func aDeliveredOneAwaitingItsAckIsClaimedAgainWhenTheWaitEnds(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1", requireAck: true)])
            _ = try await store.claim(limits: ["pay": 1], now: t0, leaseUntil: t0.addingTimeInterval(30), owner: "w")
            let delivered = DeliveryOutcome(
                status: .delivered,
                attempt: nil,
                nextAttemptAt: t0.addingTimeInterval(3_600),
                lastError: nil,
                escalated: false,
                at: t0
            )
            #expect(try await store.finish(id: "dlv_1", owner: "w", outcome: delivered))
            let stored = try #require(try await store.delivery(id: "dlv_1")?.0)
            #expect(stored.deliveredAt == t0)
            let overdue = try await store.claim(
                limits: ["pay": 1],
                now: t0.addingTimeInterval(3_600),
                leaseUntil: t0.addingTimeInterval(3_630),
                owner: "w"
            )
            #expect(overdue.map(\.reason) == [.ackOverdue])
            // The ack arriving during the re-delivery wins; the worker's write is fenced out.
            guard case .changed(let acked) = try await store.acknowledge(id: "dlv_1", now: t0.addingTimeInterval(3_601))
            else { throw Failure("ack refused") }
            #expect(acked.status == .acknowledged && acked.acknowledgedAt == t0.addingTimeInterval(3_601))
            #expect(try await store.finish(id: "dlv_1", owner: "w", outcome: delivered) == false)
            #expect(try await store.nextDue(upstreams: ["pay"], owner: "w") == nil)
        }
    }

    @Test(arguments: StoreBackend.available)
    func operatorTransitionsFollowTheStatus(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1"), newDelivery("dlv_2")])
            #expect(try await store.retry(id: "dlv_1", now: t0) == .conflict(.pending))
            #expect(try await store.cancel(id: "dlv_missing", now: t0) == .notFound)
            guard case .changed(let cancelled) = try await store.cancel(id: "dlv_1", now: t0) else {
                throw Failure("cancel refused")
            }
            #expect(cancelled.status == .cancelled && cancelled.nextAttemptAt == nil)
            #expect(try await store.acknowledge(id: "dlv_1", now: t0) == .conflict(.cancelled))
            guard case .changed(let replayed) = try await store.retry(id: "dlv_1", now: t0.addingTimeInterval(9)) else {
                throw Failure("retry refused")
            }
            #expect(replayed.status == .pending && replayed.nextAttemptAt == t0.addingTimeInterval(9))
            _ = try await store.claim(limits: ["pay": 5], now: t0, leaseUntil: t0.addingTimeInterval(30), owner: "w")
            #expect(try await store.cancel(id: "dlv_2", now: t0) == .conflict(.inFlight))
            try await store.release(owner: "w", now: t0.addingTimeInterval(1))
            let released = try #require(try await store.delivery(id: "dlv_2")?.0)
            #expect(released.status == .pending && released.nextAttemptAt == t0.addingTimeInterval(1))
        }
    }

    @Test(arguments: StoreBackend.available)
    func aDeliveryWaitsWhileAnEarlierOneWithItsOrderingKeyIsPendingOrInFlight(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            func ordered(_ id: String, _ key: String?, due: TimeInterval) -> NewDelivery {
                var item = newDelivery(id, at: t0.addingTimeInterval(due))
                item.orderingKey = key
                return item
            }
            // a1 is due later than a2 and a3 (a retry, say); b1 has another key; c1 none.
            _ = try await store.insert([
                ordered("dlv_a1", "a", due: 50), ordered("dlv_a2", "a", due: 0), ordered("dlv_a3", "a", due: 0),
                ordered("dlv_b1", "b", due: 0), ordered("dlv_c1", nil, due: 0),
            ])
            let now = t0.addingTimeInterval(10)
            let lease = t0.addingTimeInterval(3_600)
            var claimed = try await store.claim(limits: ["pay": 10], now: now, leaseUntil: lease, owner: "w")
            #expect(Set(claimed.map(\.delivery.id)) == ["dlv_b1", "dlv_c1"])
            // Held back, a2 does not make the worker wake early: a1 is next, at t0+50s.
            #expect(try await store.nextDue(upstreams: ["pay"], owner: "w") == t0.addingTimeInterval(50))
            claimed = try await store.claim(
                limits: ["pay": 10],
                now: t0.addingTimeInterval(50),
                leaseUntil: t0.addingTimeInterval(80),
                owner: "w"
            )
            #expect(claimed.map(\.delivery.id) == ["dlv_a1"])
            let done = DeliveryOutcome(
                status: .dead,
                attempt: nil,
                nextAttemptAt: nil,
                lastError: "HTTP 422",
                escalated: false,
                at: t0.addingTimeInterval(51)
            )
            #expect(try await store.finish(id: "dlv_a1", owner: "w", outcome: done))
            // A dead one holds nothing back; a2 goes before a3.
            claimed = try await store.claim(
                limits: ["pay": 10],
                now: t0.addingTimeInterval(51),
                leaseUntil: t0.addingTimeInterval(80),
                owner: "w"
            )
            #expect(claimed.map(\.delivery.id) == ["dlv_a2"])
        }
    }

    @Test(arguments: StoreBackend.available)
    func onlyASentDeliveryThatAskedForAnAckCanBeAcknowledged(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_plain"), newDelivery("dlv_ack", requireAck: true)])
            // Never sent: an ack must not stop it.
            #expect(try await store.acknowledge(id: "dlv_ack", now: t0) == .conflict(.pending))
            #expect(try await store.acknowledge(id: "dlv_plain", now: t0) == .conflict(.pending))
            _ = try await store.claim(limits: ["pay": 5], now: t0, leaseUntil: t0.addingTimeInterval(30), owner: "w")
            guard case .changed(let acked) = try await store.acknowledge(id: "dlv_ack", now: t0) else {
                throw Failure("an in-flight delivery that asked for an ack could not be acknowledged")
            }
            // Noted, not yet in force: it takes effect when the attempt's 2xx is recorded.
            #expect(acked.status == .inFlight && acked.ackReceivedAt == t0)
            #expect(try await store.acknowledge(id: "dlv_plain", now: t0) == .conflict(.inFlight))
        }
    }

    @Test(arguments: StoreBackend.available)
    func aDateBeyondMillisecondsSaturatesInsteadOfTrapping(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1")])
            _ = try await store.claim(limits: ["pay": 1], now: t0, leaseUntil: t0.addingTimeInterval(30), owner: "w")
            let far = DeliveryOutcome(
                status: .pending,
                attempt: nil,
                nextAttemptAt: Date(timeIntervalSince1970: 1e18),
                lastError: nil,
                escalated: false,
                at: t0
            )
            #expect(try await store.finish(id: "dlv_1", owner: "w", outcome: far))
            #expect(try await store.delivery(id: "dlv_1")?.0.status == .pending)
        }
    }

    @Test(arguments: StoreBackend.available)
    func pagesWalkNewestFirstWithACursor(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert((1...7).map { newDelivery("dlv_\($0)", upstream: $0 % 2 == 0 ? "ship" : "pay") })
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await store.deliveries(DeliveryQuery(cursor: cursor, limit: 3))
                seen += page.deliveries.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(seen == (1...7).reversed().map { "dlv_\($0)" })
            let ship = try await store.deliveries(DeliveryQuery(upstream: "ship"))
            #expect(ship.deliveries.map(\.id) == ["dlv_6", "dlv_4", "dlv_2"] && ship.nextCursor == nil)
            let pending = try await store.deliveries(DeliveryQuery(status: .dead))
            #expect(pending.deliveries.isEmpty)
        }
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension DeliveryStore {
    /// Finishes with the delivery's latest lease if `owner` holds it: for tests about what a
    /// finish records, not about fencing.
    func finish(id: String, owner: String, outcome: DeliveryOutcome) async throws -> Bool {
        guard let (delivery, _) = try await delivery(id: id) else { return false }
        return try await finish(id: id, lease: Lease(owner: owner, token: delivery.leaseToken), outcome: outcome)
    }
}

@Suite struct LeaseFencingTests {
    private func outcome(_ status: DeliveryStatus, at: Date) -> DeliveryOutcome {
        DeliveryOutcome(status: status, attempt: nil, nextAttemptAt: nil, lastError: nil, escalated: false, at: at)
    }

    /// A worker whose attempt outlived its lease, and whose delivery was claimed again (here by a
    /// worker of the same name, as after a restart), can neither renew nor record anything.
    @Test(arguments: StoreBackend.available)
    func aStaleClaimIsFencedOutEvenUnderTheSameOwnerName(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1")])
            let first = try #require(
                try await store.claim(limits: ["pay": 1], now: t0, leaseUntil: t0.addingTimeInterval(30), owner: "w")
                    .first
            )
            let second = try #require(
                try await store.claim(
                    limits: ["pay": 1],
                    now: t0.addingTimeInterval(30),
                    leaseUntil: t0.addingTimeInterval(60),
                    owner: "w"
                ).first
            )
            #expect(second.reason == .leaseExpired)
            #expect(second.lease.token > first.lease.token)
            #expect(second.lease.owner == first.lease.owner)
            #expect(try await store.renew(id: "dlv_1", lease: first.lease, until: t0.addingTimeInterval(90)) == false)
            #expect(
                try await store.finish(id: "dlv_1", lease: first.lease, outcome: outcome(.dead, at: t0)) == false
            )
            let stored = try #require(try await store.delivery(id: "dlv_1")?.0)
            #expect(stored.status == .inFlight && stored.leaseExpiresAt == t0.addingTimeInterval(60))
            #expect(try await store.finish(id: "dlv_1", lease: second.lease, outcome: outcome(.delivered, at: t0)))
        }
    }

    @Test(arguments: StoreBackend.available)
    func renewingKeepsTheLeaseFromExpiring(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1")])
            let claim = try #require(
                try await store.claim(limits: ["pay": 1], now: t0, leaseUntil: t0.addingTimeInterval(30), owner: "w")
                    .first
            )
            #expect(try await store.renew(id: "dlv_1", lease: claim.lease, until: t0.addingTimeInterval(50)))
            // Past the first lease, but within the renewed one: nobody may take it.
            let early = try await store.claim(
                limits: ["pay": 1],
                now: t0.addingTimeInterval(40),
                leaseUntil: t0.addingTimeInterval(70),
                owner: "w2"
            )
            #expect(early.isEmpty)
            #expect(try await store.nextDue(upstreams: ["pay"], owner: "w2") == t0.addingTimeInterval(50))
        }
    }

    /// Issue 11: an ack accepted while the first attempt was in flight stood even when that
    /// attempt failed. It is noted, and takes effect only when a 2xx is recorded.
    @Test(arguments: StoreBackend.available)
    func anAckWhileTheFirstAttemptIsInFlightWaitsForItsTwoHundred(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.insert([newDelivery("dlv_1", requireAck: true), newDelivery("dlv_2", requireAck: true)])
            let claims = try await store.claim(
                limits: ["pay": 2],
                now: t0,
                leaseUntil: t0.addingTimeInterval(30),
                owner: "w"
            )
            #expect(claims.count == 2)
            for id in ["dlv_1", "dlv_2"] {
                guard case .changed(let noted) = try await store.acknowledge(id: id, now: t0.addingTimeInterval(1))
                else { throw Failure("ack refused") }
                #expect(noted.status == .inFlight)
                #expect(noted.ackReceivedAt == t0.addingTimeInterval(1) && noted.acknowledgedAt == nil)
            }
            // dlv_1's attempt fails: it is retried, not acknowledged.
            var failed = outcome(.pending, at: t0.addingTimeInterval(2))
            failed.nextAttemptAt = t0.addingTimeInterval(7)
            failed.lastError = "HTTP 503"
            #expect(try await store.finish(id: "dlv_1", lease: claims[0].lease, outcome: failed))
            let retried = try #require(try await store.delivery(id: "dlv_1")?.0)
            #expect(retried.status == .pending && retried.nextAttemptAt == t0.addingTimeInterval(7))
            // dlv_2's attempt is a 2xx: the early ack makes it acknowledged at once.
            var delivered = outcome(.delivered, at: t0.addingTimeInterval(2))
            delivered.nextAttemptAt = t0.addingTimeInterval(3_600)
            #expect(try await store.finish(id: "dlv_2", lease: claims[1].lease, outcome: delivered))
            let acked = try #require(try await store.delivery(id: "dlv_2")?.0)
            #expect(acked.status == .acknowledged && acked.acknowledgedAt == t0.addingTimeInterval(1))
            #expect(acked.nextAttemptAt == nil)
        }
    }

    /// Issue 11: keys were unique per upstream, so a second consumer reusing one got a 422 naming
    /// the first consumer's delivery.
    @Test(arguments: StoreBackend.available)
    func callerKeysAreUniquePerConsumer(_ backend: StoreBackend) async throws {
        try await withStore(backend) { store in
            var mine = newDelivery("dlv_1", key: "order-42")
            mine.consumer = "shop"
            var theirs = newDelivery("dlv_2", key: "order-42", fingerprint: "other")
            theirs.consumer = "crm"
            let outcomes = try await store.insert([mine, theirs])
            #expect(outcomes.map { $0.delivery?.id } == ["dlv_1", "dlv_2"])
            var again = newDelivery("dlv_3", key: "order-42", fingerprint: "other")
            again.consumer = "shop"
            #expect(try await store.insert([again]) == [.keyReused(existingID: "dlv_1")])
            let page = try await store.deliveries(DeliveryQuery(consumer: "crm"))
            #expect(page.deliveries.map(\.id) == ["dlv_2"])
            #expect(try await store.deliveries(DeliveryQuery(upstreams: ["ship"])).deliveries.isEmpty)
        }
    }
}

/// What only the embedded store does: one process per file, reopening.
@Suite struct SQLiteStoreTests {
    @Test func oneProcessAtATimeAndItsAbandonedLeasesResumeAtOnce() async throws {
        try await withStore { store in
            #expect {
                _ = try SQLiteStore(path: store.path)
            } throws: { error in
                (error as? StoreError)?.code == .open && "\(error)".contains("another process")
            }
            _ = try await store.insert([newDelivery("dlv_1"), newDelivery("dlv_2")])
            _ = try await store.claim(
                limits: ["pay": 1],
                now: t0,
                leaseUntil: t0.addingTimeInterval(3_600),
                owner: "crashed"
            )
            #expect(try await store.releaseAbandoned(now: t0.addingTimeInterval(1)) == 1)
            let resumed = try #require(try await store.delivery(id: "dlv_1")?.0)
            #expect(resumed.status == .pending && resumed.leaseOwner == nil)
            #expect(resumed.nextAttemptAt == t0.addingTimeInterval(1))
            #expect(try await store.releaseAbandoned(now: t0) == 0)
        }
    }

    @Test func whatWasCommittedIsThereAfterReopening() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("nested/belay.db").path
        do {
            let store = try SQLiteStore(path: path)
            _ = try await store.insert([newDelivery("dlv_1")])
            #expect(
                try store.appliedMigrations() == [
                    "v1-deliveries", "v2-webhook-events", "v3-ordering-keys", "v4-audit", "v5-leases-and-owners",
                    "v6-retention", "v7-confirmations", "v8-incidents", BelayStore.latestMigration,
                ]
            )
        }
        let reopened = try SQLiteStore(path: path)
        #expect(
            try reopened.appliedMigrations() == [
                "v1-deliveries", "v2-webhook-events", "v3-ordering-keys", "v4-audit", "v5-leases-and-owners",
                "v6-retention", "v7-confirmations", "v8-incidents", BelayStore.latestMigration,
            ]
        )
        #expect(try await reopened.delivery(id: "dlv_1")?.0.status == .pending)
    }
}
