import BelayAPI
import BelayStore
import Foundation

/// How deliveries look in the management API (the ``BelayAPI`` types).
enum DeliveryView {
    /// A delivery without its body, headers or attempts (list pages, transitions).
    static func summary(_ delivery: Delivery) -> DeliverySummary {
        var view = DeliverySummary(
            id: delivery.id,
            upstream: delivery.upstream,
            method: delivery.method,
            path: delivery.path,
            status: delivery.status.rawValue,
            requireAck: delivery.requireAck,
            idempotencyKey: delivery.idempotencyKey,
            attemptCount: delivery.attemptCount,
            createdAt: delivery.createdAt,
            updatedAt: delivery.updatedAt,
            nextAttemptAt: delivery.nextAttemptAt
        )
        view.deliveredAt = delivery.deliveredAt
        view.acknowledgedAt = delivery.acknowledgedAt
        if let early = delivery.ackReceivedAt, delivery.acknowledgedAt == nil {
            // Acknowledged before any 2xx was recorded: it takes effect with the 2xx.
            view.ackReceivedAt = early
        }
        if let event = delivery.ackEvent { view.confirmation = confirmation(of: delivery, event: event) }
        if !delivery.consumer.isEmpty { view.consumer = delivery.consumer }
        view.lastError = delivery.lastError
        view.leaseExpiresAt = delivery.leaseExpiresAt
        if delivery.escalated { view.escalated = true }
        return view
    }

    /// The other system's word on it (`ack.webhook`): the inbox event, whether it confirmed
    /// (and when) or rejected (and why), and whether it takes effect when the attempt in
    /// flight is recorded.
    private static func confirmation(of delivery: Delivery, event: String) -> DeliveryConfirmationView {
        var view = DeliveryConfirmationView(event: event, outcome: "confirmed")
        if let reason = delivery.ackRejection {
            view.outcome = "rejected"
            view.reason = reason
        } else {
            view.at = delivery.acknowledgedAt ?? delivery.ackReceivedAt
        }
        if delivery.status == .inFlight { view.pendingAttempt = true }
        return view
    }

    /// Every attempt, oldest first.
    static func attempts(_ attempts: [DeliveryAttempt]) -> [DeliveryAttemptView] {
        attempts.map { attempt in
            DeliveryAttemptView(
                number: attempt.number,
                // `send`, or `lookup` (`ack.poll`: a GET asking the provider whether it has the order).
                kind: attempt.kind.rawValue,
                startedAt: attempt.startedAt,
                durationMs: attempt.durationMilliseconds,
                endpoint: attempt.endpoint,
                statusCode: attempt.statusCode,
                errorClass: attempt.errorClass,
                decision: attempt.decision
            )
        }
    }

    /// A delivery with its headers (the values of `redactor`'s sensitive headers replaced),
    /// body and every attempt.
    static func full(_ delivery: Delivery, attempts: [DeliveryAttempt], redactor: Redactor) -> DeliveryDetail {
        var headers: [String: String] = [:]
        for header in delivery.headers {
            headers[header.name] =
                redactor.isSensitive(header: header.name) ? Redactor.placeholder : redactor.redact(header.value)
        }
        var json: JSONValue?
        var base64: String?
        if let body = delivery.body {
            let declaresJSON = delivery.headers.contains {
                $0.name.lowercased() == "content-type" && $0.value.lowercased().contains("json")
            }
            if declaresJSON, let value = try? JSONDecoder().decode(JSONValue.self, from: body) {
                json = value
            } else {
                base64 = body.base64EncodedString()
            }
        }
        return DeliveryDetail(
            summary: summary(delivery),
            headers: headers,
            body: json,
            bodyBase64: base64,
            attempts: Self.attempts(attempts)
        )
    }
}
