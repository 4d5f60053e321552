import Belay
import Prometheus
import Synchronization

/// The series of one upstream's adaptive concurrency limit, read at each scrape: the limit,
/// calls in flight and queued, and rejections (`concurrency-limited`).
final class ConcurrencySeries: Sendable {
    static var limitName: MetricNameDescriptor {
        descriptor("limit", "", "The upstream's adaptive concurrency limit now.")
    }
    static var inFlightName: MetricNameDescriptor {
        descriptor("in_flight", "", "Calls to the upstream holding a slot of its adaptive limit now.")
    }
    static var queuedName: MetricNameDescriptor {
        descriptor("queued", "", "Calls waiting for a slot of the upstream's adaptive limit now.")
    }
    static var rejectedName: MetricNameDescriptor {
        descriptor("rejected", "total", "Calls refused with concurrency-limited by the upstream's adaptive limit.")
    }

    private static func descriptor(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "belay",
            subsystem: "concurrency",
            metricName: metric,
            unitName: unit,
            helpText: help
        )
    }

    private let limit: Gauge
    private let inFlight: Gauge
    private let queued: Gauge
    private let rejected: Counter
    /// The rejection total last added to ``rejected`` (scrapes are serialised).
    private let countedRejections = Atomic<Int>(0)

    init(upstream: String, registry: PrometheusCollectorRegistry) {
        let labels = [("upstream", upstream)]
        self.limit = registry.makeGauge(descriptor: Self.limitName, labels: labels)
        self.inFlight = registry.makeGauge(descriptor: Self.inFlightName, labels: labels)
        self.queued = registry.makeGauge(descriptor: Self.queuedName, labels: labels)
        self.rejected = registry.makeCounter(descriptor: Self.rejectedName, labels: labels)
    }

    /// Sets the gauges from `limiter` and adds the rejections since the last scrape.
    func read(_ limiter: AdaptiveConcurrencyLimit<ContinuousClock>) {
        let now = limiter.snapshot
        limit.set(to: Double(now.limit))
        inFlight.set(to: Double(now.inFlight))
        queued.set(to: Double(now.queued))
        let counted = countedRejections.exchange(now.rejections, ordering: .relaxed)
        if now.rejections > counted { rejected.increment(by: Int64(now.rejections - counted)) }
    }
}
