import Belay
import BelayHTTP
import Prometheus
import Synchronization

/// Every series of one upstream, made once; counting an exchange only finds and bumps them.
final class UpstreamSeries: Sendable {
    /// The outcomes every request falls in unless Belay answered with a problem, in the
    /// order of ``Outcome``.
    private enum Outcome: Int, CaseIterable {
        case success, clientError, serverError, stale, fallback, queued

        var label: String {
            switch self {
            case .success: "success"
            case .clientError: "client_error"
            case .serverError: "server_error"
            case .stale: "stale"
            case .fallback: "fallback"
            case .queued: "queued"
            }
        }
    }

    /// A breaker's change of state, a key of ``transitions``.
    private struct Transition: Hashable, Sendable {
        var from: CircuitState
        var to: CircuitState
    }

    /// The codes a strategy refuses a call with (`rejected` events), each with its counter.
    private static let rejectionCodes: [ResilienceError.Code] = [
        .bulkheadFull, .concurrencyLimited, .rateLimited, .circuitOpen, .circuitIsolated,
    ]

    let name: String
    private let outcomes: [Counter]
    /// Requests Belay answered with a problem, by its code (a fixed set, ``ProblemCode/all``,
    /// most of which never occur).
    private let problems: CounterCache<String>
    private let duration: DurationHistogram
    private let retries: Counter
    private let budgetExhausted: Counter
    private let rejections: [Counter]
    /// Rejections with a code not in ``rejectionCodes`` (none today).
    private let otherRejections: CounterCache<ResilienceError.Code>
    private let transitions: CounterCache<Transition>
    private let stale: Counter
    private let breakerState: Gauge
    private let health: Gauge
    /// Probes failed in a row, for an upstream with a probe.
    private let probeFailures: Gauge?
    private let endpoints: [EndpointSeries]
    /// The objectives' series (by objective; by objective and window), made once an `slo` is read.
    private let sloObjective: SeriesCache<String, Gauge>
    private let sloBudget: SeriesCache<String, Gauge>
    private let sloBurn: SeriesCache<[String], Gauge>
    /// The adaptive concurrency limit's series, for an upstream that has one.
    private let concurrency: ConcurrencySeries?

    init(
        name: String,
        endpoints: [UpstreamEndpoint],
        adaptive: Bool = false,
        probed: Bool = false,
        registry: PrometheusCollectorRegistry
    ) {
        let labels = [("upstream", name)]
        self.name = name
        self.problems = CounterCache { code in
            registry.makeCounter(descriptor: Names.requests, labels: labels + [("outcome", code)])
        }
        self.otherRejections = CounterCache { code in
            registry.makeCounter(descriptor: Names.rejections, labels: labels + [("reason", code.description)])
        }
        self.transitions = CounterCache { transition in
            registry.makeCounter(
                descriptor: Names.transitions,
                labels: labels + [("from", transition.from.rawValue), ("to", transition.to.rawValue)]
            )
        }
        self.outcomes = Outcome.allCases.map {
            registry.makeCounter(descriptor: Names.requests, labels: labels + [("outcome", $0.label)])
        }
        self.duration = registry.makeDurationHistogram(
            descriptor: Names.requestDuration,
            labels: labels,
            buckets: GatewayMetrics.latencyBuckets
        )
        self.retries = registry.makeCounter(descriptor: Names.retries, labels: labels)
        self.budgetExhausted = registry.makeCounter(descriptor: Names.budgetExhausted, labels: labels)
        self.rejections = Self.rejectionCodes.map {
            registry.makeCounter(descriptor: Names.rejections, labels: labels + [("reason", $0.description)])
        }
        self.stale = registry.makeCounter(descriptor: Names.stale, labels: labels)
        self.breakerState = registry.makeGauge(descriptor: Names.breakerState, labels: labels)
        self.health = registry.makeGauge(descriptor: Names.health, labels: labels)
        self.probeFailures = probed ? registry.makeGauge(descriptor: Names.probeFailures, labels: labels) : nil
        self.endpoints = endpoints.map { EndpointSeries(upstream: name, endpoint: $0, registry: registry) }
        self.sloObjective = SeriesCache { objective in
            registry.makeGauge(descriptor: Names.sloObjective, labels: labels + [("objective", objective)])
        }
        self.sloBudget = SeriesCache { objective in
            registry.makeGauge(descriptor: Names.sloBudgetRemaining, labels: labels + [("objective", objective)])
        }
        self.sloBurn = SeriesCache { key in
            registry.makeGauge(
                descriptor: Names.sloBurnRate,
                labels: labels + [("objective", key[0]), ("window", key[1])]
            )
        }
        self.concurrency = adaptive ? ConcurrencySeries(upstream: name, registry: registry) : nil
    }

    /// Counts one exchange of this upstream.
    func count(_ exchange: ProxyExchange) {
        if exchange.staleAge != nil {
            outcomes[Outcome.stale.rawValue].increment()
            stale.increment()
        } else if exchange.fallback {
            outcomes[Outcome.fallback.rawValue].increment()
        } else if exchange.queued != nil {
            outcomes[Outcome.queued.rawValue].increment()
        } else if let problem = exchange.problem {
            problems(problem.name).increment()
        } else {
            let outcome: Outcome =
                exchange.status < 400 ? .success : exchange.status < 500 ? .clientError : .serverError
            outcomes[outcome.rawValue].increment()
        }
        duration.record(exchange.duration)
        for attempt in exchange.attempts {
            for series in endpoints where series.endpoint == attempt.endpoint {
                series.count(attempt)
                break
            }
        }
        for decision in exchange.decisions {
            switch decision.kind {
            case .retryScheduled:
                retries.increment()
            case .retryAbandoned(let reason, _) where reason == .budgetExhausted:
                budgetExhausted.increment()
            case .rejected(let code, _):
                if let index = Self.rejectionCodes.firstIndex(of: code) {
                    rejections[index].increment()
                } else {
                    otherRejections(code).increment()
                }
            default:
                break
            }
        }
    }

    /// Counts one breaker transition.
    func transition(from: CircuitState, to: CircuitState) {
        transitions(Transition(from: from, to: to)).increment()
    }

    /// Reads the health model's verdict on this upstream and its probe, at a scrape.
    func read(_ report: UpstreamHealthReport) {
        let state: Double =
            switch report.state {
            case .healthy: 0
            case .degraded: 1
            case .stale: 2
            case .down: 3
            }
        health.set(to: state)
        if let probeFailures, let probe = report.probe { probeFailures.set(to: Double(probe.consecutiveFailures)) }
        for objective in report.slo?.objectives ?? [] {
            sloObjective(objective.name).set(to: objective.target)
            sloBudget(objective.name).set(to: objective.budgetRemaining)
            for burn in objective.burnRates { sloBurn([objective.name, burn.window]).set(to: burn.rate) }
        }
    }

    /// Reads the breaker's state and each endpoint's ejection from `client`, at a scrape.
    func read(_ client: UpstreamClient) {
        let state: Double =
            switch client.breaker.state {
            case .closed: 0
            case .halfOpen: 1
            case .open: 2
            case .isolated: 3
            }
        breakerState.set(to: state)
        // By endpoint, not position: after a config reload the client's list may differ from the
        // one these series were made for (an endpoint no longer configured reads nothing).
        let current = client.policy.endpoints
        for series in endpoints {
            guard let index = current.firstIndex(of: series.endpoint) else { continue }
            series.read(ejected: client.isEjected(endpoint: index), total: client.ejectionCount(endpoint: index))
        }
        if let concurrency, let limiter = client.concurrencyLimit { concurrency.read(limiter) }
    }
}

/// Every series of one endpoint of an upstream.
final class EndpointSeries: Sendable {
    /// An attempt's result: its status class, or how it failed.
    private enum Result: Int, CaseIterable {
        case status2xx, status3xx, status4xx, status5xx, connect, reset, timeout, other, aborted

        var label: String {
            switch self {
            case .status2xx: "2xx"
            case .status3xx: "3xx"
            case .status4xx: "4xx"
            case .status5xx: "5xx"
            case .connect: "connect"
            case .reset: "reset"
            case .timeout: "timeout"
            case .other: "other"
            case .aborted: "aborted"
            }
        }
    }

    let endpoint: UpstreamEndpoint
    private let attempts: [Counter]
    private let duration: DurationHistogram
    private let ejected: Gauge
    private let ejections: Counter
    /// The ejection total last added to ``ejections`` (scrapes are serialised).
    private let countedEjections = Atomic<Int>(0)

    init(upstream: String, endpoint: UpstreamEndpoint, registry: PrometheusCollectorRegistry) {
        let labels = [("upstream", upstream), ("endpoint", endpointLabel(endpoint))]
        self.endpoint = endpoint
        self.attempts = Result.allCases.map {
            registry.makeCounter(descriptor: Names.attempts, labels: labels + [("result", $0.label)])
        }
        self.duration = registry.makeDurationHistogram(
            descriptor: Names.attemptDuration,
            labels: labels,
            buckets: GatewayMetrics.latencyBuckets
        )
        self.ejected = registry.makeGauge(descriptor: Names.ejected, labels: labels)
        self.ejections = registry.makeCounter(descriptor: Names.ejections, labels: labels)
    }

    func count(_ attempt: AttemptRecord) {
        let result: Result
        if let status = attempt.status {
            result =
                status < 300 ? .status2xx : status < 400 ? .status3xx : status < 500 ? .status4xx : .status5xx
        } else {
            switch attempt.failure {
            case .connect: result = .connect
            case .reset: result = .reset
            case .timeout: result = .timeout
            case .other: result = .other
            case nil: result = .aborted
            }
        }
        attempts[result.rawValue].increment()
        duration.record(attempt.duration)
    }

    /// Sets the ejected gauge and adds the ejections since the last scrape to the counter.
    func read(ejected isEjected: Bool, total: Int) {
        ejected.set(to: isEjected ? 1 : 0)
        let counted = countedEjections.exchange(total, ordering: .relaxed)
        if total > counted { ejections.increment(by: Int64(total - counted)) }
    }
}
