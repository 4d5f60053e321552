import BelayGateway
import BelayTestUpstream
import Foundation
import Hummingbird
import InMemoryTracing
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing
import Tracing

@Suite(.timeLimit(.minutes(1))) struct TracingTests {
    /// The headers InMemoryTracer propagates a span context in (an OpenTelemetry tracer uses
    /// `traceparent`; see ``otlpExportSendsTheSpansAndPropagatesTraceparent``).
    static let traceKey = InMemoryTracer.traceIDKey
    static let spanKey = InMemoryTracer.spanIDKey

    @Test func aRetriedRequestIsOneSpanWithASpanPerAttempt() async throws {
        let tracer = InMemoryTracer()
        try await GatewayHarness.run(
            config: .pay(policy: "retry: { max_attempts: 3, base: 1ms, cap: 5ms }"),
            tracer: tracer
        ) { gateway in
            gateway.upstreams[0].setBehavior(.sequence([503]))
            let answer = try await gateway.send(
                .GET,
                "/proxy/pay/v1/balance?x=1",
                headers: [(Self.traceKey, "trace-caller"), (Self.spanKey, "span-caller")]
            )
            #expect(answer.status == 200)
            let requestID = try #require(answer.header("Belay-Request-Id"))

            let spans = tracer.finishedSpans
            let request = try #require(spans.first { $0.kind == .server })
            #expect(request.operationName == "GET /proxy/pay")
            #expect(request.traceID == "trace-caller")
            #expect(request.parentSpanID == "span-caller")
            #expect(request.attributes.get("belay.request.id") == .string(requestID))
            #expect(request.attributes.get("belay.upstream") == .string("pay"))
            #expect(request.attributes.get("http.response.status_code") == .int64(200))
            #expect(request.attributes.get("belay.attempts") == .int64(2))
            // The retry decision is an event on the request span.
            #expect(request.events.contains { $0.name == "belay.retry_scheduled" })

            let attempts = spans.filter { $0.operationName == "belay.attempt" }
                .sorted {
                    ($0.attributes.get("belay.attempt")?.integer ?? 0)
                        < ($1.attributes.get("belay.attempt")?.integer ?? 0)
                }
            #expect(attempts.count == 2)
            for (index, attempt) in attempts.enumerated() {
                #expect(attempt.kind == .client)
                #expect(attempt.traceID == "trace-caller")
                #expect(attempt.parentSpanID == request.spanID)
                #expect(attempt.attributes.get("belay.attempt") == .int64(Int64(index + 1)))
                #expect(attempt.attributes.get("belay.request.id") == .string(requestID))
                #expect(attempt.attributes.get("belay.upstream") == .string("pay"))
            }
            #expect(attempts.first?.attributes.get("http.response.status_code") == .int64(503))
            #expect(attempts.last?.attributes.get("http.response.status_code") == .int64(200))

            // Each attempt carried its own span's context upstream, not the caller's.
            let received = gateway.upstreams[0].requests
            #expect(received.count == 2)
            #expect(received.map { $0.header(Self.traceKey) } == ["trace-caller", "trace-caller"])
            #expect(received.map { $0.header(Self.spanKey) } == attempts.map { Optional($0.spanID) })
        }
    }

    @Test func withoutATracerTheCallersTraceparentIsForwardedUnchanged() async throws {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        try await GatewayHarness.run(config: .pay()) { gateway in
            let answer = try await gateway.send(
                .GET,
                "/proxy/pay/v1/balance",
                headers: [("traceparent", traceparent), ("tracestate", "vendor=1")]
            )
            #expect(answer.status == 200)
            let received = try #require(gateway.upstreams[0].requests.first)
            #expect(received.header("traceparent") == traceparent)
            #expect(received.header("tracestate") == "vendor=1")
        }
    }

    @Test func aRefusedRequestIsASpanToo() async throws {
        let tracer = InMemoryTracer()
        try await GatewayHarness.run(config: .pay(), tracer: tracer) { gateway in
            let answer = try await gateway.send(.GET, "/proxy/nowhere/x")
            #expect(answer.code == "unknown-upstream")
            let span = try #require(tracer.finishedSpans.first)
            #expect(span.kind == .server)
            #expect(span.attributes.get("belay.problem") == .string("unknown-upstream"))
            #expect(span.attributes.get("http.response.status_code") == .int64(404))
            #expect(span.attributes.get("belay.request.id") == answer.header("Belay-Request-Id").map { .string($0) })
            #expect(tracer.finishedSpans.count == 1)
        }
    }

    @Test func otlpExportSendsTheSpansAndPropagatesTraceparent() async throws {
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let callerSpan = "00f067aa0ba902b7"
        let sink = OTLPSink()
        try await sink.run { sinkURL in
            var otlp = GatewayConfig.OTLP(endpoint: sinkURL)
            otlp.wireProtocol = .httpJSON
            otlp.serviceName = "belay-test"
            otlp.exportDelay = .milliseconds(50)
            var telemetry = GatewayConfig.Telemetry()
            telemetry.otlp = otlp
            var quiet = Logger(label: "otel")
            quiet.logLevel = .critical
            let export = try #require(try TraceExport.make(telemetry, environment: [:], logger: quiet))
            let requestID = RequestIDBox()
            try await GatewayHarness.run(config: .pay(), tracer: export.tracer, services: [export.service]) {
                gateway in
                let answer = try await gateway.send(
                    .GET,
                    "/proxy/pay/v1/balance",
                    headers: [("traceparent", "00-\(traceID)-\(callerSpan)-01")]
                )
                #expect(answer.status == 200)
                requestID.set(answer.header("Belay-Request-Id"))
                // The attempt's own span id goes upstream, in the caller's trace.
                let sent = try #require(gateway.upstreams[0].requests.first?.header("traceparent"))
                let parts = sent.split(separator: "-")
                #expect(parts.count == 4)
                #expect(parts.count == 4 && parts[1] == traceID[...])
                #expect(parts.count == 4 && parts[2] != callerSpan[...] && parts[2].count == 16)
            }
            // Stopping the gateway stopped the exporter after it, which sent what was left.
            let exported = sink.bodies.filter { $0.path == "/v1/traces" }.map(\.body).joined()
            let id = try #require(requestID.value)
            #expect(exported.contains("belay.request.id"))
            #expect(exported.contains(id))
            #expect(exported.contains("belay.attempt"))
            #expect(exported.contains("belay-test"))
        }
    }
}

extension SpanAttribute {
    /// The value, if it is an integer.
    var integer: Int64? {
        if case .int64(let value) = self { return value }
        return nil
    }
}

/// A value set inside a harness's body and read after it.
final class RequestIDBox: Sendable {
    private let storage = Mutex<String?>(nil)

    func set(_ value: String?) { storage.withLock { $0 = value } }

    var value: String? { storage.withLock { $0 } }
}

/// A stand-in OpenTelemetry collector: keeps the body of every request it receives.
final class OTLPSink: Sendable {
    struct Received: Sendable {
        var path: String
        var body: String
    }

    private let received = Mutex<[Received]>([])

    var bodies: [Received] { received.withLock { $0 } }

    /// Serves on a free loopback port while `body` runs with the sink's base URL.
    func run(_ body: @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 16 << 20)
            self.received.withLock { $0.append(Received(path: "/v1/traces", body: String(buffer: bytes))) }
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: .init(string: "{}"))
            )
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "otlp-sink")
        logger.logLevel = .critical
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [], logger: logger)
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw CancellationError() }
            let outcome: Result<Void, any Error>
            do {
                try await body("http://127.0.0.1:\(port)")
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            try outcome.get()
        }
    }
}
