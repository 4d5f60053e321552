import Belay
import BelayGateway
import BelayHTTP

/// `belay.yaml` as text: the loader must answer every input with a config or issues, never
/// trap; and a config it accepts must build every limiter and strategy its numbers feed.
/// Also the duration and size syntaxes on their own.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = ConfigDuration.read(text)
    _ = ConfigByteSize.read(text)
    let loader = ConfigLoader(environment: ["TOKEN": "t0ken", "EMPTY": "", "NUMBER": "1e300"])
    guard let config = try? loader.load(yaml: text) else { return 0 }
    do {
        _ = try ConsumerAuth(consumers: config.consumers)
        for limit in config.consumers.compactMap(\.rateLimit) {
            try exercise(rps: limit.rps, burst: limit.burst, maxWait: .zero)
        }
        for upstream in config.upstreams {
            let policy = upstream.policy
            var breaker = policy.circuitBreaker
            breaker.name = policy.name
            _ = try CircuitBreaker(breaker, clock: ContinuousClock())
            _ = try RetryBudget(.init(ratio: policy.retryBudget, name: "budget"))
            _ = try Bulkhead(.init(maxConcurrent: policy.maxConcurrent, maxQueue: policy.maxQueue))
            let backoff = Backoff.exponentialJitter(base: policy.retryBase, cap: policy.retryCap)
            for retry in 1..<max(policy.maxAttempts, 1) {
                _ = backoff.delay(forRetry: retry, previous: nil, random: 0.999)
            }
            if let rate = policy.rateLimit {
                try exercise(rps: rate.permitsPerSecond, burst: rate.burst, maxWait: policy.attemptTimeout)
            }
        }
    } catch {
        // A config the loader accepted that a constructor refuses is a finding too.
        fatalError("the loader accepted a config its parts refuse: \(error)")
    }
    return 0
}

/// Builds the limiter a rate limit makes and takes more than its burst.
private func exercise(rps: Double, burst: Int, maxWait: Duration) throws {
    let limiter = try RateLimiter(.init(permitsPerSecond: rps, burst: burst, maxWait: maxWait))
    for _ in 0..<min(burst, 3) + 2 { _ = limiter.tryAcquire() }
    _ = RateLimitHeaders.policy(permitsPerSecond: rps, burst: burst)
}
