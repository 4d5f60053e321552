import Belay
import Foundation

/// An upstream's objectives and how it stands against them: its error budget, the burn-rate
/// alerts (the SRE workbook's multi-window, multi-burn-rate rules) and the latency-spike
/// alert against its own baseline. A sans-IO value that takes the time since the health
/// model's start; ``evaluate(at:recentP99:recentCalls:)`` says which alerts start and end.
struct SLORecord: Sendable {
    /// One objective's kind.
    enum Objective: String, Sendable, CaseIterable {
        /// Calls answered without a 5xx.
        case availability
        /// Answered calls within the latency bound.
        case latency
    }

    /// A multi-window burn-rate rule: the budget burns at least `factor` times the sustainable
    /// rate over both the long and the short window.
    struct BurnRule: Sendable {
        /// `fast`, `slow`.
        var name: String
        var long: Duration
        var short: Duration
        var factor: Double
        var severity: String

        /// Fast burn: 14.4× over 1 hour and 5 minutes (2 % of a 30-day budget in an hour): a page.
        static let fast = BurnRule(
            name: "fast",
            long: .seconds(3_600),
            short: .seconds(300),
            factor: 14.4,
            severity: "critical"
        )
        /// Slow burn: 6× over 6 hours and 30 minutes (5 % of a 30-day budget in 6 hours): a ticket.
        static let slow = BurnRule(
            name: "slow",
            long: .seconds(21_600),
            short: .seconds(1_800),
            factor: 6,
            severity: "warning"
        )
        static let all = [fast, slow]
    }

    /// The windows burn rates are reported over, with their labels.
    static let burnWindows: [(label: String, span: Duration)] = [
        ("5m", .seconds(300)), ("30m", .seconds(1_800)), ("1h", .seconds(3_600)), ("6h", .seconds(21_600)),
    ]
    /// Calls the short window must hold before a burn is judged: a few failures of a handful of
    /// calls are not an outage anyone is paged for.
    static let minimumCalls = 10
    /// Calls the last 5 minutes must hold before their p99 feeds or is judged against the baseline.
    static let minimumSpikeCalls = 20
    /// Evaluations (about 30 minutes of traffic) before the baseline is trusted.
    static let baselineWarmup = 60
    /// The baseline's time constant: it follows the 5-minute p99 over about an hour.
    static let baselineTimeConstant: Duration = .seconds(3_600)
    /// A spike is also at least this far above the baseline: 2 ms to 6 ms is no spike.
    static let minimumSpike: Duration = .milliseconds(25)

    /// A change the evaluation found.
    enum Change: Sendable, Equatable {
        /// A burn-rate rule started holding for an objective.
        case burning(rule: String, objective: Objective, long: Double, short: Double)
        /// It stopped holding (it held since `since`).
        case burnEnded(rule: String, objective: Objective, since: Duration)
        /// The 5-minute p99 reached the spike factor times the baseline.
        case spike(p99: Duration, baseline: Duration)
        /// It came back under (the spike began at `since`); `p99` nil when the objectives were
        /// dropped instead.
        case spikeEnded(p99: Duration?, baseline: Duration, since: Duration)
    }

    private(set) var slo: UpstreamConfig.SLO
    private(set) var counters: SLOCounters
    /// Burns in progress, by `rule objective`, and since when.
    private(set) var burning: [String: Duration] = [:]
    /// The latency baseline (an average of the 5-minute p99 over about an hour), once sampled.
    private(set) var baseline: Duration?
    private(set) var baselineSamples = 0
    private var lastEvaluation: Duration?
    /// Since when the latency spikes, if it does.
    private(set) var spikeSince: Duration?

    /// Since when calls are counted (the model's start, or the reload that reset the counts).
    private(set) var countedSince: Duration

    init(_ slo: UpstreamConfig.SLO, at elapsed: Duration = .zero) {
        self.slo = slo
        counters = SLOCounters(window: slo.window)
        countedSince = elapsed
    }

    /// Takes new objectives (a reload): the counts are kept when the window and the latency
    /// bound are unchanged, else counting starts again; burns in progress are re-judged at the
    /// next evaluation.
    mutating func replace(_ slo: UpstreamConfig.SLO, at elapsed: Duration) {
        if slo.window != self.slo.window || slo.latency?.threshold != self.slo.latency?.threshold {
            counters = SLOCounters(window: slo.window)
            countedSince = elapsed
        }
        self.slo = slo
    }

    /// Counts one call that took `latency`, failed or not, answered at `elapsed`.
    mutating func record(at elapsed: Duration, failed: Bool, latency: Duration) {
        let slow = slo.latency.map { latency > $0.threshold } ?? false
        counters.record(at: elapsed, failed: failed, slow: slow)
    }

    /// The target of `objective` (the share of good calls), if it is set.
    func target(_ objective: Objective) -> Double? {
        switch objective {
        case .availability: slo.availability
        case .latency: slo.latency?.quantile
        }
    }

    /// The objectives set, in order.
    var objectives: [Objective] { Objective.allCases.filter { target($0) != nil } }

    /// The bad calls and the calls they are counted among, for `objective`.
    static func split(_ tally: SLOCounters.Tally, _ objective: Objective) -> (bad: Int, base: Int) {
        switch objective {
        case .availability: (tally.failed, tally.calls)
        case .latency: (tally.slow, tally.answered)
        }
    }

    /// How many times the sustainable rate `objective`'s budget burns over the last `span`:
    /// 1 spends exactly the budget over the window. 0 without calls.
    func burnRate(_ objective: Objective, over span: Duration, at elapsed: Duration) -> (rate: Double, calls: Int) {
        guard let target = target(objective) else { return (0, 0) }
        let (bad, base) = Self.split(counters.recent(span, at: elapsed), objective)
        guard base > 0 else { return (0, 0) }
        return (Double(bad) / Double(base) / (1 - target), base)
    }

    /// The share of `objective`'s budget over the window still unspent: 1 untouched, 0 spent,
    /// below 0 overspent. 1 without calls.
    func budgetRemaining(_ objective: Objective, at elapsed: Duration) -> (remaining: Double, bad: Int, base: Int) {
        guard let target = target(objective) else { return (1, 0, 0) }
        let (bad, base) = Self.split(counters.window(at: elapsed), objective)
        guard base > 0 else { return (1, 0, 0) }
        return (1 - Double(bad) / (Double(base) * (1 - target)), bad, base)
    }

    /// Judges every rule and the latency spike at `elapsed`, given the last 5 minutes' p99 and
    /// their calls (from the health model's counters), and says what started or ended.
    mutating func evaluate(at elapsed: Duration, recentP99: Duration?, recentCalls: Int) -> [Change] {
        var changes: [Change] = []
        for objective in objectives {
            for rule in BurnRule.all {
                let key = "\(rule.name) \(objective.rawValue)"
                let long = burnRate(objective, over: rule.long, at: elapsed)
                let short = burnRate(objective, over: rule.short, at: elapsed)
                let holds = short.calls >= Self.minimumCalls && long.rate >= rule.factor && short.rate >= rule.factor
                if holds, burning[key] == nil {
                    burning[key] = elapsed
                    changes.append(.burning(rule: rule.name, objective: objective, long: long.rate, short: short.rate))
                } else if !holds, let since = burning[key] {
                    burning[key] = nil
                    changes.append(.burnEnded(rule: rule.name, objective: objective, since: since))
                }
            }
        }
        // Burns of an objective no longer set end.
        for (key, since) in burning.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: " ")
            guard parts.count == 2, let objective = Objective(rawValue: String(parts[1])),
                target(objective) == nil
            else { continue }
            burning[key] = nil
            changes.append(.burnEnded(rule: String(parts[0]), objective: objective, since: since))
        }
        changes += evaluateSpike(at: elapsed, recentP99: recentP99, recentCalls: recentCalls)
        return changes
    }

    /// Ends every alert in progress (the objectives are dropped) and says which.
    mutating func endAll() -> [Change] {
        var changes: [Change] = burning.sorted { $0.key < $1.key }.compactMap { key, since in
            let parts = key.split(separator: " ")
            guard parts.count == 2, let objective = Objective(rawValue: String(parts[1])) else { return nil }
            return .burnEnded(rule: String(parts[0]), objective: objective, since: since)
        }
        burning = [:]
        if let since = spikeSince, let baseline {
            changes.append(.spikeEnded(p99: nil, baseline: baseline, since: since))
        }
        spikeSince = nil
        return changes
    }

    private mutating func evaluateSpike(at elapsed: Duration, recentP99: Duration?, recentCalls: Int) -> [Change] {
        let step = lastEvaluation.map { $0.duration(to: elapsed) } ?? .zero
        lastEvaluation = elapsed
        guard let p99 = recentP99, recentCalls >= Self.minimumSpikeCalls else {
            // Too few calls to judge either way: a spike in progress stays until calls show it ended.
            return []
        }
        var changes: [Change] = []
        if let baseline, baselineSamples >= Self.baselineWarmup {
            let spiking = p99.inSeconds >= slo.latencySpike * baseline.inSeconds && p99 - baseline >= Self.minimumSpike
            if spiking, spikeSince == nil {
                spikeSince = elapsed
                changes.append(.spike(p99: p99, baseline: baseline))
            } else if !spiking, let since = spikeSince {
                spikeSince = nil
                changes.append(.spikeEnded(p99: p99, baseline: baseline, since: since))
            }
        }
        // The baseline follows the p99 outside spikes only: a spike is measured against the normal
        // before it, however long it lasts.
        if spikeSince == nil {
            if let baseline, step > .zero {
                let weight = 1 - exp(-step.inSeconds / Self.baselineTimeConstant.inSeconds)
                self.baseline = .seconds(baseline.inSeconds + weight * (p99.inSeconds - baseline.inSeconds))
            } else if baseline == nil {
                baseline = p99
            }
            baselineSamples += 1
        }
        return changes
    }
}
