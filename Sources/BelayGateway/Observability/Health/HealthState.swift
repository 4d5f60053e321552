public import Belay
public import Foundation

/// An upstream's health, shown the same way everywhere (`/v1/upstreams`, the status page, alerts).
public enum HealthState: String, Sendable, Hashable, CaseIterable {
    /// Answering normally.
    case healthy
    /// Still serving, but endpoints are ejected, errors are elevated or its probe fails.
    case degraded
    /// Serving cached responses (stale-if-error) because the upstream fails.
    case stale
    /// The circuit breaker is open (or half-open, or isolated): nothing to serve.
    case down
}

/// One circuit-breaker transition of an upstream, with its time.
public struct BreakerChange: Sendable, Hashable {
    /// When it happened.
    public var at: Date
    /// The state left.
    public var from: CircuitState
    /// The state entered.
    public var to: CircuitState
}

/// What an upstream's probe last found.
public struct ProbeReport: Sendable, Hashable {
    /// The probed path, e.g. `/health`.
    public var path: String
    /// How often it is probed.
    public var every: Duration
    /// Whether the last probe passed; nil before the first.
    public var passing: Bool?
    /// Probes failed in a row.
    public var consecutiveFailures: Int
    /// Since when it fails, if it does.
    public var failingSince: Date?
    /// When the last probe ran.
    public var lastAt: Date?
    /// What the last probe found, e.g. `HTTP 200 in 12ms` or `HTTP 503 from api.pay.example:443`.
    public var lastResult: String?
    /// When the next probe runs, once scheduled.
    public var nextAt: Date?
}

/// One window's figures of an upstream's proxied requests.
public struct WindowReport: Sendable, Hashable {
    /// The window's label, e.g. `1m`.
    public var label: String
    /// Requests answered in the window.
    public var requests: Int
    /// The share of requests answered with a 5xx (by the upstream or by Belay).
    public var errorRate: Double
    /// Retries per request.
    public var retryRate: Double
    /// Requests answered from the stale-if-error cache.
    public var stale: Int
    /// Latency percentiles as callers saw them (whole calls, retries included); nil without requests.
    public var p50: Duration?
    /// The 95th percentile.
    public var p95: Duration?
    /// The 99th percentile.
    public var p99: Duration?
}

/// An upstream's health now: its state in plain words, since when, and the figures behind it.
public struct UpstreamHealthReport: Sendable {
    /// The upstream's configured name.
    public var name: String
    /// The derived state.
    public var state: HealthState
    /// The state in plain words, without the name, e.g. `serving cached responses from 14 minutes ago`.
    public var reason: String
    /// Since when the state holds.
    public var since: Date
    /// The figures over each sliding window (1 minute, 5 minutes).
    public var windows: [WindowReport]
    /// The breaker's transitions, oldest first (the last 20).
    public var breakerHistory: [BreakerChange]
    /// The probe, if one is configured.
    public var probe: ProbeReport?
    /// The age of the cached answer last served stale, when one was served within the window.
    public var staleAge: Duration?
    /// How it stands against its objectives, if it sets `slo`.
    public var slo: SLOReport?
}

/// The parts of an upstream's health read live from its client when a report is made.
public struct UpstreamLiveState: Sendable {
    /// The breaker's state.
    public var breaker: CircuitState
    /// While the breaker is open: the time before a trial call may run.
    public var remainingBreak: Duration?
    /// Each endpoint (`host:port`) and whether it is ejected now, in configured order.
    public var endpoints: [(name: String, ejected: Bool)]

    /// Creates a live state.
    public init(
        breaker: CircuitState,
        remainingBreak: Duration? = nil,
        endpoints: [(name: String, ejected: Bool)] = []
    ) {
        self.breaker = breaker
        self.remainingBreak = remainingBreak
        self.endpoints = endpoints
    }
}

/// Plain-words helpers shared by reports, alerts and the status page.
package enum HealthWords {
    /// `12:03 UTC`.
    static func clockTime(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let ofDay = ((seconds % 86_400) + 86_400) % 86_400
        let hours = ofDay / 3_600
        let minutes = ofDay % 3_600 / 60
        return (hours < 10 ? "0" : "") + "\(hours):" + (minutes < 10 ? "0" : "") + "\(minutes) UTC"
    }

    /// `14 minutes`, `1 hour`, `30 seconds`: a rounded-down length of time.
    package static func span(_ duration: Duration) -> String {
        let seconds = max(Int(duration.components.seconds), 0)
        func unit(_ count: Int, _ name: String) -> String { "\(count) \(name)\(count == 1 ? "" : "s")" }
        if seconds < 60 { return unit(seconds, "second") }
        if seconds < 3_600 { return unit(seconds / 60, "minute") }
        if seconds < 86_400 { return unit(seconds / 3_600, "hour") }
        return unit(seconds / 86_400, "day")
    }

    /// `30s`, `2m`, `1h`: a short rounded-up wait.
    static func wait(_ duration: Duration) -> String {
        let seconds = Int((duration.inSeconds).rounded(.up))
        if seconds < 120 { return "\(max(seconds, 0))s" }
        if seconds < 7_200 { return "\(seconds / 60)m" }
        return "\(seconds / 3_600)h"
    }

    /// `12%`, `0.4%`.
    static func percent(_ ratio: Double) -> String {
        let value = ratio * 100
        return value >= 10 || value == value.rounded() ? "\(Int(value.rounded()))%" : "\((value * 10).rounded() / 10)%"
    }
}
