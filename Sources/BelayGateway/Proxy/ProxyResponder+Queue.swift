import BelayAPI
import BelayHTTP
import BelayStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

extension Gateway {
    /// The delivery a write would be queued as, for an upstream with `degrade: { writes: queue }`
    /// and a caller that sent `Prefer: respond-async`; nil when it could not be queued (a read, a
    /// streamed body, a key the queue would not take, no queue).
    func queueCandidate(
        _ request: Request,
        call: UpstreamRequest,
        upstream: UpstreamConfig?,
        config: GatewayConfig,
        consumer: String,
        callerKey: String?,
        madeKey: String?
    ) -> NewDelivery? {
        guard let upstream, upstream.degradeWrites == .queue, writeQueue != nil,
            QueuedWrites.prefersAsync(request.headers),
            QueuedWrites.mayQueue(method: request.method, body: call.body)
        else { return nil }
        if let callerKey, !QueuedWrites.isValidKey(callerKey) { return nil }
        var body: Data?
        if case .buffered(let bytes) = call.body { body = Data(bytes.readableBytesView) }
        return QueuedWrites.delivery(
            upstream: upstream,
            method: request.method,
            path: call.path,
            query: call.query,
            headers: call.headers,
            body: body,
            callerKey: callerKey,
            madeKey: madeKey,
            consumer: consumer,
            schedule: config.deliveries.schedule,
            now: now()
        )
    }

    /// A write whose caller's key is already queued is answered from the queue — the same `202`,
    /// or `422` for another payload — without calling the upstream again: a caller that lost its
    /// `202` and retries must not have the write done twice. Nil when the key is not queued.
    func queuedReplay(of candidate: NewDelivery, requestID: String, notes: inout ExchangeNotes) async -> Response? {
        guard candidate.keyFromCaller, let writeQueue else { return nil }
        let found: (Delivery, String)?
        do {
            found = try await writeQueue.find(candidate.upstream, candidate.consumer, candidate.idempotencyKey)
        } catch {
            // Unknown: sending on is what would happen without the queue; the store's failure is logged.
            logger.error(
                "a queued write's key could not be looked up; the call is sent",
                metadata: ["belay.request.id": "\(requestID)", "belay.error": "\(error)"]
            )
            return nil
        }
        guard let (existing, fingerprint) = found else { return nil }
        let outcome: AcceptOutcome =
            fingerprint == candidate.fingerprint ? .repeated(existing) : .keyReused(existingID: existing.id)
        notes.replayed = true
        return queuedAnswer(
            outcome,
            reason: nil,
            upstream: candidate.upstream,
            result: nil,
            requestID: requestID,
            notes: &notes
        )
    }

    /// The failed call `result` queued as `candidate` when that is safe (``QueuedWrites/reason(_:policy:)``),
    /// answered `202`; nil when it is not queued and the failure is answered as it is. A store
    /// that cannot take it is logged and the failure answered: nothing is promised that is not on disk.
    func queueIfSafe(
        _ candidate: NewDelivery,
        result: UpstreamResult,
        policy: UpstreamPolicy,
        requestID: String,
        notes: inout ExchangeNotes
    ) async -> Response? {
        guard let writeQueue, let reason = QueuedWrites.reason(result, policy: policy) else { return nil }
        let outcome: AcceptOutcome
        do {
            outcome = try await writeQueue.accept(candidate)
        } catch {
            logger.error(
                "a write could not be queued; its failure is answered",
                metadata: [
                    "belay.request.id": "\(requestID)", "belay.upstream": "\(candidate.upstream)",
                    "belay.error": "\(error)",
                ]
            )
            return nil
        }
        return queuedAnswer(
            outcome,
            reason: reason,
            upstream: candidate.upstream,
            result: result,
            requestID: requestID,
            notes: &notes
        )
    }

    private func queuedAnswer(
        _ outcome: AcceptOutcome,
        reason: String?,
        upstream: String,
        result: UpstreamResult?,
        requestID: String,
        notes: inout ExchangeNotes
    ) -> Response {
        var headers = HTTPFields()
        headers[.belayRequestID] = requestID
        headers[.belayAttempts] = String(result?.attempts.count ?? 0)
        if let result, let last = result.attempts.last(where: { !$0.abandoned }) ?? result.attempts.last {
            headers[.belayEndpoint] = last.endpoint.description
        }
        switch outcome {
        case .accepted(let stored), .repeated(let stored):
            // The failure stays noted (the health model counts it as the upstream's); the
            // outcome is `queued`.
            notes.queued = stored.id
            if case .accepted = outcome {
                logger.notice(
                    "write queued",
                    metadata: [
                        "belay.request.id": "\(requestID)", "belay.upstream": "\(upstream)",
                        "belay.delivery.id": "\(stored.id)", "belay.reason": "\(reason ?? "")",
                    ]
                )
            }
            let location = "/v1/deliveries/\(stored.id)"
            headers[.location] = location
            headers[.preferenceApplied] = "respond-async"
            headers[.belayDegraded] = "queued"
            headers[.contentType] = "application/json"
            headers[.cacheControl] = "no-store"
            if case .repeated = outcome { headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
            let answer = DeliveryAccepted(id: stored.id, status: stored.status.rawValue, queuedBecause: reason)
            let bytes = (try? ManagementJSON.encode(answer)) ?? Data()
            return Response(status: .accepted, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        case .keyReused(let existing):
            notes.problem = .idempotencyKeyReused
            return .problem(
                ProblemDetails(
                    .idempotencyKeyReused,
                    detail: "this Idempotency-Key was used for delivery \(existing) with another payload",
                    requestID: requestID,
                    upstream: upstream,
                    field: "Idempotency-Key"
                ),
                headers: headers
            )
        case .keyInFlight:
            notes.problem = .idempotencyKeyInFlight
            headers[.retryAfter] = "1"
            return .problem(
                ProblemDetails(
                    .idempotencyKeyInFlight,
                    detail: "a request with this Idempotency-Key is still being queued; retry shortly",
                    requestID: requestID,
                    upstream: upstream,
                    field: "Idempotency-Key"
                ),
                headers: headers
            )
        }
    }
}
