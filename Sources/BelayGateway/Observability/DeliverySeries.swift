import BelayStore
import Prometheus

/// The delivery worker's counters, made once per upstream it serves (a configured upstream,
/// or `webhook:<source>` for a source's forwards).
final class DeliverySeries: Sendable {
    /// What came of an attempt, in the order of the counters.
    private enum Outcome: Int, CaseIterable {
        case delivered, retry, dead, cancelled

        init(_ status: DeliveryStatus) {
            switch status {
            case .delivered, .acknowledged: self = .delivered
            case .pending, .inFlight: self = .retry
            case .dead: self = .dead
            case .cancelled: self = .cancelled
            }
        }

        var label: String {
            switch self {
            case .delivered: "delivered"
            case .retry: "retry"
            case .dead: "dead"
            case .cancelled: "cancelled"
            }
        }
    }

    private struct Upstream: Sendable {
        var attempts: [Counter]
        var dead: Counter
    }

    /// The series of each upstream, made at start for the configured ones and on first use for
    /// a webhook source's forwards a reload added (`webhook:<source>`: configured names only).
    private let upstreams: SeriesCache<String, Upstream>
    /// The upstreams the worker was configured with.
    private let configured: Set<String>
    /// Deliveries to sources not configured, by reason (no source label: the name is the
    /// caller's text).
    let unknownSourceRejected: CounterCache<String>

    init(upstreams names: [String], registry: PrometheusCollectorRegistry) {
        var upstreams: [String: Upstream] = [:]
        for name in names { upstreams[name] = Self.series(of: name, registry) }
        self.upstreams = SeriesCache(upstreams) { Self.series(of: $0, registry) }
        self.configured = Set(names)
        self.unknownSourceRejected = CounterCache { reason in
            registry.makeCounter(descriptor: Names.webhooksRejected, labels: [("source", ""), ("reason", reason)])
        }
    }

    private static func series(of name: String, _ registry: PrometheusCollectorRegistry) -> Upstream {
        Upstream(
            attempts: Outcome.allCases.map {
                registry.makeCounter(
                    descriptor: Names.deliveryAttempts,
                    labels: [("upstream", name), ("outcome", $0.label)]
                )
            },
            dead: registry.makeCounter(descriptor: Names.deliveriesDead, labels: [("upstream", name)])
        )
    }

    /// Counts a recorded decision: the attempt's outcome (if one was made), and a delivery
    /// gone dead. An upstream the worker was not configured with is not counted, but for a
    /// webhook source's forwards (a reload may add a source; its name is the config's).
    func record(upstream: String, status: DeliveryStatus, attempted: Bool) {
        guard configured.contains(upstream) || Gateway.webhookSource(ofForward: upstream) != nil else { return }
        let series = upstreams(upstream)
        if attempted { series.attempts[Outcome(status).rawValue].increment() }
        if status == .dead { series.dead.increment() }
    }
}

/// Every series of one webhook source, made once.
final class WebhookSeries: Sendable {
    let received: Counter
    let duplicates: Counter
    let forwarded: Counter
    let dead: Counter
    /// Refusals by reason, made on first use.
    let rejected: CounterCache<String>

    init(source: String, registry: PrometheusCollectorRegistry) {
        let labels = [("source", source)]
        self.received = registry.makeCounter(descriptor: Names.webhooksReceived, labels: labels)
        self.duplicates = registry.makeCounter(descriptor: Names.webhooksDuplicates, labels: labels)
        self.forwarded = registry.makeCounter(descriptor: Names.webhooksForwarded, labels: labels)
        self.dead = registry.makeCounter(descriptor: Names.webhooksDead, labels: labels)
        self.rejected = CounterCache { reason in
            registry.makeCounter(descriptor: Names.webhooksRejected, labels: [("source", source), ("reason", reason)])
        }
    }
}
