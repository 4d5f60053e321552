import Belay
import BelayHTTP
import Foundation

/// What the health model knows of one upstream, and how its state is derived: a sans-IO value
/// that takes times as durations since the model's start.
struct HealthRecord: Sendable {
    /// The last answer that counted as an error.
    struct ErrorNote: Sendable {
        var at: Duration
        var status: Int
        var problem: ProblemCode?

        /// `circuit-open`, `timeout`, `HTTP 503`.
        var words: String { problem?.name ?? "HTTP \(status)" }
    }

    /// A breaker transition.
    struct Transition: Sendable {
        var at: Duration
        var from: CircuitState
        var to: CircuitState
    }

    /// How the state is judged.
    struct Thresholds: Sendable {
        var window: Duration
        var windows: [(label: String, span: Duration)]
        var degradedErrorRate: Double
        var minimumRequests: Int
        /// The share of calls needing a retry, over ``retryWindow``, above which it is degraded.
        var degradedRetryShare = 0.05
        var retryWindow: Duration = .seconds(300)
    }

    var counters = HealthCounters()
    var breakerHistory: [Transition] = []
    /// When the breaker left `closed` (the start of the current outage).
    var breakerOpenedAt: Duration?
    var lastError: ErrorNote?
    /// The first stale answer of the current run of them.
    var staleSince: Duration?
    var lastStaleAt: Duration?
    /// The last answer that was neither stale nor an error: a fresh answer after stale ones
    /// ends the stale state.
    var lastFreshAt: Duration?
    /// The age of the cached answer last served.
    var lastStaleAge: Duration = .zero
    /// Whether the last answer served in place of the upstream's was its fallback, not a
    /// cached one (both make it `stale`).
    var lastWasFallback = false
    /// Ejected endpoints (by index) and since when.
    var ejectedSince: [Int: Duration] = [:]
    var probe: ProbeRecord?
    /// The objectives and the calls they are judged on, if the upstream sets `slo`.
    var slo: SLORecord?
    /// The state last derived, and since when it holds.
    var state: HealthState = .healthy
    var stateSince: Duration = .zero

    init(probe: ProbeRecord? = nil) {
        self.probe = probe
    }

    /// What opens the breaker, in words, if known.
    var breakerRule: String?
    /// When an endpoint was last re-admitted.
    var lastReadmittedAt: Duration?

    /// The latest end of a trouble: the breaker closing, a stale answer, an endpoint
    /// re-admitted, a probe passing again.
    var troubleEndedAt: Duration {
        let closed = breakerHistory.last { $0.to == .closed }?.at ?? .zero
        return max(closed, lastStaleAt ?? .zero, lastReadmittedAt ?? .zero, probe?.recoveredAt ?? .zero)
    }

    /// Why calls are failing, in words, for a breaker-opened alert.
    func failureWords(at now: Duration, window: Duration) -> String {
        let summary = counters.summary(at: now, over: window)
        var parts: [String] = []
        if summary.errors > 0 {
            parts.append(
                "\(summary.errors) of \(summary.requests) requests failed in the last \(HealthWords.span(window))"
            )
        }
        if let lastError, lastError.at.duration(to: now) <= window {
            parts.append("last: \(lastError.words)")
        }
        if let probe, probe.passing == false, let result = probe.lastResult {
            parts.append("probe GET \(probe.path): \(result)")
        }
        // The call that tipped the breaker is counted only once it has been answered: the rule
        // says why even when the window does not show it yet.
        if let breakerRule { parts.append("the breaker opens when \(breakerRule)") }
        return parts.isEmpty ? "calls to it failed" : parts.joined(separator: "; ")
    }

    /// Derives the state now and reports it, remembering the state and since when it holds.
    mutating func report(
        name: String,
        live: UpstreamLiveState,
        now: Duration,
        thresholds: Thresholds,
        date: (Duration) -> Date
    ) -> UpstreamHealthReport {
        let judged = counters.summary(at: now, over: thresholds.window)
        let state: HealthState
        var reason: String
        var since: Duration?
        let breakerOut = live.breaker != .closed
        if let lastStaleAt, lastStaleAt.duration(to: now) <= thresholds.window,
            lastFreshAt.map({ $0 < lastStaleAt }) ?? true
        {
            state = .stale
            since = staleSince
            let cachedAt = lastStaleAt - lastStaleAge
            reason =
                lastWasFallback
                ? "answering with its fallback (an optional dependency)"
                : "serving cached responses from \(HealthWords.span(cachedAt.duration(to: now))) ago"
            if breakerOut {
                let opened = breakerOpenedAt.map { " since \(HealthWords.clockTime(date($0)))" } ?? ""
                reason += " (circuit \(live.breaker)\(opened))"
            } else if let lastError {
                reason += " (the upstream fails: \(lastError.words))"
            }
        } else if breakerOut {
            state = .down
            since = breakerOpenedAt
            let opened = breakerOpenedAt.map { " since \(HealthWords.clockTime(date($0)))" } ?? ""
            switch live.breaker {
            case .isolated:
                reason = "down — circuit isolated by hand\(opened); calls are refused until it is reset"
            case .halfOpen:
                reason = "down — circuit half-open\(opened): a trial call decides whether it closes"
            default:
                reason = "down — circuit open\(opened)"
                if let probe, let next = probe.nextAt, next > now {
                    reason += ", next probe in \(HealthWords.wait(now.duration(to: next)))"
                } else if let remaining = live.remainingBreak {
                    reason +=
                        remaining > .zero
                        ? ", a trial call is let through in \(HealthWords.wait(remaining))"
                        : ", the next call is let through as a trial"
                }
            }
        } else {
            var causes: [(words: String, since: Duration?)] = []
            let ejected = live.endpoints.enumerated().filter { $0.element.ejected }
            if !ejected.isEmpty {
                let first = ejected.compactMap { ejectedSince[$0.offset] }.min()
                let names = ejected.map(\.element.name).joined(separator: ", ")
                let when = first.map { " since \(HealthWords.clockTime(date($0)))" } ?? ""
                causes.append(
                    ("\(ejected.count) of \(live.endpoints.count) endpoints ejected (\(names))\(when)", first)
                )
            }
            if judged.requests >= thresholds.minimumRequests, judged.errorRate >= thresholds.degradedErrorRate {
                let last = lastError.map { " (last: \($0.words))" } ?? ""
                causes.append(
                    (
                        "\(HealthWords.percent(judged.errorRate)) of requests failed in the last "
                            + "\(HealthWords.span(thresholds.window))\(last)",
                        self.state == .degraded ? stateSince : nil
                    )
                )
            }
            // Judged over 5 minutes, while calls are still being retried: once the retries stop
            // (an outage ended), the upstream is not called degraded for the rest of the span.
            let recent = counters.summary(at: now, over: thresholds.retryWindow)
            if recent.requests >= thresholds.minimumRequests, recent.retriedShare > thresholds.degradedRetryShare,
                judged.retried > 0
            {
                causes.append(
                    (
                        "\(HealthWords.percent(recent.retriedShare)) of calls needed a retry in the last "
                            + "\(HealthWords.span(thresholds.retryWindow)) (\(recent.retried) of \(recent.requests))",
                        self.state == .degraded ? stateSince : nil
                    )
                )
            }
            if let latency = slo?.slo.latency, judged.requests >= thresholds.minimumRequests,
                let measured = counters.latency(latency.quantile, at: now, over: thresholds.window),
                measured > latency.threshold
            {
                causes.append(
                    (
                        "\(latency.label) latency \(measured.formattedForHumans) over the last "
                            + "\(HealthWords.span(thresholds.window)), above the objective's "
                            + latency.threshold.formattedForHumans,
                        self.state == .degraded ? stateSince : nil
                    )
                )
            }
            if let probe, let failingSince = probe.failingSince {
                let result = probe.lastResult.map { " (\($0))" } ?? ""
                causes.append(
                    (
                        "probe GET \(probe.path) failing since \(HealthWords.clockTime(date(failingSince)))\(result)",
                        failingSince
                    )
                )
            }
            if causes.isEmpty {
                state = .healthy
                let failed = Int((judged.errorRate * Double(judged.requests)).rounded())
                if judged.requests > 0, failed > 0, judged.errorRate >= thresholds.degradedErrorRate {
                    // Too few requests to judge by: say what failed rather than "normally".
                    reason =
                        "healthy — \(failed) of \(judged.requests) requests failed in the last "
                        + "\(HealthWords.span(thresholds.window)), too few to judge (\(thresholds.minimumRequests) needed)"
                } else if judged.requests > 0 {
                    reason = "healthy — answering normally"
                } else if let probe, probe.passing == true {
                    reason =
                        "healthy — probe GET \(probe.path) passes; no requests in the last "
                        + HealthWords.span(thresholds.window)
                } else {
                    reason = "healthy — no requests in the last \(HealthWords.span(thresholds.window))"
                }
            } else {
                state = .degraded
                reason = "degraded — " + causes.map(\.words).joined(separator: "; ") + "; still serving"
                since = causes.compactMap(\.since).min()
            }
        }
        if state != self.state {
            // Healthy since the last trouble ended, if that is known and came after the state
            // last reported began (reports are made only when asked for); else since now.
            let ended = troubleEndedAt
            self.state = state
            stateSince = since ?? (state == .healthy && ended > stateSince ? ended : now)
        }
        let reportedSince = since ?? stateSince
        return UpstreamHealthReport(
            name: name,
            state: state,
            reason: reason,
            since: date(reportedSince),
            windows: thresholds.windows.map { label, span in
                let summary = counters.summary(at: now, over: span)
                return WindowReport(
                    label: label,
                    requests: summary.requests,
                    errorRate: summary.errorRate,
                    retryRate: summary.retryRate,
                    stale: summary.stale,
                    p50: summary.p50,
                    p95: summary.p95,
                    p99: summary.p99
                )
            },
            breakerHistory: breakerHistory.map { BreakerChange(at: date($0.at), from: $0.from, to: $0.to) },
            probe: probe.map { probe in
                ProbeReport(
                    path: probe.path,
                    every: probe.every,
                    passing: probe.passing,
                    consecutiveFailures: probe.consecutiveFailures,
                    failingSince: probe.failingSince.map(date),
                    lastAt: probe.lastAt.map(date),
                    lastResult: probe.lastResult,
                    nextAt: probe.nextAt.map(date)
                )
            },
            staleAge: state == .stale && !lastWasFallback
                ? lastStaleAt.map { ($0 - lastStaleAge).duration(to: now) } : nil,
            slo: slo?.report(at: now, date: date)
        )
    }
}

/// What the health model knows of one upstream's probe.
struct ProbeRecord: Sendable {
    var path: String
    var every: Duration
    var passing: Bool?
    var consecutiveFailures = 0
    /// The first failure of the current run of them.
    var firstFailureAt: Duration?
    /// Set once failures reached the alert threshold (and alerted): the start of the run.
    var failingSince: Duration?
    /// When a failing probe last passed again.
    var recoveredAt: Duration?
    var lastAt: Duration?
    var lastResult: String?
    var nextAt: Duration?

    init(path: String, every: Duration) {
        self.path = path
        self.every = every
    }
}

extension Duration {
    /// The instant `self` after a model's start, read as a point in time: `a.duration(to: b)` is `b - a`.
    func duration(to other: Duration) -> Duration { other - self }
}
