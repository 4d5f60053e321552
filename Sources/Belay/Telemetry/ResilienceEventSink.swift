/// Receives every ``ResilienceEvent`` a pipeline's strategies emit.
///
/// Events are delivered synchronously on the task that made the decision, so a sink must
/// be cheap and must not block: record, count or log, and return.
public protocol ResilienceEventSink: Sendable {
    /// Handles one event.
    func receive(_ event: ResilienceEvent)
}

/// Forwards every event to several sinks in order.
public struct MultiplexEventSink: ResilienceEventSink {
    /// The sinks, in the order they receive each event.
    public let sinks: [any ResilienceEventSink]

    /// Creates a sink that forwards to `sinks`.
    public init(_ sinks: [any ResilienceEventSink]) {
        self.sinks = sinks
    }

    public func receive(_ event: ResilienceEvent) {
        for sink in sinks {
            sink.receive(event)
        }
    }
}
