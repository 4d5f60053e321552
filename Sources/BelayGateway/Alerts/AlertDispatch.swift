/// One message the router decided to send to one sink: a trigger (a condition raised, or a
/// group's follow-up) or a resolve (the group's last open condition cleared).
public struct AlertDispatch: Sendable, Hashable {
    /// What the message does at the sink.
    public enum Action: String, Sendable, Hashable {
        /// A condition is raised (PagerDuty `trigger`, Opsgenie create).
        case trigger
        /// Every condition of the group cleared (PagerDuty `resolve`, Opsgenie close).
        case resolve
    }

    /// The index of the sink in the router's routes.
    public var sink: Int
    /// Trigger or resolve.
    public var action: Action
    /// The alert: for a trigger the raised one (the latest of a collapsed run); for a resolve
    /// the resolving one.
    public var alert: Alert
    /// The condition raised or cleared.
    public var condition: AlertCondition
    /// The stable key of the group at the sink: PagerDuty's `dedup_key`, Opsgenie's `alias`.
    public var dedupKey: String
    /// How many raised alerts this message stands for: 1, or more for a group's follow-up or
    /// a warning released after quiet hours that was raised several times.
    public var count: Int
    /// Conditions of the group still open after this message (0 for a resolve).
    public var open: Int
}
