public import Belay
public import Foundation
public import HTTPTypes
public import NIOCore
public import NIOSSL

/// Everything that governs calls to one upstream: its endpoints and the resilience policy.
///
/// The gateway builds one from `upstreams.<name>` in `belay.yaml`; library users build one
/// directly. Defaults are the contract's (DESIGN.md).
public struct UpstreamPolicy: Sendable {
    /// What is retried.
    public struct RetryConditions: Sendable, Hashable {
        /// Statuses retried. Default 408, 429, 502, 503, 504.
        public var statuses: Set<Int> = [408, 429, 502, 503, 504]
        /// Retry when the connection could not be established. Default true.
        public var connect = true
        /// Retry when the connection was reset or closed early. Default true.
        public var reset = true
        /// Retry when an attempt timed out. Default true.
        public var timeout = true

        /// Creates the default conditions.
        public init() {}
    }

    /// The upstream's name, used in metrics, errors and headers.
    public var name: String
    /// Base URLs in failover order.
    public var endpoints: [UpstreamEndpoint]
    /// Establishing a connection. Default 1 s.
    public var connectTimeout: Duration = .seconds(1)
    /// One attempt, until the response head arrives. Default 2 s.
    public var attemptTimeout: Duration = .seconds(2)
    /// The whole call, retries included; a caller's `Belay-Timeout` can only shrink it. Default 10 s.
    public var totalTimeout: Duration = .seconds(10)
    /// Attempts in all. Default 3.
    public var maxAttempts = 3
    /// Full-jitter base. Default 100 ms.
    public var retryBase: Duration = .milliseconds(100)
    /// Full-jitter cap. Default 5 s.
    public var retryCap: Duration = .seconds(5)
    /// Retries allowed as a share of requests. Default 0.2.
    public var retryBudget = 0.2
    /// What is retried.
    public var retryOn = RetryConditions()
    /// The circuit breaker's options (its name is set to the upstream's).
    public var circuitBreaker = CircuitBreaker<ContinuousClock>.Configuration(
        window: .seconds(60),
        breakDuration: .seconds(30)
    )
    /// Calls in flight at once. Default 100.
    public var maxConcurrent = 100
    /// Calls waiting for a slot. Default 50.
    public var maxQueue = 50
    /// An adaptive concurrency limit, if set: it replaces the fixed bulkhead (``maxConcurrent``,
    /// ``maxQueue``), learning the provider's capacity from its round trips, 408/429/503/504
    /// answers, timeouts and resets (its name is set from the upstream's). Default none.
    public var adaptiveConcurrency: AdaptiveConcurrencyLimit<ContinuousClock>.Configuration?
    /// Hedged calls, if set: a call still without an answer after ``Hedging/delay`` gets another
    /// attempt alongside (on the next endpoint, when there are several), the first answer wins
    /// and the slower attempt is cancelled. Only reads are hedged (the safe methods: `GET`,
    /// `HEAD`, `OPTIONS`, `TRACE`), never a write, keyed or not (two at once may be refused as
    /// in flight), nor a streamed body. Each extra attempt is withdrawn from the retry budget and takes its own bulkhead
    /// or adaptive-limit slot. Default none.
    public var hedging: Hedging?
    /// The outbound pace the provider allows, if limited: permits per second and burst.
    public var rateLimit: (permitsPerSecond: Double, burst: Int)?
    /// How long a cached GET response may be served while the upstream fails, if caching.
    public var staleIfError: Duration?
    /// The answer given when a call fails and nothing stale is cached, if the upstream is an
    /// optional dependency that may fail open. Default none.
    public var fallback: Fallback?
    /// The header the upstream reads idempotency keys from, if it honours them.
    public var idempotencyHeader: String?
    /// Headers added to every call (credentials). Never logged.
    public var headers: [(name: String, value: String)] = []
    /// Failures in a row that eject an endpoint. Default 3.
    public var ejectAfterFailures = 3
    /// How long an ejected endpoint is skipped before it is tried again. Default 30 s.
    public var ejectionDuration: Duration = .seconds(30)
    /// TLS for `https` endpoints: trust roots (a private CA), a client certificate (mutual
    /// TLS), versions and ciphers. Default nil: AsyncHTTPClient's (the system's trust roots).
    public var tls: TLSConfiguration?
    /// The name sent as SNI and checked against the certificate of `https` endpoints instead of
    /// each endpoint's host, if set: for an endpoint given as an address, or a certificate
    /// issued for another name. The `Host` header stays the endpoint's. Default nil.
    public var serverName: String?

    /// When an upstream's calls are hedged (``UpstreamPolicy/hedging``).
    public struct Hedging: Sendable, Hashable {
        /// How long a call waits for its answer before the next attempt starts.
        public enum Delay: Sendable, Hashable {
            /// A fixed time.
            case fixed(Duration)
            /// The given quantile (`0.95`) of the upstream's own recent successful calls; until
            /// 20 have been seen, no hedge (the upstream is not known yet).
            case percentile(Double)
        }

        /// When the next attempt starts.
        public var delay: Delay
        /// Extra attempts at most. Default 1.
        public var maxExtra: Int

        /// Creates the option.
        public init(delay: Delay, maxExtra: Int = 1) {
            self.delay = delay
            self.maxExtra = maxExtra
        }
    }

    /// A fixed answer for an optional dependency that is down (``UpstreamPolicy/fallback``).
    ///
    /// It answers a call of one of ``methods`` that failed — no answer, a policy's refusal
    /// (circuit open, bulkhead full, timeout), or a 5xx after every attempt — when the
    /// stale-if-error cache has nothing for it. Never a call whose own request was at fault
    /// (its body failed, it was cancelled), and never for a caller that asked for the current
    /// state only (`servingStale: false`).
    public struct Fallback: Sendable, Hashable {
        /// The status answered. Default 200.
        public var status: HTTPResponse.Status
        /// The headers answered (`Content-Type` among them).
        public var headers: HTTPFields
        /// The body answered.
        public var body: ByteBuffer
        /// The methods it answers. Default the safe ones: `GET`, `HEAD`, `OPTIONS`.
        public var methods: Set<HTTPRequest.Method>

        /// Creates a fallback.
        public init(
            status: HTTPResponse.Status = .ok,
            headers: HTTPFields = [:],
            body: ByteBuffer = ByteBuffer(),
            methods: Set<HTTPRequest.Method> = [.get, .head, .options]
        ) {
            self.status = status
            self.headers = headers
            self.body = body
            self.methods = methods
        }
    }

    /// Creates a policy with the contract's defaults.
    public init(name: String, endpoints: [UpstreamEndpoint]) {
        self.name = name
        self.endpoints = endpoints
    }
}

/// One base URL of an upstream.
public struct UpstreamEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// `http` or `https`.
    public var scheme: String
    /// Host name or address; an IPv6 address without brackets (`::1`).
    public var host: String
    /// Port.
    public var port: Int
    /// Path prefix, empty or starting with `/`, without a trailing `/`.
    public var basePath: String

    /// Creates an endpoint. An IPv6 `host` may be given with or without brackets.
    public init(scheme: String, host: String, port: Int, basePath: String = "") {
        self.scheme = scheme
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = port
        self.basePath = basePath
    }

    /// The host as it appears in a URL or a `Host` header: IPv6 addresses in brackets.
    var bracketedHost: String { host.contains(":") ? "[\(host)]" : host }

    /// The `Host` header for this endpoint: the host, with the port unless it is the scheme's
    /// default (`api.pay.example`, `[::1]:8080`).
    var hostHeader: String {
        port == (scheme == "https" ? 443 : 80) ? bracketedHost : "\(bracketedHost):\(port)"
    }

    /// The URL of `path` (starting with `/`) and `query` on this endpoint; with `host`, that
    /// name in place of the endpoint's (the client resolves it to the endpoint's host).
    public func url(path: String, query: String?, host: String? = nil) -> String {
        var url = "\(scheme)://\(host ?? bracketedHost):\(port)\(basePath)\(path)"
        if let query, !query.isEmpty { url += "?\(query)" }
        return url
    }

    /// The endpoint as a short label for headers and metrics, e.g. `api.pay.example:443` or
    /// `[::1]:8080`.
    public var description: String { "\(bracketedHost):\(port)" }
}

extension UpstreamEndpoint {
    /// The endpoint of an `http` or `https` base URL (its path is the base path); nil for
    /// another scheme or a URL without a host.
    public init?(url: URL) {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else { return nil }
        // As written (percent-encoded), so that an encoded base path is sent as it was given.
        var path = URLComponents(url: url, resolvingAgainstBaseURL: true)?.percentEncodedPath ?? url.path
        while path.hasSuffix("/") { path.removeLast() }
        self.init(scheme: scheme, host: host, port: url.port ?? (scheme == "https" ? 443 : 80), basePath: path)
    }
}
