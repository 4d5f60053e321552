public import Tracing

/// Adds every resilience decision as an event on the active span, if there is one.
///
/// The tracer is resolved on each event from `InstrumentationSystem`, never stored. Event
/// names are `belay.<event>` (e.g. `belay.retry_scheduled`); attributes carry the strategy,
/// the attempt and the details.
public struct TracingEventSink: ResilienceEventSink {
    /// Creates the sink.
    public init() {}

    public func receive(_ event: ResilienceEvent) {
        guard let context = ServiceContext.current,
            let span = InstrumentationSystem.tracer.activeSpan(identifiedBy: context)
        else { return }
        Self.annotate(span, with: event)
    }

    /// Adds `event` to `span` as a span event named `belay.<event>`.
    public static func annotate(_ span: any Span, with event: ResilienceEvent) {
        var attributes = SpanAttributes()
        attributes["belay.strategy"] = event.strategy
        attributes["belay.attempt"] = event.attempt
        switch event.kind {
        case .retryScheduled(let delay, let reason):
            attributes["belay.delay_ms"] = milliseconds(delay)
            attributes["belay.reason"] = reason
        case .retryAbandoned(let reason, let outcome):
            attributes["belay.reason"] = reason.rawValue
            attributes["belay.outcome"] = outcome
        case .circuitStateChanged(let from, let to):
            attributes["belay.state.from"] = from.rawValue
            attributes["belay.state.to"] = to.rawValue
        case .rejected(let code, let retryAfter):
            attributes["belay.reason"] = code.description
            if let retryAfter { attributes["belay.retry_after_ms"] = milliseconds(retryAfter) }
        case .timedOut(let after), .rateLimitDelayed(let after), .hedgeLaunched(_, let after):
            attributes["belay.delay_ms"] = milliseconds(after)
        case .fallbackUsed(let reason):
            attributes["belay.reason"] = reason
        case .faultInjected(let kind):
            attributes["belay.reason"] = kind.rawValue
        case .concurrencyLimitChanged(let from, let to):
            attributes["belay.limit.from"] = from
            attributes["belay.limit.to"] = to
        }
        span.addEvent(SpanEvent(name: "belay.\(event.kind.name)", attributes: attributes))
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.inSeconds * 1_000)
    }
}
