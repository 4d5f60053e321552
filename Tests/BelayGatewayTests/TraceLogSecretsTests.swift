import BelayGateway
import BelayTestUpstream
import Foundation
import Logging
import NIOHTTP1
import Testing

/// With tracing on, what a caller sends never reaches the logs: not through swift-otel's own
/// diagnostics (a `traceparent` it cannot parse), and not one line per request at info.
@Suite(.timeLimit(.minutes(1))) struct TraceLogSecretsTests {
    static let secrets = ["s3cr3t-bearer-9f8e7d", "s3cr3t-cookie-6c5b4a", "s3cr3t-apikey-3f2e1d"]

    @Test func aMalformedTraceparentLogsNoHeaderAndNoLinePerRequest() async throws {
        let sink = OTLPSink()
        let logs = LogStore()
        try await sink.run { sinkURL in
            // Every record of the exporter's diagnostics, at every level.
            var diagnostics = Logger(label: "otel") { _ in LogStore.Handler(store: logs) }
            diagnostics.logLevel = .trace
            let export = try OTLPSink.export(to: sinkURL, logger: diagnostics)
            try await GatewayHarness.run(
                config: .pay(),
                logs: logs,
                logLevel: .trace,
                tracer: export.tracer,
                services: [export.service]
            ) { gateway in
                func send() async throws {
                    let answer = try await gateway.send(
                        .GET,
                        "/proxy/pay/v1/balance",
                        headers: [
                            ("traceparent", "00-not-a-trace-id-\(Self.secrets[0])"),
                            ("Authorization", "Bearer \(Self.secrets[0])"),
                            ("Cookie", "session=\(Self.secrets[1]); theme=dark"),
                            ("X-Api-Key", Self.secrets[2]),
                        ]
                    )
                    #expect(answer.status == 200)
                }
                try await send()
                let loudAfterOne = logs.records.filter { $0.level >= .info }.count
                for _ in 0..<5 { try await send() }
                let loudAfterSix = logs.records.filter { $0.level >= .info }.count
                #expect(loudAfterSix == loudAfterOne, "\(logs.records.filter { $0.level >= .info }.map(\.text))")
            }
        }
        #expect(!logs.records.isEmpty)
        for record in logs.records {
            for secret in Self.secrets {
                #expect(!record.text.contains(secret), "\(record.level) \(record.text)")
            }
        }
    }

    @Test func headersPrintedInsideOneStringAreRedacted() {
        let redactor = Redactor()
        let carrier =
            "[traceparent: 00-bad, Authorization: Bearer abc.def, Cookie: session=xyz; theme=dark, "
            + "X-Api-Key: k-123, Accept: */*]"
        #expect(
            redactor.redact(carrier)
                == "[traceparent: 00-bad, Authorization: <redacted>, Cookie: <redacted>, X-Api-Key: <redacted>, Accept: */*]"
        )
        #expect(redactor.redact(#"{"authorization":"Bearer t","a":1}"#) == #"{"authorization":"<redacted>","a":1}"#)
        #expect(redactor.redact("cookie=abc\nnext line") == "cookie=<redacted>\nnext line")
        // Not a header name on its own: left alone.
        #expect(
            redactor.redact("my-authorization: fine, x-api-keys: fine") == "my-authorization: fine, x-api-keys: fine"
        )
        #expect(redactor.redact("no headers here") == "no headers here")
    }

    @Test func theDiagnosticHandlerRewritesCarrierRecordsAndKeepsOthersAtBothLevels() {
        let logs = LogStore()
        var handler = OTelDiagnosticLogHandler(wrapping: LogStore.Handler(store: logs, logLevel: .info))
        handler.logLevel = .trace
        let logger = Logger(label: "otel") { _ in handler }
        logger.warning("Failed to extract span context.", metadata: ["carrier": "[Authorization: Bearer x]"])
        logger.debug("Starting.")
        logger.error("export failed", metadata: ["component": "exporter"])
        #expect(logs.records.map(\.message) == ["export failed"])
        #expect(logs.records.first?.metadata["component"] == "exporter")
    }

    @Test func whatACallerControlsLogsNothingAtInfoPerRequest() async throws {
        let logs = LogStore()
        let yaml: @Sendable ([String]) -> String = { urls in
            """
            server: { listen: "127.0.0.1:0" }
            upstreams:
              pay: { endpoints: ["\(urls[0])"], retry: { max_attempts: 1 } }
            webhooks:
              shop: { verify: { scheme: hmac, secret: "webhook-secret-987654321", header: X-Shop-Hmac, id_header: X-Shop-Id } }
            """
        }
        try await GatewayHarness.run(config: .custom(yaml), logs: logs, logLevel: .trace) { gateway in
            gateway.upstreams[0].setBehavior(UpstreamBehavior(latencyMilliseconds: 300), for: "/slow")
            for index in 0..<3 {
                // A deadline the caller sets too short for the upstream.
                let late = try await gateway.send(.GET, "/proxy/pay/slow", headers: [("Belay-Timeout", "20ms")])
                #expect(late.status == 504)
                // A webhook whose signature does not verify.
                let forged = try await gateway.send(
                    .POST,
                    "/webhooks/shop",
                    headers: [
                        ("X-Shop-Hmac", "forged"), ("X-Shop-Id", "evt-\(index)"), ("Content-Type", "application/json"),
                    ],
                    body: "{}"
                )
                #expect(forged.code == "signature-invalid")
                // Framing the gateway refuses.
                _ = try await RawClient.exchange(
                    port: gateway.port,
                    [HTTPFramingTests.post(["Transfer-Encoding: gzip"], body: "")]
                )
            }
        }
        // Hummingbird's one line at start, the stop's two (draining, drained) and alerts (one per
        // change of an upstream's state, not per request) aside.
        let loud = logs.records.filter {
            $0.level >= .info && !$0.message.hasPrefix("Server started") && !$0.message.hasPrefix("draining: ")
                && !$0.message.hasPrefix("drained: ") && $0.metadata["belay.alert.kind"] == nil
        }
        #expect(loud.isEmpty, "\(loud.map { "\($0.level) \($0.text)" })")
        #expect(logs.records.contains { $0.message == "webhook rejected" && $0.level == .debug })
        #expect(logs.records.contains { $0.metadata["belay.event"] == "timeout" && $0.level == .debug })
    }
}

private let digestResponse = "6629fae49393a05397450978507c4ef1"
private let digest = #"Digest username="bob", realm="r", nonce="n0", response="\#(digestResponse)""#
/// The Digest value as a JSON or Swift string literal holds it.
private let digestEscaped = digest.replacingOccurrences(of: "\"", with: #"\""#)

extension TraceLogSecretsTests {
    /// A sensitive header's value is redacted whole however it is printed: to the end of its
    /// line, its string literal or its entry in a printed list, never only up to its first quote
    /// or comma (which left a Digest `response` in the log).
    @Test(arguments: [
        // A raw header line: the value runs to the end of the line.
        ("Authorization: \(digest)\nAccept: */*", "Authorization: <redacted>\nAccept: */*"),
        ("Authorization: \(digest)\r\nAccept: */*", "Authorization: <redacted>\r\nAccept: */*"),
        ("Authorization: Bearer abc.def, more text", "Authorization: <redacted>"),
        ("Cookie: session=xyz; theme=dark\r\nHost: a", "Cookie: <redacted>\r\nHost: a"),
        ("X-Api-Key: abc]def}ghi", "X-Api-Key: <redacted>"),
        (#"Authorization: Digest username="bob, response=abc"#, "Authorization: <redacted>"),
        // A printed list of fields (`HTTPFields`, a tracing carrier): up to the next field.
        ("[Authorization: \(digest), Accept: */*]", "[Authorization: <redacted>, Accept: */*]"),
        (
            #"[Authorization: Digest username="a, b: c", response="\#(digestResponse)", Accept: */*]"#,
            "[Authorization: <redacted>, Accept: */*]"
        ),
        ("[Authorization: \(digest)]", "[Authorization: <redacted>]"),
        // A string literal (JSON, a Swift dictionary, logfmt): up to its closing quote.
        (
            #"{"authorization":"\#(digestEscaped)","accept":"*/*"}"#,
            #"{"authorization":"<redacted>","accept":"*/*"}"#
        ),
        (
            #"["Authorization": "\#(digestEscaped)", "Accept": "*/*"]"#,
            #"["Authorization": "<redacted>", "Accept": "*/*"]"#
        ),
        (#"authorization="Bearer abc, def" next=1"#, #"authorization="<redacted>" next=1"#),
        // A header line inside a JSON string: up to the string's end or an escaped line break.
        (
            #"{"message":"Authorization: \#(digestEscaped)","level":"info"}"#,
            #"{"message":"Authorization: <redacted>","level":"info"}"#
        ),
        (
            #"{"message":"Authorization: Bearer tok-123\nAccept: x"}"#,
            #"{"message":"Authorization: <redacted>\nAccept: x"}"#
        ),
        // JSON inside a JSON string.
        (
            #"{"log":"{\"authorization\":\"\#(digestEscaped.replacingOccurrences(of: #"\""#, with: #"\\\""#))\",\"accept\":\"x\"}"}"#,
            #"{"log":"{\"authorization\":\"<redacted>\",\"accept\":\"x\"}"}"#
        ),
    ])
    func aSensitiveHeaderValueIsRedactedWhole(text: String, expected: String) {
        let redacted = Redactor().redact(text)
        #expect(redacted == expected)
        for secret in [digestResponse, "abc.def", "tok-123", "xyz", "dark", "ghi", "bob"] {
            #expect(!redacted.contains(secret), "\(secret) in \(redacted)")
        }
    }
}
