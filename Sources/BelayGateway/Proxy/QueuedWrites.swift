import Belay
import BelayHTTP
import BelayStore
import Foundation
import HTTPTypes

/// `degrade: { writes: queue }`: a write the upstream cannot take now, sent by a caller that
/// accepts a later answer (`Prefer: respond-async`, RFC 7240), goes into the durable delivery
/// queue instead of failing — `202` with `Location: /v1/deliveries/{id}`,
/// `Preference-Applied: respond-async` and `Belay-Degraded: queued` — and the queue delivers it
/// with one idempotency key once the upstream is back.
///
/// Only when it is safe to send again later: the policy (an open breaker, a full bulkhead)
/// refused it before any attempt, so nothing was sent; or, on an upstream that honours
/// idempotency keys, every attempt failed with a retryable outcome (it may have been taken
/// once; the key makes the resend harmless). Never without the header: nothing is queued
/// behind the caller's back. A caller's key already queued is answered from the queue, before
/// the upstream is called again (``Gateway/queuedReplay(of:callerKey:requestID:notes:)``).
enum QueuedWrites {
    /// Where queued writes go, and how one is found again by its caller's key.
    struct Queue: Sendable {
        /// Accepts a delivery (``DeliveryService/queue(_:)``).
        var accept: @Sendable (NewDelivery) async throws -> AcceptOutcome
        /// The delivery a consumer queued for an upstream under its key, with its fingerprint.
        var find: @Sendable (_ upstream: String, _ consumer: String, _ key: String) async throws -> (Delivery, String)?
    }

    /// Whether `headers` ask for an asynchronous answer: the `respond-async` preference (RFC
    /// 7240; no value), possibly among others, in any case. A quoted value is one word: its
    /// commas and semicolons separate nothing.
    static func prefersAsync(_ headers: HTTPFields) -> Bool {
        headers[values: .prefer].contains { value in
            preferenceNames(value).contains { $0.lowercased() == "respond-async" }
        }
    }

    /// The name of each preference in one `Prefer` value: the text before its first `=` or
    /// `;`, for each comma-separated element outside quoted strings (with `\` escapes).
    private static func preferenceNames(_ value: String) -> [String] {
        var names: [String] = []
        var name = ""
        var inName = true
        var quoted = false
        var escaped = false
        for character in value {
            if quoted {
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    quoted = false
                }
                continue
            }
            switch character {
            case "\"": quoted = true
            case ",":
                names.append(name.trimmingCharacters(in: .whitespaces))
                name = ""
                inName = true
            case "=", ";": inName = false
            default: if inName { name.append(character) }
            }
        }
        names.append(name.trimmingCharacters(in: .whitespaces))
        return names
    }

    /// Whether a call of `method` with `body` could be queued at all: a write whose body is
    /// kept (not streamed: it was read once, as it was sent).
    static func mayQueue(method: HTTPRequest.Method, body: UpstreamRequest.Body) -> Bool {
        guard ![.get, .head, .options, .trace].contains(method) else { return false }
        if case .stream = body { return false }
        return true
    }

    /// Why the failed call `result` may be queued, in words for the audit trail, or nil when it
    /// may not: an answer the caller should see, the caller's own failure, or a write an upstream
    /// without idempotency keys may have taken.
    static func reason(_ result: UpstreamResult, policy: UpstreamPolicy) -> String? {
        guard result.staleAge == nil, !result.fallback else { return nil }
        let keyed = policy.idempotencyHeader != nil
        let noAttempt = result.attempts.isEmpty
        switch result.outcome {
        case .success(let answer):
            // The upstream's own answer after every attempt: a retryable 5xx only (a 408 or a
            // 429 is for the caller to see: its quota, its request).
            let status = Int(answer.status.code)
            guard status >= 500, policy.retryOn.statuses.contains(status), keyed else { return nil }
            return "every attempt failed (last: HTTP \(status)); the upstream honours idempotency keys"
        case .failure(let error):
            let code = UpstreamProblem.describe(error, upstream: policy.name).code.name
            switch Fault.of(error) {
            case .caller:
                return nil
            case .policy where noAttempt:
                if let refusal = error as? ResilienceError,
                    refusal.code == .circuitOpen || refusal.code == .circuitIsolated
                {
                    return "the circuit breaker is open; nothing was sent"
                }
                return "the upstream's policy refused it (\(code)); nothing was sent"
            case .policy, .upstream:
                // Sent at least once, or perhaps (a connect timeout can follow a request written
                // on a reused connection): only a key makes a second send harmless.
                guard keyed else { return nil }
                return "every attempt failed (last: \(code)); the upstream honours idempotency keys"
            }
        }
    }

    /// A key the delivery queue takes: 1 to 255 visible ASCII characters, no quote.
    static func isValidKey(_ key: String) -> Bool {
        (1...255).contains(key.unicodeScalars.count)
            && key.unicodeScalars.allSatisfy { (0x21...0x7E).contains($0.value) && $0 != "\"" }
    }

    /// Headers never kept with a queued write: the framing, the preference itself, Belay's,
    /// and what belongs to this one request (its trace context, its forwarding chain).
    static let droppedHeaders: Set<String> = DeliveryRequest.refusedHeaders.union([
        "prefer", "belay-timeout", "x-request-id", "x-forwarded-for", "traceparent", "tracestate", "baggage",
    ])

    /// The delivery a queued write becomes: with the caller's key, else the one Belay made for
    /// its attempts (`madeKey`), else a new one. Its fingerprint is the payload — upstream,
    /// method, target, `Content-Type` and body — not the incidental headers a retry changes.
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
        // The queue sets the key where the upstream reads it; without one, the caller's own
        // Idempotency-Key header goes as the caller sent it.
        let keyHeaders: Set<String> =
            upstream.idempotencyHeader.map { ["idempotency-key", $0.lowercased()] } ?? []
        var kept: [DeliveryHeader] = []
        for field in headers {
            let name = field.name.canonicalName
            guard !droppedHeaders.contains(name), !keyHeaders.contains(name), !name.hasPrefix("belay-") else {
                continue
            }
            kept.append(DeliveryHeader(name: field.name.rawName, value: field.value))
        }
        let requireAck = upstream.ack != nil
        let contentType = headers[.contentType] ?? ""
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
                ["proxy", upstream.name, method.rawValue, target, contentType, requireAck ? "ack" : "-"],
                headers: [],
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
