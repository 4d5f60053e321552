import AsyncHTTPClient
import Belay
import BelayGateway
import BelayTestUpstream
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Tracing

/// Runs test upstreams and a gateway on free loopback ports for one test.
struct GatewayHarness {
    let port: Int
    let upstreams: [TestUpstream]
    let client: HTTPClient

    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: String

        var problem: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }
        var code: String? { problem?["code"] as? String }
        func header(_ name: String) -> String? { headers.first(name: name) }
    }

    /// Sends a request to the gateway.
    func send(
        _ method: HTTPMethod = .GET,
        _ path: String,
        headers: [(String, String)] = [],
        body: String? = nil,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    /// Sends a request whose body is streamed in `chunks` with no declared length (chunked).
    func sendStreamed(
        _ method: HTTPMethod = .POST,
        _ path: String,
        headers: [(String, String)] = [],
        chunks: [String],
        timeout: TimeAmount = .seconds(30)
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        for chunk in chunks { continuation.yield(ByteBuffer(string: chunk)) }
        continuation.finish()
        request.body = .stream(stream, length: .unknown)
        let response = try await client.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    /// Starts `upstreamCount` test upstreams, then a gateway whose config `yaml(urls)` builds
    /// from their base URLs, runs `body`, and stops everything.
    ///
    /// `upstreamTLS` makes the upstreams serve `https` only. `logs` keeps the gateway's records at `logLevel`; `tracer` traces it (none by default);
    /// `services` start before the gateway and stop after it.
    static func run(
        upstreams upstreamCount: Int = 1,
        upstreamHost: String = "127.0.0.1",
        upstreamTLS: TestUpstream.TLS? = nil,
        config template: ConfigTemplate,
        environment: [String: String] = [:],
        logs: LogStore? = nil,
        logLevel: Logger.Level = .info,
        observers: [any ProxyObserver] = [],
        tracer: (any Tracer)? = nil,
        services: [any Service] = [],
        reload: ReloadableConfig? = nil,
        _ body: @Sendable (GatewayHarness) async throws -> Void
    ) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let upstreams = (0..<upstreamCount).map { _ in
            TestUpstream(host: upstreamHost, logger: logger, tls: upstreamTLS)
        }
        if let logs {
            logger = Logger(label: "belay") { _ in LogStore.Handler(store: logs) }
            logger.logLevel = logLevel
        }
        let observing = Observing(observers: observers, tracer: tracer, services: services, reload: reload)
        var configuration = HTTPClient.Configuration()
        // Enough connections to the gateway that concurrent test calls are not queued here.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            try await serve(upstreams, client: client, template, environment, logger, observing, body)
        } catch {
            // Shut the client down on failure too (a failed #require), or its deinit traps.
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    private static func serve(
        _ upstreams: [TestUpstream],
        client: HTTPClient,
        _ template: ConfigTemplate,
        _ environment: [String: String],
        _ logger: Logger,
        _ observing: Observing,
        _ body: @Sendable (GatewayHarness) async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for upstream in upstreams {
                group.addTask { try await upstream.run() }
            }
            var urls: [String] = []
            for upstream in upstreams { urls.append(await upstream.baseURL()) }
            let initial = template.yaml(urls)
            // A fresh database per test, removed afterwards.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "belay-test-\(UUID().uuidString)"
            )
            defer { try? FileManager.default.removeItem(at: folder) }
            let storage = GatewayConfig.Storage.sqlite(path: folder.appendingPathComponent("belay.db").path)
            // The harness's own settings, on the first config and on each reloaded one.
            let load: ConfigSource = { () throws(ConfigError) in
                var config = try ConfigLoader(environment: environment).load(yaml: observing.reload?.yaml ?? initial)
                config.storage = storage
                // Stopped at the end of each test: no load balancer to wait for.
                config.server.drain = .zero
                return config
            }
            let config = try load()
            let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let app = try await buildApplication(
                config: config,
                logger: logger,
                observers: observing.observers,
                tracer: observing.tracer,
                reload: observing.reload == nil ? nil : ReloadOptions(source: load)
            ) { port in
                portContinuation.yield(port)
            }
            // The gateway stops gracefully (cancelling a NIO server while a connection is
            // being accepted traps: swift-nio#3481); the upstreams are cancelled after it,
            // when nothing calls them any more.
            let gateway = ServiceGroup(
                configuration: .init(
                    services: observing.services.map { .init(service: $0) } + [.init(service: app)],
                    gracefulShutdownSignals: [],
                    logger: logger
                )
            )
            group.addTask { try await gateway.run() }
            var iterator = portStream.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            let outcome: Result<Void, any Error>
            do {
                try await body(GatewayHarness(port: port, upstreams: upstreams, client: client))
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            await gateway.triggerGracefulShutdown()
            _ = try? await group.next()
            group.cancelAll()
            try outcome.get()
        }
    }
}

/// What watches a harness's gateway besides its logs.
private struct Observing: Sendable {
    var observers: [any ProxyObserver]
    var tracer: (any Tracer)?
    var services: [any Service]
    var reload: ReloadableConfig?
}

/// The config a harness's gateway re-reads on `POST /v1/admin/reload`: the harness's first
/// config until ``set(_:)`` gives the next one (with the harness's storage and drain).
final class ReloadableConfig: Sendable {
    private let text = Mutex<String?>(nil)

    /// The YAML the next reload reads.
    func set(_ yaml: String) { text.withLock { $0 = yaml } }

    /// The YAML set last, if any.
    var yaml: String? { text.withLock { $0 } }
}

/// The config of a harness, made from the test upstreams' base URLs.
enum ConfigTemplate: Sendable {
    /// One upstream `pay` on every test upstream, with extra policy and server lines.
    case pay(policy: String = "", server: String = "")
    /// Any config.
    case custom(@Sendable ([String]) -> String)

    func yaml(_ urls: [String]) -> String {
        switch self {
        case .pay(let policy, let server): payConfig(urls, policy: policy, server: server)
        case .custom(let make): make(urls)
        }
    }
}

/// A config with one upstream `pay` at `urls`, overriding its policy with `policy` lines.
func payConfig(_ urls: [String], policy: String = "", server: String = "") -> String {
    let endpoints = urls.map { "\"\($0)\"" }.joined(separator: ", ")
    return """
        server: { listen: "127.0.0.1:0"\(server.isEmpty ? "" : ", \(server)") }
        upstreams:
          pay:
            endpoints: [\(endpoints)]
        \(policy.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n"))
        """
}

/// Keeps every log record of a harness's gateway, for assertions.
final class LogStore: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata

        /// The message and every metadata value, to search for text that must not appear.
        var text: String { ([message] + metadata.map { "\($0.key)=\($0.value)" }).joined(separator: " ") }
    }

    struct Handler: LogHandler {
        let store: LogStore
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            store.storage.withLock {
                $0.append(Record(level: event.level, message: event.message.description, metadata: merged))
            }
        }
    }

    fileprivate let storage = Mutex<[Record]>([])

    var records: [Record] { storage.withLock { $0 } }
}

/// Whether the machine has an IPv6 loopback address (`::1`) to listen on.
let ipv6LoopbackAvailable: Bool = {
    #if os(Linux)
    let interfaces = (try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8)) ?? ""
    return interfaces.contains("00000000000000000000000000000001")
    #else
    return true
    #endif
}()
