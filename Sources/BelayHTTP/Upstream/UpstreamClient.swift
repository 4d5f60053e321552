public import AsyncHTTPClient
public import Belay
import Foundation
public import HTTPTypes
public import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
import Tracing

/// Calls one upstream through its policy: total and per-attempt timeouts, transient-only
/// retries with full jitter under a retry budget, a circuit breaker, a bulkhead, an
/// outbound rate limit, failover across endpoints with outlier ejection, and a
/// stale-if-error cache for GET.
///
/// Unsafe methods (POST, PATCH…) are retried only when the upstream honours idempotency
/// keys (``UpstreamPolicy/idempotencyHeader``); then every attempt carries one key.
/// A connection that could not be established is failed over for any method (nothing was
/// sent). Streamed request bodies are sent once; an attempt that fails while the caller's
/// body is still arriving (``UpstreamRequest/bodyProgress``) is the caller's doing
/// (``RequestBodyError/Code/incomplete``) and counts against nothing the upstream's calls share.
///
/// ```swift
/// let client = try UpstreamClient(policy: UpstreamPolicy(name: "payments", endpoints: [primary, backup]))
/// let result = await client.send(UpstreamRequest(method: .get, path: "/v1/balance"), correlationID: id)
/// ```
public final class UpstreamClient: Sendable {
    /// The policy in force.
    public let policy: UpstreamPolicy
    /// The upstream's circuit breaker.
    public let breaker: CircuitBreaker<ContinuousClock>
    /// The upstream's retry budget.
    public let budget: RetryBudget<ContinuousClock>
    /// The upstream's adaptive concurrency limit, when its policy has one
    /// (``UpstreamPolicy/adaptiveConcurrency``) instead of a fixed bulkhead.
    public let concurrencyLimit: AdaptiveConcurrencyLimit<ContinuousClock>?
    /// The HTTP client of each endpoint, by index: one shared by all of them, unless a
    /// ``UpstreamPolicy/serverName`` is resolved to each endpoint's own host (one per host).
    let http: [HTTPClient]
    let health: EndpointHealth<ContinuousClock>
    let cache: StaleCache<ContinuousClock>?
    let pacer: QuotaPacer<ContinuousClock>
    /// The failure drill in force on this upstream, if any (``FaultDrill``).
    public let drills: FaultDrillSwitch
    /// ``UpstreamPolicy/headers`` with their names parsed once (invalid names are skipped).
    private let addedHeaders: [HTTPField]
    /// ``UpstreamPolicy/idempotencyHeader`` parsed, if valid.
    private let idempotencyField: HTTPField.Name?
    /// Where a caller's key is looked for: the configured header, then `Idempotency-Key`.
    private let callerKeyFields: [HTTPField.Name]
    /// How calls are traced; nil: no spans at all.
    let tracing: UpstreamTracing?
    private let retrying: ResiliencePipeline<UpstreamResponse>
    private let connectOnly: ResiliencePipeline<UpstreamResponse>
    private let once: ResiliencePipeline<UpstreamResponse>
    /// ``retrying`` with hedged attempts, when the policy hedges (``UpstreamPolicy/hedging``).
    private let hedged: ResiliencePipeline<UpstreamResponse>?
    /// Told of each ejection and re-admission of an endpoint (``onEndpointChange(_:)``).
    private let endpointHandler = Mutex<(@Sendable (_ endpoint: Int, _ ejected: Bool) -> Void)?>(nil)

    /// Creates the client and its pipelines; throws if the policy's options are invalid.
    ///
    /// With `tracing`, each attempt is a client span (``UpstreamTracing``) and AsyncHTTPClient
    /// makes none of its own; without, the client makes no spans (AsyncHTTPClient traces its
    /// requests only if a tracer is bootstrapped).
    ///
    /// `shared`, if given, supplies the circuit breaker and the adaptive concurrency limit,
    /// under the policy's name: the ones made before from the same options (a config reload
    /// that left them as they were), so that their state carries over — an open breaker stays
    /// open, a learnt limit stays learnt — or new ones if the options changed. Without it, both
    /// are new.
    ///
    /// `drills` is where failure drills are started for this upstream (``FaultDrill``): pass
    /// the same one to each client of one upstream so that a drill outlives a reload. Default a
    /// new one.
    public convenience init(
        policy: UpstreamPolicy,
        eventSink: (any ResilienceEventSink)? = nil,
        tracing: UpstreamTracing? = nil,
        eventLoopGroup: any EventLoopGroup = HTTPClient.defaultEventLoopGroup,
        shared: ResilienceRegistry<ContinuousClock>.Shared? = nil,
        drills: FaultDrillSwitch = FaultDrillSwitch()
    ) throws(ConfigurationError) {
        try self.init(
            policy: policy,
            eventSink: eventSink,
            tracing: tracing,
            eventLoopGroup: eventLoopGroup,
            shared: shared,
            drills: drills,
            connecting: true
        )
    }

    /// With `connecting` false, the client makes no AsyncHTTPClient of its own: every call must
    /// bring its ``AttemptTransport`` (``ResilienceMiddleware``), and there is nothing to shut down.
    init(
        policy: UpstreamPolicy,
        eventSink: (any ResilienceEventSink)?,
        tracing: UpstreamTracing?,
        eventLoopGroup: any EventLoopGroup,
        shared: ResilienceRegistry<ContinuousClock>.Shared?,
        drills: FaultDrillSwitch,
        connecting: Bool
    ) throws(ConfigurationError) {
        var issues: [ConfigurationError.Issue] = []
        if policy.endpoints.isEmpty {
            issues.append(.init(option: "\(policy.name).endpoints", message: "must list at least one endpoint"))
        }
        let breakerConfiguration = policy.breakerConfiguration
        let clock = ContinuousClock()
        let breaker: CircuitBreaker<ContinuousClock>
        let budget: RetryBudget<ContinuousClock>
        let bulkhead: Bulkhead
        var limiter: RateLimiter<ContinuousClock>?
        var concurrencyLimit: AdaptiveConcurrencyLimit<ContinuousClock>?
        do {
            if let shared {
                breaker = try shared.circuitBreaker(policy.name, breakerConfiguration)
            } else {
                breaker = try CircuitBreaker(breakerConfiguration, clock: clock)
            }
            budget = try RetryBudget(policy.retryBudgetConfiguration, clock: clock)
            bulkhead = try Bulkhead(policy.bulkheadConfiguration)
            if let adaptive = policy.adaptiveConcurrencyConfiguration {
                if let shared {
                    concurrencyLimit = try shared.adaptiveConcurrencyLimit(policy.name, adaptive)
                } else {
                    concurrencyLimit = try AdaptiveConcurrencyLimit(adaptive, clock: clock)
                }
            }
            if let rate = policy.rateLimiterConfiguration {
                limiter = try RateLimiter(rate, clock: clock)
            }
        } catch {
            throw ConfigurationError(issues: issues + error.issues)
        }
        if !issues.isEmpty { throw ConfigurationError(issues: issues) }

        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: .nanoseconds(Int64(policy.connectTimeout.inSeconds * 1e9)),
                read: .nanoseconds(Int64(policy.attemptTimeout.inSeconds * 1e9))
            )
        )
        configuration.connectionPool.retryConnectionEstablishment = false
        // As many connections per endpoint as calls may be in flight: AsyncHTTPClient's default
        // of 8 would queue calls the bulkhead admitted behind 8 slow answers.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit =
            policy.adaptiveConcurrency?.maximum ?? policy.maxConcurrent
        configuration.decompression = .disabled
        // AsyncHTTPClient keeps the tracer bootstrapped when the client is made; with none (a
        // no-op tracer) it would still build each request's span attributes, parsing its URL again.
        // With `tracing` the attempt spans are made here, so AsyncHTTPClient makes none.
        if tracing != nil || configuration.tracing.tracer is NoOpTracer {
            configuration.tracing.tracer = nil
        }
        configuration.tlsConfiguration = policy.tls
        self.tracing = tracing
        self.drills = drills
        self.http = connecting ? Self.clients(for: policy, configuration, eventLoopGroup) : []
        self.policy = policy
        self.addedHeaders = policy.headers.compactMap { name, value in
            HTTPField.Name(name).map { HTTPField(name: $0, value: value) }
        }
        self.idempotencyField = policy.idempotencyHeader.flatMap { HTTPField.Name($0) }
        self.callerKeyFields = [idempotencyField, HTTPField.Name("Idempotency-Key")].compactMap { $0 }
        self.breaker = breaker
        self.budget = budget
        self.concurrencyLimit = concurrencyLimit
        self.health = EndpointHealth(
            endpointCount: policy.endpoints.count,
            ejectAfter: policy.ejectAfterFailures,
            ejection: policy.ejectionDuration,
            clock: clock
        )
        self.cache = policy.staleIfError.map { StaleCache(maxAge: $0, clock: clock) }
        let pacer = QuotaPacer(name: "\(policy.name)-quota", clock: clock)
        self.pacer = pacer

        let conditions = policy.retryOn
        let retryable: Retry<UpstreamResponse, ContinuousClock>.OutcomePredicate = { outcome in
            // A body part-sent is consumed: it cannot be sent again.
            if AttemptLog.current?.callersBodyWasArriving == true { return false }
            switch outcome {
            case .success(let response):
                return conditions.statuses.contains(response.status.code)
            case .failure(let error as UpstreamFailure):
                switch error.kind {
                case .connect: return conditions.connect
                case .reset: return conditions.reset
                case .timeout: return conditions.timeout
                case .other: return false
                }
            case .failure(let error as ResilienceError):
                return error.code == .timeout && !error.isCallersDeadline && conditions.timeout
            case .failure:
                return false
            }
        }
        let connectFailure: Retry<UpstreamResponse, ContinuousClock>.OutcomePredicate = { outcome in
            if case .failure(let error as UpstreamFailure) = outcome {
                return error.kind == .connect && conditions.connect
            }
            return false
        }
        func build(
            _ shouldRetry: @escaping Retry<UpstreamResponse, ContinuousClock>.OutcomePredicate,
            attempts: Int,
            hedging: UpstreamPolicy.Hedging? = nil
        ) throws(ConfigurationError) -> ResiliencePipeline<UpstreamResponse> {
            var builder = ResiliencePipeline<UpstreamResponse>.Builder(clock: clock)
                // Both timeouts are cooperative: they bind the deadline, which every inner step
                // honours (retry delays, rate-limit and bulkhead waits, AsyncHTTPClient until the
                // answer's head, ``attempt`` while it reads an answer into memory), so no call
                // needs a task group, child tasks and timers to enforce it.
                .timeout(policy.totalTimeout, enforcement: .cooperative, name: "\(policy.name)-total-timeout")
                .retry(
                    .init(
                        maxAttempts: attempts,
                        backoff: .exponentialJitter(base: policy.retryBase, cap: policy.retryCap),
                        shouldRetry: shouldRetry,
                        delayHint: Self.delayHint,
                        budget: budget,
                        describe: Self.describe,
                        name: "\(policy.name)-retry"
                    )
                )
                // A 5xx that opens the breaker is named by its status and endpoint, never its body.
                .circuitBreaker(
                    breaker,
                    isFailure: Self.isFailure,
                    isIgnored: Self.isCallersFault,
                    describe: Self.describe
                )
            // Hedges inside the breaker (it judges the call's one outcome) and outside the bulkhead,
            // paces and limits: every extra attempt takes a slot and a permit of its own. Only slowness
            // starts one; a failure is the retry's, with its backoff and Retry-After.
            if let hedging {
                let delay: Belay.Hedging<UpstreamResponse, ContinuousClock>.Delay =
                    switch hedging.delay {
                    case .fixed(let delay): .fixed(delay)
                    case .percentile(let quantile):
                        // Until the upstream is known, the whole call's time: no hedge before its deadline.
                        .percentile(quantile, otherwise: policy.totalTimeout, minimumSamples: 20)
                    }
                builder = builder.hedging(
                    .init(
                        maxHedgedAttempts: hedging.maxExtra,
                        delay: delay,
                        // A hedge the policy refused (no slot or permit free), or cancelled, does not
                        // beat the attempt still waiting for the upstream's answer.
                        isAcceptable: { outcome in
                            if case .failure(let error) = outcome,
                                error is CancellationError || Fault.of(error) == .policy
                            {
                                return false
                            }
                            return !shouldRetry(outcome)
                        },
                        launchesOnFailure: false,
                        budget: budget,
                        name: "\(policy.name)-hedging"
                    )
                )
            }
            // A fixed bulkhead, or the adaptive limit after the paces (their waits are not the
            // upstream's round trip) and outside the attempt timeout (whose timeouts are drops).
            if concurrencyLimit == nil { builder = builder.bulkhead(bulkhead) }
            if let limiter { builder = builder.rateLimiter(limiter) }
            builder = builder.strategy(QuotaPacingStrategy(pacer: pacer, clock: clock, maxWait: policy.attemptTimeout))
            if let concurrencyLimit {
                builder = builder.adaptiveConcurrencyLimit(concurrencyLimit, classify: Self.concurrencySignal)
            }
            builder = builder.timeout(
                policy.attemptTimeout,
                enforcement: .cooperative,
                name: "\(policy.name)-attempt-timeout"
            )
            // Every decision is also kept with the call it concerns (``UpstreamResult/decisions``).
            builder = builder.telemetry(DecisionCollector(next: eventSink, tracing: tracing))
            return try builder.build()
        }
        self.retrying = try build(retryable, attempts: policy.maxAttempts)
        self.connectOnly = try build(connectFailure, attempts: max(policy.maxAttempts, 1))
        self.once = try build({ _ in false }, attempts: 1)
        self.hedged = try policy.hedging.map { hedging throws(ConfigurationError) in
            try build(retryable, attempts: policy.maxAttempts, hedging: hedging)
        }
    }

    /// One HTTP client for every endpoint; with a ``UpstreamPolicy/serverName``, one per distinct
    /// host, each resolving that name to its host (AsyncHTTPClient's `dnsOverride`: the name is
    /// sent as SNI and checked against the certificate, the connection goes to the host).
    private static func clients(
        for policy: UpstreamPolicy,
        _ configuration: HTTPClient.Configuration,
        _ eventLoopGroup: any EventLoopGroup
    ) -> [HTTPClient] {
        guard let serverName = policy.serverName else {
            let client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: configuration)
            return policy.endpoints.map { _ in client }
        }
        var byHost: [String: HTTPClient] = [:]
        return policy.endpoints.map { endpoint in
            if let client = byHost[endpoint.host] { return client }
            var resolving = configuration
            resolving.dnsOverride = [serverName: endpoint.host]
            let client = HTTPClient(eventLoopGroupProvider: .shared(eventLoopGroup), configuration: resolving)
            byHost[endpoint.host] = client
            return client
        }
    }

    /// Shuts the HTTP clients down; call once, when the client is no longer used.
    public func shutdown() async throws {
        var seen: Set<ObjectIdentifier> = []
        for client in http where seen.insert(ObjectIdentifier(client)).inserted {
            try await client.shutdown()
        }
    }

    /// A 5xx answer, a failure to reach the upstream, or a timeout counts against the breaker.
    static let isFailure: CircuitBreakerStrategy<UpstreamResponse, ContinuousClock>.OutcomePredicate = { outcome in
        switch outcome {
        case .success(let response): response.status.code >= 500
        case .failure: true
        }
    }

    /// The caller's doing (``Fault/caller``: its body failed, its own deadline passed, or it
    /// sent a request the client refuses) is not the upstream's: the breaker ignores it.
    ///
    /// An attempt that failed while the caller's body was still arriving is read from the
    /// call's log, not from the error: the attempt timeout reports any failure that ends past
    /// its deadline as its own `timeout`.
    static let isCallersFault: CircuitBreakerStrategy<UpstreamResponse, ContinuousClock>.OutcomePredicate = {
        outcome in
        guard case .failure(let error) = outcome else { return false }
        return Fault.of(error) == .caller || AttemptLog.current?.callersBodyWasArriving == true
    }

    /// What an attempt's outcome tells the adaptive concurrency limit, by "Hardening"'s rules of
    /// whose fault it was (``Fault``): 408, 429, 503 and 504 answers, resets and timeouts of the
    /// policy's own deadlines are the provider's overload (drops); any other answer, a caller's
    /// 4xx included, is a handled call whose round trip is a sample; the caller's doing (its
    /// deadline, its body), the policy's refusals, connect failures (nothing was sent: they say
    /// the endpoint is unreachable, not how much it takes) and other 5xx tell nothing.
    public static let concurrencySignal: AdaptiveConcurrencyStrategy<UpstreamResponse, ContinuousClock>.Classifier = {
        outcome in
        switch outcome {
        case .success(let response):
            switch response.status.code {
            case 408, 429, 503, 504: return .dropped
            case 500..<600: return .ignored
            default: return .success
            }
        case .failure(let error):
            if AttemptLog.current?.callersBodyWasArriving == true || Fault.of(error) != .upstream { return .ignored }
            switch error {
            case let failure as UpstreamFailure:
                return failure.kind == .timeout || failure.kind == .reset ? .dropped : .ignored
            case let rejection as ResilienceError:
                return rejection.code == .timeout ? .dropped : .ignored
            default:
                return .ignored
            }
        }
    }

    /// `Retry-After` (seconds or date), and for 429 the reset time of `RateLimit` headers:
    /// the retry never starts before the provider's time.
    public static let delayHint: @Sendable (Result<UpstreamResponse, any Error>) -> Duration? = { outcome in
        guard case .success(let response) = outcome else {
            return Retry<UpstreamResponse, ContinuousClock>.defaultDelayHint(outcome)
        }
        var hint: Duration?
        if let value = response.headers[.retryAfter] {
            hint = RetryAfter.parse(value, now: Int64(Date().timeIntervalSince1970))
        }
        if response.status.code == 429, let reset = RateLimitHeaders(response.headers).resetAfter {
            hint = max(hint ?? .zero, reset)
        }
        return hint
    }

    static let describe: @Sendable (Result<UpstreamResponse, any Error>) -> String = { outcome in
        switch outcome {
        case .success(let response): "HTTP \(response.status.code) from \(response.endpoint)"
        case .failure(let error): String(describing: error)
        }
    }

    /// Sends `request` through the policy.
    /// - Parameters:
    ///   - request: the request, with hop-by-hop headers already removed.
    ///   - correlationID: ties events and logs of this call together.
    ///   - idempotencyKey: the caller's key, if it sent one; by default the one in the
    ///     request's headers (``callerIdempotencyKey(in:)``). A UUID is generated when the
    ///     upstream honours keys, the method is unsafe and there is none.
    ///   - consumer: who the call is made for: a consumer's name, or a digest of the
    ///     credentials it forwards (never a raw key). The stale-if-error cache keeps answers
    ///     per consumer, so one consumer's answer is never served to another; without it, a
    ///     request carrying `Authorization` or `Cookie` is not cached.
    ///   - servingStale: whether a failure may be answered from the stale-if-error cache or
    ///     the policy's fallback (default true); false for a caller that needs the current
    ///     state or nothing (a probe, a delivery, a lookup).
    ///   - answer: how the answer's body is read (default ``AnswerReading/relay``). A caller
    ///     that is not a client waiting on the other end (the delivery worker, verify-then-act)
    ///     reads it within the attempt, so a trickling body is bounded by the policy's deadlines.
    public func send(
        _ request: UpstreamRequest,
        correlationID: String?,
        idempotencyKey: String? = nil,
        consumer: String? = nil,
        servingStale: Bool = true,
        answer: AnswerReading = .relay
    ) async -> UpstreamResult {
        await send(
            request,
            correlationID: correlationID,
            idempotencyKey: idempotencyKey,
            consumer: consumer,
            servingStale: servingStale,
            answer: answer,
            via: nil
        )
    }

    /// ``send(_:correlationID:idempotencyKey:consumer:servingStale:answer:)``, each attempt sent
    /// through `transport` instead of AsyncHTTPClient when one is given (``ResilienceMiddleware``:
    /// the generated client's own transport).
    func send(
        _ request: UpstreamRequest,
        correlationID: String?,
        idempotencyKey: String? = nil,
        consumer: String? = nil,
        servingStale: Bool = true,
        answer: AnswerReading = .relay,
        via transport: AttemptTransport?
    ) async -> UpstreamResult {
        var request = request
        var mayRepeat = request.isIdempotentMethod
        if policy.idempotencyHeader != nil, !request.isIdempotentMethod {
            let key = idempotencyKey ?? callerIdempotencyKey(in: request.headers) ?? RandomID.uuidString()
            if let idempotencyField { request.headers[idempotencyField] = key }
            mayRepeat = true
        }
        for field in addedHeaders {
            request.headers[field.name] = field.value
        }
        var pipeline: ResiliencePipeline<UpstreamResponse>
        var hedging = false
        switch request.body {
        case .stream: pipeline = once
        case .none, .buffered:
            pipeline = mayRepeat ? retrying : connectOnly
            // Reads only: a write sent twice at once may be refused as in flight (409) by an
            // upstream that honours its key, and a PUT or DELETE's second answer may differ.
            if request.isSafeMethod, let hedged {
                pipeline = hedged
                hedging = true
            }
        }
        // An answer whose body is read and dropped (``AnswerReading/discard``) is not kept: there
        // would be nothing to serve later but its headers.
        let cacheKey =
            request.method == .get && cache != nil && answer != .discard
            ? Self.cacheKey(request, consumer: consumer) : nil
        // Hedged attempts run side by side: they are numbered in the order they start.
        let log = AttemptLog(numbersAttemptsByStart: hedging)
        let sendable = request
        // Answers a retry may discard are held in memory when they fit, and so are answers to cache.
        let hold = Holding(
            retriedStatuses: mayRepeat && !request.isStreamed ? policy.retryOn.statuses : [],
            cacheable: cacheKey != nil,
            reading: answer
        )
        let outcome = await AttemptLog.$current.withValue(log) {
            await pipeline.executeOutcome(correlationID: correlationID) { context in
                try await self.attempt(sendable, context: context, log: log, hold: hold, transport: transport)
            }
        }
        var result = UpstreamResult(outcome: outcome, staleAge: nil, attempts: log.records, decisions: log.decisions)
        // The attempt or total timeout reported the failure as its own: it was the caller's body.
        if case .failure(let error) = outcome, log.callersBodyWasArriving, Fault.of(error) != .caller {
            result.outcome = .failure(RequestBodyError(code: .incomplete, underlying: error))
        }
        if let cache, let cacheKey {
            serveStale(&result, cache: cache, key: cacheKey, servingStale: servingStale)
        }
        if servingStale, result.staleAge == nil, let fallback = policy.fallback,
            fallback.methods.contains(request.method),
            Self.mayFallBack(result.outcome)
        {
            result.outcome = .success(
                UpstreamResponse(
                    status: fallback.status,
                    headers: fallback.headers,
                    body: .buffered(fallback.body),
                    endpoint: result.attempts.last?.endpoint ?? policy.endpoints[0]
                )
            )
            result.fallback = true
        }
        return result
    }

    /// Whether `outcome` is a failure a fallback answers: the upstream's or the policy's, not
    /// the caller's (its body, its cancellation).
    static func mayFallBack(_ outcome: Result<UpstreamResponse, any Error>) -> Bool {
        switch outcome {
        case .success(let response): return response.status.code >= 500
        case .failure(let error): return Fault.of(error) != .caller
        }
    }

    /// Stores a 2xx answer in the stale-if-error cache, or answers a failure from it.
    private func serveStale(
        _ result: inout UpstreamResult,
        cache: StaleCache<ContinuousClock>,
        key cacheKey: String,
        servingStale: Bool
    ) {
        switch result.outcome {
        case .success(let response) where (200..<300).contains(response.status.code):
            if case .buffered(let body) = response.body {
                cache.store(key: cacheKey, status: response.status, headers: response.headers, body: body)
            }
        case .success(let response) where response.status.code < 500:
            break
        default:
            if servingStale, let (entry, age) = cache.lookup(key: cacheKey) {
                result.outcome = .success(
                    UpstreamResponse(
                        status: entry.status,
                        headers: entry.headers,
                        body: .buffered(entry.body),
                        endpoint: policy.endpoints[0]
                    )
                )
                result.staleAge = age
            }
        }
    }

    /// The consumer (length-prefixed, so no two consumers' keys can collide), the path and the
    /// query; nil (not cached) for a request with credentials but no consumer to key it by.
    static func cacheKey(_ request: UpstreamRequest, consumer: String?) -> String? {
        if consumer == nil, request.headers[.authorization] != nil || request.headers[.cookie] != nil {
            return nil
        }
        let scope = consumer ?? ""
        return "\(scope.utf8.count):\(scope)" + request.path + (request.query.map { "?\($0)" } ?? "")
    }

    /// The largest answer held in memory, to retry past it or to cache it; larger ones stream.
    static let bufferLimit = 1 << 20

    /// How a call's answer body is read.
    public enum AnswerReading: Sendable, Hashable {
        /// Small answers the policy may retry past or cache are held in memory; the others are
        /// streamed to the caller as they arrive (the proxy).
        case relay
        /// Every answer is read into memory within the attempt and its deadline (up to 1 MiB;
        /// a larger one streams, what was read first). For verify-then-act's fetch.
        case hold
        /// Every answer's body is read and dropped within the attempt and its deadline; the
        /// result's body is empty. For deliveries, which only need the status.
        case discard
    }

    /// Which answers of a call are read into memory (when they fit in ``bufferLimit``).
    struct Holding: Sendable {
        /// Statuses the policy may retry on, discarding the answer.
        var retriedStatuses: Set<Int>
        /// Whether a 2xx answer may be stored in the stale-if-error cache.
        var cacheable: Bool
        /// How the caller wants answers read.
        var reading: AnswerReading = .relay

        func applies(to status: Int, headers: HTTPFields) -> Bool {
            if reading != .relay { return true }
            if retriedStatuses.contains(status) { return true }
            return cacheable && (200..<300).contains(status) && StaleCache<ContinuousClock>.mayStore(headers)
        }
    }

    /// One attempt: pick the endpoint, send, classify.
    private func attempt(
        _ request: UpstreamRequest,
        context: ResilienceContext,
        log: AttemptLog,
        hold: Holding,
        transport: AttemptTransport?
    ) async throws -> UpstreamResponse {
        let (order, ejected) = health.order()
        let (index, passedOver) = log.chooseEndpoint(from: order, ejected: ejected)
        let endpoint = policy.endpoints[index]
        // Allocates only when an endpoint was passed over.
        let skipped = passedOver.isEmpty ? [] : passedOver.map { policy.endpoints[$0] }
        // With a server name, the URL names it (SNI, certificate check); the client connects to the endpoint.
        let name = endpoint.scheme == "https" ? policy.serverName : nil
        var outbound = HTTPClientRequest(url: endpoint.url(path: request.path, query: request.query, host: name))
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers {
            outbound.headers.add(name: field.name.rawName, value: field.value)
        }
        outbound.headers.replaceOrAdd(name: "Host", value: endpoint.hostHeader)
        switch request.body {
        case .none: break
        case .buffered(let bytes): outbound.body = .bytes(bytes)
        case .stream(let body): outbound.body = body
        }
        guard let tracing else {
            return try await exchange(
                outbound,
                request,
                endpoint: index,
                skipped: skipped,
                context: context,
                log: log,
                hold: hold,
                transport: transport
            )
        }
        return try await tracing.attempt(
            method: request.method.rawValue,
            endpoint: endpoint,
            path: request.path,
            query: request.query,
            upstream: policy.name,
            context: context,
            headers: outbound.headers
        ) { headers in
            var traced = outbound
            traced.headers = headers
            return try await exchange(
                traced,
                request,
                endpoint: index,
                skipped: skipped,
                context: context,
                log: log,
                hold: hold,
                transport: transport
            )
        }
    }

    /// Applies the drill in force (if any) to one attempt: an answer in place of the
    /// endpoint's (`error`), nil to go on and call it (after any `latency`, within the attempt's
    /// deadline), or a thrown reset or connect failure. The library's ``FaultInjection`` decides
    /// and emits its `faultInjected` decision, named `drill <id>`.
    private func injectDrill(
        context: ResilienceContext,
        endpoint: UpstreamEndpoint,
        deadline: Deadline?
    ) async throws -> UpstreamResponse? {
        // No drill in force: one lock, nothing else on the hot path.
        guard let armed = drills.drill else { return nil }
        let drills = self.drills
        // Only injected latency can outlast the deadline; the task group that enforces it is
        // paid during a drill that adds latency, not otherwise.
        let applied =
            if let deadline, armed.latency > .zero {
                try await deadline.enforce { await drills.apply(context) }
            } else {
                await drills.apply(context)
            }
        guard let (drill, effect) = applied else { return nil }
        switch effect {
        case .success(.proceed):
            return nil
        case .success(.answer(let status)):
            var headers = HTTPFields()
            headers[.contentLength] = "0"
            return UpstreamResponse(
                status: HTTPResponse.Status(code: status),
                headers: headers,
                body: .buffered(ByteBuffer()),
                endpoint: endpoint
            )
        case .failure(FaultDrill.Failure.reset):
            throw UpstreamFailure(kind: .reset, endpoint: endpoint, detail: "connection reset (drill \(drill.id))")
        case .failure(FaultDrill.Failure.refused):
            throw UpstreamFailure(kind: .connect, endpoint: endpoint, detail: "connection refused (drill \(drill.id))")
        case .failure(let error):
            throw error
        }
    }

    /// Sends one attempt's request to the endpoint at `index` and classifies what came of it.
    private func exchange(
        _ outbound: HTTPClientRequest,
        _ request: UpstreamRequest,
        endpoint index: Int,
        skipped: [UpstreamEndpoint],
        context: ResilienceContext,
        log: AttemptLog,
        hold: Holding,
        transport: AttemptTransport?
    ) async throws -> UpstreamResponse {
        let endpoint = policy.endpoints[index]
        let start = ContinuousClock.now
        let (number, hedge) = log.begin(attempt: context.attempt)
        defer { log.end() }
        do {
            // The attempt's deadline (the earlier of the attempt and total timeouts, or the
            // caller's Belay-Timeout) ends the request if no head has arrived by then.
            let deadline = context.deadline
            if let injected = try await injectDrill(context: context, endpoint: endpoint, deadline: deadline) {
                let elapsed = start.duration(to: .now)
                log.append(
                    AttemptRecord(
                        number: number,
                        endpoint: endpoint,
                        status: injected.status.code,
                        failure: nil,
                        duration: elapsed,
                        startOffset: log.start.duration(to: start),
                        skipped: skipped,
                        hedged: hedge
                    )
                )
                reportEndpoint(health.record(endpoint: index, success: injected.status.code < 500))
                return injected
            }
            let response: HTTPClientResponse
            if let transport {
                response = try await transport.execute(outbound, request, endpoint, deadline)
            } else if http.isEmpty {
                throw UpstreamFailure(kind: .other, endpoint: endpoint, detail: "no transport for this client's calls")
            } else {
                response = try await http[index].execute(
                    outbound,
                    deadline: deadline?.nioDeadline ?? .now() + .hours(1)
                )
            }
            var fields = HTTPFields()
            for header in response.headers {
                if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
            }
            let status = HTTPResponse.Status(code: Int(response.status.code))
            pacer.observe(RateLimitHeaders(fields))
            let body: UpstreamResponse.Body
            if hold.applies(to: status.code, headers: fields) {
                let bodiless = request.method == .head || status.code == 204 || status.code == 304
                let declaredLength = bodiless ? 0 : fields[.contentLength].flatMap { Int($0) }
                let answer = response.body
                let discard = hold.reading == .discard
                let read = { @Sendable in
                    if discard {
                        for try await _ in answer {}
                        return UpstreamResponse.Body.buffered(ByteBuffer())
                    }
                    return try await UpstreamResponse.Body.holding(
                        answer,
                        declaredLength: declaredLength,
                        upTo: Self.bufferLimit
                    )
                }
                // Reading the body into memory is still part of the attempt: bounded by its deadline.
                if let deadline {
                    body = try await deadline.enforce(read)
                } else {
                    body = try await read()
                }
            } else {
                body = .stream(response.body)
            }
            let elapsed = start.duration(to: .now)
            let answer = UpstreamResponse(status: status, headers: fields, body: body, endpoint: endpoint)
            let asked = fields[.retryAfter] != nil || status.code == 429 ? Self.delayHint(.success(answer)) : nil
            log.append(
                AttemptRecord(
                    number: number,
                    endpoint: endpoint,
                    status: status.code,
                    failure: nil,
                    duration: elapsed,
                    startOffset: log.start.duration(to: start),
                    skipped: skipped,
                    retryAfter: asked,
                    hedged: hedge
                )
            )
            reportEndpoint(health.record(endpoint: index, success: status.code < 500))
            return answer
        } catch {
            // An attempt that got no answer: `failure` nil when it was the caller's doing.
            func failedAttempt(_ failure: UpstreamFailure.Kind?) -> AttemptRecord {
                AttemptRecord(
                    number: number,
                    endpoint: endpoint,
                    status: nil,
                    failure: failure,
                    duration: start.duration(to: .now),
                    startOffset: log.start.duration(to: start),
                    skipped: skipped,
                    hedged: hedge
                )
            }
            // The caller's doing: its body failed (too large, or the caller went away), or the
            // client refused to send its request as it was. Not the endpoint's failure, so it is
            // neither ejected nor counted by the breaker; the attempt has neither status nor failure.
            var callers: (any Error)? = error as? RequestBodyError
            if callers == nil { callers = UpstreamFailure.refusal(in: error) }
            if let callers {
                log.append(failedAttempt(nil))
                throw callers
            }
            var failure = UpstreamFailure.classify(error, endpoint: endpoint)
            var callersDeadline = false
            if let deadline = context.deadline, deadline.hasPassed(on: ContinuousClock()) {
                failure.kind = .timeout
                // The caller's shorter budget ran out, not the policy's: the endpoint was not
                // too slow by the policy's measure, so it is not counted as failing.
                callersDeadline = deadline.origin == .caller
            } else if Task.isCancelled {
                // A hedged attempt another one beat is recorded as cancelled; one cancelled
                // because the caller went away is not (nor is an unhedged call's).
                log.cancelled(failedAttempt(nil))
                throw CancellationError()
            }
            // The caller was still sending its body (and its own deadline had not passed): it is
            // the caller's pace that failed the attempt, too slow for the policy's deadline or for
            // the upstream's patience. Not the endpoint's failure; the attempt has no failure.
            if !callersDeadline, let progress = request.bodyProgress, progress.isArriving {
                log.noteCallersBodyWasArriving()
                log.append(failedAttempt(nil))
                throw RequestBodyError(code: .incomplete, underlying: failure)
            }
            log.append(failedAttempt(failure.kind))
            if !callersDeadline { reportEndpoint(health.record(endpoint: index, success: false)) }
            throw failure
        }
    }
}

/// Where one attempt of a call is sent when it is not AsyncHTTPClient: the request as it would
/// go out (URL, method, headers with `Host` and trace context), the call's request (its path,
/// query and body), the endpoint chosen, and the attempt's deadline, which it must enforce.
struct AttemptTransport: Sendable {
    let execute:
        @Sendable (
            _ outbound: HTTPClientRequest,
            _ request: UpstreamRequest,
            _ endpoint: UpstreamEndpoint,
            _ deadline: Deadline?
        ) async throws -> HTTPClientResponse
}

/// The attempts of one call, appended from the attempts' tasks, and the endpoints it tried.
final class AttemptLog: Sendable {
    private struct State {
        var records: [AttemptRecord] = []
        var decisions: [ResilienceEvent] = []
        var tries: [Int: Int] = [:]
        var callersBodyWasArriving = false
        /// Attempts started, and running now (hedged calls).
        var started = 0
        var running = 0
        /// The number the latest hedge launch was given (it may be announced before it starts).
        var announced = 0
    }

    /// The log of the call the current task makes, for ``DecisionCollector``.
    @TaskLocal static var current: AttemptLog?

    private let storage = Mutex(State())
    /// When the call began: attempts' ``AttemptRecord/startOffset`` count from here.
    let start = ContinuousClock.now
    /// Whether attempts are numbered in the order they start (hedged calls, whose attempts
    /// overlap) rather than by the retry's count; the call's decisions are renumbered to match.
    let numbersAttemptsByStart: Bool

    init(numbersAttemptsByStart: Bool = false) {
        self.numbersAttemptsByStart = numbersAttemptsByStart
    }

    /// An attempt starts: its number (`attempt`, the retry's count, unless numbered by start)
    /// and whether another of the call's attempts is running (it is a hedge).
    func begin(attempt: Int) -> (number: Int, hedge: Bool) {
        storage.withLock { state in
            state.started += 1
            state.running += 1
            return (numbersAttemptsByStart ? state.started : attempt, state.running > 1)
        }
    }

    /// An attempt ended.
    func end() {
        storage.withLock { $0.running -= 1 }
    }

    func append(_ record: AttemptRecord) {
        storage.withLock { $0.records.append(record) }
    }

    /// An attempt cancelled before it got an answer. In a hedged call in which another attempt
    /// answered, it was beaten: recorded as ``AttemptRecord/abandoned``. Otherwise the call
    /// itself was cancelled (its caller went away): nothing is recorded, as for an unhedged call.
    /// (An attempt appends its answer before it returns, so before its rivals are cancelled.)
    func cancelled(_ attempt: AttemptRecord) {
        guard numbersAttemptsByStart else { return }
        storage.withLock { state in
            guard state.records.contains(where: { $0.status != nil }) else { return }
            var abandoned = attempt
            abandoned.abandoned = true
            state.records.append(abandoned)
        }
    }

    func append(_ decision: ResilienceEvent) {
        storage.withLock { $0.decisions.append(decision) }
    }

    /// `event` numbered as this call numbers its attempts: by start, the latest attempt started
    /// (a hedge's launch, the one it starts).
    func renumbered(_ event: ResilienceEvent) -> ResilienceEvent {
        guard numbersAttemptsByStart else { return event }
        var event = event
        if case .hedgeLaunched(_, let after) = event.kind {
            // Each launch its own number, even when an earlier one has not started yet.
            let number = storage.withLock { state in
                state.announced = max(state.announced, state.started) + 1
                return state.announced
            }
            event.kind = .hedgeLaunched(attempt: number, after: after)
            event.attempt = number
        } else {
            event.attempt = max(storage.withLock { $0.started }, 1)
        }
        return event
    }

    /// The attempts, in the order they started (a hedged call's end in any order).
    var records: [AttemptRecord] {
        let records = storage.withLock { $0.records }
        return numbersAttemptsByStart ? records.sorted { $0.number < $1.number } : records
    }

    /// Records that an attempt failed while the caller's streamed body was still arriving.
    func noteCallersBodyWasArriving() {
        storage.withLock { $0.callersBodyWasArriving = true }
    }

    /// Whether an attempt failed while the caller's streamed body was still arriving: the
    /// call's failure is the caller's (``RequestBodyError/Code/incomplete``).
    var callersBodyWasArriving: Bool { storage.withLock { $0.callersBodyWasArriving } }

    /// The endpoint of the latest attempt recorded.
    var lastEndpoint: UpstreamEndpoint? { storage.withLock { $0.records.last?.endpoint } }

    var decisions: [ResilienceEvent] { storage.withLock { $0.decisions } }

    /// The endpoint for the next attempt: the first in `order` (healthy ones first, in
    /// configured order) that this call has tried least, so every endpoint is tried once
    /// before any is tried again, however the order changes between attempts.
    ///
    /// Also the endpoints skipped because they are ejected (the last `ejected` of `order`):
    /// those that would have been chosen first had they not been ejected (tried as little,
    /// and earlier in configured order, or tried less). None when the chosen one is ejected
    /// too, and no allocation when nothing is ejected.
    func chooseEndpoint(from order: [Int], ejected: Int = 0) -> (chosen: Int, skipped: [Int]) {
        storage.withLock { state in
            var chosen = order[0]
            for index in order where state.tries[index, default: 0] < state.tries[chosen, default: 0] {
                chosen = index
            }
            var skipped: [Int] = []
            if ejected > 0 {
                let ejectedOnes = order.suffix(ejected)
                if !ejectedOnes.contains(chosen) {
                    let chosenTries = state.tries[chosen, default: 0]
                    for index in ejectedOnes.sorted() {
                        let tries = state.tries[index, default: 0]
                        if tries < chosenTries || (tries == chosenTries && index < chosen) { skipped.append(index) }
                    }
                }
            }
            state.tries[chosen, default: 0] += 1
            return (chosen, skipped)
        }
    }
}

extension UpstreamClient {
    /// The caller's idempotency key in `headers`: the value of the header the upstream reads
    /// keys from (``UpstreamPolicy/idempotencyHeader``), else of `Idempotency-Key`. Either may
    /// be a Structured Field string (`"8e03…"`) or bare; the quotes are removed. Nil if none
    /// (or empty).
    public func callerIdempotencyKey(in headers: HTTPFields) -> String? {
        for field in callerKeyFields {
            guard let value = headers[field] else { continue }
            let key = IdempotencyKey.unquote(value)
            if !key.isEmpty { return key }
        }
        return nil
    }

    /// `RateLimit-Policy` and `RateLimit` fields describing the limit that refused a call with
    /// `rate-limited`: the upstream's `rate_limit` (as a quota per refill window) or the
    /// provider's quota that is being paced. Nil for any other error.
    public func rateLimitFields(for error: ResilienceError) -> HTTPFields? {
        guard error.code == .rateLimited else { return nil }
        let policyStated: (quota: Int, window: Int)
        if error.strategy == pacer.name {
            policyStated = pacer.statedPolicy
        } else if error.strategy == policy.rateLimiterConfiguration?.name, let rate = policy.rateLimit {
            policyStated = RateLimitHeaders.policy(permitsPerSecond: rate.permitsPerSecond, burst: rate.burst)
        } else {
            return nil
        }
        return RateLimitHeaders.fields(
            policy: error.strategy,
            quota: policyStated.quota,
            window: policyStated.window,
            remaining: 0,
            reset: error.retryAfter ?? .seconds(1)
        )
    }

    /// Whether calls are being paced because the provider's quota is nearly spent.
    public var isPacingForQuota: Bool { pacer.isPacing }

    /// Whether the endpoint at `index` is ejected as an outlier now.
    public func isEjected(endpoint index: Int) -> Bool {
        health.isEjected(index)
    }

    /// How many times the endpoint at `index` has been ejected as an outlier since the client
    /// was made, counting each renewed ejection after a failed probe (a metric's counter).
    public func ejectionCount(endpoint index: Int) -> Int {
        health.ejectionCount(index)
    }

    /// Calls `handler` on the calling task after an endpoint (its index in
    /// ``UpstreamPolicy/endpoints``) is ejected as an outlier (`true`) or re-admitted after a
    /// success (`false`); replaces any handler set before. The health model's alerts use it.
    public func onEndpointChange(_ handler: @escaping @Sendable (_ endpoint: Int, _ ejected: Bool) -> Void) {
        endpointHandler.withLock { $0 = handler }
    }

    /// Tells the handler, if any, of an ejection or re-admission (rare: no cost otherwise).
    func reportEndpoint(_ change: EndpointHealth<ContinuousClock>.Change?) {
        guard let change, let handler = endpointHandler.withLock({ $0 }) else { return }
        handler(change.endpoint, change.ejected)
    }
}

/// Keeps each decision with the call that caused it (the current task's ``AttemptLog``), then
/// passes it on to the client's sink, if any.
struct DecisionCollector: ResilienceEventSink {
    let next: (any ResilienceEventSink)?
    /// When tracing, each decision is also an event on the active span.
    let tracing: UpstreamTracing?

    func receive(_ event: ResilienceEvent) {
        var event = event
        if let log = AttemptLog.current {
            event = log.renumbered(event)
            log.append(event)
        }
        tracing?.annotate(event)
        next?.receive(event)
    }
}

extension UpstreamClient {
    /// The endpoint of the latest attempt of the call the current task makes, if any: for
    /// sinks that log a decision with the endpoint it concerns.
    public static var currentEndpoint: UpstreamEndpoint? {
        AttemptLog.current?.lastEndpoint
    }
}
