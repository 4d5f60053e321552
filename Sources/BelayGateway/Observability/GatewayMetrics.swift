public import Belay
public import BelayHTTP
public import BelayStore
public import Foundation
import Prometheus
import Synchronization

/// The gateway's Prometheus metrics, served at `GET /metrics` (docs/metrics.md lists each one).
///
/// It owns its own `PrometheusCollectorRegistry` (it never bootstraps the global
/// `MetricsSystem`, so several gateways can run in one process) and is fed three ways:
///
/// - as a ``ProxyObserver``: requests by outcome, latency, attempts per endpoint, retries,
///   retry-budget exhaustion, rejections and stale answers, from each ``ProxyExchange``;
/// - as a `ResilienceEventSink`: circuit breaker transitions;
/// - by the delivery worker and the webhook inbox (``deliveryRecorded(upstream:status:attempted:)``,
///   ``webhook(source:_:)``).
///
/// What is state rather than events (breaker state, ejected endpoints, the delivery queue) is
/// read when scraped, by ``scrape(clients:store:now:)``.
///
/// Every series of an upstream, endpoint or webhook source is made once, when the metrics are;
/// counting an exchange allocates nothing and formats no string. Labels take configured names
/// and fixed words only, never a path or an id.
public final class GatewayMetrics: ProxyObserver, ResilienceEventSink, Sendable {
    /// The latency buckets, in seconds: 1 ms to 30 s.
    public static let latencyBuckets: [Duration] = [
        .milliseconds(1), .microseconds(2_500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2_500), .seconds(5), .seconds(10), .seconds(30),
    ]

    /// The media type of the text exposition format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    let registry: PrometheusCollectorRegistry
    /// One set of series per configured upstream, by name.
    let upstreams: [String: UpstreamSeries]
    let deliveries: DeliverySeries
    /// One set of series per configured webhook source, by name: made at start, and on first
    /// use for a source a reload added (the name is the config's, never a caller's text).
    private let webhooks: SeriesCache<String, WebhookSeries>
    private let queueDepth: [(DeliveryStatus, Gauge)]
    private let oldestPendingAge: Gauge
    private let storeUp: Gauge
    private let auditDropped: Counter
    private let auditFailed: Counter
    private let reloadsApplied: Counter
    private let reloadsRefused: Counter
    private let lastReload: Gauge
    /// The audit losses last added to the counters (scrapes are serialised).
    private let countedAudit = Mutex((dropped: 0, failed: 0))
    /// Serialises scrapes, which turn read totals into counter increments.
    private let scraping = Mutex(())

    /// Makes every series of `config`'s upstreams, endpoints and webhook sources.
    public init(config: GatewayConfig) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var upstreams: [String: UpstreamSeries] = [:]
        for upstream in config.upstreams {
            upstreams[upstream.name] = UpstreamSeries(
                name: upstream.name,
                endpoints: upstream.policy.endpoints,
                adaptive: upstream.bulkhead.adaptive != nil,
                probed: upstream.probe != nil,
                registry: registry
            )
        }
        self.upstreams = upstreams
        // The worker's upstreams: every configured one, and each forwarding source's.
        self.deliveries = DeliverySeries(
            upstreams: config.upstreams.map(\.name)
                + config.webhooks.compactMap { Gateway.forwardPolicy(for: $0)?.name },
            registry: registry
        )
        var webhooks: [String: WebhookSeries] = [:]
        for source in config.webhooks {
            webhooks[source.name] = WebhookSeries(source: source.name, registry: registry)
        }
        self.webhooks = SeriesCache(webhooks) { WebhookSeries(source: $0, registry: registry) }
        self.queueDepth = DeliveryStatus.allCases.map { status in
            (
                status,
                registry.makeGauge(
                    descriptor: Names.queueDepth,
                    labels: [("status", status.rawValue)]
                )
            )
        }
        self.oldestPendingAge = registry.makeGauge(descriptor: Names.oldestPendingAge)
        self.storeUp = registry.makeGauge(descriptor: Names.storeUp)
        self.auditDropped = registry.makeCounter(descriptor: Names.auditDropped)
        self.auditFailed = registry.makeCounter(descriptor: Names.auditFailed)
        self.reloadsApplied = registry.makeCounter(descriptor: Names.configReloads, labels: [("outcome", "applied")])
        self.reloadsRefused = registry.makeCounter(descriptor: Names.configReloads, labels: [("outcome", "refused")])
        self.lastReload = registry.makeGauge(descriptor: Names.configLastReload)
    }

    /// Counts one config reload; an applied one also sets the last-success time to `at`.
    func reloaded(applied: Bool, at: Date) {
        if applied {
            reloadsApplied.increment()
            lastReload.set(to: at.timeIntervalSince1970)
        } else {
            reloadsRefused.increment()
        }
    }

    /// Adds the audit trail's losses since the last scrape: requests dropped because its
    /// buffer was full, and requests whose batch could not be written (totals since start).
    func readAudit(dropped: Int, failed: Int) {
        countedAudit.withLock { counted in
            if dropped > counted.dropped { auditDropped.increment(by: Int64(dropped - counted.dropped)) }
            if failed > counted.failed { auditFailed.increment(by: Int64(failed - counted.failed)) }
            counted = (max(dropped, counted.dropped), max(failed, counted.failed))
        }
    }

    // MARK: events

    /// Counts one proxied request: its outcome, latency, attempts and decisions.
    public func observe(_ exchange: ProxyExchange) {
        upstreams[exchange.upstream]?.count(exchange)
    }

    /// Counts circuit breaker transitions (a breaker is named after its upstream); ignores
    /// every other event, which ``observe(_:)`` counts per request.
    public func receive(_ event: ResilienceEvent) {
        guard case .circuitStateChanged(let from, let to) = event.kind else { return }
        upstreams[event.strategy]?.transition(from: from, to: to)
    }

    /// Counts what the delivery worker recorded for a delivery of `upstream`: an attempt's
    /// result (when `attempted`) and a delivery gone dead; a webhook source's forwards
    /// (upstream `webhook:<source>`) also count as forwarded or dead for the source.
    public func deliveryRecorded(upstream: String, status: DeliveryStatus, attempted: Bool) {
        deliveries.record(upstream: upstream, status: status, attempted: attempted)
        guard let name = Gateway.webhookSource(ofForward: upstream) else { return }
        let source = webhooks(name)
        switch status {
        case .delivered, .acknowledged:
            if attempted { source.forwarded.increment() }
        case .dead:
            source.dead.increment()
        case .pending, .inFlight, .cancelled:
            break
        }
    }

    /// Counts one delivery to the webhook inbox: received (for a configured source), and
    /// stored, a duplicate, or rejected and why. `source` is nil when no source of that
    /// name is configured (the name is then no label: it is the caller's text).
    public func webhook(source: String?, _ result: WebhookIntakeResult) {
        guard let source else {
            if case .rejected(let reason) = result { deliveries.unknownSourceRejected(reason).increment() }
            return
        }
        let series = webhooks(source)
        series.received.increment()
        switch result {
        case .stored: break
        case .duplicate: series.duplicates.increment()
        case .rejected(let reason): series.rejected(reason).increment()
        }
    }

    // MARK: scraping

    /// Reads the state scraped rather than counted (breaker states, ejections, the health
    /// model's `health` reports, the delivery queue from `store`), then renders every series
    /// in the Prometheus text format.
    public func scrape(
        clients: [String: UpstreamClient],
        health: [UpstreamHealthReport] = [],
        store: any DeliveryStore,
        now: Date
    ) async -> [UInt8] {
        var counts: [DeliveryStatus: Int]?
        var oldest: Date?
        do {
            counts = try await store.counts()
            oldest = try await store.oldestPending()
        } catch {
            counts = nil
        }
        scraping.withLock { _ in
            for (name, series) in upstreams {
                guard let client = clients[name] else { continue }
                series.read(client)
            }
            for report in health { upstreams[report.name]?.read(report) }
            if let counts {
                storeUp.set(to: 1)
                for (status, gauge) in queueDepth { gauge.set(to: Double(counts[status] ?? 0)) }
                oldestPendingAge.set(to: oldest.map { max(now.timeIntervalSince($0), 0) } ?? 0)
            } else {
                storeUp.set(to: 0)
            }
        }
        return registry.emitToBuffer()
    }

    /// The text format of every series as they stand, without reading any state first.
    public func render() -> String {
        registry.emitToString()
    }
}

/// The label value of an endpoint: `host:port` (`[v6]:port`); bounded, as endpoints are configured.
func endpointLabel(_ endpoint: UpstreamEndpoint) -> String {
    endpoint.host.contains(":") ? "[\(endpoint.host)]:\(endpoint.port)" : "\(endpoint.host):\(endpoint.port)"
}
