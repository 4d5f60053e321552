import Belay
import HTTPTypes
import NIOHTTP1
public import Tracing

/// How an ``UpstreamClient`` traces its calls: a client span per attempt, a child of the
/// caller's span (`ServiceContext.current`), whose context is propagated to the upstream
/// (W3C `traceparent` with an OpenTelemetry tracer); resilience decisions become events on the
/// active span.
///
/// Without one (the default) the client makes no spans at all and forwards the caller's
/// `traceparent`, if any, unchanged.
///
/// ```swift
/// let client = try UpstreamClient(
///     policy: policy,
///     tracing: UpstreamTracing(tracer: InstrumentationSystem.tracer, correlationAttribute: "belay.request.id")
/// )
/// ```
public struct UpstreamTracing: Sendable {
    /// The tracer spans are made with.
    public var tracer: any Tracer
    /// The span attribute holding the call's correlation id. Default `belay.correlation.id`.
    public var correlationAttribute: String

    /// Traces with `tracer`, the correlation id under `correlationAttribute`.
    public init(tracer: any Tracer, correlationAttribute: String = "belay.correlation.id") {
        self.tracer = tracer
        self.correlationAttribute = correlationAttribute
    }

    /// The tracer bootstrapped in `InstrumentationSystem`, or nil when it is the no-op tracer
    /// (so that callers can skip every span cost when nothing is traced).
    public static var bootstrappedTracer: (any Tracer)? {
        let tracer = InstrumentationSystem.tracer
        return tracer is NoOpTracer ? nil : tracer
    }

    /// Runs one attempt (`operation`) in a client span named after its method (OpenTelemetry's
    /// HTTP semantic conventions: `GET`) under the current context, with the span's context
    /// injected into (a copy of) `headers`.
    ///
    /// Attributes: the conventions' required ones (`http.request.method`, `server.address`,
    /// `server.port`, `url.full` with every query value redacted), `http.response.status_code`,
    /// `http.request.resend_count` on a retry or hedge, `error.type` when it ended in error (the
    /// status, as text, from 400; the failure's kind without an answer), and Belay's own.
    func attempt(
        method: String,
        endpoint: UpstreamEndpoint,
        path: String,
        query: String?,
        upstream: String,
        context: ResilienceContext,
        headers: HTTPHeaders,
        _ operation: (HTTPHeaders) async throws -> UpstreamResponse
    ) async throws -> UpstreamResponse {
        let span = tracer.startSpan(method, context: ServiceContext.current ?? .topLevel, ofKind: .client)
        defer { span.end() }
        // A span the sampler dropped records nothing: its attributes are not even made.
        let recording = span.isRecording
        if recording {
            span.updateAttributes { attributes in
                if let id = context.correlationID { attributes[correlationAttribute] = id }
                attributes["belay.upstream"] = upstream
                attributes["belay.endpoint"] = endpoint.description
                attributes["belay.attempt"] = context.attempt
                attributes["http.request.method"] = method
                attributes["server.address"] = endpoint.host
                attributes["server.port"] = endpoint.port
                attributes["url.path"] = endpoint.basePath + path
                attributes["url.full"] = endpoint.url(path: path, query: query.map(Self.redactedQuery))
                if context.attempt > 1 { attributes["http.request.resend_count"] = context.attempt - 1 }
            }
        }
        var sent = headers
        tracer.inject(span.context, into: &sent, using: HTTPHeadersInjector())
        do {
            let response = try await ServiceContext.$current.withValue(span.context) { [sent] in
                try await operation(sent)
            }
            if recording {
                span.attributes["http.response.status_code"] = response.status.code
                // A client's error is any status from 400 (the conventions' rule for client spans).
                if response.status.code >= 400 {
                    span.attributes["error.type"] = String(response.status.code)
                    span.setStatus(SpanStatus(code: .error))
                }
            }
            return response
        } catch {
            guard recording else { throw error }
            span.attributes["error.type"] = Self.errorType(error)
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }

    /// `error.type` of an attempt that got no answer: the failure's kind (`connect`, `reset`,
    /// `timeout`), a policy refusal's code, `cancelled`, or the error's type.
    static func errorType(_ error: any Error) -> String {
        switch error {
        case let failure as UpstreamFailure: failure.kind.rawValue
        case let rejection as ResilienceError: rejection.code.description
        case is CancellationError: "cancelled"
        default: String(describing: type(of: error))
        }
    }

    /// A query with every value replaced by `REDACTED` (`a=1&b` → `a=REDACTED&b`): values may be
    /// credentials or personal data, and a trace is no place for them; names are kept.
    public static func redactedQuery(_ query: String) -> String {
        query.split(separator: "&", omittingEmptySubsequences: false).map { pair in
            guard let equals = pair.firstIndex(of: "=") else { return String(pair) }
            return "\(pair[..<equals])=REDACTED"
        }.joined(separator: "&")
    }

    /// Adds `event` to the span active in the current context, if any.
    func annotate(_ event: ResilienceEvent) {
        guard let context = ServiceContext.current, let span = tracer.activeSpan(identifiedBy: context) else { return }
        TracingEventSink.annotate(span, with: event)
    }
}

/// Writes propagation fields (`traceparent`, `tracestate`) into NIO headers, replacing the
/// caller's values.
struct HTTPHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout HTTPHeaders) {
        carrier.replaceOrAdd(name: key, value: value)
    }
}
