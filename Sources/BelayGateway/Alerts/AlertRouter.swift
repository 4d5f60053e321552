public import Foundation

/// Decides what each sink is sent, sans IO: which alerts reach a sink (`min_severity`), which
/// wait for the end of its quiet hours, how alerts of one kind for one upstream collapse into
/// one message per group window, and when a resolve goes (when the last open condition of a
/// group clears at a sink that was sent its trigger).
///
/// Feed it every alert with ``receive(_:at:)`` and call ``tick(at:)`` at ``nextDeadline``;
/// both return the messages to send. Time is the caller's: the wall-clock date (quiet hours
/// are local times), from an injected clock.
public struct AlertRouter: Sendable {
    /// A warning waiting for the end of quiet hours, collapsed per condition.
    private struct Held: Sendable {
        var alert: Alert
        var count: Int
    }

    /// The conditions of one kind for one upstream (or one condition, without grouping) at a sink.
    private struct Group: Sendable {
        var open: Set<AlertCondition> = []
        /// Until when further triggers are collapsed rather than sent.
        var windowEnd: Date?
        /// Triggers collapsed in the current window.
        var collapsed = 0
        /// The latest trigger (what a follow-up shows).
        var latest: Alert
        /// When a trigger was last raised, for forgetting groups nobody resolves.
        var lastRaisedAt: Date
    }

    private struct Sink: Sendable {
        var held: [Held] = []
        var releaseAt: Date?
        var groups: [String: Group] = [:]
    }

    /// How long a group with open conditions is remembered after its last trigger when
    /// nothing resolves it (conditions without a natural clear, such as `delivery.ack_overdue`).
    public static let forgetAfter: TimeInterval = 7 * 86_400
    /// Most warnings held per sink during quiet hours; past it the oldest are dropped.
    public static let heldLimit = 1_000

    /// The sinks, in config order.
    public private(set) var routes: [AlertRoute]
    private var sinks: [Sink]
    /// Held warnings dropped because ``heldLimit`` was reached.
    public private(set) var droppedWhileQuiet = 0

    /// A router for `routes`.
    public init(routes: [AlertRoute]) {
        self.routes = routes
        self.sinks = Array(repeating: Sink(), count: routes.count)
    }

    /// Sends to `routes` from now on (a config reload). A sink that stays (the same destination:
    /// URL, format and key) keeps what it knows, so a condition triggered before the reload is
    /// still resolved there, and its held warnings still go (at once, if it has no quiet hours
    /// any more); a removed sink's state is dropped. Returns the held warnings dropped with it.
    public mutating func replace(routes new: [AlertRoute]) -> Int {
        var kept: [Sink] = []
        var taken = Set<Int>()
        for route in new {
            let old = routes.indices.first { !taken.contains($0) && Self.sameDestination(routes[$0], route) }
            guard let old else {
                kept.append(Sink())
                continue
            }
            taken.insert(old)
            var sink = sinks[old]
            if route.quietHours == nil, sink.releaseAt != nil { sink.releaseAt = .distantPast }
            kept.append(sink)
        }
        let dropped = sinks.indices.filter { !taken.contains($0) }.reduce(0) { $0 + sinks[$1].held.count }
        routes = new
        sinks = kept
        return dropped
    }

    /// Whether two sinks are one destination: the same URL, format and keys.
    private static func sameDestination(_ lhs: AlertRoute, _ rhs: AlertRoute) -> Bool {
        lhs.url == rhs.url && lhs.format == rhs.format && lhs.routingKey == rhs.routingKey && lhs.apiKey == rhs.apiKey
    }

    /// The messages `alert` causes at `now`.
    public mutating func receive(_ alert: Alert, at now: Date) -> [AlertDispatch] {
        var out: [AlertDispatch] = []
        for index in routes.indices {
            if alert.resolvedKind != nil {
                out += resolve(alert, sink: index)
                continue
            }
            let route = routes[index]
            guard alert.level >= route.minSeverity else { continue }
            if let quiet = route.quietHours, alert.level < .critical, quiet.contains(now) {
                hold(alert, sink: index, until: quiet.end(after: now))
                continue
            }
            out += trigger(alert, count: 1, sink: index, at: now)
        }
        return out
    }

    /// The messages due at `now`: warnings released at the end of quiet hours, and groups'
    /// follow-ups at the end of their windows.
    public mutating func tick(at now: Date) -> [AlertDispatch] {
        var out: [AlertDispatch] = []
        for index in routes.indices {
            if let release = sinks[index].releaseAt, release <= now {
                let held = sinks[index].held
                sinks[index].held = []
                sinks[index].releaseAt = nil
                for item in held { out += trigger(item.alert, count: item.count, sink: index, at: now) }
            }
            let window = routes[index].groupWindow
            for key in sinks[index].groups.keys.sorted() {
                guard var group = sinks[index].groups[key] else { continue }
                if let end = group.windowEnd, end <= now {
                    if group.collapsed > 0 {
                        out.append(
                            dispatch(.trigger, group.latest, sink: index, key: key, count: group.collapsed, group)
                        )
                        group.collapsed = 0
                        group.windowEnd = now.adding(window)
                    } else {
                        group.windowEnd = nil
                    }
                }
                if group.windowEnd == nil, now.timeIntervalSince(group.lastRaisedAt) > Self.forgetAfter {
                    sinks[index].groups[key] = nil
                } else {
                    sinks[index].groups[key] = group
                }
            }
        }
        return out
    }

    /// When ``tick(at:)`` next has something to do; nil when nothing waits.
    public var nextDeadline: Date? {
        var next: Date?
        for sink in sinks {
            for candidate in [sink.releaseAt] + sink.groups.values.map(\.windowEnd) {
                if let candidate, next.map({ candidate < $0 }) ?? true { next = candidate }
            }
        }
        return next
    }

    /// Warnings waiting for the end of quiet hours at sink `index`, oldest first.
    public func held(at index: Int) -> [Alert] { sinks[index].held.map(\.alert) }

    /// The key of `condition`'s group at `route`: kind and upstream when it groups, else the
    /// whole condition. Stable across restarts and instances (no instance name, no time).
    public static func dedupKey(_ condition: AlertCondition, route: AlertRoute) -> String {
        var key = "belay:\(condition.kind.rawValue):\(condition.upstream ?? "-")"
        if route.groupWindow == .zero { key += ":\(condition.subject ?? "-")" }
        guard key.utf8.count > 255 else { return key }
        // PagerDuty takes 255 characters: a long subject is shortened with a stable hash.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return String(key.prefix(200)) + "#" + String(hash, radix: 16)
    }

    private mutating func hold(_ alert: Alert, sink index: Int, until end: Date) {
        if let at = sinks[index].held.firstIndex(where: { $0.alert.condition == alert.condition }) {
            sinks[index].held[at].alert = alert
            sinks[index].held[at].count += 1
        } else {
            sinks[index].held.append(Held(alert: alert, count: 1))
            if sinks[index].held.count > Self.heldLimit {
                sinks[index].held.removeFirst()
                droppedWhileQuiet += 1
            }
        }
        if sinks[index].releaseAt == nil { sinks[index].releaseAt = end }
    }

    private mutating func trigger(_ alert: Alert, count: Int, sink index: Int, at now: Date) -> [AlertDispatch] {
        let condition = alert.condition
        let key = Self.dedupKey(condition, route: routes[index])
        let window = routes[index].groupWindow
        var group = sinks[index].groups[key] ?? Group(latest: alert, lastRaisedAt: now)
        group.open.insert(condition)
        group.latest = alert
        group.lastRaisedAt = now
        defer { sinks[index].groups[key] = group }
        if let end = group.windowEnd, now < end {
            group.collapsed += count
            return []
        }
        group.windowEnd = window > .zero ? now.adding(window) : nil
        return [dispatch(.trigger, alert, sink: index, key: key, count: count, group)]
    }

    private mutating func resolve(_ alert: Alert, sink index: Int) -> [AlertDispatch] {
        let condition = alert.condition
        // A warning still waiting for the end of quiet hours is dropped: it cleared unseen.
        sinks[index].held.removeAll { $0.alert.condition == condition }
        if sinks[index].held.isEmpty { sinks[index].releaseAt = nil }
        var key = Self.dedupKey(condition, route: routes[index])
        // Triggered under another key (a reload changed the sink's grouping since): resolved
        // under the key it was sent with.
        if sinks[index].groups[key]?.open.contains(condition) != true,
            let sent = sinks[index].groups.first(where: { $0.value.open.contains(condition) })?.key
        {
            key = sent
        }
        guard var group = sinks[index].groups[key], group.open.remove(condition) != nil else { return [] }
        guard group.open.isEmpty else {
            sinks[index].groups[key] = group
            return []
        }
        sinks[index].groups[key] = nil
        return [dispatch(.resolve, alert, sink: index, key: key, count: 1, group)]
    }

    private func dispatch(
        _ action: AlertDispatch.Action,
        _ alert: Alert,
        sink: Int,
        key: String,
        count: Int,
        _ group: Group
    ) -> AlertDispatch {
        AlertDispatch(
            sink: sink,
            action: action,
            alert: alert,
            condition: alert.condition,
            dedupKey: key,
            count: count,
            open: action == .resolve ? 0 : group.open.count
        )
    }
}
