import AsyncHTTPClient
import Belay
import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `ANY /proxy/{upstream}/{path…}`: the synchronous resilient proxy. A middleware so that
/// every method reaches it; everything else goes on to the router.
struct ProxyResponder: RouterMiddleware {
    typealias Context = GatewayRequestContext

    let gateway: Gateway

    func handle(
        _ request: Request,
        context: GatewayRequestContext,
        next: (Request, GatewayRequestContext) async throws -> Response
    ) async throws -> Response {
        guard request.uri.path.hasPrefix("/proxy/") || request.uri.path == "/proxy" else {
            // The connection is served on its event loop (`EventLoopBoundHTTP1Channel`), which
            // suits the proxy's I/O-bound calls. The other routes do CPU work (JSON, hashing)
            // and wait on the store's own queues: on the cooperative pool they leave the loop
            // free for I/O (the durable accept path is ~13 % faster there).
            return try await withTaskExecutorPreference(globalConcurrentExecutor) {
                try await next(request, context)
            }
        }
        // On the connection's event loop: no hops between threads for the call's awaits.
        if let executor = gateway.executor(for: context.eventLoop) {
            return await withTaskExecutorPreference(executor) {
                await gateway.proxy(request, context: context)
            }
        }
        return await gateway.proxy(request, context: context)
    }
}

extension Gateway {
    /// The largest request body buffered in memory (so it can be retried); larger or
    /// unsized bodies are streamed through once.
    static let bufferLimit = 1 << 20
    /// The largest answer of declared length read whole before its head is sent back, so that
    /// head and body leave in one write; larger ones are relayed as they arrive.
    static let relayBufferLimit = 64 << 10

    /// What ``forward(_:context:requestID:notes:)`` learnt about a request, for its ``ProxyExchange``.
    struct ExchangeNotes {
        var upstream: String?
        var consumer: String?
        var path = ""
        var problem: ProblemCode?
        var result: UpstreamResult?
        var correlationID: String?
        /// The delivery the write was queued as, if it was.
        var queued: String?
        /// Whether the queued answer was replayed for a key already queued.
        var replayed = false

        /// Whose doing the call's failure was; nil when the upstream answered or it was served stale.
        var fault: Fault? {
            guard let result, result.staleAge == nil, case .failure(let error) = result.outcome else { return nil }
            return Fault.of(error)
        }
    }

    func proxy(_ request: Request, context: GatewayRequestContext) async -> Response {
        let requestID = Self.newRequestID(now: now())
        // Nothing observes, traces or logs each request: no record, span or log line is made.
        guard !observers.isEmpty || tracer != nil || logger.logLevel <= .debug else {
            var ignored = ExchangeNotes()
            return await forward(request, context: context, requestID: requestID, notes: &ignored)
        }
        return await observedProxy(request, context: context, requestID: requestID)
    }

    /// Authenticates, checks and forwards one request; records in `notes` what the exchange
    /// reports.
    func forward(
        _ request: Request,
        context: GatewayRequestContext,
        requestID: String,
        notes: inout ExchangeNotes
    ) async -> Response {
        // Read once: a config reload during this request leaves it under the runtime it began with.
        let runtime = self.runtime
        let (auth, clients, config) = (runtime.auth, runtime.clients, runtime.config)
        let instance = request.uri.path
        func refuse(
            _ code: ProblemCode,
            _ detail: String,
            upstream: String? = nil,
            field: String? = nil,
            headers: HTTPFields = [:]
        ) -> Response {
            notes.problem = code
            var metadata: Logger.Metadata = [
                "belay.request.id": .string(requestID), "belay.problem": .string(code.name),
            ]
            if let upstream { metadata["belay.upstream"] = .string(upstream) }
            // At debug: a flood of refused calls must not become a flood of writes on the loop.
            logger.debug("request refused", metadata: metadata)
            return .problem(
                ProblemDetails(
                    code,
                    detail: redactor.redact(detail),
                    requestID: requestID,
                    instance: instance,
                    upstream: upstream,
                    field: field
                ),
                headers: headers
            )
        }

        // Authenticate first: nothing about the upstreams is revealed to a caller without a key.
        let identity: ConsumerAuth.Identity
        switch auth.identify(request.headers) {
        case .success(let found): identity = found
        case .failure(.missingKey):
            return refuse(
                .unauthorized,
                "send your API key as 'Authorization: Bearer <key>'",
                field: "Authorization",
                headers: [.wwwAuthenticate: "Bearer"]
            )
        case .failure(.unknownKey):
            return refuse(
                .unauthorized,
                "the API key is not recognised",
                field: "Authorization",
                headers: [.wwwAuthenticate: "Bearer"]
            )
        }

        // The consumer's rate limit first: a refused call (bad path, missing scope, unknown
        // upstream) costs a permit too.
        if let (detail, headers) = Self.rateLimitRefusal(identity) {
            return refuse(.rateLimited, detail, headers: headers)
        }

        let upstreamName: String
        let path: String
        switch ProxyPath.split(request.uri.path) {
        case .success(let split):
            (upstreamName, path) = split
        case .failure(let rejection):
            return refuse(.invalidRequest, rejection.description, field: "path")
        }
        // The scope before the name: a consumer learns only about the upstreams it may call.
        guard identity.allows("proxy:\(upstreamName)") else {
            return refuse(
                .forbidden,
                "consumer '\(identity.name)' lacks the scope proxy:\(upstreamName)",
                upstream: upstreamName
            )
        }
        guard let client = clients[upstreamName] else {
            return refuse(.unknownUpstream, "no upstream named '\(upstreamName)' is configured", field: "path")
        }
        notes.upstream = upstreamName
        notes.consumer = auth.isOpenMode ? nil : identity.name
        let correlationID = Self.correlationID(from: request.headers)
        // Kept (audit trail, observers) redacted: a caller's id that happens to be a secret stays out.
        notes.correlationID = correlationID.map { redactor.redact($0) }
        notes.path = path

        var budget: Duration?
        if let value = request.headers[.belayTimeout] {
            switch ConfigDuration.read(value) {
            case .success(let parsed) where parsed > .zero:
                budget = parsed
            case .failure(.outOfRange):
                return refuse(
                    .invalidRequest,
                    "Belay-Timeout is out of range: at most 36500d (got '\(value)')",
                    field: "Belay-Timeout"
                )
            case .success, .failure(.malformed):
                return refuse(
                    .invalidRequest,
                    "Belay-Timeout must be a duration such as 1500ms or 2s (got '\(value)')",
                    field: "Belay-Timeout"
                )
            }
        }

        // The body: buffered when small and sized (retriable), streamed otherwise.
        let maxBody = config.server.maxBody
        let declaredLength = request.headers[.contentLength].flatMap { Int($0) }
        if let declaredLength, declaredLength > maxBody {
            return refuse(
                .payloadTooLarge,
                "the body of \(declaredLength) bytes exceeds server.max_body (\(maxBody) bytes)",
                upstream: upstreamName
            )
        }
        // Any other transfer coding was refused before routing (``RequestFraming``).
        let isChunked = RequestFraming.isChunked(request.headers)
        var body = UpstreamRequest.Body.none
        var bodyProgress: RequestBodyProgress?
        // A streamed body is read through a relay the exchange stops when it is over, so that
        // nothing still reads it when the server drains what is left (``RequestBodyRelay``).
        var relay: RequestBodyRelay?
        if let declaredLength, declaredLength <= Self.bufferLimit {
            if declaredLength > 0 {
                var copy = request
                do {
                    body = .buffered(try await copy.collectBody(upTo: maxBody))
                } catch {
                    return refuse(
                        .payloadTooLarge,
                        "the body exceeds server.max_body (\(maxBody) bytes)",
                        upstream: upstreamName
                    )
                }
            }
        } else if declaredLength != nil || isChunked {
            let limited = LimitedBody(request.body, limit: maxBody)
            let streamed = RequestBodyRelay(limited)
            relay = streamed
            bodyProgress = limited.progress
            body = .stream(streamed.body(length: declaredLength.map { .known(Int64($0)) } ?? .unknown))
        }

        var headers = HopByHopHeaders.forRequest(request.headers, stripAuthorization: !auth.isOpenMode)
        // The caller's own id goes on upstream (its correlation end to end); else Belay's.
        headers[.xRequestID] = correlationID ?? requestID
        if let remote = context.remoteAddress?.ipAddress {
            let existing = headers[.xForwardedFor]
            headers[.xForwardedFor] = existing.map { "\($0), \(remote)" } ?? remote
        }
        let callerKey = client.callerIdempotencyKey(in: request.headers)
        // A write that may be queued carries one key from its first attempt to its last delivery:
        // made here when the caller sent none, so the queue can send the same again.
        // Only for a caller that asked for it: the config's upstream is not looked up on every call.
        let upstreamConfig = QueuedWrites.prefersAsync(request.headers) ? config.upstream(named: upstreamName) : nil
        let madeKey =
            callerKey == nil && upstreamConfig?.degradeWrites == .queue && client.policy.idempotencyHeader != nil
            ? RandomID.uuidString() : nil
        let idempotencyKey = callerKey ?? madeKey
        let consumer = identity.cacheScope(forwarding: headers)
        var upstreamRequest = UpstreamRequest(
            method: request.method,
            path: path,
            query: request.uri.query,
            headers: headers,
            body: body
        )
        upstreamRequest.bodyProgress = bodyProgress

        // A write that may be queued: its caller's key may already be, answered from the queue.
        let candidate = queueCandidate(
            request,
            call: upstreamRequest,
            upstream: upstreamConfig,
            config: config,
            consumer: auth.isOpenMode ? "" : identity.name,
            callerKey: callerKey,
            madeKey: madeKey
        )
        if let candidate, let replay = await queuedReplay(of: candidate, requestID: requestID, notes: &notes) {
            await relay?.finish()
            return replay
        }

        let result: UpstreamResult
        if let budget {
            result = await Deadline.$current.withValue(Deadline(after: budget, on: ContinuousClock())) {
                await client.send(
                    upstreamRequest,
                    correlationID: requestID,
                    idempotencyKey: idempotencyKey,
                    consumer: consumer
                )
            }
        } else {
            result = await client.send(
                upstreamRequest,
                correlationID: requestID,
                idempotencyKey: idempotencyKey,
                consumer: consumer
            )
        }
        notes.result = result
        if case .failure(let error) = result.outcome, result.staleAge == nil {
            notes.problem = UpstreamProblem.describe(error, upstream: upstreamName).code
        }
        if let candidate,
            let queued = await queueIfSafe(
                candidate,
                result: result,
                policy: client.policy,
                requestID: requestID,
                notes: &notes
            )
        {
            await relay?.finish()
            return queued
        }
        return await response(
            for: result,
            method: request.method,
            from: client,
            upstream: upstreamName,
            requestID: requestID,
            instance: instance,
            relay: relay
        )
    }

    /// The answer to the caller. `relay` (a streamed request body) is finished before the
    /// answer is returned, or, for an answer relayed as it arrives, once it has been relayed.
    private func response(
        for result: UpstreamResult,
        method: HTTPRequest.Method,
        from client: UpstreamClient,
        upstream: String,
        requestID: String,
        instance: String,
        relay: RequestBodyRelay?
    ) async -> Response {
        var belay = HTTPFields()
        belay[.belayRequestID] = requestID
        belay[.belayAttempts] = String(result.attempts.count)
        // The endpoint that answered, not a hedge's slower attempt cancelled after it.
        if let last = result.attempts.last(where: { !$0.abandoned }) ?? result.attempts.last {
            belay[.belayEndpoint] = last.endpoint.description
        }
        switch result.outcome {
        case .success(let answer):
            var headers = HopByHopHeaders.forResponse(answer.headers)
            for field in belay { headers[field.name] = field.value }
            if let age = result.staleAge {
                headers[.belayDegraded] = "stale; age=\(Int(age.inSeconds))"
            } else if result.fallback {
                headers[.belayDegraded] = "fallback"
            }
            switch answer.body {
            case .buffered(let bytes):
                await relay?.finish()
                return Response(status: answer.status, headers: headers, body: .init(byteBuffer: bytes))
            case .stream(let stream):
                // Keep the upstream's Content-Length: the body is relayed, not re-chunked.
                let length = answer.headers[.contentLength].flatMap { Int($0) }
                let bodiless = method == .head || answer.status.code == 204 || answer.status.code == 304
                if let length, length <= Self.relayBufferLimit, !bodiless {
                    let whole = await Self.relayWhole(stream, length: length, status: answer.status, headers: headers)
                    await relay?.finish()
                    return whole
                }
                guard let relay else {
                    let body = ResponseBody(contentLength: length) { writer in
                        try await writer.write(stream)
                        try await writer.finish(nil)
                    }
                    return Response(status: answer.status, headers: headers, body: body)
                }
                // The upstream may still be reading the request body while it answers.
                let body = ResponseBody(contentLength: length) { writer in
                    do {
                        try await writer.write(stream)
                        try await writer.finish(nil)
                    } catch {
                        await relay.finish()
                        throw error
                    }
                    await relay.finish()
                }
                return Response(status: answer.status, headers: headers, body: body)
            }
        case .failure(let error):
            await relay?.finish()
            let (code, detail, retryAfter) = UpstreamProblem.describe(error, upstream: upstream)
            if let retryAfter {
                belay[.retryAfter] = String(retryAfter.wholeSecondsRoundedUp)
            }
            if let rejection = error as? ResilienceError, let fields = client.rateLimitFields(for: rejection) {
                for field in fields { belay[field.name] = field.value }
            }
            return .problem(
                ProblemDetails(
                    code,
                    detail: redactor.redact(detail),
                    requestID: requestID,
                    instance: instance,
                    upstream: upstream,
                    attempts: result.attempts.count,
                    field: code == .invalidRequest && error is RequestBodyError ? "body" : nil
                ),
                headers: belay
            )
        }
    }

    /// A small answer read whole, then sent back with its head in one write. If the upstream
    /// fails part-way, the caller sees what it would have seen relayed: the head, the bytes that
    /// came, then the connection closing.
    private static func relayWhole(
        _ stream: HTTPClientResponse.Body,
        length: Int,
        status: HTTPResponse.Status,
        headers: HTTPFields
    ) async -> Response {
        var held = ByteBuffer()
        do {
            for try await chunk in stream {
                held.writeImmutableBuffer(chunk)
            }
        } catch {
            let partial = held
            return Response(
                status: status,
                headers: headers,
                body: ResponseBody(contentLength: length) { writer in
                    try await writer.write(partial)
                    throw error
                }
            )
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: held))
    }

    /// The caller's `X-Request-Id` when it is short and plain: kept with the request as its
    /// correlation id (searchable in the audit trail), never as its key. Nil otherwise.
    static func correlationID(from headers: HTTPFields) -> String? {
        guard let given = headers[.xRequestID], (1...128).contains(given.count),
            given.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) })
        else { return nil }
        return given
    }

    /// A new request id, Belay's own: a time-ordered UUID (version 7: the audit trail's index
    /// of request ids then grows at its end). Never the caller's `X-Request-Id`, so no caller
    /// can choose the key of another's audit trail.
    static func newRequestID(now: Date = Date()) -> String {
        let milliseconds = max(now.timeIntervalSince1970 * 1_000, 0).rounded(.down)
        return RandomID.timeOrderedUUIDString(unixMilliseconds: UInt64(min(milliseconds, 2.8e14)))
    }
}
