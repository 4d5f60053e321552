public import Belay
public import BelayHTTP
public import BelayStore

/// Turns what the proxy observed of a request into its audit record, with each decision in
/// plain words: "retried because HTTP 503 from api.pay.example:443; waited 1.2s for
/// Retry-After", "skipped endpoint backup.pay.example:443 because it is ejected as an
/// outlier", "circuit open: rejected without calling the upstream", "served stale (age 14s)
/// because the circuit breaker is open".
///
/// Runs on the audit writer's task, never on the request's.
public enum AuditNarration {
    /// The audit record of `exchange`.
    public static func record(_ exchange: ProxyExchange) -> AuditRecord {
        AuditRecord(
            requestID: exchange.requestID,
            upstream: exchange.upstream,
            consumer: exchange.consumer,
            method: exchange.method,
            path: exchange.path,
            receivedAt: exchange.receivedAt,
            durationMilliseconds: exchange.duration.fractionalMilliseconds,
            status: exchange.status,
            outcome: exchange.outcome,
            problem: exchange.problem?.name,
            staleAgeMilliseconds: exchange.staleAge.map { Int64(($0.fractionalMilliseconds).rounded()) },
            attempts: exchange.attempts.map { attempt in
                AuditAttempt(
                    number: attempt.number,
                    endpoint: attempt.endpoint.description,
                    status: attempt.status,
                    // A hedged call's slower attempt, cancelled when the other answered.
                    failure: attempt.abandoned ? "cancelled" : attempt.failure?.rawValue,
                    startedMilliseconds: attempt.startOffset.fractionalMilliseconds,
                    durationMilliseconds: attempt.duration.fractionalMilliseconds,
                    skipped: attempt.skipped.map(\.description)
                )
            },
            decisions: decisions(exchange),
            correlationID: exchange.correlationID
        )
    }

    /// Every decision of `exchange` in order: its resilience events, the endpoints each
    /// attempt skipped (just before that attempt's events), and serving a stale answer last.
    public static func decisions(_ exchange: ProxyExchange) -> [AuditDecision] {
        var decisions: [AuditDecision] = []
        decisions.reserveCapacity(exchange.decisions.count + 1)
        var skips = exchange.attempts.filter { !$0.skipped.isEmpty }[...]
        func flushSkips(through attempt: Int) {
            while let next = skips.first, next.number <= attempt {
                skips.removeFirst()
                for endpoint in next.skipped {
                    decisions.append(
                        AuditDecision(
                            attempt: next.number,
                            kind: "endpoint_skipped",
                            description: "skipped endpoint \(endpoint) because it is ejected as an outlier"
                        )
                    )
                }
            }
        }
        for event in exchange.decisions {
            flushSkips(through: event.attempt)
            let attempt = exchange.attempts.first { $0.number == event.attempt }
            decisions.append(
                AuditDecision(attempt: event.attempt, kind: event.kind.name, description: sentence(event, attempt))
            )
        }
        flushSkips(through: .max)
        if let age = exchange.staleAge {
            decisions.append(
                AuditDecision(
                    attempt: 0,
                    kind: "served_stale",
                    description: "served stale (age \(Int(age.inSeconds))s) because \(staleReason(exchange))"
                )
            )
        } else if let delivery = exchange.queued {
            let description =
                exchange.replayed
                ? "answered from the queue: this Idempotency-Key was queued before as delivery \(delivery); "
                    + "the upstream was not called"
                : "queued as delivery \(delivery) (the caller sent Prefer: respond-async) because "
                    + "\(staleReason(exchange)); the queue sends it with the same idempotency key"
            decisions.append(AuditDecision(attempt: 0, kind: "queued_for_delivery", description: description))
        } else if exchange.fallback {
            decisions.append(
                AuditDecision(
                    attempt: 0,
                    kind: "served_fallback",
                    description:
                        "answered with the upstream's fallback (criticality: optional; nothing stale was cached) "
                        + "because \(staleReason(exchange))"
                )
            )
        }
        return decisions
    }

    /// One event in plain words; `attempt` is the attempt it concerns, if one was made.
    public static func sentence(_ event: ResilienceEvent, _ attempt: AttemptRecord?) -> String {
        switch event.kind {
        case .retryScheduled(let delay, let reason):
            if let asked = attempt?.retryAfter, asked > .zero {
                let what = attempt?.status == 429 ? "the rate limit to reset" : "Retry-After"
                if delay <= asked {
                    return "retried because \(reason); waited \(asked.formattedForHumans) for \(what)"
                }
                return "retried because \(reason) after a \(delay.formattedForHumans) backoff "
                    + "(\(what) asked for \(asked.formattedForHumans))"
            }
            if delay == .zero { return "retried at once because \(reason)" }
            return "retried because \(reason) after a \(delay.formattedForHumans) backoff"
        case .retryAbandoned(let reason, let outcome):
            switch reason {
            case .attemptsExhausted:
                return "gave up after \(event.attempt) attempts; the last: \(outcome)"
            case .deadline:
                return "not retried: the next retry would end past the deadline (after \(outcome))"
            case .budgetExhausted:
                return "not retried: the upstream's retry budget is spent (after \(outcome))"
            case .delayHintTooLong:
                return "not retried: the upstream asked to wait longer than allowed (after \(outcome))"
            }
        case .timedOut(let after):
            if event.strategy.hasSuffix("-attempt-timeout") {
                return "attempt timed out after \(after.formattedForHumans)"
            }
            if event.strategy.hasSuffix("-total-timeout") {
                return "gave up: the total timeout of \(after.formattedForHumans) ran out"
            }
            return "timed out after \(after.formattedForHumans)"
        case .circuitStateChanged(let from, let to):
            switch to {
            case .open: return "circuit breaker opened (was \(from)): calls are rejected until it half-opens"
            case .closed: return "circuit breaker closed: the upstream answers again"
            case .halfOpen: return "circuit breaker half-open: this call probes the upstream"
            case .isolated: return "circuit breaker isolated: every call is rejected"
            }
        case .rejected(let code, let retryAfter):
            let after = retryAfter.map { "; retry after \($0.formattedForHumans)" } ?? ""
            switch code {
            case .circuitOpen: return "circuit open: rejected without calling the upstream" + after
            case .circuitIsolated: return "circuit isolated: rejected without calling the upstream" + after
            case .bulkheadFull: return "bulkhead full: rejected, too many calls in flight to this upstream" + after
            case .concurrencyLimited:
                return "concurrency limited: rejected, the upstream's adaptive limit was reached and no slot "
                    + "freed in time" + after
            case .rateLimited:
                return "rate limited: rejected, no permit to call the upstream in time (\(event.strategy))" + after
            case .retryBudgetExhausted: return "retry budget spent: rejected" + after
            default: return "rejected: \(code)" + after
            }
        case .rateLimitDelayed(let delay):
            if event.strategy.hasSuffix("-quota") {
                return "waited \(delay.formattedForHumans) to pace the provider's quota"
            }
            return "waited \(delay.formattedForHumans) for a rate-limit permit"
        case .hedgeLaunched(let hedge, let after):
            return "hedged: attempt \(hedge) launched after \(after.formattedForHumans)"
        case .fallbackUsed(let reason):
            return "fallback used because \(reason)"
        case .faultInjected(let kind):
            // A failure drill names itself: `drill drl_…`.
            if event.strategy.hasPrefix("drill ") {
                let what =
                    switch kind {
                    case .outcome: "an answer in place of the upstream's"
                    case .latency: "added latency"
                    case .error: "a connection failure"
                    }
                return "\(event.strategy) injected \(what) (a rehearsal, not the upstream)"
            }
            return "injected \(kind == .latency ? "a" : "an") \(kind.rawValue) fault"
        case .concurrencyLimitChanged(let from, let to):
            return "concurrency limit \(to > from ? "raised" : "lowered") from \(from) to \(to)"
        }
    }

    /// Why the upstream's own answer could not be used, for a stale one served instead.
    static func staleReason(_ exchange: ProxyExchange) -> String {
        for event in exchange.decisions.reversed() {
            switch event.kind {
            case .rejected(.circuitOpen, _), .rejected(.circuitIsolated, _):
                return "the circuit breaker is open"
            case .rejected(.bulkheadFull, _):
                return "the bulkhead is full"
            case .rejected(.concurrencyLimited, _):
                return "the adaptive concurrency limit was reached"
            case .rejected(.rateLimited, _):
                return "the rate limit allowed no call in time"
            case .rejected(.retryBudgetExhausted, _):
                return "the retry budget is spent"
            case .timedOut(let after) where event.strategy.hasSuffix("-total-timeout"):
                return "the total timeout of \(after.formattedForHumans) ran out"
            default:
                continue
            }
        }
        guard let last = exchange.attempts.last else { return "the upstream could not be called" }
        if let status = last.status { return "the upstream answered HTTP \(status)" }
        switch last.failure {
        case .connect: return "the upstream could not be reached (connect failure at \(last.endpoint))"
        case .reset: return "the connection to \(last.endpoint) broke (reset)"
        case .timeout: return "the upstream did not answer in time"
        case .other, nil: return "the upstream failed"
        }
    }
}

extension Duration {
    /// The duration in milliseconds, as a `Double`.
    fileprivate var fractionalMilliseconds: Double { inSeconds * 1_000 }
}
