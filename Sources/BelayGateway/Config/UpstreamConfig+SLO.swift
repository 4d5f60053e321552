import Foundation
import Yams

extension UpstreamConfig {
    /// `slo: { availability, latency: { p99 }, window, latency_spike }`: the upstream's service
    /// level objectives, judged on the calls callers made through Belay, with an error budget
    /// over `window` and burn-rate alerts (``UpstreamHealth``).
    ///
    /// ```yaml
    /// slo: { availability: 99.9%, latency: { p99: 800ms }, window: 30d }
    /// ```
    public struct SLO: Sendable, Hashable {
        /// A latency objective: the share ``quantile`` of answered calls within ``threshold``.
        public struct Latency: Sendable, Hashable {
            /// The share of calls that must be fast enough, e.g. 0.99 for `p99`.
            public var quantile: Double
            /// How fast, e.g. 800 ms.
            public var threshold: Duration

            /// Creates a latency objective.
            public init(quantile: Double, threshold: Duration) {
                self.quantile = quantile
                self.threshold = threshold
            }

            /// `p99`, `p99.9`.
            public var label: String {
                let percent = quantile * 100
                let rounded = (percent * 1_000).rounded() / 1_000
                return rounded == rounded.rounded() ? "p\(Int(rounded))" : "p\(rounded)"
            }
        }

        /// The share of calls answered without a 5xx, e.g. 0.999, if set.
        public var availability: Double?
        /// The latency objective, if set.
        public var latency: Latency?
        /// The span the error budget is counted over, in whole hours. Default 30 days.
        public var window: Duration = .seconds(30 * 86_400)
        /// How many times its own baseline the 5-minute p99 must reach for the latency-spike
        /// alert. Default 3.
        public var latencySpike = 3.0

        /// Creates objectives.
        public init(
            availability: Double? = nil,
            latency: Latency? = nil,
            window: Duration = .seconds(30 * 86_400),
            latencySpike: Double = 3
        ) {
            self.availability = availability
            self.latency = latency
            self.window = window
            self.latencySpike = latencySpike
        }
    }
}

extension UpstreamConfigReader {
    /// Reads `upstreams.<name>.slo`: `availability` (a percentage such as `99.9%`, or a ratio
    /// such as `0.999`, above 0 and below 100 %), `latency` (one `pNN: duration`), `window`
    /// (1 hour to 90 days, whole hours) and `latency_spike` (a factor from 1.5 to 100). At
    /// least one of `availability` and `latency`.
    func readSLO(_ node: Node, at path: String, _ reader: inout ConfigReader) -> UpstreamConfig.SLO? {
        var slo = UpstreamConfig.SLO()
        var valid = true
        let allowed: Set<String> = ["availability", "latency", "window", "latency_spike"]
        for (key, value) in reader.mapping(node, at: path, allowed: allowed) ?? [] {
            let keyPath = "\(path).\(key)"
            switch key {
            case "availability":
                if let ratio = Self.objective(value, at: keyPath, &reader) {
                    slo.availability = ratio
                } else {
                    valid = false
                }
            case "latency":
                if let latency = readLatencyObjective(value, at: keyPath, &reader) {
                    slo.latency = latency
                } else {
                    valid = false
                }
            case "window":
                guard let window = reader.duration(value, at: keyPath) else {
                    valid = false
                    continue
                }
                let seconds = window.components.seconds
                if window.components.attoseconds != 0 || seconds % 3_600 != 0 || seconds < 3_600
                    || seconds > 90 * 86_400
                {
                    reader.report(
                        keyPath,
                        value,
                        "must be whole hours from 1h to 90d, such as 7d or 30d (got '\(value.string ?? "")')"
                    )
                    valid = false
                } else {
                    slo.window = window
                }
            case "latency_spike":
                if let factor = reader.number(value, at: keyPath, in: 1.5...100, described: "from 1.5 to 100") {
                    slo.latencySpike = factor
                } else {
                    valid = false
                }
            default: break
            }
        }
        guard valid else { return nil }
        if slo.availability == nil, slo.latency == nil {
            reader.report(
                path,
                node,
                "needs an objective: availability (such as 99.9%) or latency (such as { p99: 800ms }), or both"
            )
            return nil
        }
        return slo
    }

    /// `latency: { p99: 800ms }`: exactly one percentile above 0 and below 100.
    private func readLatencyObjective(
        _ node: Node,
        at path: String,
        _ reader: inout ConfigReader
    ) -> UpstreamConfig.SLO.Latency? {
        guard let entries = reader.mapping(node, at: path) else { return nil }
        guard entries.count == 1, let (key, value) = entries.first else {
            reader.report(path, node, "must name one percentile and its bound, such as { p99: 800ms }")
            return nil
        }
        let keyPath = "\(path).\(key)"
        guard key.hasPrefix("p"), let percent = Double(key.dropFirst()), percent > 0, percent < 100 else {
            reader.report(keyPath, node, "must be a percentile such as p95, p99 or p99.9 (got '\(key)')")
            return nil
        }
        guard let threshold = reader.duration(value, at: keyPath) else { return nil }
        return .init(quantile: percent / 100, threshold: threshold)
    }

    /// An objective written `99.9%` or `0.999`: above 0 and below 1 (100 % leaves no budget).
    static func objective(_ node: Node, at path: String, _ reader: inout ConfigReader) -> Double? {
        guard let text = reader.string(node, at: path) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let ratio: Double? =
            trimmed.hasSuffix("%")
            ? Double(trimmed.dropLast().trimmingCharacters(in: .whitespaces)).map { $0 / 100 }
            : Double(trimmed)
        // 99.9 / 100 is 0.9990000000000001 in binary: keep the digits written (12 significant).
        guard let ratio = ratio.map({ ($0 * 1e12).rounded() / 1e12 }), ratio > 0, ratio < 1 else {
            reader.report(
                path,
                node,
                "must be a percentage above 0 and below 100, such as 99.9%, or a ratio such as 0.999 "
                    + "(got '\(text)'; 100% leaves no error budget)"
            )
            return nil
        }
        return ratio
    }
}
