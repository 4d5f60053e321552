import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
public import Logging
import NIOCore
public import NIOSSL
public import ServiceLifecycle
import Synchronization

/// A scriptable flaky HTTP upstream on 127.0.0.1, for tests, `belay demo` and benchmarks.
///
/// Run it as a `Service` (in a `ServiceGroup`, or `try await upstream.run()` in a task),
/// wait for ``port()``, script it per path prefix with ``setBehavior(_:for:)``, and read
/// what it received with ``requests``:
///
/// ```swift
/// let upstream = TestUpstream()
/// upstream.setBehavior(.sequence([503, 503]), for: "/charges")
/// // … run it, send traffic …
/// #expect(upstream.requests.count == 3)
/// ```
///
/// Scripts can also drive it over HTTP: `PUT /__upstream/behavior?path=/charges` with the
/// JSON of an ``UpstreamBehavior``, `GET /__upstream/requests`, `DELETE /__upstream/requests`.
public final class TestUpstream: Service, Sendable {
    /// TLS for a test upstream (``init(host:port:logger:tls:)``): it then serves `https` only.
    public struct TLS: Sendable {
        /// Its certificate chain, leaf first.
        public var certificateChain: [NIOSSLCertificate]
        /// The leaf's private key.
        public var privateKey: NIOSSLPrivateKey
        /// The CAs whose client certificates it requires (mutual TLS); nil: no client certificate asked.
        public var clientCA: [NIOSSLCertificate]?

        /// Creates TLS settings; with `clientCA`, a client without a certificate it issued is refused.
        public init(
            certificateChain: [NIOSSLCertificate],
            privateKey: NIOSSLPrivateKey,
            clientCA: [NIOSSLCertificate]? = nil
        ) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
            self.clientCA = clientCA
        }
    }

    private struct State {
        var behaviors: [(prefix: String, behavior: UpstreamBehavior, served: Int)] = []
        var fallback = UpstreamBehavior()
        var fallbackServed = 0
        var requests: [RecordedRequest] = []
        var quotaUsed: [String: (windowStart: ContinuousClock.Instant, count: Int)] = [:]
        var port: Int?
        var portWaiters: [CheckedContinuation<Int, Never>] = []
        var arrivals = 0
        var inProgress = 0
        var peakInProgress = 0
        var arrivalWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var serverNames: [String?] = []
        /// The capacity of each behavior that has one, by path prefix ("" for the fallback).
        var gates: [String: CapacityGate] = [:]
    }

    /// The address to bind; port 0 picks a free one.
    public let host: String
    private let requestedPort: Int
    private let logger: Logger
    private let tls: TLS?
    private let state = Mutex(State())

    /// Creates an upstream that will listen on `host:port` (default a free loopback port), with
    /// TLS if `tls` is given.
    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        logger: Logger = Logger(label: "belay.test-upstream"),
        tls: TLS? = nil
    ) {
        self.host = host
        self.requestedPort = port
        self.logger = logger
        self.tls = tls
    }

    /// With TLS: the server name (SNI) of each handshake, in order (nil: the client sent none).
    public var serverNames: [String?] { state.withLock { $0.serverNames } }

    /// The port it listens on, once it does.
    public func port() async -> Int {
        await withCheckedContinuation { continuation in
            let port: Int? = state.withLock { state in
                if let port = state.port { return port }
                state.portWaiters.append(continuation)
                return nil
            }
            if let port { continuation.resume(returning: port) }
        }
    }

    /// The base URL, once it listens, e.g. `http://127.0.0.1:50123`, `http://[::1]:50123`, or
    /// `https://127.0.0.1:50123` with TLS.
    public func baseURL() async -> String {
        "\(tls == nil ? "http" : "https")://\(host.contains(":") ? "[\(host)]" : host):\(await port())"
    }

    /// Sets what requests whose path starts with `prefix` get (nil: every other path).
    public func setBehavior(_ behavior: UpstreamBehavior, for prefix: String? = nil) {
        state.withLock { state in
            guard let prefix else {
                state.fallback = behavior
                state.fallbackServed = 0
                return
            }
            state.behaviors.removeAll { $0.prefix == prefix }
            state.behaviors.append((prefix, behavior, 0))
            state.behaviors.sort { $0.prefix.count > $1.prefix.count }
        }
    }

    /// Every request received so far, in arrival order.
    public var requests: [RecordedRequest] { state.withLock { $0.requests } }

    /// Returns once `count` requests have arrived in all (counted on arrival, before any
    /// latency or hang), so a test can act while a request is in flight.
    public func waitForArrivals(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.arrivals >= count { return true }
                state.arrivalWaiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Requests the capacity of the behavior at `prefix` ("" for the fallback) refused with 429
    /// because its queue was full, and requests it gave a worker.
    public func capacityCounts(for prefix: String = "") -> (refused: Int, served: Int) {
        state.withLock { $0.gates[prefix] }?.counts ?? (0, 0)
    }

    /// What the capacity of the behavior at `prefix` ("" for the fallback) did: requests served
    /// and refused, and each served request's time at the provider (its wait for a worker and
    /// its service), in milliseconds at the 50th and 99th percentiles.
    public func capacityStatistics(for prefix: String = "") -> CapacityStatistics {
        state.withLock { $0.gates[prefix] }?.statistics ?? CapacityStatistics()
    }

    /// How many requests have arrived in all (answered or not: one a client gave up on is never
    /// in ``requests`` when the client left before its answer).
    public var arrivalCount: Int { state.withLock { $0.arrivals } }

    /// How many requests it is answering now: counted from arrival until its handler returns
    /// (before the answer is written), so a client never sees more at once than this counts.
    public var requestsInProgress: Int { state.withLock { $0.inProgress } }

    /// The most requests it has been answering at once since it started (a test of a
    /// concurrency limit reads it).
    public var peakRequestsInProgress: Int { state.withLock { $0.peakInProgress } }

    fileprivate func arrived() {
        let ready = state.withLock { state in
            state.arrivals += 1
            state.inProgress += 1
            state.peakInProgress = max(state.peakInProgress, state.inProgress)
            let arrivals = state.arrivals
            let ready = state.arrivalWaiters.filter { $0.count <= arrivals }.map(\.continuation)
            state.arrivalWaiters.removeAll { $0.count <= arrivals }
            return ready
        }
        for waiter in ready { waiter.resume() }
    }

    /// Counts a request's handler as done (it answered, reset, or was cancelled).
    fileprivate func departed() {
        state.withLock { $0.inProgress -= 1 }
    }

    /// Forgets the requests received so far.
    public func clearRequests() {
        state.withLock { $0.requests.removeAll() }
    }

    public func run() async throws {
        let router = Router(context: UpstreamRequestContext.self)
        router.put("__upstream/behavior") { request, context -> HTTPResponse.Status in
            let behavior = try await request.decode(as: UpstreamBehavior.self, context: context)
            self.setBehavior(behavior, for: request.uri.queryParameters.get("path"))
            return .noContent
        }
        router.get("__upstream/requests") { _, _ -> Response in
            let data = try JSONEncoder().encode(self.requests)
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }
        router.get("__upstream/capacity") { request, _ -> Response in
            let stats = self.capacityStatistics(for: request.uri.queryParameters.get("path") ?? "")
            let data = try JSONEncoder().encode(stats)
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }
        router.delete("__upstream/requests") { _, _ -> HTTPResponse.Status in
            self.clearRequests()
            return .noContent
        }
        router.addMiddleware { ScriptedResponder(upstream: self) }
        let app = Application(
            router: router,
            server: try tlsConfiguration().map { try HTTPServerBuilder.tls(.http1(), tlsConfiguration: $0) }
                ?? .http1(),
            configuration: .init(address: .hostname(host, port: requestedPort), serverName: "belay-test-upstream"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                let waiters = self.state.withLock { state in
                    state.port = port
                    defer { state.portWaiters.removeAll() }
                    return state.portWaiters
                }
                for waiter in waiters { waiter.resume(returning: port) }
            },
            logger: logger
        )
        try await app.run()
    }

    /// The server's TLS configuration, if it has TLS: each handshake's server name recorded.
    private func tlsConfiguration() throws -> TLSConfiguration? {
        guard let tls else { return nil }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: tls.certificateChain.map { .certificate($0) },
            privateKey: .privateKey(tls.privateKey)
        )
        if let clientCA = tls.clientCA {
            configuration.trustRoots = .certificates(clientCA)
            configuration.certificateVerification = .noHostnameVerification
        }
        configuration.sslContextCallback = { [weak self] values, promise in
            self?.state.withLock { $0.serverNames.append(values.serverHostname) }
            promise.succeed(.noChanges)
        }
        return configuration
    }

    /// Picks the behavior for `path` and advances its sequence.
    fileprivate func nextAnswer(
        for path: String
    ) -> (
        behavior: UpstreamBehavior, status: Int, quotaRemaining: Int?, latencyMilliseconds: Int, gate: CapacityGate?
    ) {
        let now = ContinuousClock.now
        return state.withLock { state in
            var behavior = state.fallback
            var served = 0
            var key = ""
            if let index = state.behaviors.firstIndex(where: { path.hasPrefix($0.prefix) }) {
                behavior = state.behaviors[index].behavior
                served = state.behaviors[index].served
                state.behaviors[index].served += 1
                key = state.behaviors[index].prefix
            } else {
                served = state.fallbackServed
                state.fallbackServed += 1
            }
            var status = behavior.status
            if !behavior.statuses.isEmpty {
                if served < behavior.statuses.count {
                    status = behavior.statuses[served]
                } else if behavior.repeats {
                    status = behavior.statuses[served % behavior.statuses.count]
                }
            }
            if behavior.errorRate > 0, Double.random(in: 0..<1) < behavior.errorRate {
                status = behavior.errorStatus
            }
            var remaining: Int?
            if let quota = behavior.quota {
                var usage = state.quotaUsed[key] ?? (now, 0)
                if usage.windowStart.duration(to: now) >= .seconds(behavior.quotaWindowSeconds) {
                    usage = (now, 0)
                }
                usage.count += 1
                state.quotaUsed[key] = usage
                remaining = max(quota - usage.count, 0)
                if usage.count > quota { status = 429 }
            }
            var latency = behavior.latencyMilliseconds
            if let every = behavior.slowEvery, every > 0, (served + 1) % every == 0 {
                latency += behavior.slowMilliseconds
            }
            var gate: CapacityGate?
            if let workers = behavior.capacity {
                if let made = state.gates[key], made.workers == workers, made.queue == behavior.capacityQueue {
                    gate = made
                } else {
                    gate = CapacityGate(workers: workers, queue: behavior.capacityQueue)
                    state.gates[key] = gate
                }
            }
            return (behavior, status, remaining, latency, gate)
        }
    }

    fileprivate func record(_ request: RecordedRequest) {
        state.withLock { $0.requests.append(request) }
    }
}

/// Carries the channel so a behavior can reset the connection.
struct UpstreamRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    var maxUploadSize: Int { 256 << 20 }
}

/// Answers every request that no control route took, as the behavior for its path says.
struct ScriptedResponder: RouterMiddleware {
    let upstream: TestUpstream

    func handle(
        _ request: Request,
        context: UpstreamRequestContext,
        next: (Request, UpstreamRequestContext) async throws -> Response
    ) async throws -> Response {
        if request.uri.path.hasPrefix("/__upstream/") {
            return try await next(request, context)
        }
        upstream.arrived()
        defer { upstream.departed() }
        var bodySize = 0
        var kept = ByteBuffer()
        for try await chunk in request.body {
            bodySize += chunk.readableBytes
            if kept.readableBytes < 64 << 10 {
                kept.writeImmutableBuffer(
                    chunk.getSlice(
                        at: chunk.readerIndex,
                        length: min(chunk.readableBytes, (64 << 10) - kept.readableBytes)
                    ) ?? chunk
                )
            }
        }
        let answer = upstream.nextAnswer(for: request.uri.path)
        var headers: [String: String] = [:]
        for field in request.headers {
            headers[field.name.canonicalName] = field.value
        }
        // HTTP/1.1's Host arrives as the request's authority.
        if let authority = request.head.authority { headers["host"] = authority }
        var recorded = RecordedRequest(
            method: request.method.rawValue,
            path: request.uri.description,
            headers: headers,
            bodySize: bodySize,
            status: 0,
            body: String(decoding: kept.readableBytesView, as: UTF8.self)
        )
        let behavior = answer.behavior
        var status = answer.status
        if let gate = answer.gate {
            // The provider's own waiting line, then its service time; past the line, 429 at once.
            let arrived = ContinuousClock.now
            if await gate.acquire() {
                defer { gate.release(arrivedAt: arrived) }
                if answer.latencyMilliseconds > 0 {
                    try await Task.sleep(for: .milliseconds(answer.latencyMilliseconds))
                }
            } else {
                try Task.checkCancellation()
                status = 429
            }
        } else if answer.latencyMilliseconds > 0 {
            try await Task.sleep(for: .milliseconds(answer.latencyMilliseconds))
        }
        if behavior.reset {
            upstream.record(recorded)
            context.channel.close(promise: nil)
            throw CancellationError()
        }
        if behavior.hang {
            upstream.record(recorded)
            try await Task.sleep(for: .seconds(3_600))
        }
        recorded.status = status
        upstream.record(recorded)
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        if !(200..<300).contains(status), let retryAfter = behavior.retryAfter {
            fields[.retryAfter] = retryAfter
        }
        if let remaining = answer.quotaRemaining, let quota = behavior.quota {
            fields[HTTPField.Name("RateLimit-Policy")!] = "\"default\";q=\(quota);w=\(behavior.quotaWindowSeconds)"
            fields[HTTPField.Name("RateLimit")!] = "\"default\";r=\(remaining);t=\(behavior.quotaWindowSeconds)"
            fields[HTTPField.Name("X-RateLimit-Remaining")!] = String(remaining)
        }
        for (name, value) in behavior.headers {
            if let field = HTTPField.Name(name) { fields[field] = value }
        }
        if let echo = request.headers[HTTPField.Name("Idempotency-Key")!] {
            fields[HTTPField.Name("X-Received-Idempotency-Key")!] = echo
        }
        let body =
            (200..<300).contains(status)
            ? behavior.body : behavior.errorBody ?? #"{"error":"simulated \#(status)"}"#
        let bytes = ByteBuffer(string: body)
        if behavior.trickleMilliseconds > 0 {
            let pause = Duration.milliseconds(behavior.trickleMilliseconds)
            let trickled = ResponseBody { writer in
                var rest = bytes
                while let byte = rest.readSlice(length: 1) {
                    try await Task.sleep(for: pause)
                    try await writer.write(byte)
                }
                try await writer.finish(nil)
            }
            return Response(status: HTTPResponse.Status(code: status), headers: fields, body: trickled)
        }
        guard behavior.chunked else {
            return Response(
                status: HTTPResponse.Status(code: status),
                headers: fields,
                body: .init(byteBuffer: bytes)
            )
        }
        // No Content-Length: the body goes out in 64 KiB pieces, chunked.
        let streamed = ResponseBody { writer in
            var rest = bytes
            while let piece = rest.readSlice(length: min(rest.readableBytes, 64 << 10)), piece.readableBytes > 0 {
                try await writer.write(piece)
            }
            try await writer.finish(nil)
        }
        return Response(status: HTTPResponse.Status(code: status), headers: fields, body: streamed)
    }
}
