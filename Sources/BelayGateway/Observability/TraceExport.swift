public import Logging
import OTel
public import ServiceLifecycle
public import Tracing

/// Trace export over OTLP/HTTP (swift-otel): a tracer for ``Gateway`` and the service that
/// batches and sends its finished spans.
///
/// Run the service beside the application and stop it after (so the last spans are sent):
///
/// ```swift
/// if let export = try TraceExport.make(config.telemetry, environment: env, logger: logger) {
///     let app = try await buildApplication(config: config, logger: logger, tracer: export.tracer)
///     try await ServiceGroup(services: [export.service, app], logger: logger).run()
/// }
/// ```
public struct TraceExport: Sendable {
    /// The tracer spans are made with.
    public let tracer: any Tracer
    /// Batches finished spans and sends them; run it until after the application stops.
    public let service: any Service

    /// The export `telemetry.otlp` configures, or when it is absent and
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set in
    /// `environment`, an export to that collector; nil when neither asks for one.
    ///
    /// The standard `OTEL_*` variables (e.g. `OTEL_SERVICE_NAME`,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) override the config, as swift-otel reads them.
    /// Only traces are exported: logs stay on standard output, metrics on `/metrics`.
    /// swift-otel's own diagnostics go to `logger` at `warning` and above (`OTEL_LOG_LEVEL`
    /// can lower that) through ``OTelDiagnosticLogHandler``, which never lets a request's
    /// headers through.
    /// - Throws: when swift-otel refuses the resulting configuration.
    public static func make(
        _ telemetry: GatewayConfig.Telemetry,
        environment: [String: String],
        logger: Logger
    ) throws -> TraceExport? {
        var configuration = OTel.Configuration.default
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        // swift-otel logs the whole header carrier (every request header) for each unreadable
        // traceparent: such records become one fixed debug line (OTelDiagnosticLogHandler).
        configuration.diagnosticLogger = .custom(OTelDiagnosticLogHandler.wrapping(logger))
        configuration.diagnosticLogLevel = .warning
        configuration.serviceName = "belay"
        if let otlp = telemetry.otlp {
            configuration.serviceName = otlp.serviceName
            configuration.traces.otlpExporter.endpoint = otlp.tracesURL
            configuration.traces.otlpExporter.protocol =
                otlp.wireProtocol == .httpJSON ? .httpJSON : .httpProtobuf
            configuration.traces.otlpExporter.headers = otlp.headers.map { ($0.name, $0.value.value) }
            configuration.traces.batchSpanProcessor.scheduleDelay = otlp.exportDelay
        } else if environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == nil,
            environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] == nil
        {
            return nil
        }
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        return TraceExport(tracer: backend.factory, service: backend.service)
    }
}
