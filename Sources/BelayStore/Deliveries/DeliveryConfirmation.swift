public import Foundation

/// The other system's word on a delivery: an inbox event from the upstream's `ack.webhook`
/// source naming an idempotency key, confirming the order went through or rejecting it.
///
/// It applies to every delivery of `upstream` carrying `idempotencyKey` that is not final
/// (`pending`, `in_flight` or `delivered`), whichever consumer created it: the key is the
/// provider's name for the order, and two deliveries sharing it on one upstream are one order
/// to the provider. A confirmation naming no such delivery changes nothing.
public struct DeliveryConfirmation: Sendable, Hashable {
    /// The upstream whose deliveries it names.
    public var upstream: String
    /// The idempotency key found in the event.
    public var idempotencyKey: String
    /// The inbox event's Belay id (`evt_…`), linked from each delivery it settles.
    public var event: String
    /// Nil for a confirmation; the provider's reason for a rejection (the delivery is then `dead`).
    public var rejection: String?
    /// When the event was received.
    public var at: Date

    /// Creates a confirmation (or, with a `rejection`, a rejection).
    public init(upstream: String, idempotencyKey: String, event: String, rejection: String? = nil, at: Date) {
        self.upstream = upstream
        self.idempotencyKey = idempotencyKey
        self.event = event
        self.rejection = rejection
        self.at = at
    }
}

/// Deliveries settled by the other system's confirmation (``DeliveryConfirmation``).
///
/// The confirmation and the worker's record of the attempt are each one write of the
/// delivery's row, so neither loses the other whichever commits first:
/// - `delivered`, or `pending` (its attempts failed or were not recorded, but the provider has
///   the order): `acknowledged` (a rejection: `dead`) at once, the lease of a re-delivery in
///   flight fenced out.
/// - `in_flight` before any 2xx was recorded: the confirmation is noted on the row
///   (``Delivery/ackEvent``), and the attempt's record, whatever its outcome, makes the
///   delivery `acknowledged` (or `dead`) with the attempt kept in its trail.
public protocol ConfirmationStore: Sendable {
    /// Applies `confirmation` and returns every delivery it named, as it is now: `in_flight`
    /// for one whose attempt is still running (noted), final otherwise. Applying it twice
    /// changes nothing more: an event received again settles nothing new.
    func confirm(_ confirmation: DeliveryConfirmation) async throws(StoreError) -> [Delivery]
}

/// "Still trying" by age (`deliveries.notify_after: 20m`): deliveries waiting between attempts
/// whose ``Delivery/escalateAt`` has passed.
public protocol EscalationStore: Sendable {
    /// Marks escalated every `pending`, not yet escalated delivery of `upstreams` whose
    /// ``Delivery/escalateAt`` is at or before `now`, and returns them: each is returned to one
    /// caller only, however many workers share the store.
    func escalateAged(upstreams: [String], now: Date) async throws(StoreError) -> [Delivery]

    /// The earliest ``Delivery/escalateAt`` of a `pending`, not yet escalated delivery of
    /// `upstreams`; nil when none waits for one.
    func nextEscalation(upstreams: [String]) async throws(StoreError) -> Date?
}
