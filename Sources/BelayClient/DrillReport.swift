public import BelayAPI
public import Foundation

/// What a failure drill did, assembled from a running gateway's management API while the
/// drill runs and after it (what `belay drill` prints): what callers saw, whether and when the
/// breaker opened and the upstream was seen to fail (time to detect), the alerts raised, and
/// how long the upstream took to recover after the drill ended.
///
/// It is fed the JSON the API answers (``observe(upstream:at:)``, ``observe(alerts:)``,
/// ``count(requests:)``), so it is tested without a gateway.
public struct DrillReport: Sendable {
    /// One thing that happened, at a time.
    public struct Event: Sendable, Hashable {
        /// When.
        public var at: Date
        /// What, in words.
        public var text: String
    }

    /// The upstream drilled.
    public let upstream: String
    /// The drill's id.
    public let drillID: String
    /// The fault, in words (`a full outage …`).
    public let fault: String
    /// When the drill started.
    public let startedAt: Date
    /// When it was due to end.
    public let endsAt: Date
    /// When it ended, once it has been seen to.
    public private(set) var endedAt: Date?
    /// When the upstream was first seen failing: its state left `healthy`, or an alert about
    /// it was raised, whichever came first.
    public private(set) var detectedAt: Date?
    /// When its breaker first opened during the drill.
    public private(set) var breakerOpenedAt: Date?
    /// When it was back to `healthy` with its breaker closed, after the drill ended.
    public private(set) var recoveredAt: Date?
    /// The last state and breaker seen.
    public private(set) var state = "healthy"
    /// The last breaker state seen.
    public private(set) var breaker = "closed"
    /// The timeline, in the order seen.
    public private(set) var events: [Event] = []
    /// Callers' answers during the drill and the recovery, by the audit trail's `outcome`.
    public private(set) var outcomes: [String: Int] = [:]
    /// Whether the callers' answers could be counted (false: the audit trail is off, or not
    /// every page was read).
    public private(set) var outcomesComplete = true
    /// When a caller first got an answer other than `success`.
    public private(set) var firstFailureAt: Date?

    private var alertsSeen: Set<String> = []
    private var breakerChangesSeen: Set<String> = []

    /// Starts a report from the drill the gateway answered `POST …/faults` with.
    public init(drill: DrillView) {
        self.upstream = drill.upstream
        self.drillID = drill.id
        self.fault = drill.summary
        self.startedAt = drill.startedAt
        self.endsAt = drill.endsAt
        events.append(Event(at: drill.startedAt, text: "drill \(drill.id) started: \(fault)"))
    }

    /// Whether the drill is over and the upstream recovered (nothing more to watch).
    public var settled: Bool { endedAt != nil && recoveredAt != nil }

    /// Takes in `GET /v1/upstreams/{name}` as read at `now`; returns the new events, for
    /// progress lines.
    @discardableResult
    public mutating func observe(upstream: UpstreamHealthView, at now: Date) -> [Event] {
        let before = events.count
        for change in upstream.breakerHistory where change.at >= startedAt {
            let key = "\(ManagementJSON.format(change.at)) \(change.to)"
            guard breakerChangesSeen.insert(key).inserted else { continue }
            add(change.at, "breaker \(change.from) → \(change.to)")
            if change.to == "open", breakerOpenedAt == nil { breakerOpenedAt = change.at }
        }
        breaker = upstream.breaker
        if upstream.state != state {
            let since = max(upstream.since, startedAt)
            add(since, "state \(upstream.state)" + (upstream.reason.isEmpty ? "" : ": \(upstream.reason)"))
            if upstream.state != "healthy", detectedAt == nil { detectedAt = since }
            state = upstream.state
        }
        let drillActive = upstream.drill?.id == drillID
        if endedAt == nil, !drillActive {
            let ended = min(now, endsAt)
            endedAt = ended
            add(ended, "drill ended")
        }
        if endedAt != nil, recoveredAt == nil, state == "healthy", breaker == "closed" {
            let at = max(now, endedAt ?? now)
            recoveredAt = at
            add(at, "recovered: healthy, breaker closed")
        }
        return Array(events[before...])
    }

    /// Takes in `/v1/status`'s `alerts` (recent alerts, newest first); keeps those about this
    /// upstream raised since the drill started, except the drill's own.
    @discardableResult
    public mutating func observe(alerts: [StatusView.Alert]) -> [Event] {
        let before = events.count
        for alert in alerts.reversed() {
            guard alert.upstream == upstream, !alert.kind.hasPrefix("drill."), alert.at >= startedAt else { continue }
            guard alertsSeen.insert("\(alert.kind) \(ManagementJSON.format(alert.at))").inserted else { continue }
            add(alert.at, "alert \(alert.kind) (\(alert.severity)): \(alert.summary)")
            if detectedAt.map({ alert.at < $0 }) ?? true { detectedAt = alert.at }
        }
        return Array(events[before...])
    }

    /// Counts one page of `GET /v1/requests?upstream=…&since=…` (newest first).
    public mutating func count(requests: [AuditRequestView]) {
        for request in requests {
            outcomes[request.outcome, default: 0] += 1
            if request.outcome != "success", request.receivedAt >= startedAt {
                if firstFailureAt.map({ request.receivedAt < $0 }) ?? true { firstFailureAt = request.receivedAt }
            }
        }
    }

    /// Records that the drill was ended early (`DELETE`) at `at`.
    public mutating func endedEarly(at: Date) {
        guard endedAt == nil else { return }
        endedAt = at
        add(at, "drill ended early")
    }

    /// Marks the callers' answers as not all counted.
    public mutating func outcomesIncomplete() { outcomesComplete = false }

    private mutating func add(_ at: Date, _ text: String) {
        events.append(Event(at: at, text: text))
    }

    /// `+12.3 s` after the drill started.
    func offset(_ date: Date) -> String {
        let seconds = date.timeIntervalSince(startedAt)
        return (seconds < 0 ? "-" : "+") + String(format: "%.1f s", abs(seconds))
    }

    /// The report, in words.
    public func render() -> String {
        var lines = ["Drill \(drillID) on \(upstream): \(fault)"]
        let planned = endsAt.timeIntervalSince(startedAt)
        let ran = (endedAt ?? endsAt).timeIntervalSince(startedAt)
        lines.append(
            "  ran \(String(format: "%.1f s", ran)) of \(String(format: "%.0f s", planned)), from \(ManagementJSON.format(startedAt))"
        )
        lines.append("")
        lines.append("What callers saw")
        let total = outcomes.values.reduce(0, +)
        if total == 0 {
            lines.append(
                outcomesComplete
                    ? "  no calls reached \(upstream) during the drill: send traffic through /proxy/\(upstream)/… to see how callers are served"
                    : "  not counted: the audit trail could not be read (is audit.enabled false?)"
            )
        } else {
            lines.append("  \(total) calls\(outcomesComplete ? "" : " (at least; not every page was read)"):")
            for (outcome, count) in outcomes.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            ) {
                lines.append("    \(String(count).leftPadded(to: 6))  \(Self.words(outcome))")
            }
            if let firstFailureAt { lines.append("  first failed answer \(offset(firstFailureAt))") }
        }
        lines.append("")
        lines.append("What Belay did")
        lines.append(
            "  breaker: "
                + (breakerOpenedAt.map { "opened \(offset($0))" } ?? "stayed closed")
        )
        let alerts = events.filter { $0.text.hasPrefix("alert ") }
        lines.append(
            "  alerts: "
                + (alerts.isEmpty ? "none raised" : "\(alerts.count) raised, the first \(offset(alerts[0].at))")
        )
        lines.append(
            "  time to detect: "
                + (detectedAt.map { String(format: "%.1f s", $0.timeIntervalSince(startedAt)) }
                    ?? "not detected (the upstream never left healthy and no alert was raised)")
        )
        lines.append(
            "  time to recover: "
                + (recoveredAt.map { at in
                    String(format: "%.1f s after the drill ended", at.timeIntervalSince(endedAt ?? endsAt))
                } ?? "not recovered yet (state \(state), breaker \(breaker))")
        )
        lines.append("")
        lines.append("Timeline")
        for event in events.sorted(by: { $0.at < $1.at }) {
            lines.append("  \(offset(event.at).leftPadded(to: 9))  \(event.text)")
        }
        return lines.joined(separator: "\n")
    }

    /// An audit outcome in words.
    static func words(_ outcome: String) -> String {
        switch outcome {
        case "success": "answered by the upstream (1xx–3xx)"
        case "client_error": "4xx from the upstream"
        case "server_error": "5xx from the upstream, passed on"
        case "stale": "served stale from the cache"
        case "fallback": "answered by the fallback"
        case "queued": "writes queued for later delivery (202)"
        default: "refused by Belay: \(outcome)"
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
