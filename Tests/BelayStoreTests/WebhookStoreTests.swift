import Foundation
import Testing

@testable import BelayStore

func newEvent(_ id: String, source: String = "stripe", eventID: String, forward: Bool = true) -> NewWebhookEvent {
    NewWebhookEvent(
        id: id,
        source: source,
        eventID: eventID,
        headers: [DeliveryHeader(name: "Stripe-Signature", value: "t=1,v1=ab")],
        body: Data(#"{"id":"\#(eventID)"}"#.utf8),
        receivedAt: t0,
        forward: forward ? newDelivery("dlv_for_\(id)", upstream: "webhook:\(source)", key: nil) : nil
    )
}

/// The webhook inbox's contract, on SQLite and on PostgreSQL.
@Suite struct WebhookStoreTests {
    @Test(arguments: StoreBackend.available)
    func anEventIsStoredWithItsForwardInOneTransactionAndOnlyOnce(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            let outcomes = try await store.ingest([
                newEvent("evt_1", eventID: "evt_stripe_1"),
                newEvent("evt_2", eventID: "evt_stripe_1"),
                newEvent("evt_3", source: "github", eventID: "evt_stripe_1", forward: false),
            ])
            guard case .stored(let first) = outcomes[0] else { throw Failure("not stored") }
            #expect(first.deliveryID == "dlv_for_evt_1")
            guard case .repeated(let again) = outcomes[1] else { throw Failure("a repeat was stored") }
            #expect(again.id == "evt_1")
            guard case .stored(let other) = outcomes[2] else { throw Failure("another source's id is not a repeat") }
            #expect(other.deliveryID == nil)
            let forward = try #require(try await store.delivery(id: "dlv_for_evt_1")?.0)
            #expect(forward.status == .pending && forward.upstream == "webhook:stripe")
            #expect(try await store.delivery(id: "dlv_for_evt_2") == nil)
            let stored = try #require(try await store.event(id: "evt_1"))
            #expect(stored.body == Data(#"{"id":"evt_stripe_1"}"#.utf8))
            #expect(stored.headers == [DeliveryHeader(name: "Stripe-Signature", value: "t=1,v1=ab")])
        }
    }

    @Test(arguments: StoreBackend.available)
    func concurrentRepeatsThroughTheIntakeStoreOneEvent(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            let intake = WebhookIntake(store: store)
            let outcomes = try await withThrowingTaskGroup(of: IngestOutcome.self) { group in
                for index in 0..<20 {
                    group.addTask { try await intake.ingest(newEvent("evt_\(index)", eventID: "same")) }
                }
                var all: [IngestOutcome] = []
                for try await outcome in group { all.append(outcome) }
                return all
            }
            let stored = outcomes.filter { if case .stored = $0 { true } else { false } }
            #expect(stored.count == 1)
            #expect(try await store.counts() == [.pending: 1])
        }
    }

    @Test(arguments: StoreBackend.available)
    func eventsPageNewestFirstWithTheirForwardAndFilterByItsStatus(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.ingest((1...5).map { newEvent("evt_\($0)", eventID: "e\($0)") })
            _ = try await store.ingest([newEvent("evt_6", source: "github", eventID: "g1")])
            let first = try await store.events(WebhookEventQuery(source: "stripe", limit: 3))
            #expect(first.events.map(\.0.id) == ["evt_5", "evt_4", "evt_3"])
            #expect(first.events.allSatisfy { $0.1?.status == .pending })
            let rest = try await store.events(WebhookEventQuery(source: "stripe", cursor: first.nextCursor, limit: 3))
            #expect(rest.events.map(\.0.id) == ["evt_2", "evt_1"] && rest.nextCursor == nil)
            _ = try await store.cancel(id: "dlv_for_evt_2", now: t0)
            let cancelled = try await store.events(WebhookEventQuery(forwardStatus: .cancelled))
            #expect(cancelled.events.map(\.0.id) == ["evt_2"])
        }
    }

    @Test(arguments: StoreBackend.available)
    func aReplayPointsTheEventAtANewForward(
        _ backend: StoreBackend
    ) async throws {
        try await withStore(backend) { store in
            _ = try await store.ingest([newEvent("evt_1", eventID: "e1")])
            _ = try await store.cancel(id: "dlv_for_evt_1", now: t0)
            let replay = newDelivery("dlv_replay", upstream: "webhook:stripe", key: nil)
            guard case .reforwarded(let stored) = try await store.reforward(eventID: "evt_1", as: replay) else {
                throw Failure("a finished forward stopped the replay")
            }
            #expect(stored.id == "dlv_replay" && stored.status == .pending)
            #expect(try await store.event(id: "evt_1")?.deliveryID == "dlv_replay")
            #expect(try await store.reforward(eventID: "evt_nope", as: newDelivery("dlv_x", key: nil)) == .notFound)
            #expect(try await store.delivery(id: "dlv_x") == nil)
        }
    }

    @Test func aReplayWhileTheForwardIsUnfinishedChangesNothing() async throws {
        try await withStore { store in
            _ = try await store.ingest([newEvent("evt_1", eventID: "e1")])
            let replay = newDelivery("dlv_replay", upstream: "webhook:stripe", key: nil)
            guard case .stillForwarding(let current) = try await store.reforward(eventID: "evt_1", as: replay) else {
                throw Failure("a pending forward did not stop the replay")
            }
            #expect(current.id == "dlv_for_evt_1" && current.status == .pending)
            let claimed = try await store.claim(
                limits: ["webhook:stripe": 1],
                now: t0,
                leaseUntil: t0.addingTimeInterval(60),
                owner: "w"
            )
            #expect(claimed.map(\.delivery.id) == ["dlv_for_evt_1"])
            guard case .stillForwarding(let inFlight) = try await store.reforward(eventID: "evt_1", as: replay) else {
                throw Failure("an in-flight forward did not stop the replay")
            }
            #expect(inFlight.status == .inFlight)
            #expect(try await store.event(id: "evt_1")?.deliveryID == "dlv_for_evt_1")
            #expect(try await store.delivery(id: "dlv_replay") == nil)
        }
    }

    /// Two replays of one event at the same moment: the "still forwarding" check is part of
    /// the store's transaction, so exactly one makes a forward.
    @Test func ofTwoConcurrentReplaysExactlyOneMakesAForward() async throws {
        try await withStore { store in
            _ = try await store.ingest([newEvent("evt_1", eventID: "e1")])
            _ = try await store.cancel(id: "dlv_for_evt_1", now: t0)
            let results = try await withThrowingTaskGroup(of: ReforwardOutcome.self) { group in
                for index in 0..<2 {
                    group.addTask {
                        try await store.reforward(
                            eventID: "evt_1",
                            as: newDelivery("dlv_replay_\(index)", upstream: "webhook:stripe", key: nil)
                        )
                    }
                }
                var all: [ReforwardOutcome] = []
                for try await result in group { all.append(result) }
                return all
            }
            let made = results.compactMap { if case .reforwarded(let forward) = $0 { forward } else { nil } }
            let refused = results.compactMap { if case .stillForwarding(let forward) = $0 { forward } else { nil } }
            #expect(made.count == 1 && refused.count == 1)
            // The loser saw the winner's new forward, not the cancelled one.
            #expect(refused.first?.id == made.first?.id)
            #expect(try await store.event(id: "evt_1")?.deliveryID == made.first?.id)
        }
    }
}
