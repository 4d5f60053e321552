import Yams

extension ConfigLoader {
    /// `logging: { redact_headers: [X-Api-Key, …] }`.
    func readLogging(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        for (key, value) in reader.mapping(node, at: "logging", allowed: ["redact_headers"]) ?? [] {
            let path = "logging.\(key)"
            for (index, item) in (reader.sequence(value, at: path) ?? []).enumerated() {
                guard let name = reader.string(item, at: "\(path)[\(index)]") else { continue }
                if UpstreamConfigReader.isToken(name) {
                    config.logging.redactHeaders.append(name)
                } else {
                    reader.report("\(path)[\(index)]", item, "is not a valid header name (got '\(name)')")
                }
            }
        }
    }

    /// `telemetry: { otlp: { endpoint, service_name, protocol, headers, export_delay } }`.
    func readTelemetry(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        for (_, value) in reader.mapping(node, at: "telemetry", allowed: ["otlp"]) ?? [] {
            config.telemetry.otlp = readOTLP(value, &reader)
        }
    }

    private func readOTLP(_ node: Node, _ reader: inout ConfigReader) -> GatewayConfig.OTLP? {
        let allowed: Set<String> = ["endpoint", "service_name", "protocol", "headers", "export_delay"]
        var endpoint: String?
        var otlp = GatewayConfig.OTLP(endpoint: "")
        for (key, value) in reader.mapping(node, at: "telemetry.otlp", allowed: allowed) ?? [] {
            let path = "telemetry.otlp.\(key)"
            switch key {
            case "endpoint":
                if reader.url(value, at: path) != nil { endpoint = reader.string(value, at: path) }
            case "service_name":
                guard let name = reader.string(value, at: path) else { continue }
                if name.isEmpty {
                    reader.report(path, value, "must not be empty")
                } else {
                    otlp.serviceName = name
                }
            case "protocol":
                guard let text = reader.string(value, at: path) else { continue }
                if let chosen = GatewayConfig.OTLP.WireProtocol(rawValue: text) {
                    otlp.wireProtocol = chosen
                } else {
                    let known = GatewayConfig.OTLP.WireProtocol.allCases.map(\.rawValue).joined(separator: ", ")
                    reader.report(path, value, "must be one of \(known) (got '\(text)')")
                }
            case "headers":
                for (header, item) in reader.mapping(value, at: path) ?? [] {
                    guard UpstreamConfigReader.isToken(header) else {
                        reader.report("\(path).\(header)", item, "is not a valid header name")
                        continue
                    }
                    if let text = reader.headerValue(item, at: "\(path).\(header)") {
                        otlp.headers.append(.init(name: header, value: Secret(text)))
                    }
                }
            case "export_delay":
                if let delay = reader.duration(value, at: path) { otlp.exportDelay = delay }
            default: break
            }
        }
        guard let endpoint else {
            if !reader.issues.contains(where: { $0.path == "telemetry.otlp.endpoint" }) {
                reader.report("telemetry.otlp.endpoint", node, "is required")
            }
            return nil
        }
        otlp.endpoint = endpoint
        return otlp
    }
}
