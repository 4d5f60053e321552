import Belay
import Foundation
public import ServiceLifecycle
import Synchronization

extension UpstreamHealth {
    /// Judges every upstream's objectives now and raises what started or ended: the burn-rate
    /// alerts (`slo.fast_burn`, critical; `slo.slow_burn`, warning; each resolved by
    /// `slo.burn_ended`) and the latency spike (`slo.latency_spike`, resolved by
    /// `slo.latency_normal`). ``SLOEvaluator`` calls it every 30 seconds.
    public func evaluateObjectives() {
        let now = elapsed()
        let today = wall.now()
        for name in upstreams {
            guard let slot = slots[name] else { continue }
            let found = slot.record.withLock { record -> (changes: [SLORecord.Change], report: SLOReport)? in
                guard record.slo != nil else { return nil }
                let recent = record.counters.summary(at: now, over: .seconds(300))
                let changes =
                    record.slo?.evaluate(at: now, recentP99: recent.p99, recentCalls: recent.requests) ?? []
                guard !changes.isEmpty, let slo = record.slo else { return nil }
                return (changes, slo.report(at: now, date: { self.date($0, now: now, today: today) }))
            }
            guard let found else { continue }
            for change in found.changes {
                raise(Self.alert(change, upstream: name, report: found.report, now: now, today: today, date: date))
            }
        }
    }

    /// Takes the objectives of a reloaded config (by upstream; nil: none). An upstream that
    /// drops its `slo` forgets its counts; one that changes its window or latency bound counts
    /// again from now. Upstreams the model does not track are ignored.
    public func replaceObjectives(_ objectives: [String: UpstreamConfig.SLO?]) {
        let now = elapsed()
        let today = wall.now()
        for (name, slo) in objectives.sorted(by: { $0.key < $1.key }) {
            guard let slot = slots[name] else { continue }
            let ended = slot.record.withLock { record -> (changes: [SLORecord.Change], report: SLOReport)? in
                guard let slo else {
                    // Its alerts in progress end with it: nothing else would ever resolve them.
                    guard var dropped = record.slo else { return nil }
                    record.slo = nil
                    let changes = dropped.endAll()
                    return changes.isEmpty
                        ? nil : (changes, dropped.report(at: now, date: { self.date($0, now: now, today: today) }))
                }
                if record.slo == nil {
                    record.slo = SLORecord(slo, at: now)
                } else {
                    record.slo?.replace(slo, at: now)
                }
                return nil
            }
            for change in ended?.changes ?? [] {
                guard let report = ended?.report else { continue }
                raise(Self.alert(change, upstream: name, report: report, now: now, today: today, date: date))
            }
        }
    }

    private static func alert(
        _ change: SLORecord.Change,
        upstream: String,
        report: SLOReport,
        now: Duration,
        today: Date,
        date: (Duration, Duration, Date) -> Date
    ) -> Alert {
        let link = "/v1/upstreams/\(upstream)"
        let span = HealthWords.span(report.window)
        switch change {
        case .burning(let rule, let objective, let long, let short):
            let spec = rule == "fast" ? SLORecord.BurnRule.fast : SLORecord.BurnRule.slow
            let stand = report.objectives.first { $0.name == objective.rawValue }
            let what =
                objective == .availability
                ? "calls failing"
                : "answered calls slower than \(stand?.bound?.formattedForHumans ?? "the bound")"
            var summary =
                "\(upstream): \(objective.rawValue) error budget burning \(SLOWords.times(long)) the sustainable "
                + "rate over the last \(HealthWords.span(spec.long)) (\(SLOWords.times(short)) over the last "
                + "\(HealthWords.span(spec.short))), \(what); objective \(stand?.label ?? "") over \(span)"
            if let stand {
                summary +=
                    stand.budgetRemaining > 0
                    ? ", \(HealthWords.percent(stand.budgetRemaining)) of the budget left"
                    : ", the budget is spent"
                if let exhaustedIn = stand.exhaustedIn { summary += ", gone in \(HealthWords.span(exhaustedIn))" }
            }
            return Alert(
                kind: rule == "fast" ? .sloFastBurn : .sloSlowBurn,
                severity: spec.severity,
                summary: summary,
                upstream: upstream,
                subject: objective.rawValue,
                since: today,
                link: link,
                at: today
            )
        case .burnEnded(let rule, let objective, let since):
            let spec = rule == "fast" ? SLORecord.BurnRule.fast : SLORecord.BurnRule.slow
            let stand = report.objectives.first { $0.name == objective.rawValue }
            let left = stand.map { ", \(HealthWords.percent(max($0.budgetRemaining, 0))) of the budget left" } ?? ""
            return Alert(
                kind: .sloBurnEnded,
                severity: "info",
                summary:
                    "\(upstream): the \(objective.rawValue) error budget no longer burns \(SLOWords.times(spec.factor)) "
                    + "the sustainable rate (it did for \(HealthWords.span(since.duration(to: now))))\(left)",
                upstream: upstream,
                subject: objective.rawValue,
                since: date(since, now, today),
                link: link,
                at: today,
                resolves: rule == "fast" ? .sloFastBurn : .sloSlowBurn
            )
        case .spike(let p99, let baseline):
            return Alert(
                kind: .sloLatencySpike,
                severity: "warning",
                summary: "\(upstream): p99 latency \(p99.formattedForHumans) over the last 5 minutes, "
                    + "\(SLOWords.times(p99.inSeconds / max(baseline.inSeconds, 1e-9))) its baseline of "
                    + "\(baseline.formattedForHumans) (alerting from \(SLOWords.times(report.latencySpikeFactor)))",
                upstream: upstream,
                subject: "latency",
                since: today,
                link: link,
                at: today
            )
        case .spikeEnded(let p99, let baseline, let since):
            return Alert(
                kind: .sloLatencyNormal,
                severity: "info",
                summary: p99.map { p99 in
                    "\(upstream): p99 latency back to \(p99.formattedForHumans) over the last 5 minutes "
                        + "(baseline \(baseline.formattedForHumans)) after spiking for "
                        + HealthWords.span(since.duration(to: now))
                }
                    ?? "\(upstream): the latency spike is no longer judged (the upstream's slo was removed) after "
                    + HealthWords.span(since.duration(to: now)),
                upstream: upstream,
                subject: "latency",
                since: date(since, now, today),
                link: link,
                at: today,
                resolves: .sloLatencySpike
            )
        }
    }
}

extension Alert.Kind {
    /// An upstream's error budget burns 14.4× the sustainable rate over 1 hour and 5 minutes.
    public static let sloFastBurn = Alert.Kind(rawValue: "slo.fast_burn")
    /// An upstream's error budget burns 6× the sustainable rate over 6 hours and 30 minutes.
    public static let sloSlowBurn = Alert.Kind(rawValue: "slo.slow_burn")
    /// A fast or slow burn ended (the alert's ``Alert/resolves`` says which).
    public static let sloBurnEnded = Alert.Kind(rawValue: "slo.burn_ended")
    /// An upstream's 5-minute p99 reached `latency_spike` times its own baseline.
    public static let sloLatencySpike = Alert.Kind(rawValue: "slo.latency_spike")
    /// The 5-minute p99 is back under the spike factor.
    public static let sloLatencyNormal = Alert.Kind(rawValue: "slo.latency_normal")
}

/// Judges the objectives of every upstream with `slo` every `every` (default 30 seconds) on
/// the health model's clock, so that burn-rate alerts fire, and resolve, without anyone
/// looking. Stops on graceful shutdown.
public final class SLOEvaluator<C: Clock>: Service, Sendable where C.Duration == Duration {
    private let health: UpstreamHealth<C>
    private let clock: C
    private let every: Duration

    /// Creates the evaluator of `health`'s objectives, on `clock` (the model's).
    public init(health: UpstreamHealth<C>, clock: C, every: Duration = .seconds(30)) {
        self.health = health
        self.clock = clock
        self.every = every
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var next = self.clock.now.advanced(by: self.every)
            while !Task.isCancelled {
                do { try await self.clock.sleep(until: next, tolerance: nil) } catch { return }
                self.health.evaluateObjectives()
                next = next.advanced(by: self.every)
            }
        }
    }
}
