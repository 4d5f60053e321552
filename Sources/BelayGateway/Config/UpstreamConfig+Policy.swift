import Belay
public import BelayHTTP
import NIOSSL

extension UpstreamConfig {
    /// The HTTP layer's policy for this upstream.
    public var policy: UpstreamPolicy {
        var policy = UpstreamPolicy(
            name: name,
            endpoints: endpoints.map {
                UpstreamEndpoint(scheme: $0.scheme, host: $0.host, port: $0.port, basePath: $0.basePath)
            }
        )
        policy.connectTimeout = timeouts.connect
        policy.attemptTimeout = timeouts.attempt
        policy.totalTimeout = timeouts.total
        policy.maxAttempts = retry.maxAttempts
        policy.retryBase = retry.base
        policy.retryCap = retry.cap
        policy.retryBudget = retry.budget
        var conditions = UpstreamPolicy.RetryConditions()
        conditions.statuses = []
        conditions.connect = false
        conditions.reset = false
        conditions.timeout = false
        for condition in retry.on {
            switch condition {
            case .status(let code): conditions.statuses.insert(code)
            case .connect: conditions.connect = true
            case .reset: conditions.reset = true
            case .timeout: conditions.timeout = true
            }
        }
        policy.retryOn = conditions
        policy.circuitBreaker.failureRatio = circuitBreaker.failureRatio
        policy.circuitBreaker.minimumThroughput = circuitBreaker.minimumThroughput
        policy.circuitBreaker.window = circuitBreaker.window
        policy.circuitBreaker.breakDuration = circuitBreaker.breakDuration
        policy.circuitBreaker.maxBreakDuration = max(
            circuitBreaker.breakDuration,
            policy.circuitBreaker.maxBreakDuration
        )
        policy.circuitBreaker.halfOpenProbes = circuitBreaker.halfOpenProbes
        policy.circuitBreaker.halfOpenJudgment = circuitBreaker.halfOpenJudgment
        policy.maxConcurrent = bulkhead.maxConcurrent
        policy.maxQueue = bulkhead.maxQueue
        policy.adaptiveConcurrency = bulkhead.adaptiveConfiguration
        policy.hedging = hedging.map { UpstreamPolicy.Hedging(delay: $0.delay, maxExtra: $0.maxExtra) }
        policy.rateLimit = rateLimit.map { ($0.rps, $0.burst) }
        policy.staleIfError = staleIfError
        policy.fallback = criticality == .optional ? fallback?.policy : nil
        policy.idempotencyHeader = idempotencyHeader
        policy.headers = headers.map { ($0.name, $0.value.value) }
        policy.ejectionDuration = circuitBreaker.breakDuration
        policy.tls = tlsConfiguration
        policy.serverName = tls?.serverName
        return policy
    }
}
