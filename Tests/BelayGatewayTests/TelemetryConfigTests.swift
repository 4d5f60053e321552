import BelayGateway
import Logging
import Testing

@Suite struct TelemetryConfigTests {
    let loader = ConfigLoader(environment: ["OTLP_KEY": "otlp-api-key-123"])

    private func issues(_ yaml: String) -> [String] { loader.issues(yaml) }

    @Test func loggingAndTelemetryLoad() throws {
        let config = try loader.load(
            yaml: """
                logging: { redact_headers: [X-Shop-Token, Api-Secret] }
                telemetry:
                  otlp:
                    endpoint: "http://127.0.0.1:4318"
                    service_name: payments-gateway
                    protocol: http/json
                    headers: { x-honeycomb-team: "${OTLP_KEY}" }
                    export_delay: 1s
                """
        )
        #expect(config.logging.redactHeaders == ["X-Shop-Token", "Api-Secret"])
        let otlp = try #require(config.telemetry.otlp)
        #expect(otlp.endpoint == "http://127.0.0.1:4318")
        #expect(otlp.tracesURL == "http://127.0.0.1:4318/v1/traces")
        #expect(otlp.serviceName == "payments-gateway")
        #expect(otlp.wireProtocol == .httpJSON)
        #expect(otlp.headers.map(\.name) == ["x-honeycomb-team"])
        #expect(otlp.headers.first?.value.value == "otlp-api-key-123")
        #expect(otlp.exportDelay == .seconds(1))
        // The exporter's key is a secret like any other.
        #expect(Redactor(config: config).redact("key otlp-api-key-123") == "key <redacted>")
        #expect(Redactor(config: config).isSensitive(header: "x-shop-token"))
    }

    @Test func theDefaultsExportNothing() throws {
        let config = try loader.load(yaml: "server: { listen: \"127.0.0.1:8080\" }")
        #expect(config.telemetry.otlp == nil)
        #expect(config.logging.redactHeaders.isEmpty)
        #expect(try TraceExport.make(config.telemetry, environment: [:], logger: .init(label: "test")) == nil)
    }

    @Test func aTracesURLWithAPathIsKept() {
        #expect(GatewayConfig.OTLP(endpoint: "http://c:4318/").tracesURL == "http://c:4318/v1/traces")
        #expect(GatewayConfig.OTLP(endpoint: "https://c/otlp/v1/traces").tracesURL == "https://c/otlp/v1/traces")
    }

    @Test(arguments: [
        (
            "telemetry: { otlp: { service_name: x } }",
            "line 1: telemetry.otlp.endpoint: is required"
        ),
        (
            "telemetry: { otlp: { endpoint: \"ftp://x\" } }",
            "line 1: telemetry.otlp.endpoint: must be an absolute http:// or https:// URL (got 'ftp://x')"
        ),
        (
            "telemetry: { otlp: { endpoint: \"http://x\", protocol: grpc } }",
            "line 1: telemetry.otlp.protocol: must be one of http/protobuf, http/json (got 'grpc')"
        ),
        (
            "telemetry: { otlp: { endpoint: \"http://x\", export_delay: 0s } }",
            "line 1: telemetry.otlp.export_delay: must be greater than zero"
        ),
        (
            "telemetry: { jaeger: {} }",
            "line 1: telemetry.jaeger: unknown key"
        ),
        (
            "logging: { redact_headers: [\"Bad Header\"] }",
            "line 1: logging.redact_headers[0]: is not a valid header name (got 'Bad Header')"
        ),
    ])
    func invalidTelemetryIsReported(yaml: String, expected: String) {
        #expect(issues(yaml).contains { $0.hasPrefix(expected) }, "\(issues(yaml))")
    }
}
