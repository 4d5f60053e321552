import AsyncHTTPClient
public import Belay
public import BelayHTTP
public import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle
public import Tracing

/// The gateway's services and state: one policy-wrapped client per upstream, consumers.
///
/// It is a `Service`: it runs until graceful shutdown, then closes the upstream clients
/// (after the HTTP server, which stops first, has drained its requests).
public final class Gateway: Service, Sendable {
    /// The configuration in force.
    public let config: GatewayConfig
    /// One client per configured upstream, by name.
    public let clients: [String: UpstreamClient]
    /// One client per webhook source that forwards, by its delivery upstream name
    /// (`webhook:<source>`); never reachable through the proxy.
    public let forwarders: [String: UpstreamClient]
    /// Who may call.
    public let auth: ConsumerAuth
    /// Where the gateway logs, every record redacted by ``redactor``.
    let logger: Logger
    /// What is kept out of logs and error bodies.
    public let redactor: Redactor
    /// The tracer proxied requests and their attempts are traced with; nil: no spans at all.
    let tracer: (any Tracer)?
    /// Everyone told about each proxied request (metrics, the audit trail, the health model).
    let observers: [any ProxyObserver]
    /// The calendar time now, for the records observers get.
    let now: @Sendable () -> Date
    /// An executor for each event loop of the upstream clients' group, by loop identity.
    private let executors: [ObjectIdentifier: EventLoopExecutor]

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
    /// no-op tracer. Records written to `logger` are redacted first (``Redactor``).
    public init(
        config: GatewayConfig,
        logger: Logger,
        eventSink: (any ResilienceEventSink)? = nil,
        observers: [any ProxyObserver] = [],
        tracer: (any Tracer)? = UpstreamTracing.bootstrappedTracer,
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws(ConfigurationError) {
        let redactor = Redactor(config: config)
        let logger = redactor.redacting(logger)
        var clients: [String: UpstreamClient] = [:]
        for upstream in config.upstreams {
            let logging = Self.decisionLog(logger, "belay.upstream", upstream.name, correlation: "belay.request.id")
            let sink: any ResilienceEventSink = eventSink.map { MultiplexEventSink([logging, $0]) } ?? logging
            clients[upstream.name] = try UpstreamClient(
                policy: upstream.policy,
                eventSink: sink,
                tracing: tracer.map { UpstreamTracing(tracer: $0, correlationAttribute: "belay.request.id") }
            )
        }
        var forwarders: [String: UpstreamClient] = [:]
        for source in config.webhooks {
            guard let policy = Self.forwardPolicy(for: source) else { continue }
            let logging = Self.decisionLog(
                logger,
                "belay.webhook.source",
                source.name,
                correlation: "belay.delivery.id"
            )
            forwarders[policy.name] = try UpstreamClient(
                policy: policy,
                eventSink: logging,
                tracing: tracer.map { UpstreamTracing(tracer: $0, correlationAttribute: "belay.delivery.id") }
            )
        }
        self.config = config
        self.clients = clients
        self.forwarders = forwarders
        self.auth = try ConsumerAuth(consumers: config.consumers)
        self.logger = logger
        self.redactor = redactor
        self.tracer = tracer
        self.observers = observers
        self.now = now
        self.executors = EventLoopExecutor.table(for: HTTPClient.defaultEventLoopGroup)
    }

    /// The executor that runs work on `eventLoop`, if it is one of the upstream clients' loops
    /// (a real server's are; a test's embedded loop is not).
    func executor(for eventLoop: any EventLoop) -> EventLoopExecutor? {
        executors[ObjectIdentifier(eventLoop)]
    }

    public func run() async throws {
        try? await gracefulShutdown()
        for client in clients.values {
            try? await client.shutdown()
        }
        for client in forwarders.values {
            try? await client.shutdown()
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
