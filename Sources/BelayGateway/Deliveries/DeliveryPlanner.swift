import BelayAPI
public import BelayStore
public import Foundation

/// What one send of a delivery came to, as the planner needs it.
public enum SendResult: Sendable, Hashable {
    /// The upstream answered (its final answer, after the upstream policy's own retries).
    case answered(status: Int, retryAfter: Duration?, endpoint: String)
    /// No answer: `connect`, `reset`, `timeout` or `other`. An attempt all the same.
    case failed(errorClass: String, detail: String, endpoint: String?)
    /// Belay held it back without sending: the upstream's breaker is open, its bulkhead
    /// full or its pace spent. Not an attempt: the delivery waits and keeps its schedule.
    case held(reason: String, retryAfter: Duration?)
    /// Belay will never send it: a check before sending failed for good (e.g. a webhook
    /// event whose resource the provider says does not exist). Dead at once; an attempt.
    case refused(reason: String, errorClass: String, endpoint: String?)
}

/// Decides, without I/O, what happens to a delivery after a send: delivered, retried at
/// a time from the schedule, dead, or held back; and which alert that raises.
///
/// The schedule (`deliveries.schedule`, default `0s, 5s, 5m, 20m, 4h, 1d`) gives the
/// delay before each attempt: attempt *n* waits `schedule[n-1]` after the previous one,
/// and after `schedule.count` failed attempts the delivery is dead. Each delay gets
/// ±10 % jitter so deliveries that failed together do not return together, and a
/// provider's `Retry-After` pushes the retry later, never earlier. Following Svix and the
/// Standard Webhooks conventions: a 2xx delivers; 410 Gone and any other 4xx but 408 and
/// 429 are permanent (dead at once, no pointless retries); 3xx, 408, 429, 5xx and
/// failures without an answer are retried.
public struct DeliveryPlanner: Sendable {
    /// The decision for one delivery.
    public struct Decision: Sendable, Hashable {
        /// The delivery's new status.
        public var status: DeliveryStatus
        /// When to try again (`pending`), or until when an acknowledgement is awaited.
        public var nextAttemptAt: Date?
        /// Whether the send counts as an attempt.
        public var countsAsAttempt: Bool
        /// The failure to show, if it failed.
        public var lastError: String?
        /// The decision in words, recorded with the attempt.
        public var summary: String
        /// The alert this raises, if any.
        public var alert: Alert.Kind?
    }

    /// The delay before each attempt.
    public var schedule: [Duration]
    /// Failed attempts after which "still trying" is alerted.
    public var notifyAfter: Int
    /// How long an acknowledgement is awaited.
    public var ackTimeout: Duration
    /// The jitter applied to each delay, as a fraction (0.1 = ±10 %).
    public var jitter: Double
    /// How long after its first failed attempt "still trying" is alerted, if by age too.
    public var notifyAge: Duration?
    /// Per-upstream waits for the other system's confirmation (`upstreams.<name>.ack.timeout`),
    /// overriding ``ackTimeout``.
    public var ackTimeouts: [String: Duration] = [:]
    /// The webhooks source whose events confirm each upstream's deliveries (`ack.webhook`).
    public var ackSources: [String: String] = [:]
    /// How each upstream's orders are looked up (`ack.poll`).
    public var ackPolls: [String: UpstreamConfig.Ack.Poll] = [:]

    /// Creates a planner from the `deliveries` config.
    public init(_ config: GatewayConfig.Deliveries, jitter: Double = 0.1) {
        self.schedule = config.schedule
        self.notifyAfter = config.notifyAfter
        self.ackTimeout = config.ackTimeout
        self.notifyAge = config.notifyAge
        self.jitter = jitter
    }

    /// How long an acknowledgement of a delivery to `upstream` is awaited.
    public func ackTimeout(for upstream: String) -> Duration {
        ackTimeouts[upstream] ?? ackTimeout
    }

    /// The decision after `result` for `delivery` (as claimed, before this send), at `now`.
    /// `unit` is a random number in `0..<1` that places the jitter.
    public func decide(after result: SendResult, for delivery: Delivery, now: Date, unit: Double) -> Decision {
        switch result {
        case .answered(let status, _, _) where (200..<300).contains(status):
            guard delivery.requireAck else {
                return Decision(
                    status: .delivered,
                    nextAttemptAt: nil,
                    countsAsAttempt: true,
                    lastError: nil,
                    summary: "delivered (HTTP \(status))",
                    alert: nil
                )
            }
            let until = now.adding(ackTimeout(for: delivery.upstream))
            guard let poll = ackPolls[delivery.upstream] else {
                return Decision(
                    status: .delivered,
                    nextAttemptAt: until,
                    countsAsAttempt: true,
                    lastError: nil,
                    summary: "delivered (HTTP \(status)); awaiting acknowledgement until \(until.iso8601)",
                    alert: nil
                )
            }
            // Looked up at each `every` until the wait ends.
            let look = min(now.adding(poll.every), until)
            return Decision(
                status: .delivered,
                nextAttemptAt: look,
                countsAsAttempt: true,
                lastError: nil,
                summary: "delivered (HTTP \(status)); awaiting acknowledgement until \(until.iso8601), "
                    + "looking it up at \(look.iso8601)",
                alert: nil
            )
        case .answered(let status, _, _) where status == 410:
            return dead("HTTP 410 Gone: the receiver asked to stop", error: "HTTP 410")
        case .answered(let status, _, _) where (400..<500).contains(status) && status != 408 && status != 429:
            return dead("HTTP \(status) is a permanent refusal; not retried", error: "HTTP \(status)")
        case .answered(let status, let retryAfter, let endpoint):
            return failed(
                error: "HTTP \(status) from \(endpoint)",
                retryAfter: retryAfter,
                delivery: delivery,
                now: now,
                unit: unit
            )
        case .failed(let errorClass, let detail, _):
            return failed(
                error: "\(errorClass): \(detail)",
                retryAfter: nil,
                delivery: delivery,
                now: now,
                unit: unit
            )
        case .refused(let reason, _, _):
            return dead(reason, error: reason)
        case .held(let reason, let retryAfter):
            let until = Self.heldUntil(now, retryAfter: retryAfter)
            return waiting(.pending, until: until, "held until \(until.iso8601): \(reason)")
        }
    }

    /// When a send or lookup Belay held back is tried again: after the policy's `Retry-After`,
    /// at least a second.
    static func heldUntil(_ now: Date, retryAfter: Duration?) -> Date {
        now.adding(max(retryAfter ?? .seconds(1), .seconds(1)))
    }

    /// A decision that spends no attempt: `status`, due again at `until` (nil: nothing more is
    /// due), for `summary`'s reason.
    func waiting(_ status: DeliveryStatus, until: Date?, _ summary: String) -> Decision {
        Decision(
            status: status,
            nextAttemptAt: until,
            countsAsAttempt: false,
            lastError: nil,
            summary: summary,
            alert: nil
        )
    }

    /// Whether a delivery whose acknowledgement did not come may be sent again; when not,
    /// the decision that ends it.
    public func decideOverdueAck(for delivery: Delivery) -> Decision? {
        guard delivery.scheduleStep >= schedule.count else { return nil }
        var decision = dead(
            "never acknowledged after \(delivery.scheduleStep) deliveries",
            error: "no acknowledgement within \(ConfigDuration.format(ackTimeout(for: delivery.upstream)))"
        )
        decision.countsAsAttempt = false
        return decision
    }

    /// A failed attempt of `delivery`: its next place on the schedule, or dead.
    func failed(
        error: String,
        retryAfter: Duration?,
        delivery: Delivery,
        now: Date,
        unit: Double
    ) -> Decision {
        let attempt = delivery.scheduleStep + 1
        guard attempt < schedule.count else {
            return dead("\(attempt) attempts failed (last: \(error))", error: error)
        }
        let planned = schedule[attempt] * (1 - jitter + 2 * jitter * min(max(unit, 0), 1))
        // A provider's Retry-After pushes the retry later, but no further than the longest
        // step of the schedule: an absurd value must not park a delivery for ever.
        let longest = schedule.max() ?? .zero
        let delay = max(planned, min(retryAfter ?? .zero, max(longest, .seconds(1))))
        let next = now.adding(delay)
        // By count, or by age: the first failed attempt was `notify_after` ago (an attempt that
        // came after a long gap; the gap itself is escalated by the worker while it waits).
        let aged = delivery.escalateAt.map { $0 <= now } ?? false
        let escalate = (attempt >= notifyAfter || aged) && !delivery.escalated
        return Decision(
            status: .pending,
            nextAttemptAt: next,
            countsAsAttempt: true,
            lastError: error,
            summary: "retry at \(next.iso8601) (\(error))",
            alert: escalate ? .stillTrying : nil
        )
    }

    private func dead(_ why: String, error: String) -> Decision {
        Decision(
            status: .dead,
            nextAttemptAt: nil,
            countsAsAttempt: true,
            lastError: error,
            summary: "dead: \(why)",
            alert: .dead
        )
    }
}

extension Date {
    /// This date plus a `Duration`.
    func adding(_ duration: Duration) -> Date {
        let (seconds, attoseconds) = duration.components
        return addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18)
    }

    /// RFC 3339 / ISO 8601 in UTC, to the millisecond: `2026-11-23T10:05:00.000Z`.
    var iso8601: String { ManagementJSON.format(self) }
}
