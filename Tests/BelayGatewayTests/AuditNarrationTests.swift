import Belay
import BelayGateway
import BelayHTTP
import BelayStore
import Foundation
import Testing

@Suite struct AuditNarrationTests {
    let a = UpstreamEndpoint(scheme: "https", host: "a.example", port: 443)
    let b = UpstreamEndpoint(scheme: "https", host: "b.example", port: 443)

    func event(_ kind: ResilienceEvent.Kind, attempt: Int = 1, strategy: String = "pay-retry") -> ResilienceEvent {
        ResilienceEvent(strategy: strategy, kind: kind, correlationID: "r-1", attempt: attempt)
    }

    func attempt(_ number: Int, status: Int? = 503, retryAfter: Duration? = nil) -> AttemptRecord {
        AttemptRecord(
            number: number,
            endpoint: a,
            status: status,
            failure: status == nil ? .connect : nil,
            duration: .milliseconds(5),
            retryAfter: retryAfter
        )
    }

    @Test func retriesSayWhyAndHowLongTheyWaited() {
        let reason = "HTTP 503 from a.example:443"
        #expect(
            AuditNarration.sentence(event(.retryScheduled(delay: .milliseconds(120), reason: reason)), attempt(1))
                == "retried because HTTP 503 from a.example:443 after a 120ms backoff"
        )
        #expect(
            AuditNarration.sentence(
                event(.retryScheduled(delay: .milliseconds(1_200), reason: reason)),
                attempt(1, retryAfter: .milliseconds(1_200))
            ) == "retried because HTTP 503 from a.example:443; waited 1.2s for Retry-After"
        )
        #expect(
            AuditNarration.sentence(
                event(.retryScheduled(delay: .seconds(3), reason: reason)),
                attempt(1, retryAfter: .seconds(1))
            ) == "retried because HTTP 503 from a.example:443 after a 3s backoff (Retry-After asked for 1s)"
        )
        #expect(
            AuditNarration.sentence(
                event(.retryAbandoned(reason: .attemptsExhausted, outcome: reason), attempt: 3),
                attempt(3)
            ) == "gave up after 3 attempts; the last: HTTP 503 from a.example:443"
        )
    }

    @Test func refusalsAndWaitsAreNamed() {
        #expect(
            AuditNarration.sentence(event(.rejected(.circuitOpen, retryAfter: .seconds(30))), nil)
                == "circuit open: rejected without calling the upstream; retry after 30s"
        )
        #expect(
            AuditNarration.sentence(event(.timedOut(after: .seconds(2)), strategy: "pay-attempt-timeout"), nil)
                == "attempt timed out after 2s"
        )
        #expect(
            AuditNarration.sentence(event(.timedOut(after: .seconds(10)), strategy: "pay-total-timeout"), nil)
                == "gave up: the total timeout of 10s ran out"
        )
        #expect(
            AuditNarration.sentence(event(.circuitStateChanged(from: .closed, to: .open)), nil)
                == "circuit breaker opened (was closed): calls are rejected until it half-opens"
        )
        #expect(
            AuditNarration.sentence(event(.rateLimitDelayed(delay: .milliseconds(300)), strategy: "pay-quota"), nil)
                == "waited 300ms to pace the provider's quota"
        )
    }

    @Test func skippedEndpointsComeBeforeTheirAttemptsDecisionsAndStaleLast() {
        var first = attempt(1)
        first.skipped = [b]
        var second = attempt(2, status: nil)
        second.skipped = [b]
        let exchange = ProxyExchange(
            requestID: "r-1",
            upstream: "pay",
            method: "GET",
            path: "/v1/rates",
            receivedAt: Date(timeIntervalSince1970: 1_800_000_000),
            duration: .milliseconds(40),
            status: 200,
            staleAge: .seconds(14),
            attempts: [first, second],
            decisions: [
                event(.retryScheduled(delay: .milliseconds(10), reason: "HTTP 503 from a.example:443")),
                event(.circuitStateChanged(from: .closed, to: .open), attempt: 2, strategy: "pay"),
                event(.rejected(.circuitOpen, retryAfter: .seconds(30)), attempt: 2, strategy: "pay"),
            ]
        )
        let decisions = AuditNarration.decisions(exchange)
        #expect(
            decisions.map(\.kind) == [
                "endpoint_skipped", "retry_scheduled", "endpoint_skipped", "circuit_opened", "rejected", "served_stale",
            ]
        )
        #expect(decisions.map(\.attempt) == [1, 1, 2, 2, 2, 0])
        #expect(decisions[0].description == "skipped endpoint b.example:443 because it is ejected as an outlier")
        #expect(decisions.last?.description == "served stale (age 14s) because the circuit breaker is open")

        let record = AuditNarration.record(exchange)
        #expect(record.outcome == "stale")
        #expect(record.staleAgeMilliseconds == 14_000)
        #expect(record.durationMilliseconds == 40)
        #expect(record.attempts.map(\.endpoint) == ["a.example:443", "a.example:443"])
        #expect(record.attempts.map(\.failure) == [nil, "connect"])
        #expect(record.attempts.map(\.skipped) == [["b.example:443"], ["b.example:443"]])
    }

    @Test func aStaleAnswerWithoutARefusalNamesTheUpstreamsFailure() {
        let exchange = ProxyExchange(
            requestID: "r-1",
            upstream: "pay",
            method: "GET",
            path: "/v1/rates",
            receivedAt: Date(timeIntervalSince1970: 1_800_000_000),
            duration: .milliseconds(4),
            status: 200,
            staleAge: .seconds(3),
            attempts: [attempt(1, status: 502)]
        )
        #expect(
            AuditNarration.decisions(exchange).map(\.description) == [
                "served stale (age 3s) because the upstream answered HTTP 502"
            ]
        )
    }
}
