import Belay
public import Foundation

/// How an upstream stands against its objectives (`slo`): per objective its error budget over
/// the window, its burn rates and the burn-rate alerts in progress; and its latency baseline.
public struct SLOReport: Sendable, Hashable {
    /// A burn rate over one window: 1 spends exactly the budget over the SLO's window.
    public struct BurnRate: Sendable, Hashable {
        /// `5m`, `30m`, `1h`, `6h`.
        public var window: String
        /// Times the sustainable rate; 0 without calls.
        public var rate: Double
        /// Calls in the window the rate is judged on.
        public var calls: Int
    }

    /// One objective.
    public struct Objective: Sendable, Hashable {
        /// `availability` or `latency`.
        public var name: String
        /// The share of calls that must be good, e.g. 0.999.
        public var target: Double
        /// The latency bound, for `latency`.
        public var bound: Duration?
        /// `99.9%`, `p99 ≤ 800ms`.
        public var label: String
        /// Calls over the window it is judged on (answered calls, for latency).
        public var calls: Int
        /// Those that were bad (failed; slower than the bound).
        public var bad: Int
        /// The share of good calls over the window; nil without calls.
        public var measured: Double?
        /// The share of the budget still unspent: 1 untouched, 0 spent, below 0 overspent.
        public var budgetRemaining: Double
        /// Burn rates over 5 minutes, 30 minutes, 1 hour and 6 hours.
        public var burnRates: [BurnRate]
        /// The burn-rate alerts in progress: `fast`, `slow`.
        public var burning: [String]
        /// How long until the budget is spent at the last hour's burn rate, when that is above
        /// the sustainable rate and budget is left.
        public var exhaustedIn: Duration?
    }

    /// The span the budget is counted over.
    public var window: Duration
    /// Since when calls are counted: the window's start, or the gateway's (counts are kept in
    /// memory) if later.
    public var countedSince: Date
    /// The objectives set.
    public var objectives: [Objective]
    /// The upstream's own latency baseline (the 5-minute p99 averaged over about an hour), once
    /// learnt.
    public var latencyBaseline: Duration?
    /// The factor of the baseline the 5-minute p99 must reach to be a spike.
    public var latencySpikeFactor: Double
    /// Since when the latency spikes, if it does.
    public var latencySpikeSince: Date?
    /// In plain words, e.g. `availability 99.95% over the last 30 days against 99.9%: 50% of the
    /// error budget left`.
    public var summary: String
}

extension SLORecord {
    /// The report at `elapsed`, dates made by `date`.
    func report(at elapsed: Duration, date: (Duration) -> Date) -> SLOReport {
        let objectives = objectives.compactMap { objective -> SLOReport.Objective? in
            guard let target = target(objective) else { return nil }
            let budget = budgetRemaining(objective, at: elapsed)
            let hourly = burnRate(objective, over: .seconds(3_600), at: elapsed).rate
            var exhaustedIn: Duration?
            if hourly > 1, budget.remaining > 0 {
                exhaustedIn = .seconds(budget.remaining * slo.window.inSeconds / hourly)
            }
            return SLOReport.Objective(
                name: objective.rawValue,
                target: target,
                bound: objective == .latency ? slo.latency?.threshold : nil,
                label: Self.label(objective, slo),
                calls: budget.base,
                bad: budget.bad,
                measured: budget.base > 0 ? 1 - Double(budget.bad) / Double(budget.base) : nil,
                budgetRemaining: budget.remaining,
                burnRates: Self.burnWindows.map { label, span in
                    let burn = burnRate(objective, over: span, at: elapsed)
                    return .init(window: label, rate: burn.rate, calls: burn.calls)
                },
                burning: BurnRule.all.map(\.name).filter { burning["\($0) \(objective.rawValue)"] != nil },
                exhaustedIn: exhaustedIn
            )
        }
        let start = max(countedSince, elapsed - slo.window)
        return SLOReport(
            window: slo.window,
            countedSince: date(start),
            objectives: objectives,
            latencyBaseline: baselineSamples >= Self.baselineWarmup ? baseline : nil,
            latencySpikeFactor: slo.latencySpike,
            latencySpikeSince: spikeSince.map(date),
            summary: Self.summary(objectives, window: slo.window)
        )
    }

    /// `99.9%` or `p99 ≤ 800ms`.
    static func label(_ objective: Objective, _ slo: UpstreamConfig.SLO) -> String {
        switch objective {
        case .availability: slo.availability.map(SLOWords.percent) ?? ""
        case .latency: slo.latency.map { "\($0.label) ≤ \($0.threshold.formattedForHumans)" } ?? ""
        }
    }

    /// One sentence per objective, joined.
    static func summary(_ objectives: [SLOReport.Objective], window: Duration) -> String {
        let span = HealthWords.span(window)
        return objectives.map { objective in
            guard let measured = objective.measured else {
                return "\(objective.name) \(objective.label): no calls yet in the last \(span)"
            }
            let measuredWords =
                objective.name == "latency"
                ? "\(SLOWords.percent(measured)) of answered calls within \(objective.bound?.formattedForHumans ?? "")"
                : "\(SLOWords.percent(measured)) of calls answered"
            let left =
                objective.budgetRemaining > 0
                ? "\(HealthWords.percent(objective.budgetRemaining)) of the error budget left"
                : "the error budget is spent"
            var sentence =
                "\(objective.name): \(measuredWords) over the last \(span) against \(objective.label); \(left)"
            if let exhaustedIn = objective.exhaustedIn {
                sentence += ", gone in \(HealthWords.span(exhaustedIn)) at the last hour's rate"
            }
            return sentence
        }
        .joined(separator: "; ")
    }
}

/// Words for objectives.
enum SLOWords {
    /// `99.9%`, `99.95%`, `100%`: as many decimals as an objective needs (up to three), never
    /// rounded up to 100 % when short of it.
    static func percent(_ ratio: Double) -> String {
        let percent = ratio * 100
        for places in 0...3 {
            let scale = pow(10, Double(places))
            let rounded = (percent * scale).rounded(.down) / scale
            if abs(rounded - percent) < 0.5 / scale / 10 || places == 3 {
                let text = places == 0 ? String(Int(rounded)) : String(format: "%.\(places)f", rounded)
                return text + "%"
            }
        }
        return "\(percent)%"
    }

    /// `16×`, `2.5×`.
    static func times(_ rate: Double) -> String {
        rate >= 10 ? "\(Int(rate.rounded()))×" : "\((rate * 10).rounded() / 10)×"
    }
}
