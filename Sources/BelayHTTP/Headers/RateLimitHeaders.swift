import Belay
public import HTTPTypes

/// What a provider's rate-limit headers say: the current IETF form
/// (`RateLimit: "default";r=50;t=30` and `RateLimit-Policy: "default";q=100;w=60`), the
/// older draft (`RateLimit-Limit`, `-Remaining`, `-Reset`) and `X-RateLimit-*`.
public struct RateLimitHeaders: Sendable, Hashable {
    /// The quota, if stated.
    public var limit: Int?
    /// Requests left in the window, if stated.
    public var remaining: Int?
    /// Time until the quota resets, if stated.
    public var resetAfter: Duration?
    /// The quota's window, if stated (`w` of `RateLimit-Policy`).
    public var window: Duration?

    /// The largest count read (requests); anything larger or negative is ignored.
    static let maxCount = 1_000_000_000_000
    /// The longest time read, in seconds (about 31 years); longer values are ignored (an
    /// `X-RateLimit-Reset` above it is a Unix time, not a delay).
    static let maxSeconds = 1_000_000_000

    private static let rateLimit = HTTPField.Name("RateLimit")!
    private static let rateLimitPolicy = HTTPField.Name("RateLimit-Policy")!
    /// `Limit`, `Remaining` and `Reset` of the older draft, then of `X-RateLimit-*`.
    private static let legacy = ["RateLimit-", "X-RateLimit-"].map { prefix in
        (
            limit: HTTPField.Name(prefix + "Limit")!,
            remaining: HTTPField.Name(prefix + "Remaining")!,
            reset: HTTPField.Name(prefix + "Reset")!
        )
    }

    /// Reads whichever of the forms are present; the current form wins. Negative values and
    /// absurdly large ones are ignored, as if not stated.
    public init(_ headers: HTTPFields) {
        // Most answers carry none of them: one pass to find out.
        guard
            headers.contains(where: {
                $0.name.canonicalName.hasPrefix("ratelimit") || $0.name.canonicalName.hasPrefix("x-ratelimit")
            })
        else { return }
        if let value = headers[Self.rateLimit] {
            let parameters = Self.parameters(value)
            remaining = parameters["r"].flatMap(Self.count)
            resetAfter = parameters["t"].flatMap(Self.seconds)
        }
        if let policy = headers[Self.rateLimitPolicy] {
            let parameters = Self.parameters(policy)
            limit = parameters["q"].flatMap(Self.count)
            window = parameters["w"].flatMap(Self.seconds)
        }
        for names in Self.legacy {
            if limit == nil, let value = headers[names.limit] {
                limit = Int(Self.firstNumber(value)).flatMap(Self.count)
            }
            if remaining == nil, let value = headers[names.remaining] {
                remaining = Int(Self.firstNumber(value)).flatMap(Self.count)
            }
            if resetAfter == nil, let value = headers[names.reset] {
                resetAfter = Int(Self.firstNumber(value)).flatMap(Self.seconds)
            }
        }
    }

    static func count(_ value: Int) -> Int? {
        (0...maxCount).contains(value) ? value : nil
    }

    static func seconds(_ value: Int) -> Duration? {
        (0...maxSeconds).contains(value) ? .seconds(value) : nil
    }

    /// `;key=value` integer parameters of the first list member of a structured field.
    static func parameters(_ value: String) -> [String: Int] {
        let member = value.split(separator: ",").first ?? ""
        var result: [String: Int] = [:]
        for part in member.split(separator: ";").dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, let number = Int(pair[1].trimmingSpaces) else { continue }
            result[String(pair[0].trimmingSpaces)] = number
        }
        return result
    }

    static func firstNumber(_ value: String) -> Substring {
        value.split(separator: ",").first?.trimmingSpaces ?? ""
    }
}

extension RateLimitHeaders {
    /// The current IETF fields for a refusal: `RateLimit-Policy: "<name>";q=<quota>;w=<window>`
    /// and `RateLimit: "<name>";r=<remaining>;t=<reset>` (whole seconds; `t` rounded up).
    ///
    /// ```swift
    /// let fields = RateLimitHeaders.fields(policy: "consumer", quota: 400, window: 2, remaining: 0,
    ///                                      reset: .milliseconds(300))
    /// // RateLimit-Policy: "consumer";q=400;w=2   RateLimit: "consumer";r=0;t=1
    /// ```
    public static func fields(
        policy name: String,
        quota: Int,
        window: Int,
        remaining: Int,
        reset: Duration
    ) -> HTTPFields {
        var fields = HTTPFields()
        fields[HTTPField.Name("RateLimit-Policy")!] = "\"\(name)\";q=\(quota);w=\(window)"
        fields[HTTPField.Name("RateLimit")!] = "\"\(name)\";r=\(remaining);t=\(reset.wholeSecondsRoundedUp)"
        return fields
    }

    /// A token bucket (`permitsPerSecond` on average, `burst` at once) stated as a quota per
    /// window: the window is the time to refill the bucket (whole seconds, at least 1) and the
    /// quota what the rate allows in it (rounded down, at least 1). `rps: 200, burst: 400` is
    /// 400 per 2 s; `rps: 0.5, burst: 1` is 1 per 2 s.
    public static func policy(permitsPerSecond: Double, burst: Int) -> (quota: Int, window: Int) {
        let window = max(clampedWhole((Double(burst) / permitsPerSecond).rounded(.up)), 1)
        let quota = max(clampedWhole((permitsPerSecond * Double(window)).rounded(.down)), 1)
        return (quota, window)
    }

    /// `value` as an `Int` in `0...10^15` (no trap on huge, infinite or NaN values).
    static func clampedWhole(_ value: Double) -> Int {
        guard value.isFinite else { return value > 0 ? 1_000_000_000_000_000 : 0 }
        return Int(min(max(value, 0), 1e15))
    }
}

extension Duration {
    /// Whole seconds, rounded up, at least 1: the form of `Retry-After` and `RateLimit`'s `t`.
    /// Never traps: absurdly long durations are capped at 10^15 s.
    public var wholeSecondsRoundedUp: Int {
        max(RateLimitHeaders.clampedWhole(inSeconds.rounded(.up)), 1)
    }
}
