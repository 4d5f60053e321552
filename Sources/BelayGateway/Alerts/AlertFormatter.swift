public import Foundation

/// Turns a router's ``AlertDispatch`` into the request its sink's ``AlertRoute/format`` wants.
/// Pure: the same dispatch always gives the same bytes.
///
/// - `json`: the ``Alert`` as JSON, as before; a resolve carries `resolves` (the kind it
///   clears); a follow-up or a released warning raised several times carries `count`.
/// - `slack`, `pagerduty`, `opsgenie`: see ``slack(_:)``, ``pagerDuty(_:route:)`` and
///   ``opsgenie(_:route:)``.
public struct AlertFormatter: Sendable {
    /// Who sends: PagerDuty's `payload.source` and Opsgenie's `source` (the instance name).
    public var source: String

    /// A formatter naming `source` as the sender.
    public init(source: String) {
        self.source = source
    }

    /// The request for `dispatch` to `route`.
    public func request(for dispatch: AlertDispatch, route: AlertRoute) -> AlertRequest {
        switch route.format {
        case .json: AlertRequest(url: route.url, body: json(dispatch))
        case .slack: AlertRequest(url: route.url, body: Self.encode(slack(dispatch)))
        case .pagerduty: AlertRequest(url: route.url, body: Self.encode(pagerDuty(dispatch, route: route)))
        case .opsgenie: opsgenie(dispatch, route: route)
        }
    }

    /// The `json` body.
    public func json(_ dispatch: AlertDispatch) -> Data {
        var alert = dispatch.alert
        if dispatch.action == .resolve { alert.resolves = alert.resolvedKind }
        guard dispatch.count > 1 else { return alert.json() }
        return Self.encode(CountedAlert(alert: alert, count: dispatch.count))
    }

    static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(value)) ?? Data()
    }

    /// One line for a person: the summary, and for a collapsed run how many there were.
    func headline(_ dispatch: AlertDispatch) -> String {
        let alert = dispatch.alert
        switch dispatch.action {
        case .resolve:
            return "Resolved: \(alert.summary)"
        case .trigger where dispatch.count > 1:
            return "\(alert.summary) (\(dispatch.count) \(alert.kind) alerts for \(alert.upstream ?? "Belay") "
                + "collapsed; \(dispatch.open) open)"
        case .trigger:
            return alert.summary
        }
    }

    /// The alert's facts as strings, for PagerDuty's `custom_details` and Opsgenie's `details`.
    func details(_ dispatch: AlertDispatch) -> [String: String] {
        let alert = dispatch.alert
        var details: [String: String] = ["kind": alert.kind.rawValue, "at": alert.at.iso8601]
        details["upstream"] = alert.upstream
        details["subject"] = alert.subject
        details["since"] = alert.since?.iso8601
        details["last_error"] = alert.lastError
        details["next_attempt_at"] = alert.nextAttemptAt?.iso8601
        details["attempts"] = alert.attempts.map(String.init)
        details["link"] = alert.link
        details["resolves"] = dispatch.action == .resolve ? alert.resolvedKind?.rawValue : nil
        if dispatch.count > 1 { details["count"] = String(dispatch.count) }
        if dispatch.action == .trigger { details["open"] = String(dispatch.open) }
        return details
    }

    /// `text` cut to `limit` characters, ending in `…` when cut.
    static func truncate(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }
}

/// An alert with the number of raised alerts its message stands for.
private struct CountedAlert: Encodable {
    var alert: Alert
    var count: Int

    enum CodingKeys: String, CodingKey { case count }

    func encode(to encoder: any Encoder) throws {
        try alert.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(count, forKey: .count)
    }
}
