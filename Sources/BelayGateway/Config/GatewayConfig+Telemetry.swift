import Foundation

extension GatewayConfig {
    /// What the gateway keeps out of its logs (see ``Redactor``).
    ///
    /// ```yaml
    /// logging:
    ///   redact_headers: [X-Api-Key, X-Shop-Token]
    /// ```
    public struct LoggingOptions: Sendable, Hashable {
        /// Headers whose values are redacted, besides the built-ins (`Authorization`,
        /// `Proxy-Authorization`, `Cookie`, `Set-Cookie`, `X-Api-Key`, `Api-Key`) and every
        /// upstream's `headers:`. Default none.
        public var redactHeaders: [String] = []

        /// Creates the default logging settings.
        public init() {}
    }

    /// Where traces go.
    ///
    /// ```yaml
    /// telemetry:
    ///   otlp: { endpoint: "http://127.0.0.1:4318", service_name: belay }
    /// ```
    public struct Telemetry: Sendable, Hashable {
        /// Export to an OpenTelemetry collector over OTLP/HTTP. Default nil: no export (unless
        /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set).
        public var otlp: OTLP?

        /// Creates the default telemetry settings: no export.
        public init() {}
    }

    /// An OTLP/HTTP trace exporter.
    public struct OTLP: Sendable, Hashable {
        /// How spans are encoded.
        public enum WireProtocol: String, Sendable, Hashable, CaseIterable {
            /// Protocol Buffers (`application/x-protobuf`), the OTLP default.
            case httpProtobuf = "http/protobuf"
            /// JSON (`application/json`).
            case httpJSON = "http/json"
        }

        /// The collector's URL. A URL with no path gets `/v1/traces` appended (as
        /// `OTEL_EXPORTER_OTLP_ENDPOINT` does); one with a path is used as is.
        public var endpoint: String
        /// The `service.name` resource attribute. Default `belay`.
        public var serviceName: String = "belay"
        /// The encoding. Default `http/protobuf`.
        public var wireProtocol: WireProtocol = .httpProtobuf
        /// Headers sent with each export (API keys: their values are secrets). Default none.
        public var headers: [Header] = []
        /// How long finished spans wait before they are sent in a batch. Default 5 s.
        public var exportDelay: Duration = .seconds(5)

        /// One header sent with each export.
        public struct Header: Sendable, Hashable {
            /// The header's name.
            public var name: String
            /// Its value, never logged.
            public var value: Secret

            /// Creates a header.
            public init(name: String, value: Secret) {
                self.name = name
                self.value = value
            }
        }

        /// An exporter to `endpoint`; every other setting has its default.
        public init(endpoint: String) {
            self.endpoint = endpoint
        }

        /// The URL spans are POSTed to: `endpoint`, with `/v1/traces` when it has no path.
        public var tracesURL: String {
            guard let scheme = endpoint.range(of: "://") else { return endpoint }
            let rest = endpoint[scheme.upperBound...]
            guard let slash = rest.firstIndex(of: "/") else { return endpoint + "/v1/traces" }
            return rest[slash...] == "/" ? endpoint + "v1/traces" : endpoint
        }
    }
}
