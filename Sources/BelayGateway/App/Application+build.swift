public import Belay
public import BelayHTTP
import BelayStore
import Foundation
import HTTPTypes
import Hummingbird
public import Logging
import NIOCore
public import ServiceLifecycle
public import Tracing
import UnixSignals

/// Builds the gateway application for `config`: the proxy, the durable delivery queue
/// and its workers, alerts, health and management routes, and `GET /metrics`.
///
/// Opens (and migrates) the store first, so the application is ready once it serves.
///
/// It is a `Service`. On graceful shutdown (SIGTERM), `/readyz` answers `503 draining` at once
/// while new connections are still served for `server.drain`; then the listener
/// closes, requests in flight finish (a connection still busy after the longest policy
/// `total` timeout, plus a second, is closed), and the services stop in reverse order.
///
/// ```swift
/// let app = try await buildApplication(config: config, logger: logger)
/// try await ServiceGroup(services: [app], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
/// - Parameters:
///   - config: a validated configuration.
///   - logger: where the gateway logs.
///   - eventSink: also receives every resilience decision (metrics, say), if given; the
///     gateway logs each decision to `logger` in any case (`info`, transitions `notice`).
///   - observers: also told about every proxied request (``ProxyExchange``), if given.
///   - tracer: traces each proxied request and attempt; by default the bootstrapped tracer,
///     or none (no span cost) when that is the no-op tracer. See ``Gateway/init(config:logger:eventSink:observers:tracer:now:)``.
///   - reload: how the config is re-read for a reload (``ConfigReloader``, `POST /v1/admin/reload`)
///     and which signals reload it (`serve` passes SIGHUP). Nil: a reload is refused (there is no
///     file to re-read).
///   - onServerRunning: called with the bound port once the server listens.
/// With `server.tls`, the listener speaks TLS only (``GatewayConfig/ServerTLS``). Every
/// ``GatewayConfig/warnings`` entry (`tls.verify: false`, a certificate near its expiry) is
/// logged at `warning` first.
/// - Throws: `ConfigurationError` for an invalid policy, ``StoreError`` when the store
///   cannot be opened or migrated, `NIOSSLError` when the TLS certificate and key no longer
///   load (the files changed since the config was read), ``ManagementContract/Drift`` when
///   a route and the OpenAPI document disagree (a programming error).
public func buildApplication(
    config: GatewayConfig,
    logger: Logger,
    eventSink: (any ResilienceEventSink)? = nil,
    observers: [any ProxyObserver] = [],
    tracer: (any Tracer)? = UpstreamTracing.bootstrappedTracer,
    reload: ReloadOptions? = nil,
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws -> some Service {
    // Every record the gateway and its services log is redacted first, by one redactor that a
    // reload teaches the new file's secrets.
    let redactor = Redactor(config: config)
    let logger = redactor.redacting(logger)
    let store = try await openStore(config.storage, logger: logger)
    let audit = makeAuditTrail(config: config, store: store, logger: logger)
    let metrics = GatewayMetrics.make(for: config)
    let alerter = Alerter(
        routes: config.alerts,
        wall: .system(ContinuousClock()),
        source: config.server.instanceName,
        logger: logger
    )
    let monitoring = HealthMonitoring(config: config, alert: { alerter.raise($0) })
    let wall = WallClock.system(ContinuousClock())
    var judging = IncidentTracker<ContinuousClock>.Configuration()
    judging.closeAfter = config.incidents.closeAfter
    let incidents = IncidentTracker(store: store, configuration: judging, wall: wall, logger: logger)
    alerter.tap { incidents.heard($0) }
    let gateway = try Gateway(
        config: config,
        logger: logger,
        redactor: redactor,
        eventSink: monitoring.eventSink(with: GatewayMetrics.eventSink(eventSink, metrics)),
        observers: observers + [monitoring.health, incidents] + (metrics.map { [$0] } ?? [])
            + (audit.observer.map { [$0] } ?? []),
        tracer: tracer
    )
    let prober = monitoring.attach(to: gateway, logger: logger)
    var workerConfiguration = DeliveryWorker<ContinuousClock>.Configuration()
    workerConfiguration.concurrency = config.deliveries.concurrency
    workerConfiguration.keyRetention = config.deliveries.keyRetention
    // A lease outlives the longest call an upstream's policy allows, even counted from its last
    // renewal (every third of the lease): on a graceful stop, attempts in flight finish after the
    // loop that renews them has stopped.
    let longest = config.upstreams.map(\.policy.totalTimeout).max() ?? .seconds(10)
    workerConfiguration.lease = longest * 3 / 2 + .seconds(20)
    // Webhook forwards go through the same queue, prepared at each send: the resource's
    // current state fetched (verify-then-act), then signed with the source's forward_secret.
    let forwarding = WebhookForwarding(config: config, clients: { gateway.clients }, now: { wall.now() })
    let sender = UpstreamDeliverySender(
        lookup: {
            let runtime = gateway.runtime
            return runtime.clients.merging(runtime.forwarders) { first, _ in first }
        },
        prepare: { await forwarding.prepare($0) }
    )
    // The worker's upstreams: every configured one, and each forwarding source's (in force).
    let served = { @Sendable (config: GatewayConfig) in
        config.upstreams.map(\.name) + gateway.forwarders.keys.sorted()
    }
    let worker = DeliveryWorker(
        store: store,
        sender: sender,
        planner: DeliveryPlanner(config),
        configuration: workerConfiguration,
        upstreams: served(config),
        wall: wall,
        owner: "\(config.server.instanceName)/worker-\(UUID().uuidString.lowercased().prefix(8))",
        alert: { alerter.raise($0) },
        recorded: { delivery, status, attempted in
            metrics?.deliveryRecorded(upstream: delivery.upstream, status: status, attempted: attempted)
            incidents.deliveryRecorded(
                upstream: delivery.upstream,
                id: delivery.id,
                status: status,
                attempted: attempted,
                at: wall.now()
            )
        },
        logger: logger
    )
    let retention = RetentionService(
        store: store,
        configuration: .init(config.retention),
        wall: wall,
        logger: logger
    )
    let deliveries = DeliveryService(
        store: store,
        config: config,
        redactor: redactor,
        wall: wall,
        wake: { worker.wake() },
        pause: { sender.pause(of: $0) },
        alert: { alerter.raise($0) }
    )

    gateway.attachWriteQueue(
        accept: { try await deliveries.queue($0) },
        find: { upstream, consumer, key in
            try await store.delivery(upstream: upstream, consumer: consumer, callerKey: key)
                .map { ($0.delivery, $0.fingerprint) }
        }
    )
    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: ProxyResponder(gateway: gateway))
    router.get("healthz") { _, _ in Response.json(Array(#"{"status":"ok"}"#.utf8)) }
    // SIGTERM turns /readyz 503 for server.drain before the listener closes.
    let drain = Drain(period: config.server.drain, clock: ContinuousClock(), logger: logger)
    let instance = config.server.instanceName
    router.get("readyz") { _, _ in drain.readiness(instance: instance) }
    let concurrencyHistory = StatusService.concurrencyHistory(of: gateway)
    let drills = DrillService(
        switches: { gateway.drillSwitch($0) },
        wall: wall,
        logger: logger,
        alert: { alerter.raise($0) }
    )
    router.addStatusRoutes(
        StatusService(
            gateway: gateway,
            health: monitoring.health,
            store: store,
            recentAlerts: { alerter.recentAlerts },
            concurrencyHistory: concurrencyHistory,
            drill: { drills.current($0) }
        )
    )
    router.addDrillRoutes(drills, gateway: gateway)
    incidents.attach(
        upstreams: { gateway.config.upstreams.map(\.name) },
        health: { name in
            gateway.clients[name].flatMap { monitoring.health.report(name, live: StatusService.live($0)) }
        },
        drill: { drills.current($0) != nil }
    )
    router.addIncidentRoutes(IncidentService(store: store), gateway: gateway)
    router.addDeliveryRoutes(deliveries, gateway: gateway)
    let webhooks = WebhookService(
        store: store,
        config: config,
        redactor: redactor,
        wall: wall,
        wake: { worker.wake() },
        logger: logger,
        observe: { metrics?.webhook(source: $0, $1) },
        alert: { alerter.raise($0) }
    )
    router.addWebhookRoutes(webhooks, gateway: gateway)
    router.addMetricsRoute(
        metrics,
        gateway: gateway,
        store: store,
        auditLosses: { (audit.recorder.droppedCount, audit.recorder.failedCount) },
        health: {
            gateway.clients.compactMap { name, client in
                monitoring.health.report(name, live: StatusService.live(client))
            }
        },
        now: { wall.now() }
    )
    router.addAuditRoutes(audit.service, gateway: gateway)
    // Read by each new connection: a reload can put a renewed certificate here.
    let tls = try config.server.tls.map { try ServerTLSContext($0) }
    let reloader = ConfigReloader(
        gateway: gateway,
        source: reload?.source,
        tls: tls,
        hook: { monitoring.hook($0) },
        // What reads webhooks and alerts outside the gateway's runtime takes the new ones.
        apply: { config in
            webhooks.reload(config.webhooks)
            forwarding.reload(config.webhooks)
            alerter.replace(routes: config.alerts)
            monitoring.reload(config)
            worker.serve(upstreams: served(config))
        },
        metrics: metrics,
        // Trapped now, before the server listens: a signal sent once it serves never kills it.
        signals: (reload?.signals ?? []).isEmpty ? nil : await UnixSignalsSequence(trapping: reload?.signals ?? []),
        clock: ContinuousClock(),
        now: { wall.now() },
        logger: logger
    )
    router.addReloadRoute(reloader, gateway: gateway)
    router.addContractRoute()
    // The OpenAPI document describes exactly these routes, or the gateway does not start.
    try ManagementContract.check(served: router.contractOperations)
    // Last, so that it sees exactly the requests no route took.
    router.add(middleware: UnmatchedRouteMiddleware(routes: router.routeTable))
    let listen = config.server.listen
    // A connection still busy this long after the listener closed is closed: every proxied call
    // has ended by then (its policy's total timeout), and its answer has had a second to go out.
    let inFlightBound = longest + .seconds(1)
    for warning in config.warnings {
        logger.warning(
            "config warning: \(warning.path) \(warning.message)",
            metadata: ["belay.config.path": "\(warning.path)"]
        )
    }
    let application = Application(
        router: router,
        server: .http1(
            boundToLoopsOf: EventLoopGroupProvider.singleton.eventLoopGroup,
            server: config.server,
            inFlightBound: inFlightBound,
            tls: tls
        ),
        configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "belay"),
        // Started in this order; stopped in reverse, after the HTTP server has drained:
        // the limits' history stops, retention stops, drills end, objectives stop being judged, probes stop,
        // incidents write what they counted, the worker lets attempts in flight finish, then alerts flush, then the audit trail writes what the server observed, then clients close.
        // The store closes last (PostgreSQL: its connections), after everything that writes to it.
        // The reloader, last, stops first: a client it replaced and has not closed yet is closed by
        // the gateway's stop.
        services: [
            StoreLifetime(store: store), gateway, audit.recorder, alerter, worker, incidents, prober,
            monitoring.evaluator, drills, retention, concurrencyHistory,
        ]
            + ((store as? any SharedStore).map { [DeliveryWakeups(store: $0, wake: { worker.wake() })] } ?? [])
            + [reloader],
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? listen.port) },
        logger: logger
    )
    // On graceful shutdown the drain comes first; the server and the services above stop after it.
    return application.stoppedAfter(drain, logger: logger)
}

/// Opens (and migrates) the configured store.
func openStore(
    _ storage: GatewayConfig.Storage,
    logger: Logger
) async throws -> any DeliveryStore & WebhookStore & AuditStore & IncidentStore {
    switch storage {
    case .sqlite(let path):
        return try SQLiteStore(path: path)
    case .postgres(let url):
        let location = try PostgresLocation(url: url.value)
        var storeLogger = logger
        storeLogger[metadataKey: "belay.store"] = "postgres"
        return try await PostgresStore.open(location, logger: storeLogger)
    }
}

extension Gateway {
    /// A refusal of a management route, as a response.
    struct Refusal: Error {
        var response: Response
    }

    /// The caller, if it may use one of `scopes` and is within its rate limit (every
    /// authenticated route counts against a consumer's `rate_limit`, not only `/proxy`);
    /// otherwise the problem response: 401, 403 or 429 with `Retry-After` and `RateLimit`.
    ///
    /// With a `basicRealm` (pages a browser opens), the key may also come as the password of
    /// `Authorization: Basic`, and a refusal asks for it with `WWW-Authenticate: Basic`, so
    /// the browser prompts for it and then sends it with the page's own requests.
    /// Routes call it through ``ScopeMiddleware``.
    func authorize(
        _ request: Request,
        anyOf scopes: [String],
        basicRealm: String?,
        requestID: String
    ) -> Result<ConsumerAuth.Identity, Refusal> {
        switch auth.identify(request.headers, acceptBasic: basicRealm != nil) {
        case .failure:
            let challenge = basicRealm.map { #"Basic realm="\#($0)", charset="UTF-8""# } ?? "Bearer"
            let how =
                basicRealm == nil
                ? "send your API key as 'Authorization: Bearer <key>'"
                : "send your API key as 'Authorization: Bearer <key>', or as the password when the browser asks"
            return .failure(
                Refusal(
                    response: .problem(
                        ProblemDetails(.unauthorized, detail: how, requestID: requestID, field: "Authorization"),
                        headers: [.wwwAuthenticate: challenge]
                    )
                )
            )
        case .success(let identity):
            // Charged before the scope is checked: refused calls cost a permit too.
            if let (detail, headers) = Self.rateLimitRefusal(identity) {
                return .failure(
                    Refusal(
                        response: .problem(
                            ProblemDetails(.rateLimited, detail: detail, requestID: requestID),
                            headers: headers
                        )
                    )
                )
            }
            guard scopes.contains(where: identity.allows) else {
                return .failure(
                    Refusal(
                        response: .problem(
                            ProblemDetails(
                                .forbidden,
                                detail:
                                    "consumer '\(identity.name)' lacks the scope \(scopes.joined(separator: " or "))",
                                requestID: requestID
                            )
                        )
                    )
                )
            }
            return .success(identity)
        }
    }

    /// Whose records a caller may see: nil (everyone's) for `admin` and in open mode, else the
    /// consumer's own name.
    func viewer(_ identity: ConsumerAuth.Identity) -> String? {
        identity.allows("admin") ? nil : identity.name
    }

    /// Takes a permit of the consumer's rate limit; when none is left, the refusal's detail and
    /// its `Retry-After`, `RateLimit` and `RateLimit-Policy` headers. Nil: within the limit.
    static func rateLimitRefusal(_ identity: ConsumerAuth.Identity) -> (String, HTTPFields)? {
        guard let limiter = identity.limiter, let wait = limiter.tryAcquire() else { return nil }
        let stated = RateLimitHeaders.policy(
            permitsPerSecond: limiter.configuration.permitsPerSecond,
            burst: limiter.configuration.burst
        )
        var headers = RateLimitHeaders.fields(
            policy: "consumer",
            quota: stated.quota,
            window: stated.window,
            remaining: 0,
            reset: wait
        )
        headers[.retryAfter] = String(wait.wholeSecondsRoundedUp)
        return ("consumer '\(identity.name)' exceeded its rate limit", headers)
    }
}
