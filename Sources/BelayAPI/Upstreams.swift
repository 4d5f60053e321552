public import Foundation

/// One upstream as this instance sees it (`UpstreamHealth` in the contract): the client's
/// state (breaker, endpoints, retry budget, concurrency) and the health model's verdict.
public struct UpstreamHealthView: Codable, Sendable, Equatable {
    public var name: String
    /// `closed`, `open`, `half-open` or `isolated`.
    public var breaker: String
    public var endpoints: [Endpoint]
    public var retryBudget: RetryBudget
    public var quotaPacing: Bool
    /// `healthy`, `degraded`, `stale` or `down`.
    public var state: String
    /// Why, in words.
    public var reason: String
    public var since: Date
    /// By window label (`1m`, `5m`).
    public var windows: [String: Window]
    /// The shortest window's error rate; absent when there are no windows.
    public var errorRate: Double?
    public var retryRate: Double?
    public var latencyMs: Latency?
    public var breakerHistory: [BreakerChange]
    /// The active health probe; `null` when none is configured.
    @ExplicitNull public var probe: Probe?
    /// The adaptive concurrency limit; absent when the bulkhead is fixed.
    public var concurrency: Concurrency?
    /// The age of the stale answers being served.
    public var staleAgeSeconds: Int?
    /// The objectives; absent when none are set.
    public var slo: SLO?
    /// The drill in force; `null` when none runs.
    @ExplicitNull public var drill: DrillView?
    /// `critical` or `optional`.
    public var criticality: String
    public var degradation: Degradation

    public init(
        name: String,
        breaker: String,
        endpoints: [Endpoint],
        retryBudget: RetryBudget,
        quotaPacing: Bool,
        state: String,
        reason: String,
        since: Date,
        windows: [String: Window],
        breakerHistory: [BreakerChange],
        criticality: String,
        degradation: Degradation
    ) {
        self.name = name
        self.breaker = breaker
        self.endpoints = endpoints
        self.retryBudget = retryBudget
        self.quotaPacing = quotaPacing
        self.state = state
        self.reason = reason
        self.since = since
        self.windows = windows
        self.breakerHistory = breakerHistory
        self.criticality = criticality
        self.degradation = degradation
    }

    enum CodingKeys: String, CodingKey {
        case name, breaker, endpoints, state, reason, since, windows, probe, concurrency, slo, drill, criticality
        case degradation
        case retryBudget = "retry_budget"
        case quotaPacing = "quota_pacing"
        case errorRate = "error_rate"
        case retryRate = "retry_rate"
        case latencyMs = "latency_ms"
        case breakerHistory = "breaker_history"
        case staleAgeSeconds = "stale_age_seconds"
    }

    public struct Endpoint: Codable, Sendable, Equatable {
        public var url: String
        /// Ejected as an outlier: skipped until it is readmitted.
        public var ejected: Bool

        public init(url: String, ejected: Bool) {
            self.url = url
            self.ejected = ejected
        }
    }

    public struct RetryBudget: Codable, Sendable, Equatable {
        public var requests: Int
        public var retries: Int

        public init(requests: Int, retries: Int) {
            self.requests = requests
            self.retries = retries
        }
    }

    /// Percentiles in milliseconds; `null` without calls.
    public struct Latency: Codable, Sendable, Equatable {
        @ExplicitNull public var p50: Double?
        @ExplicitNull public var p95: Double?
        @ExplicitNull public var p99: Double?

        public init(p50: Double?, p95: Double?, p99: Double?) {
            self.p50 = p50
            self.p95 = p95
            self.p99 = p99
        }
    }

    public struct Window: Codable, Sendable, Equatable {
        public var requests: Int
        public var errorRate: Double
        public var retryRate: Double
        public var stale: Int
        public var latencyMs: Latency

        public init(requests: Int, errorRate: Double, retryRate: Double, stale: Int, latencyMs: Latency) {
            self.requests = requests
            self.errorRate = errorRate
            self.retryRate = retryRate
            self.stale = stale
            self.latencyMs = latencyMs
        }

        enum CodingKeys: String, CodingKey {
            case requests, stale
            case errorRate = "error_rate"
            case retryRate = "retry_rate"
            case latencyMs = "latency_ms"
        }
    }

    public struct BreakerChange: Codable, Sendable, Equatable {
        public var at: Date
        public var from: String
        public var to: String

        public init(at: Date, from: String, to: String) {
            self.at = at
            self.from = from
            self.to = to
        }
    }

    public struct Probe: Codable, Sendable, Equatable {
        public var path: String
        public var everySeconds: Int
        /// `null` before the first probe.
        @ExplicitNull public var passing: Bool?
        public var consecutiveFailures: Int
        @ExplicitNull public var failingSince: Date?
        @ExplicitNull public var lastAt: Date?
        @ExplicitNull public var lastResult: String?
        @ExplicitNull public var nextAt: Date?

        public init(
            path: String,
            everySeconds: Int,
            passing: Bool?,
            consecutiveFailures: Int,
            failingSince: Date?,
            lastAt: Date?,
            lastResult: String?,
            nextAt: Date?
        ) {
            self.path = path
            self.everySeconds = everySeconds
            self.passing = passing
            self.consecutiveFailures = consecutiveFailures
            self.failingSince = failingSince
            self.lastAt = lastAt
            self.lastResult = lastResult
            self.nextAt = nextAt
        }

        enum CodingKeys: String, CodingKey {
            case path, passing
            case everySeconds = "every_seconds"
            case consecutiveFailures = "consecutive_failures"
            case failingSince = "failing_since"
            case lastAt = "last_at"
            case lastResult = "last_result"
            case nextAt = "next_at"
        }
    }

    public struct Concurrency: Codable, Sendable, Equatable {
        public var limit: Int
        public var inFlight: Int
        public var queued: Int
        public var rejected: Int
        /// `aimd` or `gradient`.
        public var algorithm: String
        public var min: Int
        public var max: Int
        /// `null` before any call was measured.
        @ExplicitNull public var minimumRttMs: Double?
        public var history: History

        public struct History: Codable, Sendable, Equatable {
            public var everySeconds: Double
            public var limit: [Int]
            public var inFlight: [Int]

            public init(everySeconds: Double, limit: [Int], inFlight: [Int]) {
                self.everySeconds = everySeconds
                self.limit = limit
                self.inFlight = inFlight
            }

            enum CodingKeys: String, CodingKey {
                case limit
                case everySeconds = "every_seconds"
                case inFlight = "in_flight"
            }
        }

        public init(
            limit: Int,
            inFlight: Int,
            queued: Int,
            rejected: Int,
            algorithm: String,
            min: Int,
            max: Int,
            minimumRttMs: Double?,
            history: History
        ) {
            self.limit = limit
            self.inFlight = inFlight
            self.queued = queued
            self.rejected = rejected
            self.algorithm = algorithm
            self.min = min
            self.max = max
            self.minimumRttMs = minimumRttMs
            self.history = history
        }

        enum CodingKeys: String, CodingKey {
            case limit, queued, rejected, algorithm, min, max, history
            case inFlight = "in_flight"
            case minimumRttMs = "minimum_rtt_ms"
        }
    }

    public struct SLO: Codable, Sendable, Equatable {
        public var windowSeconds: Int
        public var countedSince: Date
        public var summary: String
        public var objectives: [Objective]
        @ExplicitNull public var latencyBaselineMs: Double?
        public var latencySpikeFactor: Double
        @ExplicitNull public var latencySpikeSince: Date?

        public init(
            windowSeconds: Int,
            countedSince: Date,
            summary: String,
            objectives: [Objective],
            latencyBaselineMs: Double?,
            latencySpikeFactor: Double,
            latencySpikeSince: Date?
        ) {
            self.windowSeconds = windowSeconds
            self.countedSince = countedSince
            self.summary = summary
            self.objectives = objectives
            self.latencyBaselineMs = latencyBaselineMs
            self.latencySpikeFactor = latencySpikeFactor
            self.latencySpikeSince = latencySpikeSince
        }

        enum CodingKeys: String, CodingKey {
            case summary, objectives
            case windowSeconds = "window_seconds"
            case countedSince = "counted_since"
            case latencyBaselineMs = "latency_baseline_ms"
            case latencySpikeFactor = "latency_spike_factor"
            case latencySpikeSince = "latency_spike_since"
        }

        public struct Objective: Codable, Sendable, Equatable {
            /// `availability` or `latency`.
            public var name: String
            public var target: Double
            /// A latency objective's bound; `null` for availability.
            @ExplicitNull public var boundMs: Double?
            public var label: String
            public var calls: Int
            public var bad: Int
            /// `null` without calls.
            @ExplicitNull public var measured: Double?
            public var budgetRemaining: Double
            /// By window (`5m`, `30m`, `1h`, `6h`).
            public var burnRates: [String: Double]
            /// `fast`, `slow`.
            public var burning: [String]
            /// `null` unless the budget is being spent.
            @ExplicitNull public var exhaustedInSeconds: Int?

            public init(
                name: String,
                target: Double,
                boundMs: Double?,
                label: String,
                calls: Int,
                bad: Int,
                measured: Double?,
                budgetRemaining: Double,
                burnRates: [String: Double],
                burning: [String],
                exhaustedInSeconds: Int?
            ) {
                self.name = name
                self.target = target
                self.boundMs = boundMs
                self.label = label
                self.calls = calls
                self.bad = bad
                self.measured = measured
                self.budgetRemaining = budgetRemaining
                self.burnRates = burnRates
                self.burning = burning
                self.exhaustedInSeconds = exhaustedInSeconds
            }

            enum CodingKeys: String, CodingKey {
                case name, target, label, calls, bad, measured, burning
                case boundMs = "bound_ms"
                case budgetRemaining = "budget_remaining"
                case burnRates = "burn_rates"
                case exhaustedInSeconds = "exhausted_in_seconds"
            }
        }
    }

    public struct Degradation: Codable, Sendable, Equatable {
        /// `full`, `partial`, `cached`, `minimal` or `unavailable`.
        public var level: String
        public var summary: String

        public init(level: String, summary: String) {
            self.level = level
            self.summary = summary
        }
    }
}

/// `GET /v1/upstreams`: every upstream, in config order, as the answering instance sees them.
public struct UpstreamList: Codable, Sendable, Equatable {
    /// The instance that answered (`server.instance_name`).
    public var instance: String
    public var upstreams: [UpstreamHealthView]

    public init(instance: String, upstreams: [UpstreamHealthView]) {
        self.instance = instance
        self.upstreams = upstreams
    }
}

/// `GET /v1/upstreams/{name}`: one upstream, and the instance that answered.
public struct UpstreamDetail: Codable, Sendable, Equatable {
    public var instance: String
    public var upstream: UpstreamHealthView

    public init(instance: String, upstream: UpstreamHealthView) {
        self.instance = instance
        self.upstream = upstream
    }

    enum CodingKeys: String, CodingKey {
        case instance
    }

    public init(from decoder: any Decoder) throws {
        upstream = try UpstreamHealthView(from: decoder)
        instance = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .instance)
    }

    public func encode(to encoder: any Encoder) throws {
        try upstream.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(instance, forKey: .instance)
    }
}
