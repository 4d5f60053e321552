import BelayStore
import Foundation

/// How deliveries look in the management API's JSON.
enum DeliveryView {
    /// A delivery without its body, headers or attempts (list pages, transitions).
    static func summary(_ delivery: Delivery) -> [String: Any] {
        var view: [String: Any] = [
            "id": delivery.id,
            "upstream": delivery.upstream,
            "method": delivery.method,
            "path": delivery.path,
            "status": delivery.status.rawValue,
            "require_ack": delivery.requireAck,
            "idempotency_key": delivery.idempotencyKey,
            "attempt_count": delivery.attemptCount,
            "created_at": delivery.createdAt.iso8601,
            "updated_at": delivery.updatedAt.iso8601,
            "location": "/v1/deliveries/\(delivery.id)",
        ]
        view["next_attempt_at"] = delivery.nextAttemptAt.map { $0.iso8601 as Any } ?? NSNull()
        if let deliveredAt = delivery.deliveredAt { view["delivered_at"] = deliveredAt.iso8601 }
        if let acknowledgedAt = delivery.acknowledgedAt { view["acknowledged_at"] = acknowledgedAt.iso8601 }
        if let early = delivery.ackReceivedAt, delivery.acknowledgedAt == nil {
            // Acknowledged before any 2xx was recorded: it takes effect with the 2xx.
            view["ack_received_at"] = early.iso8601
        }
        if let event = delivery.ackEvent { view["confirmation"] = confirmation(of: delivery, event: event) }
        if !delivery.consumer.isEmpty { view["consumer"] = delivery.consumer }
        if let lastError = delivery.lastError { view["last_error"] = lastError }
        if let leaseExpiresAt = delivery.leaseExpiresAt { view["lease_expires_at"] = leaseExpiresAt.iso8601 }
        if delivery.escalated { view["escalated"] = true }
        return view
    }

    /// The other system's word on it (`ack.webhook`): the inbox event, whether it confirmed
    /// (and when) or rejected (and why), and whether it takes effect when the attempt in
    /// flight is recorded.
    private static func confirmation(of delivery: Delivery, event: String) -> [String: Any] {
        var view: [String: Any] = ["event": event]
        if let reason = delivery.ackRejection {
            view["outcome"] = "rejected"
            view["reason"] = reason
        } else {
            view["outcome"] = "confirmed"
            if let at = delivery.acknowledgedAt ?? delivery.ackReceivedAt { view["at"] = at.iso8601 }
        }
        if delivery.status == .inFlight { view["pending_attempt"] = true }
        return view
    }

    /// A delivery with its headers (the values of `redactor`'s sensitive headers replaced),
    /// body and every attempt.
    static func full(_ delivery: Delivery, attempts: [DeliveryAttempt], redactor: Redactor) -> [String: Any] {
        var view = summary(delivery)
        var headers: [String: String] = [:]
        for header in delivery.headers {
            headers[header.name] =
                redactor.isSensitive(header: header.name) ? Redactor.placeholder : redactor.redact(header.value)
        }
        view["headers"] = headers
        if let body = delivery.body {
            if let json = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]),
                delivery.headers.contains(where: {
                    $0.name.lowercased() == "content-type" && $0.value.lowercased().contains("json")
                })
            {
                view["body"] = json
            } else {
                view["body_base64"] = body.base64EncodedString()
            }
        }
        view["attempts"] = attempts.map { attempt -> [String: Any] in
            var item: [String: Any] = [
                "number": attempt.number,
                "started_at": attempt.startedAt.iso8601,
                "duration_ms": attempt.durationMilliseconds,
                "decision": attempt.decision,
                // `send`, or `lookup` (`ack.poll`: a GET asking the provider whether it has the order).
                "kind": attempt.kind.rawValue,
            ]
            if let endpoint = attempt.endpoint { item["endpoint"] = endpoint }
            if let status = attempt.statusCode { item["status_code"] = status }
            if let errorClass = attempt.errorClass { item["error_class"] = errorClass }
            return item
        }
        return view
    }
}
