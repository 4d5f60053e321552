import AsyncHTTPClient
public import Belay
public import BelayHTTP
import Foundation
public import Logging
import NIOCore
public import ServiceLifecycle

/// The gateway's services and state: one policy-wrapped client per upstream, consumers.
///
/// It is a `Service`: it runs until graceful shutdown, then closes the upstream clients
/// (after the HTTP server, which stops first, has drained its requests).
public final class Gateway: Service, Sendable {
    /// The configuration in force.
    public let config: GatewayConfig
    /// One client per configured upstream, by name.
    public let clients: [String: UpstreamClient]
    /// Who may call.
    public let auth: ConsumerAuth
    let logger: Logger
    /// An executor for each event loop of the upstream clients' group, by loop identity.
    private let executors: [ObjectIdentifier: EventLoopExecutor]

    /// Builds every upstream client; throws if a policy's options are invalid.
    ///
    /// Every resilience decision (retry, timeout, rejection, breaker transition) is logged to
    /// `logger` through a ``LoggingEventSink``: at `info`, transitions at `notice`, with
    /// `belay.request.id` and `belay.upstream`; `eventSink`, if given, receives them too.
    public init(
        config: GatewayConfig,
        logger: Logger,
        eventSink: (any ResilienceEventSink)? = nil
    ) throws(ConfigurationError) {
        var clients: [String: UpstreamClient] = [:]
        for upstream in config.upstreams {
            var upstreamLogger = logger
            upstreamLogger[metadataKey: "belay.upstream"] = .string(upstream.name)
            let logging = LoggingEventSink(
                logger: upstreamLogger,
                level: .info,
                transitionLevel: .notice,
                correlationKey: "belay.request.id"
            )
            let sink: any ResilienceEventSink = eventSink.map { MultiplexEventSink([logging, $0]) } ?? logging
            clients[upstream.name] = try UpstreamClient(policy: upstream.policy, eventSink: sink)
        }
        self.config = config
        self.clients = clients
        self.auth = try ConsumerAuth(consumers: config.consumers)
        self.logger = logger
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
    }
}
