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
            attributes["belay.delay_ms"] = Int(delay.inSeconds * 1000)
            attributes["belay.reason"] = reason
        case .retryAbandoned(let reason, _):
            attributes["belay.reason"] = reason.rawValue
        case .circuitStateChanged(let from, let to):
            attributes["belay.state.from"] = from.rawValue
            attributes["belay.state.to"] = to.rawValue
        case .rejected(let code, _):
            attributes["belay.reason"] = code.description
        default:
            break
        }
        span.addEvent(SpanEvent(name: "belay.\(event.kind.name)", attributes: attributes))
    }
}
