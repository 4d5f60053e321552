/// A token bucket: `rate` tokens a second up to `burst`. Sans-IO: callers pass the time
/// elapsed since an origin of their choosing.
///
/// Tokens may go negative: a caller that agrees to wait reserves a future token, so
/// concurrent waiters are spaced `1/rate` apart instead of waking together.
struct TokenBucket: Sendable {
    enum Decision: Equatable, Sendable {
        /// A token was taken; run now.
        case granted
        /// A future token was reserved; run after this wait.
        case wait(Duration)
        /// No token within the allowed wait; try again after this long.
        case rejected(retryAfter: Duration)
    }

    private(set) var tokens: Double
    private var updated: Duration
    let rate: Double
    let burst: Double

    init(rate: Double, burst: Int, now: Duration) {
        self.rate = rate
        self.burst = Double(burst)
        self.tokens = Double(burst)
        self.updated = now
    }

    private mutating func refill(_ now: Duration) {
        guard now > updated, tokens < burst else {
            if now > updated { updated = now }
            return
        }
        let (seconds, attoseconds) = (now - updated).components
        tokens = min(burst, tokens + (Double(seconds) + Double(attoseconds) * 1e-18) * rate)
        updated = now
    }

    /// Takes one token, reserving a future one if it comes within `maxWait`.
    mutating func acquire(now: Duration, maxWait: Duration) -> Decision {
        refill(now)
        if tokens >= 1 {
            tokens -= 1
            return .granted
        }
        let wait = Duration.seconds((1 - tokens) / rate)
        if wait <= maxWait {
            tokens -= 1
            return .wait(wait)
        }
        return .rejected(retryAfter: wait)
    }

    /// Gives a reserved token back (its waiter was cancelled).
    mutating func refund(now: Duration) {
        refill(now)
        tokens = min(burst, tokens + 1)
    }

    /// Whether the bucket is full at `now` (an idle partition that can be forgotten).
    mutating func isFull(now: Duration) -> Bool {
        refill(now)
        return tokens >= burst
    }
}
