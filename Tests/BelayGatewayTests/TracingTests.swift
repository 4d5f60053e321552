import BelayHTTP
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

@testable import BelayGateway

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
            // OpenTelemetry's HTTP conventions: `{method} {http.route}`, the scheme, the query's
            // names (values redacted).
            #expect(request.operationName == "GET /proxy/pay/{path}")
            #expect(request.attributes.get("http.route") == .string("/proxy/pay/{path}"))
            #expect(request.attributes.get("url.scheme") == .string("http"))
            #expect(request.attributes.get("url.query") == .string("x=REDACTED"))
            #expect(request.attributes.get("error.type") == nil)
            #expect(request.traceID == "trace-caller")
            #expect(request.parentSpanID == "span-caller")
            #expect(request.attributes.get("belay.request.id") == .string(requestID))
            #expect(request.attributes.get("belay.upstream") == .string("pay"))
            #expect(request.attributes.get("http.response.status_code") == .int64(200))
            #expect(request.attributes.get("belay.attempts") == .int64(2))
            // The retry decision is an event on the request span.
            #expect(request.events.contains { $0.name == "belay.retry_scheduled" })

            let attempts = spans.filter { $0.kind == .client }
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
            // Client spans are `{method}`, with `url.full`, the resend count and the error's type.
            let port = await gateway.upstreams[0].port()
            for attempt in attempts {
                #expect(attempt.operationName == "GET")
                #expect(attempt.attributes.get("url.full") == .string("http://127.0.0.1:\(port)/v1/balance?x=REDACTED"))
            }
            #expect(attempts.first?.attributes.get("error.type") == .string("503"))
            #expect(attempts.first?.attributes.get("http.request.resend_count") == nil)
            #expect(attempts.last?.attributes.get("http.request.resend_count") == .int64(1))
            #expect(attempts.last?.attributes.get("error.type") == nil)

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
            let export = try OTLPSink.export(to: sinkURL, serviceName: "belay-test")
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
            // Decoded as OTLP/JSON: the spans' names and the conventions' required attributes.
            let spans = try Self.otlpSpans(sink)
            let server = try #require(spans.first { $0.kind == 2 })
            let client = try #require(spans.first { $0.kind == 3 })
            #expect(server.name == "GET /proxy/pay/{path}")
            #expect(
                server.attributes["url.scheme"] == "http" && server.attributes["url.path"] == "/proxy/pay/v1/balance"
            )
            #expect(server.attributes["http.request.method"] == "GET")
            #expect(server.attributes["http.route"] == "/proxy/pay/{path}")
            #expect(client.name == "GET")
            #expect(client.attributes["url.full"]?.hasSuffix("/v1/balance") == true)
            #expect(client.attributes["server.address"] == "127.0.0.1" && client.attributes["server.port"] != nil)
            #expect(!client.traceID.isEmpty && client.traceID == server.traceID)
        }
    }

    @Test func aTraceparentOfAHigherVersionIsContinuedNotRestarted() async throws {
        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let sink = OTLPSink()
        try await sink.run { sinkURL in
            let export = try OTLPSink.export(to: sinkURL)
            try await GatewayHarness.run(config: .pay(), tracer: export.tracer, services: [export.service]) {
                gateway in
                // A future version with a field version 00 does not have: parsed as 00, the rest ignored.
                let answer = try await gateway.send(
                    .GET,
                    "/proxy/pay/v1/balance",
                    headers: [("traceparent", "cc-\(traceID)-00f067aa0ba902b7-01-what-the-future-holds")]
                )
                #expect(answer.status == 200)
                let sent = try #require(gateway.upstreams[0].requests.first?.header("traceparent"))
                #expect(sent.hasPrefix("00-\(traceID)-"))
            }
        }
        #expect(
            HTTPFieldsExtractor.versionZero(of: "01-\(traceID)-00f067aa0ba902b7-01")
                == "00-\(traceID)-00f067aa0ba902b7-01"
        )
        // Version ff is invalid, and one whose fields run on without a dash is not version 00's.
        #expect(HTTPFieldsExtractor.versionZero(of: "ff-\(traceID)-00f067aa0ba902b7-01").hasPrefix("ff-"))
        #expect(HTTPFieldsExtractor.versionZero(of: "01-\(traceID)-00f067aa0ba902b7-01x").hasPrefix("01-"))
    }

    /// One exported span, as OTLP/JSON has it.
    struct ExportedSpan {
        var name: String
        var kind: Int
        var traceID: String
        var attributes: [String: String]
    }

    /// Every span the sink received, decoded from OTLP/JSON (`resourceSpans[].scopeSpans[].spans[]`).
    static func otlpSpans(_ sink: OTLPSink) throws -> [ExportedSpan] {
        var spans: [ExportedSpan] = []
        for received in sink.bodies where received.path == "/v1/traces" {
            let root = try #require(try JSONSerialization.jsonObject(with: Data(received.body.utf8)) as? [String: Any])
            for resource in root["resourceSpans"] as? [[String: Any]] ?? [] {
                for scope in resource["scopeSpans"] as? [[String: Any]] ?? [] {
                    for span in scope["spans"] as? [[String: Any]] ?? [] {
                        var attributes: [String: String] = [:]
                        for attribute in span["attributes"] as? [[String: Any]] ?? [] {
                            guard let key = attribute["key"] as? String,
                                let value = attribute["value"] as? [String: Any]
                            else { continue }
                            attributes[key] = (value["stringValue"] as? String) ?? value["intValue"].map { "\($0)" }
                        }
                        let kind: Int
                        if let number = span["kind"] as? Int {
                            kind = number
                        } else {
                            // The enum's name, as some encoders write it.
                            kind = ["SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3][span["kind"] as? String ?? ""] ?? 0
                        }
                        spans.append(
                            ExportedSpan(
                                name: span["name"] as? String ?? "",
                                kind: kind,
                                traceID: span["traceId"] as? String ?? "",
                                attributes: attributes
                            )
                        )
                    }
                }
            }
        }
        return spans
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

    /// An OTLP/HTTP JSON export to the sink at `url`, sent 50 ms after each span; its own
    /// diagnostics go to `logger` (quiet by default).
    static func export(
        to url: String,
        serviceName: String? = nil,
        logger: Logger = {
            var quiet = Logger(label: "otel")
            quiet.logLevel = .critical
            return quiet
        }()
    ) throws -> TraceExport {
        var otlp = GatewayConfig.OTLP(endpoint: url)
        otlp.wireProtocol = .httpJSON
        if let serviceName { otlp.serviceName = serviceName }
        otlp.exportDelay = .milliseconds(50)
        var telemetry = GatewayConfig.Telemetry()
        telemetry.otlp = otlp
        return try #require(try TraceExport.make(telemetry, environment: [:], logger: logger))
    }

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
