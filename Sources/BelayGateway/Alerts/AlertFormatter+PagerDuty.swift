import Foundation

/// An Events API v2 event (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/
/// and …/resolve-events/): `routing_key`, `event_action`, `dedup_key`, and for a trigger the
/// `payload` (`summary` at most 1,024 characters, `source`, `severity`).
struct PagerDutyEvent: Encodable, Sendable {
    struct Payload: Encodable, Sendable {
        var summary: String
        var source: String
        var severity: String
        var timestamp: String
        var component: String?
        var group: String?
        var eventClass: String
        var customDetails: [String: String]

        enum CodingKeys: String, CodingKey {
            case summary, source, severity, timestamp, component, group
            case eventClass = "class"
            case customDetails = "custom_details"
        }
    }

    var routingKey: String
    var eventAction: String
    var dedupKey: String
    var payload: Payload?
    var client: String?

    enum CodingKeys: String, CodingKey {
        case routingKey = "routing_key"
        case eventAction = "event_action"
        case dedupKey = "dedup_key"
        case payload, client
    }
}

extension AlertFormatter {
    /// A PagerDuty event: a `trigger` whose `dedup_key` is the group's (kind and upstream), so
    /// one outage is one incident; a `resolve` with the same key when the group clears.
    /// Severities map as they are (`info`, `warning`, `critical`).
    func pagerDuty(_ dispatch: AlertDispatch, route: AlertRoute) -> PagerDutyEvent {
        let alert = dispatch.alert
        var event = PagerDutyEvent(
            routingKey: route.routingKey?.value ?? "",
            eventAction: dispatch.action.rawValue,
            dedupKey: dispatch.dedupKey
        )
        guard dispatch.action == .trigger else { return event }
        event.client = "Belay"
        event.payload = .init(
            summary: Self.truncate(headline(dispatch), 1_024),
            source: source,
            severity: alert.level.rawValue,
            timestamp: alert.at.iso8601,
            component: alert.upstream,
            group: alert.upstream,
            eventClass: alert.kind.rawValue,
            customDetails: details(dispatch)
        )
        return event
    }
}
