import BelayHTTP
import BelayStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

extension Gateway {
    /// For an upstream with `degrade: { writes: queue }`: a failed write the caller sent with
    /// `Prefer: respond-async` goes into the delivery queue, answered `202` (``QueuedWrites``).
    /// Nil when it is not queued: the failure is answered as it is. A store that cannot take it
    /// is logged and the failure answered: nothing is promised that is not on disk.
    func queueIfAsked(
        _ request: Request,
        call: UpstreamRequest,
        result: UpstreamResult,
        client: UpstreamClient,
        upstream: UpstreamConfig?,
        consumer: String,
        callerKey: String?,
        madeKey: String?,
        requestID: String,
        notes: inout ExchangeNotes
    ) async -> Response? {
        guard let upstream, upstream.degradeWrites == .queue, let queueWrite,
            QueuedWrites.prefersAsync(request.headers),
            let reason = QueuedWrites.reason(
                method: request.method,
                body: call.body,
                result: result,
                policy: client.policy
            )
        else { return nil }
        // A key that is not one the queue would take is not guessed at: the failure stands.
        if let callerKey, !QueuedWrites.isValidKey(callerKey) { return nil }
        var body: Data?
        if case .buffered(let bytes) = call.body { body = Data(bytes.readableBytesView) }
        let delivery = QueuedWrites.delivery(
            upstream: upstream,
            method: request.method,
            path: call.path,
            query: call.query,
            headers: call.headers,
            body: body,
            callerKey: callerKey,
            madeKey: madeKey,
            consumer: consumer,
            schedule: runtime.config.deliveries.schedule,
            now: now()
        )
        let outcome: AcceptOutcome
        do {
            outcome = try await queueWrite(delivery)
        } catch {
            logger.error(
                "a write could not be queued; its failure is answered",
                metadata: [
                    "belay.request.id": "\(requestID)", "belay.upstream": "\(upstream.name)", "belay.error": "\(error)",
                ]
            )
            return nil
        }
        var headers = HTTPFields()
        headers[.belayRequestID] = requestID
        headers[.belayAttempts] = String(result.attempts.count)
        if let last = result.attempts.last(where: { !$0.abandoned }) ?? result.attempts.last {
            headers[.belayEndpoint] = last.endpoint.description
        }
        switch outcome {
        case .accepted(let stored), .repeated(let stored):
            notes.problem = nil
            notes.queued = stored.id
            logger.notice(
                "write queued",
                metadata: [
                    "belay.request.id": "\(requestID)", "belay.upstream": "\(upstream.name)",
                    "belay.delivery.id": "\(stored.id)", "belay.reason": "\(reason)",
                ]
            )
            let location = "/v1/deliveries/\(stored.id)"
            headers[.location] = location
            headers[.preferenceApplied] = "respond-async"
            headers[.belayDegraded] = "queued"
            headers[.contentType] = "application/json"
            headers[.cacheControl] = "no-store"
            if case .repeated = outcome { headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
            let answer: [String: Any] = [
                "id": stored.id, "status": stored.status.rawValue, "location": location, "queued_because": reason,
            ]
            let bytes = (try? JSONSerialization.data(withJSONObject: answer, options: [.sortedKeys])) ?? Data()
            return Response(status: .accepted, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        case .keyReused(let existing):
            notes.problem = .idempotencyKeyReused
            return .problem(
                ProblemDetails(
                    .idempotencyKeyReused,
                    detail: "this Idempotency-Key was used for delivery \(existing) with another payload",
                    requestID: requestID,
                    upstream: upstream.name,
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
                    upstream: upstream.name,
                    field: "Idempotency-Key"
                ),
                headers: headers
            )
        }
    }
}
