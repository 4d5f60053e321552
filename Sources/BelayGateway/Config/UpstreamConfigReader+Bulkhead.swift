import Yams

extension UpstreamConfigReader {
    /// Reads `bulkhead`: `{ max_concurrent, max_queue }`, or `{ adaptive: { algorithm, initial,
    /// min, max }, max_queue, max_wait }`. `adaptive` replaces `max_concurrent` (both is an
    /// error), and `max_wait` applies to an adaptive limit only.
    func readBulkhead(_ node: Node, at path: String, into upstream: inout UpstreamConfig, _ reader: inout ConfigReader)
    {
        let keys: Set<String> = ["max_concurrent", "max_queue", "adaptive", "max_wait"]
        var sawMaxConcurrent = false
        var maxWait: (Duration, Node)?
        var adaptiveNode: Node?
        for (key, value) in reader.mapping(node, at: path, allowed: keys) ?? [] {
            let keyPath = "\(path).\(key)"
            switch key {
            case "max_concurrent":
                sawMaxConcurrent = true
                if let count = reader.int(value, at: keyPath, atLeast: 1, atMost: 100_000) {
                    upstream.bulkhead.maxConcurrent = count
                }
            case "max_queue":
                if let count = reader.int(value, at: keyPath, atLeast: 0, atMost: 1_000_000) {
                    upstream.bulkhead.maxQueue = count
                }
            case "max_wait":
                if let duration = reader.duration(value, at: keyPath, allowZero: true) {
                    maxWait = (duration, value)
                }
            case "adaptive":
                adaptiveNode = value
                upstream.bulkhead.adaptive = readAdaptive(value, at: keyPath, &reader)
            default: break
            }
        }
        if sawMaxConcurrent, let adaptiveNode {
            reader.report(
                "\(path).adaptive",
                adaptiveNode,
                "cannot be combined with \(path).max_concurrent: an adaptive limit replaces the fixed one"
            )
        }
        if case let (duration, value)? = maxWait {
            if upstream.bulkhead.adaptive == nil {
                reader.report(
                    "\(path).max_wait",
                    value,
                    "applies to an adaptive limit only: add \(path).adaptive, or remove max_wait"
                )
            } else {
                upstream.bulkhead.maxWait = duration
            }
        }
    }

    /// Reads `bulkhead.adaptive`. Only values the user wrote conflict: `min` defaults to
    /// `min(2, max)`, `max` to `max(200, min)`, `initial` to 20 within `[min, max]`;
    /// `queue_allowance` is the gradient's only.
    private func readAdaptive(
        _ node: Node,
        at path: String,
        _ reader: inout ConfigReader
    ) -> UpstreamConfig.Bulkhead.Adaptive? {
        typealias Adaptive = UpstreamConfig.Bulkhead.Adaptive
        let keys: Set<String> = ["algorithm", "initial", "min", "max", "queue_allowance"]
        guard let entries = reader.mapping(node, at: path, allowed: keys) else { return nil }
        var adaptive = Adaptive()
        var initial: (Int, Node)?
        var minimum: (Int, Node)?
        var maximum: Int?
        var allowanceNode: Node?
        for (key, value) in entries {
            let keyPath = "\(path).\(key)"
            switch key {
            case "algorithm":
                guard let text = reader.string(value, at: keyPath) else { continue }
                if let algorithm = Adaptive.Algorithm(rawValue: text) {
                    adaptive.algorithm = algorithm
                } else {
                    let known = Adaptive.Algorithm.allCases.map(\.rawValue).joined(separator: ", ")
                    reader.report(keyPath, value, "must be one of \(known) (got '\(text)')")
                }
            case "initial":
                if let count = reader.int(value, at: keyPath, atLeast: 1, atMost: 100_000) { initial = (count, value) }
            case "min":
                if let count = reader.int(value, at: keyPath, atLeast: 1, atMost: 100_000) { minimum = (count, value) }
            case "max":
                if let count = reader.int(value, at: keyPath, atLeast: 1, atMost: 100_000) { maximum = count }
            case "queue_allowance":
                allowanceNode = value
                adaptive.queueAllowance = reader.number(
                    value,
                    at: keyPath,
                    in: 0...100_000,
                    described: "from 0 to 100000"
                )
            default: break
            }
        }
        if let allowanceNode, adaptive.algorithm != .gradient {
            reader.report(
                "\(path).queue_allowance",
                allowanceNode,
                "applies to algorithm gradient only (got \(adaptive.algorithm.rawValue))"
            )
        }
        if case let (low, value)? = minimum, let maximum, low > maximum {
            reader.report("\(path).min", value, "must not exceed \(path).max (\(low) > \(maximum))")
        }
        let defaults = Adaptive()
        adaptive.maximum = maximum ?? max(defaults.maximum, minimum?.0 ?? 1)
        adaptive.minimum = minimum?.0 ?? min(defaults.minimum, adaptive.maximum)
        if case let (start, value)? = initial {
            if adaptive.minimum <= adaptive.maximum, start < adaptive.minimum || start > adaptive.maximum {
                reader.report(
                    "\(path).initial",
                    value,
                    "must be between \(path).min and \(path).max (\(adaptive.minimum)...\(adaptive.maximum)) (got \(start))"
                )
            }
            adaptive.initial = start
        } else {
            adaptive.initial = min(max(defaults.initial, adaptive.minimum), adaptive.maximum)
        }
        return adaptive
    }
}
