public import Foundation

/// Durable deliveries and their attempts. SQLite and PostgreSQL implement it alike.
///
/// The protocol assumes nothing a shared database cannot give: work is handed out under
/// leases that expire (a crashed worker's deliveries are taken over), uniqueness comes
/// from unique keys (two instances accepting one key see one row), pages are cursors,
/// and every write a worker makes after a claim is fenced by the claim's ``Lease`` token:
/// a worker whose lease expired and was claimed again changes nothing.
///
/// Accept through ``DeliveryIntake``, which batches concurrent accepts into one
/// transaction (group commit) and answers 409 for a key already being accepted.
public protocol DeliveryStore: Sendable {
    /// Stores a batch of new deliveries in one durable transaction and returns one
    /// outcome per delivery, in order. A delivery whose caller key was stored before is
    /// not stored again: ``AcceptOutcome/repeated(_:)`` or ``AcceptOutcome/keyReused(existingID:)``.
    func insert(_ batch: [NewDelivery]) async throws(StoreError) -> [AcceptOutcome]

    /// Leases up to `limit[upstream]` due deliveries of each listed upstream to `owner`
    /// until `leaseUntil`, oldest due first, and marks them `in_flight`. Due means a
    /// `pending` one whose time has come, an `in_flight` one whose lease ran out, or a
    /// `delivered` one still awaiting its acknowledgement past the wait. Each claim gets a
    /// new fencing token (``ClaimedDelivery/lease``), larger than any before it.
    ///
    /// With an `inFlightLimit`, fewer are claimed where needed so that at most that many of
    /// an upstream's deliveries are in flight (unexpired leases) at once across every worker
    /// sharing the store: the per-upstream concurrency holds with several instances.
    func claim(
        limits: [String: Int],
        inFlightLimit: Int?,
        now: Date,
        leaseUntil: Date,
        owner: String
    ) async throws(StoreError) -> [ClaimedDelivery]

    /// Records what a worker did with a delivery it leased and releases the lease.
    /// Returns false (and changes nothing) if `lease` is no longer the delivery's latest claim.
    /// A `delivered` outcome for a delivery acknowledged early (``Delivery/ackReceivedAt``)
    /// makes it `acknowledged`.
    func finish(id: String, lease: Lease, outcome: DeliveryOutcome) async throws(StoreError) -> Bool

    /// Extends `lease` until `until` while its attempt runs. Returns false (and changes
    /// nothing) if the lease is no longer the delivery's latest claim: the worker must stop.
    func renew(id: String, lease: Lease, until: Date) async throws(StoreError) -> Bool

    /// Returns every lease `owner` holds to `pending` (due at once), on shutdown. Runs even
    /// when the calling task is cancelled.
    func release(owner: String, now: Date) async throws(StoreError)

    /// Returns to `pending` (due at `now`) every lease no running worker can hold, and
    /// says how many. A store used by one process at a time (SQLite, enforced by a lock)
    /// releases every lease when a worker starts, so a restart after a crash resumes at
    /// once; a shared database releases none (another instance may hold them) and relies
    /// on leases expiring.
    func releaseAbandoned(now: Date) async throws(StoreError) -> Int

    /// The earliest time anything of these upstreams becomes due (nil: nothing waits),
    /// not counting the leases `owner` holds (it learns of those when they finish).
    func nextDue(upstreams: [String], owner: String) async throws(StoreError) -> Date?

    /// One delivery and its attempts, oldest first.
    func delivery(id: String) async throws(StoreError) -> (Delivery, [DeliveryAttempt])?

    /// A page of deliveries, newest first.
    func deliveries(_ query: DeliveryQuery) async throws(StoreError) -> DeliveryPage

    /// The delivery `consumer` had accepted for `upstream` under its own key `callerKey`, with
    /// its payload's fingerprint; nil when there is none (or its key has been forgotten).
    func delivery(
        upstream: String,
        consumer: String,
        callerKey: String
    ) async throws(StoreError) -> (delivery: Delivery, fingerprint: String)?

    /// Replays a `dead` or `cancelled` delivery: `pending`, due at `now`, attempts kept.
    func retry(id: String, now: Date) async throws(StoreError) -> TransitionOutcome

    /// Cancels a `pending` or `dead` delivery (one in flight finishes its attempt first).
    func cancel(id: String, now: Date) async throws(StoreError) -> TransitionOutcome

    /// Acknowledges a delivery that was queued with `requireAck` and has been sent. A
    /// `delivered` one becomes `acknowledged`. One `in_flight`, or `pending` after attempts,
    /// keeps its status and notes the ack (``Delivery/ackReceivedAt``): the receiving system
    /// may answer before the 2xx is recorded, and it is acknowledged when that 2xx is; if the
    /// attempt fails instead, it is sent again. Anything else is a conflict: an ack never
    /// stops a delivery that was not sent. Acknowledging twice is not an error.
    func acknowledge(id: String, now: Date) async throws(StoreError) -> TransitionOutcome

    /// How many deliveries there are in each status (statuses with none are absent). It
    /// stays cheap as the history grows: a store may reuse the counts of `delivered` and
    /// `acknowledged` for a short while (SQLite: up to 30 s, once they reach 100,000 rows);
    /// the other statuses are counted each time.
    func counts() async throws(StoreError) -> [DeliveryStatus: Int]

    /// When the oldest delivery still waiting to be delivered (`pending` or `in_flight`) was
    /// accepted; nil when none waits. Its age is how far behind the queue is.
    func oldestPending() async throws(StoreError) -> Date?

    /// Forgets caller keys accepted before `date` (a later accept with one is new).
    /// Returns how many were forgotten.
    func forgetKeys(acceptedBefore date: Date) async throws(StoreError) -> Int

    /// Deletes up to `limit` finished deliveries (delivered without an acknowledgement
    /// required, acknowledged, cancelled, dead) last updated before `date`, oldest first,
    /// with their attempts, in one transaction; an inbox event whose forward one was keeps
    /// no link to it. Returns how many were deleted; fewer than `limit` means none is left.
    func purgeFinished(updatedBefore date: Date, limit: Int) async throws(StoreError) -> Int
}

extension DeliveryStore {
    /// Leases due deliveries within `limits` alone (see ``claim(limits:inFlightLimit:now:leaseUntil:owner:)``).
    public func claim(
        limits: [String: Int],
        now: Date,
        leaseUntil: Date,
        owner: String
    ) async throws(StoreError) -> [ClaimedDelivery] {
        try await claim(limits: limits, inFlightLimit: nil, now: now, leaseUntil: leaseUntil, owner: owner)
    }
}

/// A store several gateway instances share (PostgreSQL): it tells a worker at once when
/// another instance made deliveries due, and runs housekeeping on one instance at a time.
public protocol SharedStore: Sendable {
    /// Calls `changed` whenever deliveries may have become due (accepted, released, retried,
    /// rescheduled) on any instance, until the calling task is cancelled. Reconnects after a
    /// lost connection, and calls `changed` then too (announcements may have been missed).
    func watchDeliveries(_ changed: @escaping @Sendable () -> Void) async

    /// Runs `body` unless another instance is running the job `name` now; returns nil
    /// (without running it) if one is.
    func exclusively<T: Sendable>(
        _ name: String,
        _ body: @Sendable () async throws(StoreError) -> T
    ) async throws(StoreError) -> T?
}
