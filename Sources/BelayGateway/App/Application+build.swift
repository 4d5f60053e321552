public import Belay
import BelayHTTP
import BelayStore
import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore

/// Builds the gateway application for `config`: the proxy, the durable delivery queue
/// and its workers, alerts, health and management routes.
///
/// Opens (and migrates) the store first, so the application is ready once it serves.
///
/// ```swift
/// let app = try buildApplication(config: config, logger: logger)
/// try await app.runService()
/// ```
/// - Parameters:
///   - config: a validated configuration.
///   - logger: where the gateway logs.
///   - eventSink: also receives every resilience decision (metrics, say), if given; the
///     gateway logs each decision to `logger` in any case (`info`, transitions `notice`).
///   - observers: also told about every proxied request (``ProxyExchange``), if given.
///   - onServerRunning: called with the bound port once the server listens.
/// - Throws: `ConfigurationError` for an invalid policy, ``StoreError`` when the store
///   cannot be opened or migrated.
public func buildApplication(
    config: GatewayConfig,
    logger: Logger,
    eventSink: (any ResilienceEventSink)? = nil,
    observers: [any ProxyObserver] = [],
    onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let store = try openStore(config.storage)
    let audit = makeAuditTrail(config: config, store: store, logger: logger)
    let recorders: [any ProxyObserver] = audit.recorder.map { [$0] } ?? []
    let gateway = try Gateway(config: config, logger: logger, eventSink: eventSink, observers: observers + recorders)
    let wall = WallClock.system(ContinuousClock())
    let alerter = Alerter(sinks: config.alerts.map(\.url), clock: ContinuousClock(), logger: logger)
    var workerConfiguration = DeliveryWorker<ContinuousClock>.Configuration()
    workerConfiguration.concurrency = config.deliveries.concurrency
    workerConfiguration.keyRetention = config.deliveries.keyRetention
    // A lease outlives the longest call an upstream's policy allows.
    let longest = config.upstreams.map(\.policy.totalTimeout).max() ?? .seconds(10)
    workerConfiguration.lease = longest + .seconds(20)
    // Webhook forwards go through the same queue, signed at each send with the source's
    // forward_secret (Standard Webhooks), their webhook-id being the event's id.
    let signers = Dictionary(
        config.webhooks.compactMap { source in
            source.forwardSecret.flatMap(StandardWebhooksSigner.init(secret:)).map {
                (Gateway.forwardUpstream(source.name), $0)
            }
        }
    ) { first, _ in first }
    let sender = UpstreamDeliverySender(clients: gateway.clients.merging(gateway.forwarders) { first, _ in first }) {
        delivery in
        guard let signer = signers[delivery.upstream] else { return [] }
        return signer.sign(id: delivery.idempotencyKey, timestamp: wall.now(), body: delivery.body ?? Data())
            .map { DeliveryHeader(name: $0.name.canonicalName, value: $0.value) }
    }
    let worker = DeliveryWorker(
        store: store,
        sender: sender,
        planner: DeliveryPlanner(config.deliveries),
        configuration: workerConfiguration,
        upstreams: config.upstreams.map(\.name) + gateway.forwarders.keys.sorted(),
        wall: wall,
        alert: { alerter.raise($0) },
        logger: logger
    )
    let deliveries = DeliveryService(
        store: store,
        config: config,
        wall: wall,
        wake: { worker.wake() },
        pause: { sender.pause(of: $0) }
    )

    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: ProxyResponder(gateway: gateway))
    router.get("healthz") { _, _ in Response.json(Array(#"{"status":"ok"}"#.utf8)) }
    router.get("readyz") { _, _ in Response.json(Array(#"{"status":"ready"}"#.utf8)) }
    router.get("v1/upstreams") { request, _ in
        gateway.authorized(request, scope: "upstreams:read") ?? Response.json(gateway.upstreamsJSON())
    }
    router.get("v1/upstreams/:name") { request, context in
        if let refusal = gateway.authorized(request, scope: "upstreams:read") { return refusal }
        let name = context.parameters.get("name") ?? ""
        guard let json = gateway.upstreamJSON(name) else {
            return .problem(
                ProblemDetails(
                    .notFound,
                    detail: "no upstream named '\(name)' is configured",
                    requestID: Gateway.requestID(from: request.headers)
                )
            )
        }
        return Response.json(json)
    }
    router.addDeliveryRoutes(deliveries, gateway: gateway)
    let webhooks = WebhookService(store: store, config: config, wall: wall, wake: { worker.wake() })
    router.addWebhookRoutes(webhooks, gateway: gateway)
    router.addAuditRoutes(audit.service, gateway: gateway)
    // Last, so that it sees exactly the requests no route took.
    router.add(middleware: UnmatchedRouteMiddleware(routes: router.routeTable))
    let listen = config.server.listen
    return Application(
        router: router,
        server: .http1(boundToLoopsOf: EventLoopGroupProvider.singleton.eventLoopGroup),
        configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "belay"),
        // Started in this order; stopped in reverse, after the HTTP server has drained:
        // the worker lets attempts in flight finish, then alerts flush, then the audit trail
        // writes what the server observed, then clients close.
        services: [gateway] + (audit.recorder.map { [$0] } ?? []) + [alerter, worker],
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? listen.port) },
        logger: logger
    )
}

/// Opens the configured store.
func openStore(_ storage: GatewayConfig.Storage) throws -> any DeliveryStore & WebhookStore & AuditStore {
    switch storage {
    case .sqlite(let path):
        return try SQLiteStore(path: path)
    case .postgres:
        throw StoreError(.open, "PostgreSQL storage is not available in this version; use sqlite:<path>")
    }
}

extension Gateway {
    /// A problem response if the caller may not use `scope`; nil if it may.
    func authorized(_ request: Request, scope: String) -> Response? {
        let requestID = Self.requestID(from: request.headers)
        switch auth.identify(request.headers) {
        case .failure:
            return .problem(
                ProblemDetails(
                    .unauthorized,
                    detail: "send your API key as 'Authorization: Bearer <key>'",
                    requestID: requestID,
                    field: "Authorization"
                ),
                headers: [.wwwAuthenticate: "Bearer"]
            )
        case .success(let identity) where !identity.allows(scope):
            return .problem(
                ProblemDetails(
                    .forbidden,
                    detail: "consumer '\(identity.name)' lacks the scope \(scope)",
                    requestID: requestID
                )
            )
        case .success:
            return nil
        }
    }

    func upstreamSummary(_ name: String) -> [String: Any]? {
        guard let client = clients[name] else { return nil }
        let usage = client.budget.usage
        return [
            "name": name,
            "breaker": client.breaker.state.rawValue,
            "endpoints": client.policy.endpoints.enumerated().map { index, endpoint in
                ["url": endpoint.url(path: "", query: nil), "ejected": client.isEjected(endpoint: index)]
                    as [String: Any]
            },
            "retry_budget": ["requests": usage.requests, "retries": usage.retries],
            "quota_pacing": client.isPacingForQuota,
        ]
    }

    func upstreamsJSON() -> Data {
        let list = config.upstreams.compactMap { upstreamSummary($0.name) }
        return
            (try? JSONSerialization.data(
                withJSONObject: ["upstreams": list],
                options: [.sortedKeys, .withoutEscapingSlashes]
            )) ?? Data()
    }

    func upstreamJSON(_ name: String) -> Data? {
        guard let summary = upstreamSummary(name) else { return nil }
        return try? JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .withoutEscapingSlashes])
    }
}
