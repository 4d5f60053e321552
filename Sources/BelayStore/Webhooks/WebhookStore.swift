public import Foundation

/// Durable webhook events: stored once per provider event id, each with its forward
/// scheduled as a delivery in the same transaction, so an acknowledged event is never
/// without its forward.
public protocol WebhookStore: Sendable {
    /// Stores a batch in one durable transaction; one outcome per event, in order. An
    /// event whose (source, event id) is stored already is not stored again, nor one whose
    /// ``NewWebhookEvent/bodyDigest`` matches an unexpired digest of a stored event of its
    /// source.
    func ingest(_ batch: [NewWebhookEvent]) async throws(StoreError) -> [IngestOutcome]

    /// One event.
    func event(id: String) async throws(StoreError) -> WebhookEvent?

    /// A page of events, newest first, with each one's forward (if any).
    func events(
        _ query: WebhookEventQuery
    ) async throws(StoreError) -> (
        events: [(WebhookEvent, Delivery?)], nextCursor: String?
    )

    /// Replays an event: stores `delivery` as its new forward and points the event at it,
    /// unless its current forward is unfinished.
    ///
    /// In one transaction, serialized against every other write to the event: reads the event
    /// (``ReforwardOutcome/notFound`` if there is none); reads the delivery its `delivery_id`
    /// names, and if that delivery exists and is `pending` or `in_flight`, changes nothing and
    /// returns ``ReforwardOutcome/stillForwarding(_:)`` with it; otherwise inserts `delivery`,
    /// sets the event's `delivery_id` to it and returns ``ReforwardOutcome/reforwarded(_:)``.
    /// A forward that is delivered, acknowledged, dead or cancelled, or one already purged, does
    /// not stop a replay.
    ///
    /// The check and the change must not be separable: of two concurrent replays of one event
    /// whose forward is finished, exactly one is `reforwarded` and the other sees that new
    /// forward as `stillForwarding`. SQLite gets this from its single writer; an implementation
    /// with concurrent writers (PostgreSQL) locks the event's row first
    /// (`SELECT … FROM webhook_events WHERE id = $1 FOR UPDATE`) and reads its forward after.
    func reforward(eventID: String, as delivery: NewDelivery) async throws(StoreError) -> ReforwardOutcome

    /// Deletes up to `limit` events received before `date`, oldest first, in one
    /// transaction, never one whose forward is unfinished (pending, in flight, or delivered
    /// and waiting for its acknowledgement). Returns how many were deleted; fewer than
    /// `limit` means none is left to delete.
    func purgeEvents(receivedBefore date: Date, limit: Int) async throws(StoreError) -> Int

    /// Deletes up to `limit` body digests that expired at or before `date`, in one
    /// transaction. Returns how many were deleted.
    func purgeBodyDigests(expiredBy date: Date, limit: Int) async throws(StoreError) -> Int
}

/// Accepts webhook events durably and fast: concurrent ingests share one transaction and
/// one fsync, and each caller is answered only once its event (and forward) is committed.
/// A repeat — even one arriving while the first is being committed — is found by the
/// store's unique (source, event id) within the serialized writes.
public final class WebhookIntake: Sendable {
    /// The store written to.
    public let store: any WebhookStore
    private let commit: GroupCommit<NewWebhookEvent, IngestOutcome>

    /// Creates an intake writing to `store`, at most `maxBatch` events per transaction.
    public init(store: any WebhookStore, maxBatch: Int = 1_024) {
        self.store = store
        self.commit = GroupCommit(maxBatch: maxBatch) { (batch: [NewWebhookEvent]) throws(StoreError) in
            try await store.ingest(batch)
        }
    }

    /// Stores `event`; returns once it is durable (or was found to be a repeat).
    public func ingest(_ event: NewWebhookEvent) async throws(StoreError) -> IngestOutcome {
        try await commit.submit(event)
    }
}
