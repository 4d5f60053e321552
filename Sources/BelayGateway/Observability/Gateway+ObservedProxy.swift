import Belay
import BelayHTTP
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Tracing

extension Gateway {
    /// ``proxy(_:context:)`` when something watches each request: traces it (a server span, the
    /// child of the caller's `traceparent`, around the whole call), tells the observers, and logs
    /// one access line at `debug`.
    func observedProxy(_ request: Request, context: GatewayRequestContext, requestID: String) async -> Response {
        let receivedAt = now()
        let start = ContinuousClock.now
        var notes = ExchangeNotes()
        let response: Response
        let span: (any Span)?
        if let tracer {
            var parent = ServiceContext.topLevel
            tracer.extract(request.headers, into: &parent, using: HTTPFieldsExtractor())
            let started = tracer.startSpan("\(request.method.rawValue) /proxy", context: parent, ofKind: .server)
            if started.isRecording {
                started.updateAttributes { attributes in
                    attributes["belay.request.id"] = requestID
                    attributes["http.request.method"] = request.method.rawValue
                    attributes["url.path"] = request.uri.path
                }
            }
            span = started
            response = await ServiceContext.$current.withValue(started.context) {
                await forward(request, context: context, requestID: requestID, notes: &notes)
            }
        } else {
            span = nil
            response = await forward(request, context: context, requestID: requestID, notes: &notes)
        }
        let duration = start.duration(to: .now)
        if let span {
            Self.finish(span, method: request.method.rawValue, status: response.status.code, notes: notes)
        }
        if logger.logLevel <= .debug {
            logAccess(request, requestID: requestID, status: response.status.code, duration: duration, notes: notes)
        }
        guard !observers.isEmpty, let upstream = notes.upstream else { return response }
        var exchange = ProxyExchange(
            requestID: requestID,
            upstream: upstream,
            consumer: notes.consumer,
            method: request.method.rawValue,
            path: notes.path,
            receivedAt: receivedAt,
            duration: duration,
            status: response.status.code,
            problem: notes.problem,
            staleAge: notes.result?.staleAge,
            attempts: notes.result?.attempts ?? [],
            decisions: notes.result?.decisions ?? [],
            fault: notes.fault,
            correlationID: notes.correlationID
        )
        exchange.fallback = notes.result?.fallback ?? false
        exchange.queued = notes.queued
        exchange.replayed = notes.replayed
        for observer in observers {
            observer.observe(exchange)
        }
        return response
    }

    /// Names the request span after its route and records how the request ended.
    private static func finish(_ span: any Span, method: String, status: Int, notes: ExchangeNotes) {
        guard span.isRecording else {
            // The sampler dropped it: nothing to name or describe.
            span.end()
            return
        }
        if let upstream = notes.upstream {
            span.operationName = "\(method) /proxy/\(upstream)"
        }
        span.updateAttributes { attributes in
            attributes["http.response.status_code"] = status
            if let upstream = notes.upstream {
                attributes["belay.upstream"] = upstream
                attributes["http.route"] = "/proxy/\(upstream)/{path}"
            }
            if let consumer = notes.consumer { attributes["belay.consumer"] = consumer }
            if let problem = notes.problem { attributes["belay.problem"] = problem.name }
            if let result = notes.result {
                attributes["belay.attempts"] = result.attempts.count
                if let last = result.attempts.last { attributes["belay.endpoint"] = last.endpoint.description }
                if let age = result.staleAge { attributes["belay.stale_age_s"] = Int(age.inSeconds) }
                if result.fallback { attributes["belay.fallback"] = true }
            }
        }
        if status >= 500 {
            span.setStatus(SpanStatus(code: .error))
        }
        span.end()
    }

    /// One `debug` line per proxied request: who called what, how it ended, in how many attempts.
    private func logAccess(
        _ request: Request,
        requestID: String,
        status: Int,
        duration: Duration,
        notes: ExchangeNotes
    ) {
        var metadata: Logger.Metadata = [
            "belay.request.id": .string(requestID),
            "http.request.method": .string(request.method.rawValue),
            "http.response.status_code": .string(String(status)),
            "belay.duration_ms": .string(String(Int(duration.inSeconds * 1_000))),
        ]
        if let upstream = notes.upstream {
            metadata["belay.upstream"] = .string(upstream)
            metadata["url.path"] = .string(notes.path)
        }
        if let consumer = notes.consumer { metadata["belay.consumer"] = .string(consumer) }
        if let problem = notes.problem { metadata["belay.problem"] = .string(problem.name) }
        if let result = notes.result {
            metadata["belay.attempt"] = .string(String(result.attempts.count))
            if let last = result.attempts.last { metadata["belay.endpoint"] = .string(last.endpoint.description) }
            if let age = result.staleAge { metadata["belay.stale_age_s"] = .string(String(Int(age.inSeconds))) }
            if result.fallback { metadata["belay.fallback"] = "true" }
        }
        logger.debug("proxied request", metadata: metadata)
    }
}

/// Reads propagation fields (`traceparent`, `tracestate`) from a request's headers.
struct HTTPFieldsExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        guard let name = HTTPField.Name(key) else { return nil }
        return carrier[name]
    }
}
