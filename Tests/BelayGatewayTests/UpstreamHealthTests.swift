import Belay
import BelayTestKit
import Foundation
import Synchronization
import Testing

@testable import BelayGateway
@testable import BelayHTTP

/// Keeps every alert raised.
final class AlertRecorder: Sendable {
    private let storage = Mutex<[Alert]>([])

    func raise(_ alert: Alert) { storage.withLock { $0.append(alert) } }

    var alerts: [Alert] { storage.withLock { $0 } }
    var kinds: [String] { alerts.map(\.kind.rawValue) }
}

@Suite struct UpstreamHealthTests {
    /// 08:00:00 UTC.
    static let origin = Date(timeIntervalSince1970: 1_800_000_000)
    let clock = ManualClock()
    let alerts = AlertRecorder()
    let endpoint = UpstreamEndpoint(scheme: "http", host: "a.example", port: 80)

    func health(probe: (path: String, every: Duration)? = nil) -> UpstreamHealth<ManualClock> {
        let alerts = self.alerts
        return UpstreamHealth(
            upstreams: [.init(name: "pay", probe: probe)],
            wall: WallClock(clock: clock, origin: Self.origin),
            alert: { alerts.raise($0) }
        )
    }

    func exchange(
        status: Int = 200,
        milliseconds: Int64 = 10,
        attempts: Int = 1,
        problem: ProblemCode? = nil,
        staleAge: Duration? = nil
    ) -> ProxyExchange {
        ProxyExchange(
            requestID: "r",
            upstream: "pay",
            method: "GET",
            path: "/x",
            receivedAt: Self.origin,
            duration: .milliseconds(milliseconds),
            status: status,
            problem: problem,
            staleAge: staleAge,
            attempts: (1...attempts).map {
                AttemptRecord(number: $0, endpoint: endpoint, status: status, failure: nil, duration: .milliseconds(1))
            }
        )
    }

    @Test func aHedgeIsAnExtraAttemptButNotARetry() throws {
        let health = health()
        // Ten hedged reads (the second attempt a hedge), then ten calls retried once.
        for index in 1...20 {
            var hedgedRead = exchange(attempts: 2)
            if index <= 10 {
                hedgedRead.attempts[1].hedged = true
            }
            health.observe(hedgedRead)
        }
        let minute = try #require(health.report("pay", live: closed)?.windows.first)
        #expect(minute.requests == 20)
        #expect(minute.retryRate == 0.5)
    }

    func breaker(_ health: UpstreamHealth<ManualClock>, _ from: CircuitState, _ to: CircuitState) {
        health.receive(
            ResilienceEvent(
                strategy: "pay",
                kind: .circuitStateChanged(from: from, to: to),
                correlationID: nil,
                attempt: 1
            )
        )
    }

    let closed = UpstreamLiveState(breaker: .closed, endpoints: [("a.example:80", false), ("b.example:80", false)])

    @Test func windowsCountLatencyErrorsAndRetriesAndExpire() throws {
        let health = health()
        for index in 1...100 {
            health.observe(
                exchange(status: index % 10 == 0 ? 503 : 200, milliseconds: Int64(index), attempts: index <= 20 ? 2 : 1)
            )
        }
        let report = try #require(health.report("pay", live: closed))
        let minute = try #require(report.windows.first)
        #expect(minute.label == "1m")
        #expect(minute.requests == 100)
        #expect(minute.errorRate == 0.1)
        #expect(minute.retryRate == 0.2)
        // Bins grow by 19 %: interpolated percentiles land within that of the true values.
        let p50 = try #require(minute.p50).inSeconds * 1_000
        let p95 = try #require(minute.p95).inSeconds * 1_000
        let p99 = try #require(minute.p99).inSeconds * 1_000
        #expect(abs(p50 - 50) / 50 < 0.19)
        #expect(abs(p95 - 95) / 95 < 0.19)
        #expect(abs(p99 - 99) / 99 < 0.19)
        #expect(p50 < p95 && p95 <= p99)
        // 10 errors in 100 requests (10 %) is above the 5 % threshold: degraded.
        #expect(report.state == .degraded)
        #expect(
            report.reason
                == "degraded — 10% of requests failed in the last 1 minute (last: HTTP 503); 20% of calls needed a retry in the last 5 minutes (20 of 100); still serving"
        )

        clock.advance(by: .seconds(70))
        let later = try #require(health.report("pay", live: closed))
        #expect(later.windows.map(\.requests) == [0, 100])
        #expect(later.windows.first?.p50 == nil)
        #expect(later.state == .healthy)
        #expect(later.reason == "healthy — no requests in the last 1 minute")

        clock.advance(by: .seconds(300))
        #expect(health.report("pay", live: closed)?.windows.map(\.requests) == [0, 0])
        #expect(health.report("nobody", live: closed) == nil)
    }

    @Test func anOpenBreakerIsDownAndAlertedWithWhyAndWhere() throws {
        let health = health()
        for _ in 1...6 { health.observe(exchange(status: 503)) }
        clock.advance(by: .seconds(180))  // 08:03
        for _ in 1...4 { health.observe(exchange(status: 503)) }
        breaker(health, .closed, .open)
        let open = UpstreamLiveState(breaker: .open, remainingBreak: .seconds(25), endpoints: closed.endpoints)
        let report = try #require(health.report("pay", live: open))
        #expect(report.state == .down)
        #expect(report.reason == "down — circuit open since 08:03 UTC, a trial call is let through in 25s")
        #expect(report.since == Self.origin.addingTimeInterval(180))
        #expect(
            report.breakerHistory == [BreakerChange(at: Self.origin.addingTimeInterval(180), from: .closed, to: .open)]
        )

        let alert = try #require(alerts.alerts.first)
        #expect(alert.kind == .breakerOpened)
        #expect(alert.severity == "critical")
        #expect(alert.upstream == "pay")
        #expect(alert.link == "/v1/upstreams/pay")
        #expect(alert.since == Self.origin.addingTimeInterval(180))
        #expect(
            alert.summary
                == "pay: circuit opened at 08:03 UTC because 4 of 4 requests failed in the last 1 minute; "
                + "last: HTTP 503; calls are refused (or served stale) until a trial call succeeds"
        )

        clock.advance(by: .seconds(30))
        breaker(health, .open, .halfOpen)
        breaker(health, .halfOpen, .closed)
        #expect(alerts.kinds == ["breaker.opened", "breaker.closed"])
        #expect(
            alerts.alerts.last?.summary
                == "pay: circuit closed at 08:03 UTC after being open for 30 seconds; calls flow again"
        )
        #expect(alerts.alerts.last?.severity == "info")
        clock.advance(by: .seconds(61))
        let recovered = try #require(health.report("pay", live: closed))
        #expect(recovered.state == .healthy)
        #expect(recovered.since == Self.origin.addingTimeInterval(210))
        #expect(recovered.breakerHistory.map(\.to) == [.open, .halfOpen, .closed])
    }

    @Test func staleAnswersOutrankAnOpenBreaker() throws {
        let health = health()
        breaker(health, .closed, .open)
        clock.advance(by: .seconds(60))
        health.observe(exchange(status: 200, staleAge: .seconds(13 * 60 + 30)))
        clock.advance(by: .seconds(40))
        let open = UpstreamLiveState(breaker: .open, remainingBreak: .seconds(5), endpoints: closed.endpoints)
        let report = try #require(health.report("pay", live: open))
        #expect(report.state == .stale)
        #expect(report.reason == "serving cached responses from 14 minutes ago (circuit open since 08:00 UTC)")
        #expect(report.since == Self.origin.addingTimeInterval(60))
        #expect(report.staleAge == .seconds(14 * 60 + 10))
        #expect(report.windows.first?.stale == 1)
        // Once no stale answer was served for a window, the open breaker shows again.
        clock.advance(by: .seconds(61))
        #expect(health.report("pay", live: open)?.state == .down)
    }

    @Test func tooFewFailuresToJudgeAreSaidSoNotCalledNormal() throws {
        let health = health()
        health.observe(exchange(status: 502))
        let report = try #require(health.report("pay", live: closed))
        #expect(report.state == .healthy)
        #expect(report.reason == "healthy — 1 of 1 requests failed in the last 1 minute, too few to judge (10 needed)")
        for _ in 0..<3 { health.observe(exchange(status: 200)) }
        #expect(health.report("pay", live: closed)?.reason.hasPrefix("healthy — 1 of 4 requests failed") == true)
    }

    /// DESIGN.md: "degraded when more than 5 % of its calls needed a retry over the last 5
    /// minutes", even when the retries saved every one of them.
    @Test func moreThanFivePercentOfCallsRetriedOverFiveMinutesDegrades() throws {
        let health = health()
        // 1 retried call of 20 is 5 %: not more than 5 %.
        health.observe(exchange(attempts: 2))
        for _ in 0..<19 { health.observe(exchange()) }
        #expect(health.report("pay", live: closed)?.state == .healthy)
        // 100 s later (out of the 1-minute error window, inside the 5-minute one), one more.
        clock.advance(by: .seconds(100))
        health.observe(exchange(attempts: 3))
        let report = try #require(health.report("pay", live: closed))
        #expect(report.state == .degraded)
        #expect(
            report.reason
                == "degraded — 9.5% of calls needed a retry in the last 5 minutes (2 of 21); still serving",
            "\(report.reason)"
        )
        // No retry in the last minute: the retries stopped, so it is healthy again although
        // the 5 minutes still hold more than 5 % (2 of 31).
        clock.advance(by: .seconds(70))
        for _ in 0..<10 { health.observe(exchange()) }
        #expect(health.report("pay", live: closed)?.windows.last?.requests == 31)
        #expect(health.report("pay", live: closed)?.state == .healthy)
        // A retry again while the share is still over 5 %: degraded again.
        health.observe(exchange(attempts: 2))
        #expect(health.report("pay", live: closed)?.reason.contains("(3 of 32)") == true)
    }

    @Test func tooFewCallsToJudgeTheRetryShareStayHealthy() {
        let health = health()
        for _ in 0..<3 { health.observe(exchange(attempts: 2)) }
        #expect(health.report("pay", live: closed)?.state == .healthy)
    }

    @Test func aFreshAnswerEndsTheStaleState() throws {
        let health = health()
        health.observe(exchange(status: 200, staleAge: .seconds(30)))
        clock.advance(by: .seconds(5))
        #expect(health.report("pay", live: closed)?.state == .stale)
        health.observe(exchange(status: 200))
        clock.advance(by: .seconds(1))
        #expect(health.report("pay", live: closed)?.state == .healthy)
    }

    @Test func belaysOwnRefusalsOfTheCallerSayNothingAboutTheUpstream() throws {
        let health = health()
        var refused = exchange(status: 429, problem: .rateLimited)
        refused.attempts = []
        for _ in 0..<10 { health.observe(refused) }
        health.observe(exchange(status: 200, milliseconds: 40))
        var open = exchange(status: 503, problem: .circuitOpen)
        open.attempts = []
        health.observe(open)
        let window = try #require(health.report("pay", live: closed)?.windows.first)
        // The consumer's 429s are not counted; the breaker's refusal is, as an error.
        #expect(window.requests == 2)
        #expect(window.errorRate == 0.5)
    }

    @Test func anEjectedEndpointDegradesAndIsAlertedBothWays() throws {
        let health = health()
        clock.advance(by: .seconds(120))
        health.endpointChanged("pay", endpoint: 1, name: "b.example:80", ejected: true, failures: 3)
        let ejected = UpstreamLiveState(breaker: .closed, endpoints: [("a.example:80", false), ("b.example:80", true)])
        let report = try #require(health.report("pay", live: ejected))
        #expect(report.state == .degraded)
        #expect(report.reason == "degraded — 1 of 2 endpoints ejected (b.example:80) since 08:02 UTC; still serving")
        #expect(report.since == Self.origin.addingTimeInterval(120))
        #expect(alerts.alerts.first?.kind == .endpointEjected)
        #expect(alerts.alerts.first?.subject == "b.example:80")
        #expect(alerts.alerts.first?.summary.contains("after 3 failures in a row") == true)

        clock.advance(by: .seconds(45))
        health.endpointChanged("pay", endpoint: 1, name: "b.example:80", ejected: false, failures: 3)
        #expect(alerts.kinds == ["endpoint.ejected", "endpoint.readmitted"])
        #expect(alerts.alerts.last?.since == Self.origin.addingTimeInterval(120))
        #expect(alerts.alerts.last?.summary.contains("it was ejected for 45 seconds") == true)
        #expect(health.report("pay", live: closed)?.state == .healthy)
    }

    @Test func aProbeFailingTwiceDegradesAndAlertsThenRecovers() throws {
        let health = health(probe: ("/health", .seconds(30)))
        health.probed("pay", .init(passed: true, detail: "HTTP 200 in 3ms"))
        #expect(
            health.report("pay", live: closed)?.reason
                == "healthy — probe GET /health passes; no requests in the last 1 minute"
        )
        clock.advance(by: .seconds(30))
        health.probed("pay", .init(passed: false, detail: "HTTP 503 from a.example:80"))
        #expect(alerts.alerts.isEmpty)
        #expect(health.report("pay", live: closed)?.state == .healthy)
        clock.advance(by: .seconds(30))
        health.probed("pay", .init(passed: false, detail: "connect failure at a.example:80"))
        health.probeScheduled("pay", at: clock.now.advanced(by: .seconds(30)))
        let failing = try #require(health.report("pay", live: closed))
        #expect(failing.state == .degraded)
        #expect(
            failing.reason
                == "degraded — probe GET /health failing since 08:00 UTC (connect failure at a.example:80); still serving"
        )
        #expect(failing.since == Self.origin.addingTimeInterval(30))
        #expect(failing.probe?.consecutiveFailures == 2)
        #expect(failing.probe?.nextAt == Self.origin.addingTimeInterval(90))
        let alert = try #require(alerts.alerts.first)
        #expect(alert.kind == .probeFailing)
        #expect(alert.since == Self.origin.addingTimeInterval(30))
        #expect(alert.lastError == "connect failure at a.example:80")
        #expect(alert.link == "/v1/upstreams/pay")

        // With the breaker open, the page says when the next probe runs.
        breaker(health, .closed, .open)
        let open = UpstreamLiveState(breaker: .open, remainingBreak: .seconds(20), endpoints: closed.endpoints)
        #expect(health.report("pay", live: open)?.reason == "down — circuit open since 08:01 UTC, next probe in 30s")

        clock.advance(by: .seconds(30))
        health.probed("pay", .init(passed: true, detail: "HTTP 200 in 4ms"))
        #expect(alerts.kinds == ["probe.failing", "breaker.opened", "probe.recovered"])
        #expect(
            alerts.alerts.last?.summary
                == "pay: probe GET /health passes again (HTTP 200 in 4ms) after failing for 1 minute"
        )
    }

    @Test func counterBinsAreOrderedAndCoverTheRange() {
        #expect(HealthCounters.bin(of: .microseconds(50)) == 0)
        #expect(HealthCounters.bin(of: .microseconds(100)) == 0)
        #expect(HealthCounters.bin(of: .microseconds(101)) == 1)
        #expect(HealthCounters.bin(of: .seconds(1_000)) == HealthCounters.latencyBounds.count)
        #expect(zip(HealthCounters.latencyBounds, HealthCounters.latencyBounds.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test func wordsForTimes() {
        #expect(HealthWords.clockTime(Self.origin.addingTimeInterval(3_780)) == "09:03 UTC")
        #expect(HealthWords.span(.seconds(59)) == "59 seconds")
        #expect(HealthWords.span(.seconds(14 * 60 + 59)) == "14 minutes")
        #expect(HealthWords.span(.seconds(3_600)) == "1 hour")
        #expect(HealthWords.wait(.milliseconds(29_100)) == "30s")
        #expect(HealthWords.percent(0.004) == "0.4%")
        #expect(HealthWords.percent(0.25) == "25%")
    }
}
