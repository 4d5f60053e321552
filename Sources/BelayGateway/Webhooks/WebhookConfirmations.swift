import BelayStore
import Foundation
import Logging

/// The other system's confirmations: a verified inbox event from an upstream's `ack.webhook`
/// source whose value at `ack.match` is a delivery's idempotency key settles that delivery
/// (`acknowledged`; with `ack.failure`, a rejection makes it `dead` and raises an alert).
///
/// It runs after the event is committed to the inbox, and again for an event received again
/// (the store applies a confirmation once): if applying it fails, the sender is answered 503
/// and its retry applies it. An event naming no delivery changes nothing but stays in the inbox.
struct WebhookConfirmations: Sendable {
    /// One upstream confirmed by a source.
    struct Rule: Sendable {
        var upstream: String
        var match: JSONPointer
        var failure: (pointer: JSONPointer, values: Set<String>)?
    }

    /// The rules of each source, by source name.
    let rules: [String: [Rule]]
    let store: (any ConfirmationStore)?
    let alert: @Sendable (Alert) -> Void
    let logger: Logger

    init(
        config: GatewayConfig,
        store: (any ConfirmationStore)?,
        alert: @escaping @Sendable (Alert) -> Void,
        logger: Logger
    ) {
        var rules: [String: [Rule]] = [:]
        for upstream in config.upstreams {
            // The loader checked the pointers: one that does not parse cannot reach here.
            guard let webhook = upstream.ack?.webhook, let match = try? JSONPointer(webhook.match) else { continue }
            var rule = Rule(upstream: upstream.name, match: match)
            if let failure = webhook.failure, let pointer = try? JSONPointer(failure.pointer) {
                rule.failure = (pointer, Set(failure.values))
            }
            rules[webhook.source, default: []].append(rule)
        }
        self.rules = rules
        self.store = store
        self.alert = alert
        self.logger = logger
    }

    /// Whether events of `source` may confirm anything.
    func confirms(_ source: String) -> Bool {
        rules[source] != nil && store != nil
    }

    /// Applies inbox event `event` (Belay's id) of `source` with `body`, received at `at`, to
    /// the deliveries it names; returns them as they are now (none when it names none).
    func apply(
        source: String,
        event: String,
        body: Data,
        at: Date,
        requestID: String
    ) async throws(StoreError)
        -> [Delivery]
    {
        guard let store, let rules = rules[source] else { return [] }
        var settled: [Delivery] = []
        for rule in rules {
            guard let key = Self.scalar(at: rule.match, in: body) else { continue }
            var rejection: String?
            if let failure = rule.failure, let value = Self.scalar(at: failure.pointer, in: body),
                failure.values.contains(value)
            {
                rejection = "rejected by \(source) (webhook event \(event)): \(value)"
            }
            let deliveries = try await store.confirm(
                DeliveryConfirmation(
                    upstream: rule.upstream,
                    idempotencyKey: key,
                    event: event,
                    rejection: rejection,
                    at: at
                )
            )
            for delivery in deliveries { report(delivery, source: source, event: event, requestID: requestID, at: at) }
            if deliveries.isEmpty {
                logger.debug(
                    "a confirming webhook event names no delivery; it is kept in the inbox",
                    metadata: [
                        "belay.request.id": .string(requestID),
                        "belay.webhook.source": .string(source),
                        "belay.upstream": .string(rule.upstream),
                    ]
                )
            }
            settled += deliveries
        }
        return settled
    }

    private func report(_ delivery: Delivery, source: String, event: String, requestID: String, at: Date) {
        let noted = delivery.status == .inFlight
        let message: Logger.Message =
            switch (delivery.ackRejection, noted) {
            case (nil, true): "delivery confirmed while its attempt is in flight"
            case (nil, false): "delivery confirmed by webhook"
            case (.some, _): "delivery rejected by webhook"
            }
        // A rejection is a decision worth seeing at info; a confirmation is the expected course.
        logger.log(
            level: delivery.ackRejection == nil ? .debug : .info,
            message,
            metadata: [
                "belay.request.id": .string(requestID),
                "belay.delivery.id": .string(delivery.id),
                "belay.upstream": .string(delivery.upstream),
                "belay.webhook.source": .string(source),
                "belay.webhook.event": .string(event),
            ]
        )
        // A rejection noted first by another event was alerted then; this event changed nothing.
        guard let reason = delivery.ackRejection, delivery.ackEvent == event else { return }
        alert(
            Alert(
                kind: .rejected,
                severity: "critical",
                summary: "\(delivery.upstream) delivery \(delivery.id) (idempotency key \(delivery.idempotencyKey)) "
                    + "was \(reason); "
                    + (noted ? "it is dead once its attempt in flight ends" : "it is dead")
                    + "; replay it with POST /v1/deliveries/\(delivery.id)/retry once the cause is fixed",
                upstream: delivery.upstream,
                subject: delivery.id,
                since: at,
                lastError: reason,
                attempts: delivery.attemptCount,
                link: "/v1/deliveries/\(delivery.id)",
                at: at
            )
        )
    }

    /// The value at `pointer` in `body` if it is a string, or a whole number as its JSON text.
    static func scalar(at pointer: JSONPointer, in body: Data) -> String? {
        switch try? pointer.evaluate(in: body) {
        case .string(let value), .integer(let value): value
        case .otherValue, .missing, nil: nil
        }
    }
}
