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
            // `{method}` until the route is known (OpenTelemetry's HTTP semantic conventions).
            let started = tracer.startSpan(request.method.rawValue, context: parent, ofKind: .server)
            if started.isRecording {
                let scheme = config.server.tls == nil ? "http" : "https"
                started.updateAttributes { attributes in
                    attributes["belay.request.id"] = requestID
                    attributes["http.request.method"] = request.method.rawValue
                    attributes["url.path"] = request.uri.path
                    attributes["url.scheme"] = scheme
                    if let query = request.uri.query, !query.isEmpty {
                        attributes["url.query"] = UpstreamTracing.redactedQuery(query)
                    }
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

    /// Names the request span after its route (`{method} {http.route}`) and records how the
    /// request ended; a server's error is a 5xx (`error.type`: the status as text).
    private static func finish(_ span: any Span, method: String, status: Int, notes: ExchangeNotes) {
        guard span.isRecording else {
            // The sampler dropped it: nothing to name or describe.
            span.end()
            return
        }
        let route = notes.upstream.map { "/proxy/\($0)/{path}" }
        if let route {
            span.operationName = "\(method) \(route)"
        }
        span.updateAttributes { attributes in
            attributes["http.response.status_code"] = status
            if status >= 500 { attributes["error.type"] = String(status) }
            if let upstream = notes.upstream, let route {
                attributes["belay.upstream"] = upstream
                attributes["http.route"] = route
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
        guard let value = carrier[name] else { return nil }
        return key.lowercased() == "traceparent" ? Self.versionZero(of: value) : value
    }

    /// A `traceparent` of a version this gateway does not know, read as W3C Trace Context asks
    /// (§ "Versioning of traceparent"): its first four fields parsed as version 00's, whatever
    /// follows them ignored, so the caller's trace is continued rather than restarted. Version
    /// `ff` is invalid, and a value too short for version 00's fields is left as it is (the
    /// propagator refuses it).
    static func versionZero(of value: String) -> String {
        let text = value.trimmingCharacters(in: .whitespaces)
        let bytes = Array(text.utf8)
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"),
            let version = UInt8(String(decoding: bytes[0..<2], as: UTF8.self), radix: 16),
            version != 0, version != 0xFF,
            bytes[0..<2].allSatisfy({
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }),
            bytes.count == 55 || bytes[55] == UInt8(ascii: "-")
        else { return value }
        return "00" + String(decoding: bytes[2..<55], as: UTF8.self)
    }
}
