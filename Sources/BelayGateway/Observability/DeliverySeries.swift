import BelayStore
import Prometheus

/// The delivery worker's counters. Deliveries are far rarer than proxied requests, so the
/// series are found (or made) in the registry when counted; their upstream label is one the
/// worker serves, a configured upstream or `webhook:<source>`.
struct DeliverySeries: Sendable {
    let registry: PrometheusCollectorRegistry

    func record(upstream: String, status: DeliveryStatus, attempted: Bool) {
        if attempted {
            let outcome: String
            switch status {
            case .delivered, .acknowledged: outcome = "delivered"
            case .pending, .inFlight: outcome = "retry"
            case .dead: outcome = "dead"
            case .cancelled: outcome = "cancelled"
            }
            registry.makeCounter(
                descriptor: Names.deliveryAttempts,
                labels: [("upstream", upstream), ("outcome", outcome)]
            ).increment()
        }
        if status == .dead {
            registry.makeCounter(descriptor: Names.deliveriesDead, labels: [("upstream", upstream)]).increment()
        }
    }

    /// A webhook delivery to a source that is not configured: no source label (the name is
    /// the caller's text), only the reason.
    func unknownSourceRejected(reason: String) {
        registry.makeCounter(
            descriptor: Names.webhooksRejected,
            labels: [("source", ""), ("reason", reason)]
        ).increment()
    }
}

/// Every series of one webhook source, made once.
final class WebhookSeries: Sendable {
    let source: String
    let received: Counter
    let duplicates: Counter
    let forwarded: Counter
    let dead: Counter
    private let registry: PrometheusCollectorRegistry

    init(source: String, registry: PrometheusCollectorRegistry) {
        let labels = [("source", source)]
        self.source = source
        self.registry = registry
        self.received = registry.makeCounter(descriptor: Names.webhooksReceived, labels: labels)
        self.duplicates = registry.makeCounter(descriptor: Names.webhooksDuplicates, labels: labels)
        self.forwarded = registry.makeCounter(descriptor: Names.webhooksForwarded, labels: labels)
        self.dead = registry.makeCounter(descriptor: Names.webhooksDead, labels: labels)
    }

    /// The rejection counter of `reason` (rare: found or made in the registry).
    func rejected(reason: String) -> Counter {
        registry.makeCounter(descriptor: Names.webhooksRejected, labels: [("source", source), ("reason", reason)])
    }
}
