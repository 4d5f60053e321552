public import BelayHTTP
import Foundation
import Yams

extension UpstreamConfig {
    /// `hedging: { delay, max_extra }`: a call still without an answer after `delay` gets another
    /// attempt alongside, the first answer wins (``UpstreamPolicy/Hedging``).
    ///
    /// ```yaml
    /// hedging: { delay: p95, max_extra: 1 }     # or delay: 250ms
    /// ```
    public struct Hedging: Sendable, Hashable {
        /// When the next attempt starts: a duration, or a percentile of the upstream's recent
        /// successful calls (`p95`, `p99.9`).
        public var delay: UpstreamPolicy.Hedging.Delay
        /// Extra attempts at most, 1 to 3. Default 1.
        public var maxExtra = 1

        /// Creates the option.
        public init(delay: UpstreamPolicy.Hedging.Delay, maxExtra: Int = 1) {
            self.delay = delay
            self.maxExtra = maxExtra
        }
    }
}

extension UpstreamConfigReader {
    /// Reads `upstreams.<name>.hedging`: `delay` (required: a duration, or `p` and a percentile
    /// above 0 and below 100) and `max_extra` (1 to 3).
    func readHedging(_ node: Node, at path: String, _ reader: inout ConfigReader) -> UpstreamConfig.Hedging? {
        var delay: UpstreamPolicy.Hedging.Delay?
        var maxExtra = 1
        var valid = true
        for (key, value) in reader.mapping(node, at: path, allowed: ["delay", "max_extra"]) ?? [] {
            let keyPath = "\(path).\(key)"
            switch key {
            case "delay":
                guard let text = reader.string(value, at: keyPath) else {
                    valid = false
                    continue
                }
                if text.hasPrefix("p") {
                    guard let percent = Double(text.dropFirst()), percent > 0, percent < 100 else {
                        reader.report(
                            keyPath,
                            value,
                            "must be a duration such as 250ms or a percentile of the upstream's latency "
                                + "such as p95 or p99.5 (got '\(text)')"
                        )
                        valid = false
                        continue
                    }
                    delay = .percentile(percent / 100)
                } else if let duration = reader.duration(value, at: keyPath) {
                    delay = .fixed(duration)
                } else {
                    valid = false
                }
            case "max_extra":
                if let count = reader.int(value, at: keyPath, atLeast: 1, atMost: 3) {
                    maxExtra = count
                } else {
                    valid = false
                }
            default: break
            }
        }
        guard valid else { return nil }
        guard let delay else {
            reader.report(
                "\(path).delay",
                node,
                "is required: how long a call waits before another attempt starts (250ms, or p95)"
            )
            return nil
        }
        return UpstreamConfig.Hedging(delay: delay, maxExtra: maxExtra)
    }
}
