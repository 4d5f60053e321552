import Foundation
import Yams

extension ConfigLoader {
    /// The keys of one `alerts` sink.
    static let alertSinkKeys: Set<String> = [
        "url", "format", "min_severity", "quiet_hours", "routing_key", "api_key", "group_window",
    ]

    /// `alerts: [ { url, format, min_severity, quiet_hours, routing_key, api_key, group_window } ]`.
    func readAlerts(_ node: Node, into config: inout GatewayConfig, _ reader: inout ConfigReader) {
        for (index, item) in (reader.sequence(node, at: "alerts") ?? []).enumerated() {
            if let route = readAlertSink(item, at: "alerts[\(index)]", &reader) { config.alerts.append(route) }
        }
    }

    private func readAlertSink(_ node: Node, at path: String, _ reader: inout ConfigReader) -> AlertRoute? {
        guard let entries = reader.mapping(node, at: path, allowed: Self.alertSinkKeys) else { return nil }
        let before = reader.issues.count
        var url: String?
        var format = AlertRoute.Format.json
        var minSeverity = AlertSeverity.info
        var quietHours: QuietHours?
        var routingKey: Secret?
        var apiKey: Secret?
        var groupWindow: Duration?
        var given: [String: Node] = [:]
        for (key, value) in entries {
            let keyPath = "\(path).\(key)"
            given[key] = value
            switch key {
            case "url":
                if reader.url(value, at: keyPath) != nil { url = reader.string(value, at: keyPath) }
            case "format":
                guard let text = reader.string(value, at: keyPath) else { continue }
                if let chosen = AlertRoute.Format(rawValue: text) {
                    format = chosen
                } else {
                    let known = AlertRoute.Format.allCases.map(\.rawValue).joined(separator: ", ")
                    reader.report(keyPath, value, "must be one of \(known) (got '\(text)')")
                }
            case "min_severity":
                guard let text = reader.string(value, at: keyPath) else { continue }
                if let level = AlertSeverity(rawValue: text) {
                    minSeverity = level
                } else {
                    let known = AlertSeverity.allCases.map(\.rawValue).joined(separator: ", ")
                    reader.report(keyPath, value, "must be one of \(known) (got '\(text)')")
                }
            case "quiet_hours":
                guard let text = reader.string(value, at: keyPath) else { continue }
                do {
                    quietHours = try QuietHours(parsing: text)
                } catch {
                    reader.report(keyPath, value, error.description)
                }
            case "routing_key":
                routingKey = readAlertKey(value, at: keyPath, &reader)
            case "api_key":
                apiKey = readAlertKey(value, at: keyPath, &reader)
            case "group_window":
                groupWindow = reader.duration(value, at: keyPath, allowZero: true)
            default: break
            }
        }
        // Which keys a format needs or refuses is checked once the format is known.
        switch format {
        case .json, .slack:
            if given["url"] == nil { reader.report("\(path).url", node, "is required for format \(format.rawValue)") }
        case .pagerduty:
            if given["routing_key"] == nil {
                reader.report("\(path).routing_key", node, "is required for format pagerduty (the integration key)")
            }
        case .opsgenie:
            if given["api_key"] == nil {
                reader.report("\(path).api_key", node, "is required for format opsgenie (an API integration's key)")
            }
        }
        for (key, wanted) in [("routing_key", AlertRoute.Format.pagerduty), ("api_key", .opsgenie)]
        where format != wanted {
            if let value = given[key] {
                reader.report(
                    "\(path).\(key)",
                    value,
                    "is only for format \(wanted.rawValue) (this sink is \(format.rawValue))"
                )
            }
        }
        guard reader.issues.count == before else { return nil }
        let defaultURL = format == .pagerduty ? AlertRoute.pagerDutyURL : AlertRoute.opsgenieURL
        return AlertRoute(
            url: url ?? defaultURL,
            format: format,
            minSeverity: minSeverity,
            quietHours: quietHours,
            routingKey: routingKey,
            apiKey: apiKey,
            groupWindow: groupWindow
        )
    }

    /// A provider key: `${ENV}` expanded, not empty, safe in a header; never echoed in a message.
    private func readAlertKey(_ node: Node, at path: String, _ reader: inout ConfigReader) -> Secret? {
        guard let text = reader.headerValue(node, at: path) else { return nil }
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            reader.report(path, node, "must not be empty")
            return nil
        }
        return Secret(text)
    }
}
