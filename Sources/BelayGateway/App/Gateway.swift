import AsyncHTTPClient
public import Belay
public import BelayHTTP
public import BelayStore
public import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
import Synchronization
public import Tracing

/// The gateway's services and state: one policy-wrapped client per upstream, consumers.
///
/// It is a `Service`: it runs until graceful shutdown, then closes the upstream clients
/// (after the HTTP server, which stops first, has drained its requests).
public final class Gateway: Service, Sendable {
    /// What a request runs under: the configuration in force, its upstream clients and its
    /// consumers. A config reload replaces it whole (``install(_:retiring:)``); a request reads
    /// it once (``runtime``) and finishes under the one it read.
    struct Runtime: Sendable {
        /// The configuration in force.
        var config: GatewayConfig
        /// One client per configured upstream, by name.
        var clients: [String: UpstreamClient]
        /// One client per webhook source that forwards, by its delivery upstream name.
        var forwarders: [String: UpstreamClient]
        /// Who may call.
        var auth: ConsumerAuth
    }

    /// The runtime in force.
    private let state: Mutex<Runtime>
    /// Clients a reload replaced, not yet shut down: calls that began before the reload may
    /// still be using them. ``shutDownRetired(_:)`` closes one; ``run()`` closes what is left.
    private let retired = Mutex<[ObjectIdentifier: UpstreamClient]>([:])
    /// The configuration in force.
    public var config: GatewayConfig { state.withLock { $0.config } }
    /// One client per configured upstream, by name.
    public var clients: [String: UpstreamClient] { state.withLock { $0.clients } }
    /// One client per webhook source that forwards, by its delivery upstream name
    /// (`webhook:<source>`); never reachable through the proxy.
    public var forwarders: [String: UpstreamClient] { state.withLock { $0.forwarders } }
    /// Who may call.
    public var auth: ConsumerAuth { state.withLock { $0.auth } }
    /// The whole runtime in force, read at once.
    var runtime: Runtime { state.withLock { $0 } }
    /// Where the gateway logs, every record redacted by ``redactor``.
    let logger: Logger
    /// What is kept out of logs and error bodies.
    public let redactor: Redactor
    /// The tracer proxied requests and their attempts are traced with; nil: no spans at all.
    let tracer: (any Tracer)?
    /// Also receives every resilience decision of the upstream clients, if given.
    private let eventSink: (any ResilienceEventSink)?
    /// Everyone told about each proxied request (metrics, the audit trail, the health model).
    let observers: [any ProxyObserver]
    /// The calendar time now, for the records observers get.
    let now: @Sendable () -> Date
    /// The upstreams' circuit breakers and adaptive limits, by upstream name: a reload that
    /// leaves one's options as they were keeps it, and so its state.
    private let registry = ResilienceRegistry<ContinuousClock>()
    /// Each upstream's failure-drill switch, by name, shared by its clients across reloads.
    private let drillSwitches: DrillSwitches
    /// An executor for each event loop of the upstream clients' group, by loop identity.
    private let executors: [ObjectIdentifier: EventLoopExecutor]
    /// Where a write queued by `degrade: { writes: queue }` goes, once attached.
    private let queue = Mutex<QueuedWrites.Queue?>(nil)

    /// Gives the proxy the delivery queue, for upstreams with `degrade: { writes: queue }`:
    /// `accept` takes a write (``DeliveryService/queue(_:)``), `find` finds one a consumer queued
    /// under its key for an upstream, with its fingerprint. Until then no write is queued.
    public func attachWriteQueue(
        accept: @escaping @Sendable (NewDelivery) async throws -> AcceptOutcome,
        find: @escaping @Sendable (String, String, String) async throws -> (Delivery, String)?
    ) {
        queue.withLock { $0 = QueuedWrites.Queue(accept: accept, find: find) }
    }

    /// The delivery queue, if attached.
    var writeQueue: QueuedWrites.Queue? { queue.withLock { $0 } }

    /// Builds every upstream client; throws if a policy's options are invalid.
    ///
    /// Every resilience decision (retry, timeout, rejection, breaker transition) is logged to
    /// `logger` through a ``LoggingEventSink``: at `info`, transitions at `notice`, with
    /// `belay.request.id` and `belay.upstream`; `eventSink`, if given, receives them too.
    ///
    /// `observers` are told about every proxied request (``ProxyExchange``); `now` reads the
    /// calendar time for them.
    ///
    /// `tracer` traces each proxied request (a server span, child of the caller's `traceparent`)
    /// and each attempt (a client span whose context is sent upstream); by default the tracer
    /// bootstrapped in `InstrumentationSystem`, or none (no span cost at all) when that is the
    /// no-op tracer. Records written to `logger` are redacted first, by `redactor` (by default
    /// the config's ``Redactor``; a reload teaches it the new config's secrets).
    public init(
        config: GatewayConfig,
        logger: Logger,
        redactor: Redactor? = nil,
        eventSink: (any ResilienceEventSink)? = nil,
        observers: [any ProxyObserver] = [],
        tracer: (any Tracer)? = UpstreamTracing.bootstrappedTracer,
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws(ConfigurationError) {
        let redactor = redactor ?? Redactor(config: config)
        let logger = redactor.redacting(logger)
        self.logger = logger
        self.redactor = redactor
        self.tracer = tracer
        self.eventSink = eventSink
        self.observers = observers
        self.now = now
        self.executors = EventLoopExecutor.table(for: HTTPClient.defaultEventLoopGroup)
        let switches = DrillSwitches()
        self.drillSwitches = switches
        var clients: [String: UpstreamClient] = [:]
        for upstream in config.upstreams {
            clients[upstream.name] = try Self.client(
                upstream.policy,
                logger,
                eventSink,
                tracer,
                registry.shared,
                drills: switches.switch(upstream.name)
            )
        }
        var forwarders: [String: UpstreamClient] = [:]
        for source in config.webhooks {
            guard let policy = Self.forwardPolicy(for: source) else { continue }
            forwarders[policy.name] = try Self.forwarder(policy, source: source.name, logger, tracer)
        }
        self.state = Mutex(
            Runtime(
                config: config,
                clients: clients,
                forwarders: forwarders,
                auth: try ConsumerAuth(consumers: config.consumers)
            )
        )
    }

    /// The client of one upstream's policy, its decisions logged and sent to `eventSink`;
    /// its breaker and adaptive limit from `shared`.
    private static func client(
        _ policy: UpstreamPolicy,
        _ logger: Logger,
        _ eventSink: (any ResilienceEventSink)?,
        _ tracer: (any Tracer)?,
        _ shared: ResilienceRegistry<ContinuousClock>.Shared,
        drills: FaultDrillSwitch
    ) throws(ConfigurationError) -> UpstreamClient {
        let logging = decisionLog(logger, "belay.upstream", policy.name, correlation: "belay.request.id")
        let sink: any ResilienceEventSink = eventSink.map { MultiplexEventSink([logging, $0]) } ?? logging
        return try UpstreamClient(
            policy: policy,
            eventSink: sink,
            tracing: tracer.map { UpstreamTracing(tracer: $0, correlationAttribute: "belay.request.id") },
            shared: shared,
            drills: drills
        )
    }

    /// The client of one webhook source's forwards (``forwardPolicy(for:)``), its decisions logged.
    private static func forwarder(
        _ policy: UpstreamPolicy,
        source: String,
        _ logger: Logger,
        _ tracer: (any Tracer)?
    ) throws(ConfigurationError) -> UpstreamClient {
        try UpstreamClient(
            policy: policy,
            eventSink: decisionLog(logger, "belay.webhook.source", source, correlation: "belay.delivery.id"),
            tracing: tracer.map { UpstreamTracing(tracer: $0, correlationAttribute: "belay.delivery.id") }
        )
    }

    /// The runtime `config` would run under, and the running clients it no longer uses.
    ///
    /// An upstream whose config is unchanged keeps its client (its breaker, retry budget,
    /// bulkhead, cache and connections); a changed one gets a new client, which keeps the old
    /// one's circuit breaker and adaptive limit (their state) when their options are unchanged
    /// (through the registry; new ones are stored only on ``install(_:)``). A webhook source
    /// whose `forward_to` is unchanged keeps its forwarder; a new or changed one gets a new
    /// forwarder, and a removed source's is no longer used. Nothing is installed; on a failure, the clients already made for
    /// `config` are in its `made`, to be shut down.
    func prepare(_ config: GatewayConfig) -> Result<Prepared, PrepareFailure> {
        let running = runtime
        let shared = registry.stage()
        var clients: [String: UpstreamClient] = [:]
        var made: [UpstreamClient] = []
        var replaced: [UpstreamClient] = []
        var issues: [ConfigurationError.Issue] = []
        for upstream in config.upstreams {
            let old = running.clients[upstream.name]
            if let old, running.config.upstream(named: upstream.name) == upstream {
                clients[upstream.name] = old
                continue
            }
            do {
                let client = try Self.client(
                    upstream.policy,
                    logger,
                    eventSink,
                    tracer,
                    shared,
                    drills: drillSwitches.switch(upstream.name)
                )
                clients[upstream.name] = client
                made.append(client)
                if let old { replaced.append(old) }
            } catch {
                issues += error.issues
            }
        }
        var forwarders: [String: UpstreamClient] = [:]
        for source in config.webhooks {
            guard let policy = Self.forwardPolicy(for: source) else { continue }
            let old = running.forwarders[policy.name]
            let before = running.config.webhooks.first { $0.name == source.name }
            if let old, before?.forwardTo == source.forwardTo {
                forwarders[policy.name] = old
                continue
            }
            do {
                let client = try Self.forwarder(policy, source: source.name, logger, tracer)
                forwarders[policy.name] = client
                made.append(client)
            } catch {
                issues += error.issues
            }
        }
        replaced += running.forwarders.values.filter { old in !forwarders.values.contains { $0 === old } }
        let auth: ConsumerAuth
        do {
            auth = try ConsumerAuth(consumers: config.consumers)
        } catch {
            return .failure(PrepareFailure(issues: issues + error.issues, made: made))
        }
        guard issues.isEmpty else { return .failure(PrepareFailure(issues: issues, made: made)) }
        let next = Runtime(config: config, clients: clients, forwarders: forwarders, auth: auth)
        return .success(Prepared(runtime: next, replaced: replaced, shared: shared))
    }

    /// A runtime ``prepare(_:)`` built, to ``install(_:)``.
    struct Prepared: Sendable {
        /// The runtime to put in force.
        var runtime: Runtime
        /// The running clients it no longer uses.
        var replaced: [UpstreamClient]
        /// The breakers and limits its clients were made with, for the registry.
        var shared: ResilienceRegistry<ContinuousClock>.Shared
    }

    /// Why ``prepare(_:)`` could not build a runtime, and the clients it made before it found out.
    struct PrepareFailure: Error {
        /// Every problem found.
        var issues: [ConfigurationError.Issue]
        /// Clients made for the refused config: shut them down.
        var made: [UpstreamClient]
    }

    /// Makes `prepared`'s runtime the one new requests run under, and stores its breakers and
    /// limits by upstream name (forgetting those of upstreams it no longer has); the clients it
    /// replaced are kept until ``shutDownRetired(_:)`` (or the gateway's stop) closes them.
    func install(_ prepared: Prepared) {
        registry.commit(prepared.shared)
        registry.removeShared(except: Set(prepared.runtime.config.upstreams.map(\.name)))
        retire(prepared.replaced)
        state.withLock { $0 = prepared.runtime }
    }

    /// Keeps `clients` (no longer, or never, in force) until ``shutDownRetired(_:)`` or the
    /// gateway's stop closes them.
    func retire(_ clients: [UpstreamClient]) {
        retired.withLock { retired in
            for client in clients { retired[ObjectIdentifier(client)] = client }
        }
    }

    /// Shuts `client` down if it is still retired (not yet closed).
    func shutDownRetired(_ client: UpstreamClient) async {
        guard retired.withLock({ $0.removeValue(forKey: ObjectIdentifier(client)) }) != nil else { return }
        try? await client.shutdown()
    }

    /// The executor that runs work on `eventLoop`, if it is one of the upstream clients' loops
    /// (a real server's are; a test's embedded loop is not).
    func executor(for eventLoop: any EventLoop) -> EventLoopExecutor? {
        executors[ObjectIdentifier(eventLoop)]
    }

    public func run() async throws {
        try? await gracefulShutdown()
        let running = runtime
        for client in running.clients.values {
            try? await client.shutdown()
        }
        for client in running.forwarders.values {
            try? await client.shutdown()
        }
        for client in retired.withLock({ Array($0.values) }) {
            await shutDownRetired(client)
        }
    }

    /// Logs a client's resilience decisions at `info` (transitions at `notice`), tagged with
    /// `key: value`, correlated by `correlation` (the request or delivery id) and with the
    /// endpoint of the call's latest attempt (``DecisionLogSink``).
    private static func decisionLog(
        _ logger: Logger,
        _ key: String,
        _ value: String,
        correlation: String
    ) -> DecisionLogSink {
        var tagged = logger
        tagged[metadataKey: key] = .string(value)
        return DecisionLogSink(logger: tagged, correlationKey: correlation)
    }

    /// The delivery upstream name of a webhook source's forwards.
    static func forwardUpstream(_ source: String) -> String { "webhook:\(source)" }

    /// The webhook source whose forwards go to delivery upstream `upstream`, if it is one.
    static func webhookSource(ofForward upstream: String) -> String? {
        upstream.hasPrefix("webhook:") ? String(upstream.dropFirst("webhook:".count)) : nil
    }

    /// The policy a source's forwards are sent with: its `forward_to` URL, one call per
    /// attempt (the delivery schedule retries), 15 s per attempt as the Standard Webhooks
    /// conventions advise.
    static func forwardPolicy(for source: GatewayConfig.WebhookSource) -> UpstreamPolicy? {
        guard let target = source.forwardTo, let url = URLComponents(string: target), let scheme = url.scheme,
            let host = url.host, !host.isEmpty
        else { return nil }
        let path = url.percentEncodedPath
        var policy = UpstreamPolicy(
            name: forwardUpstream(source.name),
            endpoints: [
                UpstreamEndpoint(
                    scheme: scheme.lowercased(),
                    host: host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host,
                    port: url.port ?? (scheme.lowercased() == "https" ? 443 : 80),
                    basePath: path.hasSuffix("/") ? String(path.dropLast()) : path
                )
            ]
        )
        policy.maxAttempts = 1
        policy.attemptTimeout = .seconds(15)
        policy.totalTimeout = .seconds(20)
        return policy
    }
}

extension Gateway {
    /// The failure-drill switch of the configured upstream `name`; nil if there is none.
    public func drillSwitch(_ name: String) -> FaultDrillSwitch? {
        clients[name]?.drills
    }
}

/// One ``FaultDrillSwitch`` per upstream name, made on first use and then kept.
final class DrillSwitches: Sendable {
    private let made = Mutex<[String: FaultDrillSwitch]>([:])

    func `switch`(_ name: String) -> FaultDrillSwitch {
        made.withLock { made in
            if let existing = made[name] { return existing }
            let new = FaultDrillSwitch()
            made[name] = new
            return new
        }
    }
}
