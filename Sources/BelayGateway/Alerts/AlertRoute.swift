import Foundation

/// One `alerts` sink: where alerts go, in which format, from which severity, and when
/// warnings wait.
///
/// ```yaml
/// alerts:
///   - { url: "http://127.0.0.1:9000/alerts" }                        # json, everything
///   - format: pagerduty
///     routing_key: ${PAGERDUTY_ROUTING_KEY}
///     min_severity: critical
///   - format: slack
///     url: ${SLACK_WEBHOOK_URL}
///     min_severity: warning
///     quiet_hours: "22:00-07:00 Europe/Berlin"
/// ```
public struct AlertRoute: Sendable, Hashable {
    /// The shape of what a sink is sent.
    public enum Format: String, Sendable, Hashable, CaseIterable {
        /// The ``Alert`` itself as JSON (a resolve carries `resolves`; a group's follow-up `count`).
        case json
        /// A Slack incoming-webhook message: `text` plus section and context `blocks`.
        case slack
        /// PagerDuty Events API v2: `trigger` and `resolve` events with a stable `dedup_key`.
        case pagerduty
        /// Opsgenie Alert API: create (`alias` dedups) and close by alias.
        case opsgenie
    }

    /// PagerDuty's Events API v2 endpoint, the default `url` of a `pagerduty` sink.
    public static let pagerDutyURL = "https://events.pagerduty.com/v2/enqueue"
    /// Opsgenie's API (US); EU accounts set `url: https://api.eu.opsgenie.com`.
    public static let opsgenieURL = "https://api.opsgenie.com"
    /// The default grouping window of the formats that page or post to people.
    public static let defaultGroupWindow: Duration = .seconds(300)

    /// Where alerts are POSTed: the sink URL (`json`), the webhook URL (`slack`, a secret), the
    /// Events API endpoint (`pagerduty`) or the API's base URL (`opsgenie`).
    public var url: String
    /// The format. Default `json`.
    public var format: Format
    /// The lowest severity sent. Default `info` (everything).
    public var minSeverity: AlertSeverity
    /// When warnings (and infos) wait; criticals always go. Default none.
    public var quietHours: QuietHours?
    /// The PagerDuty integration key (`pagerduty` only, required).
    public var routingKey: Secret?
    /// The Opsgenie API integration key, sent as `Authorization: GenieKey …` (`opsgenie` only, required).
    public var apiKey: Secret?
    /// Alerts of one kind for one upstream within this window after the first are collapsed
    /// into one follow-up with a count; zero sends each condition on its own. Default 5 minutes
    /// for `slack`, `pagerduty` and `opsgenie`, zero for `json` (each alert, as before).
    public var groupWindow: Duration

    /// A sink; `groupWindow` defaults by format (see ``groupWindow``).
    public init(
        url: String,
        format: Format = .json,
        minSeverity: AlertSeverity = .info,
        quietHours: QuietHours? = nil,
        routingKey: Secret? = nil,
        apiKey: Secret? = nil,
        groupWindow: Duration? = nil
    ) {
        self.url = url
        self.format = format
        self.minSeverity = minSeverity
        self.quietHours = quietHours
        self.routingKey = routingKey
        self.apiKey = apiKey
        self.groupWindow = groupWindow ?? (format == .json ? .zero : Self.defaultGroupWindow)
    }

    /// The values of this sink that must never be logged: its keys and, for Slack, the webhook
    /// URL (it is the credential).
    public var secrets: [String] {
        var secrets = [routingKey?.value, apiKey?.value].compactMap { $0 }
        if format == .slack { secrets.append(url) }
        return secrets
    }

    /// The host alone, safe to log.
    public var host: String { URL(string: url)?.host ?? "?" }
}
