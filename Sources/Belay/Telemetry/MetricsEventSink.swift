public import CoreMetrics
import Synchronization

/// Counts resilience decisions through swift-metrics.
///
/// One counter, `belay_resilience_events_total`, with the bounded dimensions `strategy`
/// (the strategy's name) and `event` (``ResilienceEvent/Kind/name``). Handles are created
/// once per pair and reused, never per event.
public final class MetricsEventSink: ResilienceEventSink {
    private struct Key: Hashable {
        var strategy: String
        var event: String
    }

    /// The counter's label.
    public let label: String
    private let factory: any MetricsFactory
    private let counters = Mutex<[Key: Counter]>([:])

    /// Creates a sink counting into `factory` (default: the bootstrapped metrics system).
    public init(label: String = "belay_resilience_events_total", factory: any MetricsFactory = MetricsSystem.factory) {
        self.label = label
        self.factory = factory
    }

    public func receive(_ event: ResilienceEvent) {
        let key = Key(strategy: event.strategy, event: event.kind.name)
        let counter = counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: label,
                dimensions: [("strategy", key.strategy), ("event", key.event)],
                factory: factory
            )
            counters[key] = counter
            return counter
        }
        counter.increment()
    }
}
