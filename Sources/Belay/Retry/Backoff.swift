/// How long to wait before each retry.
///
/// The default, ``exponentialJitter(base:cap:)``, is "full jitter":
/// `random(0, min(cap, base · 2^(n-1)))` before retry `n`, which spreads retries of many
/// callers evenly and is what AWS's architecture blog, Polly and Envoy recommend.
///
/// ```swift
/// let backoff = Backoff.exponentialJitter(base: .milliseconds(100), cap: .seconds(5))
/// backoff.delay(forRetry: 3, previous: nil, random: 0.5)  // 200ms: half of min(5s, 400ms)
/// ```
public struct Backoff: Sendable, Hashable, CustomStringConvertible {
    enum Kind: Hashable {
        case constant(Duration)
        case linear(base: Duration, cap: Duration)
        case exponential(base: Duration, cap: Duration, jitter: Bool)
        case decorrelatedJitter(base: Duration, cap: Duration)
    }

    let kind: Kind

    /// The same delay before every retry.
    public static func constant(_ delay: Duration) -> Backoff { Backoff(kind: .constant(delay)) }

    /// `base · n` before retry `n`, at most `cap`.
    public static func linear(base: Duration, cap: Duration) -> Backoff {
        Backoff(kind: .linear(base: base, cap: cap))
    }

    /// `min(cap, base · 2^(n-1))` before retry `n`, without jitter.
    public static func exponential(base: Duration, cap: Duration) -> Backoff {
        Backoff(kind: .exponential(base: base, cap: cap, jitter: false))
    }

    /// Full jitter: `random(0, min(cap, base · 2^(n-1)))` before retry `n`. The default.
    public static func exponentialJitter(base: Duration, cap: Duration) -> Backoff {
        Backoff(kind: .exponential(base: base, cap: cap, jitter: true))
    }

    /// Decorrelated jitter: `min(cap, random(base, 3 · previous))`, starting from `base`.
    public static func decorrelatedJitter(base: Duration, cap: Duration) -> Backoff {
        Backoff(kind: .decorrelatedJitter(base: base, cap: cap))
    }

    /// The delay before retry number `retry` (1 for the first retry).
    /// - Parameters:
    ///   - retry: the retry's number, 1-based.
    ///   - previous: the delay before the previous retry, if any (decorrelated jitter uses it).
    ///   - random: a uniform random number in `0..<1`.
    public func delay(forRetry retry: Int, previous: Duration?, random: Double) -> Duration {
        let unit = min(max(random, 0), 1)
        let retry = max(retry, 1)
        switch kind {
        case .constant(let delay):
            return delay
        case .linear(let base, let cap):
            // Beyond a million retries the cap has long been reached; avoid overflow.
            return retry > 1_000_000 ? cap : min(cap, base * retry)
        case .exponential(let base, let cap, let jitter):
            let exponent = retry - 1
            let ceiling = exponent >= 62 ? cap : min(cap, base * (1 << exponent))
            return jitter ? ceiling * unit : ceiling
        case .decorrelatedJitter(let base, let cap):
            let high = max(base, (previous ?? base) * 3)
            return min(cap, base + (high - base) * unit)
        }
    }

    /// The largest delay this backoff can produce before retry `retry`.
    public func maximumDelay(forRetry retry: Int, previous: Duration?) -> Duration {
        switch kind {
        case .exponential(let base, let cap, _):
            return Backoff.exponential(base: base, cap: cap).delay(forRetry: retry, previous: previous, random: 1)
        default:
            return delay(forRetry: retry, previous: previous, random: 1)
        }
    }

    var durations: [(String, Duration)] {
        switch kind {
        case .constant(let delay): [("delay", delay)]
        case .linear(let base, let cap), .exponential(let base, let cap, _), .decorrelatedJitter(let base, let cap):
            [("base", base), ("cap", cap)]
        }
    }

    public var description: String {
        switch kind {
        case .constant(let delay): "constant(\(delay.formattedForHumans))"
        case .linear(let base, let cap): "linear(base: \(base.formattedForHumans), cap: \(cap.formattedForHumans))"
        case .exponential(let base, let cap, let jitter):
            "exponential\(jitter ? "Jitter" : "")(base: \(base.formattedForHumans), cap: \(cap.formattedForHumans))"
        case .decorrelatedJitter(let base, let cap):
            "decorrelatedJitter(base: \(base.formattedForHumans), cap: \(cap.formattedForHumans))"
        }
    }
}
