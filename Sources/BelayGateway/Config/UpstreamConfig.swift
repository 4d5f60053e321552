public import Belay

/// One third-party API and the policy every call to it runs under.
public struct UpstreamConfig: Sendable, Hashable {
    /// One base URL of the upstream.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        /// `http` or `https`.
        public var scheme: String
        /// The host name or address; an IPv6 address without brackets.
        public var host: String
        /// The port (the scheme's default when the URL names none).
        public var port: Int
        /// The base path every proxied path is appended to; empty or starting with `/`, no trailing `/`.
        public var basePath: String

        /// The endpoint as a URL string.
        public var description: String {
            let defaultPort = scheme == "https" ? 443 : 80
            let bracketed = host.contains(":") ? "[\(host)]" : host
            return "\(scheme)://\(bracketed)\(port == defaultPort ? "" : ":\(port)")\(basePath)"
        }
    }

    /// Connect, per-attempt and total timeouts.
    public struct Timeouts: Sendable, Hashable {
        /// Establishing a connection. Default 1 s.
        public var connect: Duration = .seconds(1)
        /// One attempt, from sending to the response head. Default 2 s.
        public var attempt: Duration = .seconds(2)
        /// The whole call with every retry. Default 10 s.
        public var total: Duration = .seconds(10)

        /// Creates timeouts.
        public init(connect: Duration = .seconds(1), attempt: Duration = .seconds(2), total: Duration = .seconds(10)) {
            self.connect = connect
            self.attempt = attempt
            self.total = total
        }
    }

    /// What is retried, how often and how fast.
    public struct Retry: Sendable, Hashable {
        /// A transient outcome that may be retried.
        public enum Condition: Sendable, Hashable, CustomStringConvertible {
            /// This HTTP status.
            case status(Int)
            /// The connection could not be established.
            case connect
            /// The connection was reset or closed early.
            case reset
            /// The attempt timed out.
            case timeout

            public var description: String {
                switch self {
                case .status(let code): String(code)
                case .connect: "connect"
                case .reset: "reset"
                case .timeout: "timeout"
                }
            }
        }

        /// Attempts in all, the first included. Default 3.
        public var maxAttempts = 3
        /// The full-jitter base. Default 100 ms.
        public var base: Duration = .milliseconds(100)
        /// The full-jitter cap. Default 5 s.
        public var cap: Duration = .seconds(5)
        /// Retries allowed as a share of requests (the retry budget). Default 0.2.
        public var budget = 0.2
        /// What is retried. Default 408, 429, 502, 503, 504, connect, reset, timeout.
        public var on: [Condition] = [
            .status(408), .status(429), .status(502), .status(503), .status(504), .connect, .reset, .timeout,
        ]
    }

    /// When the breaker opens and for how long.
    public struct CircuitBreaker: Sendable, Hashable {
        /// The failure ratio that opens it. Default 0.5.
        public var failureRatio = 0.5
        /// Calls needed in the window before judging. Default 10.
        public var minimumThroughput = 10
        /// The sliding window. Default 60 s.
        public var window: Duration = .seconds(60)
        /// How long it stays open. Default 30 s.
        public var breakDuration: Duration = .seconds(30)
        /// Probe calls while half-open. Default 1.
        public var halfOpenProbes = 1
        /// How the probes are judged (`half_open_judgment`). Default
        /// ``HalfOpenJudgment/anyFailure``: one failed probe reopens it.
        public var halfOpenJudgment = HalfOpenJudgment.anyFailure
    }

    /// The concurrency limit: fixed (`max_concurrent`), or adaptive (`adaptive`, with `max_wait`).
    public struct Bulkhead: Sendable, Hashable {
        /// Calls in flight at once. Default 100.
        public var maxConcurrent = 100
        /// Calls waiting for a slot. Default 50.
        public var maxQueue = 50
        /// An adaptive limit instead of `maxConcurrent`, if set (`bulkhead.adaptive`).
        public var adaptive: Adaptive?
        /// How long a call waits for a slot under an adaptive limit (`bulkhead.max_wait`). Default 1 s.
        public var maxWait: Duration = .seconds(1)
    }

    /// The upstream's name, the `{upstream}` of `/proxy/{upstream}/…`.
    public var name: String
    /// Base URLs in failover order.
    public var endpoints: [Endpoint]
    /// Timeouts.
    public var timeouts = Timeouts()
    /// Retries.
    public var retry = Retry()
    /// The circuit breaker.
    public var circuitBreaker = CircuitBreaker()
    /// The bulkhead.
    public var bulkhead = Bulkhead()
    /// The outbound pace the provider allows, if limited.
    public var rateLimit: GatewayConfig.RateLimit?
    /// How long a cached GET response may be served while the upstream fails, if caching.
    public var staleIfError: Duration?
    /// Whether the application can do without it (`criticality`). Default critical.
    public var criticality = Criticality.critical
    /// The answer when it is down and nothing stale is cached (`fallback`; optional upstreams only).
    public var fallback: Fallback?
    /// What happens to a write the upstream cannot take now (`degrade.writes`). Default `.fail`.
    public var degradeWrites = DegradeWrites.fail
    /// The header carrying idempotency keys, when the upstream honours them (unsafe methods become retriable).
    public var idempotencyHeader: String?
    /// Headers added to every call (credentials): values are secrets.
    public var headers: [(name: String, value: Secret)] = []
    /// A synthetic probe, if configured.
    public var probe: (path: String, every: Duration)?
    /// TLS options for `https` endpoints (private CA, mutual TLS, server name), if set.
    public var tls: TLS?
    /// How the other system confirms a delivery (`ack`), if it does.
    public var ack: Ack?
    /// Hedged calls (`hedging`), if any.
    public var hedging: Hedging?
    /// Service level objectives (`slo`), if set.
    public var slo: SLO?

    /// Creates an upstream with default policy.
    public init(name: String, endpoints: [Endpoint]) {
        self.name = name
        self.endpoints = endpoints
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.name == rhs.name && lhs.endpoints == rhs.endpoints && lhs.timeouts == rhs.timeouts
            && lhs.retry == rhs.retry && lhs.circuitBreaker == rhs.circuitBreaker && lhs.bulkhead == rhs.bulkhead
            && lhs.rateLimit == rhs.rateLimit && lhs.staleIfError == rhs.staleIfError
            && lhs.criticality == rhs.criticality && lhs.fallback == rhs.fallback
            && lhs.degradeWrites == rhs.degradeWrites
            && lhs.idempotencyHeader == rhs.idempotencyHeader
            && lhs.headers.map(\.name) == rhs.headers.map(\.name)
            && lhs.headers.map(\.value) == rhs.headers.map(\.value)
            && lhs.probe?.path == rhs.probe?.path && lhs.probe?.every == rhs.probe?.every
            && lhs.tls == rhs.tls && lhs.ack == rhs.ack && lhs.hedging == rhs.hedging
            && lhs.slo == rhs.slo
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(name)
        hasher.combine(endpoints)
    }
}
