/// How an ``AdaptiveConcurrencyLimit`` moves its limit: ``aimd(increase:backoff:)`` or
/// ``gradient(tolerance:smoothing:queueAllowance:sampleWindow:minimumRTTInterval:minimumRTTSamples:backoff:)``.
///
/// Both decrease the limit multiplicatively on a drop signal (``ConcurrencySignal/dropped``:
/// a timeout, a 429 or 503, a reset), at most once per round trip; they differ in what they
/// learn from successes.
public struct AdaptiveConcurrencyAlgorithm: Sendable, Hashable, CustomStringConvertible {
    /// The options of ``gradient(tolerance:smoothing:queueAllowance:sampleWindow:minimumRTTInterval:minimumRTTSamples:backoff:)``.
    struct GradientParameters: Sendable, Hashable {
        var tolerance: Double
        var smoothing: Double
        var queueAllowance: Double?
        var sampleWindow: Int
        var minimumRTTInterval: Duration
        var minimumRTTSamples: Int
    }

    enum Kind: Sendable, Hashable {
        case aimd(increase: Int, backoff: Double)
        case gradient(GradientParameters)
    }

    let kind: Kind
    /// The factor a drop signal multiplies the limit by.
    let backoff: Double

    private init(_ kind: Kind, backoff: Double) {
        self.kind = kind
        self.backoff = backoff
    }

    /// Additive increase, multiplicative decrease (TCP's congestion control, Netflix's
    /// `AIMDLimit`): after as many successful calls as the limit itself (a window), each
    /// admitted while at least half the limit was in use, the limit grows by `increase`; a drop signal multiplies it by `backoff`
    /// (rounded down, at least one less). Latency is not looked at.
    /// - Parameters:
    ///   - increase: added per window of successes at the limit. At least 1; default 1.
    ///   - backoff: the factor a drop signal applies. Between 0 and 1 exclusive; default 0.9.
    public static func aimd(increase: Int = 1, backoff: Double = 0.9) -> Self {
        Self(.aimd(increase: increase, backoff: backoff), backoff: backoff)
    }

    /// The latency gradient over the minimum round trip (Envoy's adaptive-concurrency filter,
    /// with Netflix's `Gradient2Limit` formula). The round trip without load is measured
    /// first, with the limit held at `minimum`, as the mean of `minimumRTTSamples` calls, and
    /// again every `minimumRTTInterval` (so that a provider that became slower or faster for
    /// good is learnt again). Between measurements, every `sampleWindow` successful calls, the
    /// window's mean round trip (short-term) is compared with it, and the limit becomes
    /// `limit × (1 − smoothing) + (limit × gradient + queueAllowance) × smoothing`, where
    /// `gradient = tolerance × minimum ÷ short`, clamped to [0.5, 2]: while the round trip stays
    /// at its minimum the limit grows by the allowance, and as calls start waiting at the
    /// provider it shrinks (by half at most per window) until about `queueAllowance` of them
    /// wait. Windows in which fewer than half the limit's calls were in flight leave it as it
    /// is. A drop signal multiplies it by `backoff`.
    /// - Parameters:
    ///   - tolerance: how much slower than its minimum the short-term round trip may be
    ///     before the limit shrinks. At least 1; default 1 (only the allowance may wait).
    ///   - smoothing: how much of each window's target is taken. In (0, 1]; default 0.2.
    ///   - queueAllowance: calls allowed to wait at the provider, added to the target; nil
    ///     (the default) for half the square root of the limit (at most half the provider's
    ///     workers wait from 2 workers up, so the median call waits at most half a service
    ///     time; Envoy's whole square root lets 2.6 calls wait for 4 workers).
    ///   - sampleWindow: successful calls per update. At least 1; default 10.
    ///   - minimumRTTInterval: how often the round trip without load is measured again. More
    ///     than zero; default 60 s.
    ///   - minimumRTTSamples: calls each measurement takes the mean of. At least 1; default 20.
    ///   - backoff: the factor a drop signal applies. Between 0 and 1 exclusive; default 0.9.
    public static func gradient(
        tolerance: Double = 1,
        smoothing: Double = 0.2,
        queueAllowance: Double? = nil,
        sampleWindow: Int = 10,
        minimumRTTInterval: Duration = .seconds(60),
        minimumRTTSamples: Int = 20,
        backoff: Double = 0.9
    ) -> Self {
        Self(
            .gradient(
                GradientParameters(
                    tolerance: tolerance,
                    smoothing: smoothing,
                    queueAllowance: queueAllowance,
                    sampleWindow: sampleWindow,
                    minimumRTTInterval: minimumRTTInterval,
                    minimumRTTSamples: minimumRTTSamples
                )
            ),
            backoff: backoff
        )
    }

    /// `aimd` or `gradient`: a bounded word for labels and answers.
    public var name: String {
        switch kind {
        case .aimd: "aimd"
        case .gradient: "gradient"
        }
    }

    public var description: String { name }

    func validate(_ validator: inout OptionValidator) {
        validator.require(
            backoff > 0 && backoff < 1,
            "algorithm.backoff",
            "must be between 0 and 1 exclusive (got \(backoff))"
        )
        switch kind {
        case .aimd(let increase, _):
            validator.atLeast(increase, 1, "algorithm.increase")
        case .gradient(let parameters):
            validator.require(
                parameters.tolerance >= 1,
                "algorithm.tolerance",
                "must be at least 1 (got \(parameters.tolerance))"
            )
            validator.require(
                parameters.smoothing > 0 && parameters.smoothing <= 1,
                "algorithm.smoothing",
                "must be greater than 0 and at most 1 (got \(parameters.smoothing))"
            )
            if let allowance = parameters.queueAllowance {
                validator.require(
                    allowance >= 0 && allowance.isFinite,
                    "algorithm.queueAllowance",
                    "must not be negative (got \(allowance))"
                )
            }
            validator.atLeast(parameters.sampleWindow, 1, "algorithm.sampleWindow")
            validator.require(
                parameters.minimumRTTInterval > .zero,
                "algorithm.minimumRTTInterval",
                "must be more than zero (got \(parameters.minimumRTTInterval.formattedForHumans))"
            )
            validator.atLeast(parameters.minimumRTTSamples, 1, "algorithm.minimumRTTSamples")
        }
    }
}

/// What a finished call tells an ``AdaptiveConcurrencyLimit`` about the dependency's capacity.
public enum ConcurrencySignal: Sendable, Hashable {
    /// The dependency handled the call: its round trip is a sample, and a success at the limit.
    /// A caller's mistake the dependency answered (an HTTP 400 or 404) is one too: no sign of
    /// overload.
    case success
    /// The dependency is overloaded (a timeout, a 429 or 503, a reset): the limit decreases.
    case dropped
    /// Nothing learnt: the caller's own doing that got no answer (cancelled, its own deadline,
    /// its body failing), a refusal by another strategy before the dependency was called, or a
    /// failure that says nothing of load.
    case ignored
}
