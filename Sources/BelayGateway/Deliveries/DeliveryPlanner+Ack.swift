public import BelayStore
public import Foundation

extension DeliveryPlanner {
    /// Creates a planner from the `deliveries` config and each upstream's `ack` (its timeout
    /// overrides `deliveries.ack_timeout` for that upstream's deliveries).
    public init(_ config: GatewayConfig, jitter: Double = 0.1) {
        self.init(config.deliveries, jitter: jitter)
        for upstream in config.upstreams {
            guard let ack = upstream.ack else { continue }
            if let timeout = ack.timeout { ackTimeouts[upstream.name] = timeout }
            if let source = ack.webhook?.source { ackSources[upstream.name] = source }
            if let poll = ack.poll { ackPolls[upstream.name] = poll }
        }
    }

    /// Whether the last send of `delivery` may have reached the provider without Belay seeing
    /// its answer: it timed out or the connection was reset (after the request may have gone
    /// out), or a lookup could not tell whether the order is there.
    public static func outcomeUnknown(_ delivery: Delivery) -> Bool {
        guard let error = delivery.lastError else { return false }
        return error.hasPrefix("timeout:") || error.hasPrefix("reset:") || error.hasPrefix(Self.unknownPrefix)
    }

    /// The start of ``Delivery/lastError`` after a lookup that could not tell.
    static let unknownPrefix = "unknown outcome:"

    /// Whether `claimed` is to be looked up (`ack.poll`) before anything is sent: it awaits its
    /// confirmation, or an earlier send may have reached the provider (it was delivered before,
    /// its outcome is unknown, or a worker lost it mid-send). Nil when the upstream has no poll.
    public func lookupFirst(_ claimed: ClaimedDelivery) -> UpstreamConfig.Ack.Poll? {
        guard let poll = ackPolls[claimed.delivery.upstream] else { return nil }
        let delivery = claimed.delivery
        let mayBeThere =
            claimed.reason == .ackOverdue || claimed.reason == .leaseExpired || delivery.deliveredAt != nil
            || Self.outcomeUnknown(delivery)
        return mayBeThere ? poll : nil
    }

    /// What a lookup says about an order: there (one of `until`), not there (404 or 410), or
    /// nothing that can be relied on (another answer, or none).
    public enum Finding: Sendable, Hashable {
        /// The provider has the order.
        case there
        /// The provider says it has no such order.
        case absent
        /// The lookup could not tell: why.
        case unknown(String)
    }

    /// What `result` of a lookup to `upstream` says.
    public func finding(_ result: SendResult, upstream: String) -> Finding {
        let until = ackPolls[upstream]?.until ?? [200]
        switch result {
        case .answered(let status, _, _) where until.contains(status): return .there
        case .answered(let status, _, _) where status == 404 || status == 410: return .absent
        case .answered(let status, _, let endpoint): return .unknown("HTTP \(status) from \(endpoint)")
        case .failed(let errorClass, let detail, _): return .unknown("\(errorClass): \(detail)")
        case .refused(let reason, _, _), .held(let reason, _): return .unknown(reason)
        }
    }

    /// The decision after a lookup of `delivery` at `now`, or nil when it is to be sent (again):
    /// - there: `acknowledged`, nothing sent;
    /// - awaiting its confirmation and the wait not over (claimed at a lookup's time, or put back
    ///   by a restart or a lost lease in the middle of one): `delivered`, looked up again at the
    ///   next `every` (never past the wait's end); past the wait, a lookup held back by Belay
    ///   keeps it `delivered` and overdue, looked up again shortly;
    /// - absent: nil, send (after the wait's end, subject to ``decideOverdueAck(for:)``);
    /// - unknown: held back, not sent: an attempt on the schedule (held by Belay itself, e.g.
    ///   a full bulkhead: not one), so an order that may be there is never sent twice and the
    ///   schedule still ends it.
    public func decide(
        afterLookup result: SendResult,
        of path: String,
        for claimed: ClaimedDelivery,
        now: Date,
        unit: Double
    ) -> Decision? {
        let delivery = claimed.delivery
        let finding = finding(result, upstream: delivery.upstream)
        let said: String
        switch result {
        case .answered(let status, _, _): said = "GET \(path) answered \(status)"
        case .failed(let errorClass, _, _), .refused(_, let errorClass, _):
            said = "GET \(path) failed (\(errorClass))"
        case .held(let reason, _): said = "GET \(path) held back (\(reason))"
        }
        if finding == .there {
            return waiting(.acknowledged, until: nil, "acknowledged: \(said): the provider has the order")
        }
        // Delivered and awaiting its confirmation: claimed at a lookup's time, or put back by a
        // restart (or a lost lease) in the middle of one. A crash never shortens the wait (a
        // resend comes only after the wait, so a 2xx within it is the latest send).
        if delivery.requireAck, let deliveredAt = delivery.deliveredAt {
            let end = deliveredAt.adding(ackTimeout(for: delivery.upstream))
            if now < end {
                let every = ackPolls[delivery.upstream]?.every ?? .seconds(300)
                let next = min(now.adding(every), end)
                return waiting(.delivered, until: next, "not confirmed yet (\(said)); looking again at \(next.iso8601)")
            }
            if claimed.reason == .ackOverdue, case .held(_, let retryAfter) = result {
                // Overdue, and the lookup was held back: still overdue, looked up again shortly.
                let until = Self.heldUntil(now, retryAfter: retryAfter)
                return waiting(
                    .delivered,
                    until: until,
                    "unconfirmed past its wait; \(said); looking again at \(until.iso8601)"
                )
            }
        }
        switch finding {
        case .there, .absent:
            return nil
        case .unknown(let why):
            if case .held(_, let retryAfter) = result {
                let until = Self.heldUntil(now, retryAfter: retryAfter)
                return waiting(
                    .pending,
                    until: until,
                    "held until \(until.iso8601): \(said); not resent before the order is looked up"
                )
            }
            var decision = failed(
                error: "\(Self.unknownPrefix) \(why); not resent, the order may be there",
                retryAfter: nil,
                delivery: delivery,
                now: now,
                unit: unit
            )
            decision.summary = "\(said): " + decision.summary
            return decision
        }
    }
}
