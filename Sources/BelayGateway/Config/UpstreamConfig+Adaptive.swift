public import Belay

extension UpstreamConfig.Bulkhead {
    /// `bulkhead.adaptive`: a concurrency limit learnt from the upstream's answers
    /// (``AdaptiveConcurrencyLimit``), between `min` and `max` from `initial`.
    public struct Adaptive: Sendable, Hashable {
        /// How the limit moves (`algorithm`).
        public enum Algorithm: String, Sendable, Hashable, CaseIterable {
            /// The latency gradient (Netflix's Gradient2): the default.
            case gradient
            /// Additive increase, multiplicative decrease.
            case aimd
        }

        /// How the limit moves. Default gradient.
        public var algorithm = Algorithm.gradient
        /// The limit to start from. Default 20 (at most `max`, at least `min`).
        public var initial = 20
        /// The lowest the limit goes. Default 2 (at most `max`).
        public var minimum = 2
        /// The highest the limit goes. Default 200.
        public var maximum = 200
        /// `gradient` only: calls allowed to wait in the upstream's own line; nil (the
        /// default) for half the square root of the limit.
        public var queueAllowance: Double?

        /// Creates the defaults.
        public init() {}
    }

    /// The library's configuration for ``adaptive`` (its queue is ``maxQueue``, its wait
    /// ``maxWait``); nil for a fixed bulkhead.
    public var adaptiveConfiguration: AdaptiveConcurrencyLimit<ContinuousClock>.Configuration? {
        adaptive.map { adaptive in
            .init(
                algorithm: adaptive.algorithm == .aimd ? .aimd() : .gradient(queueAllowance: adaptive.queueAllowance),
                initial: adaptive.initial,
                minimum: adaptive.minimum,
                maximum: adaptive.maximum,
                maxQueue: maxQueue,
                maxWait: maxWait
            )
        }
    }
}
