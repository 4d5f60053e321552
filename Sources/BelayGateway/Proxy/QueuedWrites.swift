import Belay
import BelayHTTP
import BelayStore
import Foundation
import HTTPTypes

/// `degrade: { writes: queue }`: a write the upstream cannot take now, sent by a caller that
/// accepts a later answer (`Prefer: respond-async`, RFC 7240), goes into the durable delivery
/// queue instead of failing — `202` with `Location: /v1/deliveries/{id}`,
/// `Preference-Applied: respond-async` and `Belay-Degraded: queued` — and the queue delivers it
/// with the caller's idempotency key once the upstream is back.
///
/// Only when it is safe to send again later: the breaker (or another of the policy's
/// refusals) turned it away before anything was sent, or every attempt failed to connect, or
/// every attempt failed with a retryable outcome on an upstream that honours idempotency keys
/// (it may have been taken once; the key makes the resend harmless). Never without the header:
/// nothing is queued behind the caller's back.
enum QueuedWrites {
    /// Whether `request` asked for an asynchronous answer (`Prefer: respond-async`, possibly
    /// among other preferences, any case).
    static func prefersAsync(_ headers: HTTPFields) -> Bool {
        headers[values: .prefer].contains { value in
            value.split(separator: ",").contains { preference in
                let name = preference.split(separator: ";").first?.split(separator: "=").first ?? ""
                return name.trimmingCharacters(in: .whitespaces).lowercased() == "respond-async"
            }
        }
    }

    /// Why the failed call `result` of `method` may be queued, in words for the audit trail,
    /// or nil when it may not (a read, a streamed body, an answer the caller should see, a
    /// write that may have been taken by an upstream without idempotency keys).
    static func reason(
        method: HTTPRequest.Method,
        body: UpstreamRequest.Body,
        result: UpstreamResult,
        policy: UpstreamPolicy
    ) -> String? {
        guard ![.get, .head, .options, .trace].contains(method) else { return nil }
        // A streamed body was read once, as it was sent: there is nothing to keep.
        if case .stream = body { return nil }
        return reason(result, policy: policy)
    }

    private static func reason(_ result: UpstreamResult, policy: UpstreamPolicy) -> String? {
        guard result.staleAge == nil, !result.fallback else { return nil }
        // Attempts that sent the request: any but a failure to connect.
        let sent = result.attempts.contains { $0.failure != .connect }
        let keyed = policy.idempotencyHeader != nil
        switch result.outcome {
        case .success(let answer):
            // The upstream's own answer, after every attempt: only a retryable one is a failure to queue.
            guard policy.retryOn.statuses.contains(Int(answer.status.code)), keyed else { return nil }
            return "every attempt failed (last: HTTP \(answer.status.code)); the upstream honours idempotency keys"
        case .failure(let error):
            switch Fault.of(error) {
            case .caller:
                return nil
            case .policy:
                guard !sent || keyed else { return nil }
                if let refusal = error as? ResilienceError,
                    refusal.code == .circuitOpen || refusal.code == .circuitIsolated
                {
                    return "the circuit breaker is open; nothing was sent"
                }
                return
                    "the upstream's policy refused it (\(Gateway.describe(error, upstream: policy.name).0.name))"
                    + (sent ? "; the upstream honours idempotency keys" : "; nothing was sent")
            case .upstream:
                if !sent { return "every attempt failed to connect; nothing was sent" }
                guard keyed else { return nil }
                return
                    "every attempt failed (\(Gateway.describe(error, upstream: policy.name).0.name)); the upstream honours idempotency keys"
            }
        }
    }

    /// A key the delivery queue takes: 1 to 255 visible ASCII characters, no quote.
    static func isValidKey(_ key: String) -> Bool {
        (1...255).contains(key.unicodeScalars.count)
            && key.unicodeScalars.allSatisfy { (0x21...0x7E).contains($0.value) && $0 != "\"" }
    }

    /// Headers never kept with a queued write: the framing, the preference itself, the keys
    /// (the delivery carries its own) and Belay's.
    static let droppedHeaders: Set<String> = DeliveryRequest.refusedHeaders.union([
        "prefer", "idempotency-key", "belay-timeout", "x-request-id", "x-forwarded-for",
    ])

    /// The delivery a queued write becomes: with the caller's key, else the one Belay made
    /// for its attempts (`madeKey`), else a new one.
    static func delivery(
        upstream: UpstreamConfig,
        method: HTTPRequest.Method,
        path: String,
        query: String?,
        headers: HTTPFields,
        body: Data?,
        callerKey: String?,
        madeKey: String?,
        consumer: String,
        schedule: [Duration],
        now: Date
    ) -> NewDelivery {
        let target = path + (query.map { $0.isEmpty ? "" : "?\($0)" } ?? "")
        let keyHeader = upstream.idempotencyHeader?.lowercased()
        var kept: [DeliveryHeader] = []
        for field in headers {
            let name = field.name.canonicalName
            guard !droppedHeaders.contains(name), name != keyHeader, !name.hasPrefix("belay-") else { continue }
            kept.append(DeliveryHeader(name: field.name.rawName, value: field.value))
        }
        kept.sort { ($0.name.lowercased(), $0.value) < ($1.name.lowercased(), $1.value) }
        let requireAck = upstream.ack != nil
        return NewDelivery(
            id: DeliveryRequest.newID(at: now),
            upstream: upstream.name,
            method: method.rawValue,
            path: target,
            headers: kept,
            body: body,
            idempotencyKey: callerKey ?? madeKey ?? RandomID.uuidString(),
            keyFromCaller: callerKey != nil,
            fingerprint: DeliveryRequest.fingerprint(
                [upstream.name, method.rawValue, target, "", requireAck ? "ack" : "-", ""],
                headers: kept,
                body: body
            ),
            requireAck: requireAck,
            notBefore: now.adding(schedule.first ?? .zero),
            createdAt: now,
            consumer: consumer
        )
    }
}

extension HTTPField.Name {
    /// `Prefer` (RFC 7240).
    static let prefer = HTTPField.Name("Prefer")!
    /// `Preference-Applied` (RFC 7240).
    static let preferenceApplied = HTTPField.Name("Preference-Applied")!
}
