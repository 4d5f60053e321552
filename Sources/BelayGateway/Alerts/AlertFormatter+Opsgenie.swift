import Foundation

/// Opsgenie's create-alert body (https://docs.opsgenie.com/docs/alert-api#create-alert):
/// `message` (required, at most 130 characters), `alias` (512, the dedup key), `description`
/// (15,000), `priority` P1 to P5, `source` (100), `tags` (at most 20, 50 characters each),
/// `details` (string to string), `entity` (512).
struct OpsgenieCreate: Encodable, Sendable {
    var message: String
    var alias: String
    var description: String
    var priority: String
    var source: String
    var tags: [String]
    var details: [String: String]
    var entity: String?
}

/// Opsgenie's close-alert body (https://docs.opsgenie.com/docs/alert-api#close-alert):
/// `source` (100) and `note` (25,000), all optional.
struct OpsgenieClose: Encodable, Sendable {
    var source: String
    var note: String
}

extension AlertFormatter {
    /// An Opsgenie request: create (`POST /v2/alerts`, `alias` the group's dedup key, so one
    /// outage is one alert) or close (`POST /v2/alerts/{alias}/close?identifierType=alias`),
    /// authorized with `Authorization: GenieKey <api_key>`. Priorities: critical P1, warning
    /// P3, info P5.
    func opsgenie(_ dispatch: AlertDispatch, route: AlertRoute) -> AlertRequest {
        let base = route.url.hasSuffix("/") ? String(route.url.dropLast()) : route.url
        let headers = [
            AlertRequest.Header(name: "Authorization", value: Secret("GenieKey \(route.apiKey?.value ?? "")"))
        ]
        let alert = dispatch.alert
        switch dispatch.action {
        case .trigger:
            let create = OpsgenieCreate(
                message: Self.truncate(headline(dispatch), 130),
                alias: Self.truncate(dispatch.dedupKey, 512),
                description: Self.truncate(headline(dispatch) + (alert.link.map { "\n\nSee \($0)" } ?? ""), 15_000),
                priority: Self.opsgeniePriority(alert.level),
                source: Self.truncate(source, 100),
                tags: ["belay", alert.kind.rawValue, alert.level.rawValue].map { Self.truncate($0, 50) },
                details: details(dispatch),
                entity: alert.upstream.map { Self.truncate($0, 512) }
            )
            return AlertRequest(url: base + "/v2/alerts", headers: headers, body: Self.encode(create))
        case .resolve:
            let alias = Self.truncate(dispatch.dedupKey, 512)
            let path = alias.addingPercentEncoding(withAllowedCharacters: .urlPathSegmentAllowed) ?? alias
            let close = OpsgenieClose(source: Self.truncate(source, 100), note: Self.truncate(alert.summary, 25_000))
            return AlertRequest(
                url: base + "/v2/alerts/\(path)/close?identifierType=alias",
                headers: headers,
                body: Self.encode(close)
            )
        }
    }

    static func opsgeniePriority(_ severity: AlertSeverity) -> String {
        switch severity {
        case .critical: "P1"
        case .warning: "P3"
        case .info: "P5"
        }
    }
}

extension CharacterSet {
    /// Characters allowed unescaped in one path segment (`/` escaped too).
    fileprivate static let urlPathSegmentAllowed = CharacterSet.urlPathAllowed.subtracting(
        CharacterSet(charactersIn: "/")
    )
}
