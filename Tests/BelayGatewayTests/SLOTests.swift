import Belay
import BelayTestKit
import Foundation
import Testing

@testable import BelayGateway
@testable import BelayHTTP

/// Service level objectives per upstream: the error budget, the multi-window burn-rate alerts
/// and the latency spike, on the manual clock (issue 15).
@Suite struct SLOTests {
    static let origin = Date(timeIntervalSince1970: 1_800_000_000)
    let clock = ManualClock()
    let alerts = AlertRecorder()
    let closed = UpstreamLiveState(breaker: .closed)

    func health(_ slo: UpstreamConfig.SLO) -> UpstreamHealth<ManualClock> {
        let alerts = self.alerts
        return UpstreamHealth(
            upstreams: [.init(name: "pay", slo: slo)],
            wall: WallClock(clock: clock, origin: Self.origin),
            alert: { alerts.raise($0) }
        )
    }

    func call(_ health: UpstreamHealth<ManualClock>, status: Int = 200, milliseconds: Int64 = 20) {
        health.observe(
            ProxyExchange(
                requestID: "r",
                upstream: "pay",
                method: "GET",
                path: "/x",
                receivedAt: Self.origin,
                duration: .milliseconds(milliseconds),
                status: status,
                attempts: [
                    AttemptRecord(
                        number: 1,
                        endpoint: UpstreamEndpoint(scheme: "http", host: "a.example", port: 80),
                        status: status,
                        failure: nil,
                        duration: .milliseconds(milliseconds)
                    )
                ]
            )
        )
    }

    /// Runs `steps` of 30 seconds: `calls` calls in each (`failing` of them answered 503, each
    /// taking `milliseconds`), then an evaluation, as the gateway's evaluator does.
    func traffic(
        _ health: UpstreamHealth<ManualClock>,
        steps: Int,
        calls: Int = 30,
        failing: Int = 0,
        milliseconds: Int64 = 20
    ) {
        for _ in 0..<steps {
            for index in 0..<calls {
                call(health, status: index < failing ? 503 : 200, milliseconds: milliseconds)
            }
            clock.advance(by: .seconds(30))
            health.evaluateObjectives()
        }
    }

    func slo(_ health: UpstreamHealth<ManualClock>) throws -> SLOReport {
        try #require(health.report("pay", live: closed)?.slo)
    }

    @Test func theBudgetIsTheShareOfAllowedFailuresStillUnspent() throws {
        let health = health(.init(availability: 0.99, window: .seconds(86_400)))
        for index in 0..<1_000 { call(health, status: index < 5 ? 503 : 200) }
        let report = try slo(health)
        let availability = try #require(report.objectives.first)
        #expect(report.objectives.count == 1)
        #expect(availability.name == "availability")
        #expect(availability.calls == 1_000 && availability.bad == 5)
        #expect(availability.measured == 0.995)
        // 1 % of 1000 calls may fail: 10. Five did: half the budget is left.
        #expect(abs(availability.budgetRemaining - 0.5) < 1e-9)
        #expect(report.countedSince == Self.origin)
        #expect(
            report.summary
                == "availability: 99.5% of calls answered over the last 1 day against 99%; 50% of the error budget left"
        )
        // Another 15 failures overspend it.
        for _ in 0..<15 { call(health, status: 503) }
        let spent = try #require(try slo(health).objectives.first)
        #expect(spent.budgetRemaining < 0)
        #expect(try slo(health).summary.hasSuffix("the error budget is spent"))

        // The window slides: a day and an hour later, those calls no longer count.
        clock.advance(by: .seconds(90_000))
        let later = try #require(try slo(health).objectives.first)
        #expect(later.calls == 0 && later.budgetRemaining == 1 && later.measured == nil)
        #expect(try slo(health).countedSince == Self.origin.addingTimeInterval(3_600))
    }

    @Test func aFastBurnPagesOnceAndIsResolvedWhenItStops() throws {
        let health = health(.init(availability: 0.999))
        // An hour of good traffic, then 10 % of calls fail: 100 times the sustainable rate, which
        // the last hour shows as over 14.4 times after about 9 minutes.
        traffic(health, steps: 120)
        #expect(alerts.alerts.isEmpty)
        traffic(health, steps: 16, failing: 3)
        #expect(!alerts.kinds.contains(Alert.Kind.sloFastBurn.rawValue))
        traffic(health, steps: 4, failing: 3)
        let fast = alerts.alerts.filter { $0.kind == .sloFastBurn }
        #expect(fast.count == 1)
        let page = try #require(fast.first)
        #expect(page.severity == "critical")
        #expect(page.subject == "availability")
        #expect(page.summary.hasPrefix("pay: availability error budget burning "))
        #expect(page.summary.contains("the sustainable rate over the last 1 hour"))
        #expect(page.summary.contains("objective 99.9% over 30 days"))
        #expect(try slo(health).objectives.first?.burning.contains("fast") == true)
        // The same failures burn 6 times over 6 hours and 30 minutes too: the slow burn's ticket.
        #expect(alerts.alerts.filter { $0.kind == .sloSlowBurn }.map(\.severity) == ["warning"])

        // Failures stop: once the last 5 minutes burn below 14.4, the page resolves.
        traffic(health, steps: 12)
        let ended = alerts.alerts.filter { $0.kind == .sloBurnEnded && $0.resolves == .sloFastBurn }
        #expect(ended.count == 1)
        #expect(ended.first?.severity == "info")
        #expect(ended.first?.condition == page.condition)
        #expect(try slo(health).objectives.first?.burning.contains("fast") == false)
    }

    @Test func aShortBlipDoesNotPageThoughItsFiveMinutesBurnFast() throws {
        let health = health(.init(availability: 0.999))
        traffic(health, steps: 120, calls: 100)
        // One minute in which half the calls fail: the last 5 minutes burn about 100 times the
        // sustainable rate, the last hour about 8 times, under 14.4.
        traffic(health, steps: 2, calls: 100, failing: 50)
        let report = try slo(health)
        let burns = try #require(report.objectives.first?.burnRates)
        #expect(try #require(burns.first { $0.window == "5m" }).rate > 14.4)
        #expect(try #require(burns.first { $0.window == "1h" }).rate < 14.4)
        #expect(!alerts.kinds.contains(Alert.Kind.sloFastBurn.rawValue))
    }

    @Test func aHandfulOfCallsIsNotJudged() throws {
        let health = health(.init(availability: 0.999))
        // Three of five calls fail: a burn of 600 times, but five calls are no outage.
        traffic(health, steps: 1, calls: 5, failing: 3)
        traffic(health, steps: 3, calls: 0)
        #expect(alerts.alerts.isEmpty)
        #expect(try slo(health).objectives.first?.burnRates.first?.rate ?? 0 > 100)
    }

    @Test func theLatencyObjectiveCountsSlowAnsweredCallsOnly() throws {
        let health = health(
            .init(latency: .init(quantile: 0.99, threshold: .milliseconds(800)), window: .seconds(3_600))
        )
        // 200 calls: 198 fast, 1 slow, 1 failed slowly (a failure is the availability objective's).
        for _ in 0..<198 { call(health, milliseconds: 100) }
        call(health, milliseconds: 900)
        call(health, status: 504, milliseconds: 2_000)
        let latency = try #require(try slo(health).objectives.first)
        #expect(latency.name == "latency" && latency.label == "p99 ≤ 800ms")
        #expect(latency.bound == .milliseconds(800))
        #expect(latency.calls == 199 && latency.bad == 1)
        #expect(abs(latency.budgetRemaining - (1 - 1 / 1.99)) < 1e-9)
        #expect(
            try slo(health).summary.hasPrefix("latency: 99.497% of answered calls within 800ms over the last 1 hour")
        )
    }

    @Test func slowCallsBurnTheLatencyBudgetAndDegradeTheUpstream() throws {
        let health = health(.init(availability: 0.999, latency: .init(quantile: 0.99, threshold: .milliseconds(800))))
        traffic(health, steps: 120, milliseconds: 100)
        traffic(health, steps: 20, milliseconds: 1_200)
        let fast = alerts.alerts.filter { $0.kind == .sloFastBurn }
        #expect(fast.map(\.subject) == ["latency"])
        #expect(fast.first?.summary.contains("answered calls slower than 800ms") == true)
        let report = try #require(health.report("pay", live: closed))
        #expect(report.state == .degraded)
        #expect(report.reason.contains("p99 latency "))
        #expect(report.reason.contains("over the last 1 minute, above the objective's 800ms"))
    }

    @Test func aLatencySpikeIsJudgedAgainstTheUpstreamsOwnBaseline() throws {
        // No latency objective: the spike alert needs only the baseline.
        let health = health(.init(availability: 0.999))
        traffic(health, steps: 90, milliseconds: 50)
        let baseline = try #require(try slo(health).latencyBaseline)
        #expect(abs(baseline.inSeconds - 0.050) < 0.050 * 0.19)
        #expect(alerts.alerts.isEmpty)
        // Twice the baseline is not a spike at the default factor of 3.
        traffic(health, steps: 12, milliseconds: 100)
        #expect(alerts.alerts.isEmpty)
        traffic(health, steps: 12, milliseconds: 50)
        traffic(health, steps: 2, milliseconds: 400)
        let spike = try #require(alerts.alerts.first { $0.kind == .sloLatencySpike })
        #expect(spike.severity == "warning" && spike.subject == "latency")
        #expect(spike.summary.hasPrefix("pay: p99 latency "))
        #expect(spike.summary.contains("over the last 5 minutes"))
        #expect(spike.summary.hasSuffix("(alerting from 3.0×)"))
        #expect(try slo(health).latencySpikeSince != nil)
        // However long the spike lasts, the baseline stays what it was before it.
        traffic(health, steps: 60, milliseconds: 400)
        #expect(alerts.alerts.count(where: { $0.kind == .sloLatencySpike }) == 1)
        let frozen = try #require(try slo(health).latencyBaseline)
        #expect(frozen < .milliseconds(100))
        // Back to normal: once the last 5 minutes are fast again, it resolves.
        traffic(health, steps: 12, milliseconds: 50)
        let normal = try #require(alerts.alerts.first { $0.kind == .sloLatencyNormal })
        #expect(normal.condition == spike.condition)
        #expect(normal.summary.contains("after spiking for 3"))
    }

    @Test func aReloadKeepsTheCountsUnlessTheWindowOrBoundChanges() throws {
        let health = health(.init(availability: 0.99))
        for index in 0..<100 { call(health, status: index < 1 ? 503 : 200) }
        health.replaceObjectives(["pay": .init(availability: 0.995)])
        var objective = try #require(try slo(health).objectives.first)
        #expect(objective.calls == 100 && objective.target == 0.995)
        clock.advance(by: .seconds(60))
        health.replaceObjectives(["pay": .init(availability: 0.995, window: .seconds(7 * 86_400))])
        objective = try #require(try slo(health).objectives.first)
        #expect(objective.calls == 0)
        #expect(try slo(health).countedSince == Self.origin.addingTimeInterval(60))
        health.replaceObjectives(["pay": nil, "other": .init(availability: 0.9)])
        #expect(health.report("pay", live: closed)?.slo == nil)
    }

    @Test func anObjectiveDroppedByAReloadEndsItsBurn() throws {
        let health = health(.init(availability: 0.999))
        traffic(health, steps: 12, failing: 10)
        #expect(alerts.kinds.contains(Alert.Kind.sloFastBurn.rawValue))
        health.replaceObjectives(["pay": .init(latency: .init(quantile: 0.99, threshold: .seconds(1)))])
        health.evaluateObjectives()
        #expect(alerts.alerts.filter { $0.kind == .sloBurnEnded }.map(\.resolves) == [.sloFastBurn, .sloSlowBurn])

        // Dropping `slo` altogether resolves what burns, too.
        let dropped = self.health(.init(availability: 0.999))
        traffic(dropped, steps: 12, failing: 10)
        let before = alerts.alerts.count
        dropped.replaceObjectives(["pay": nil])
        #expect(alerts.alerts.dropFirst(before).map(\.resolves) == [.sloFastBurn, .sloSlowBurn])
    }

    @Test(.timeLimit(.minutes(1))) func theEvaluatorJudgesEveryThirtySecondsWithoutAnyoneLooking() async throws {
        let health = health(.init(availability: 0.999))
        let evaluator = SLOEvaluator(health: health, clock: clock)
        let task = Task { try await evaluator.run() }
        defer { task.cancel() }
        var next = await clock.nextSleepScheduled()
        #expect(next == .init(offset: .seconds(30)))
        for index in 0..<40 { call(health, status: index < 20 ? 503 : 200) }
        #expect(alerts.alerts.isEmpty)
        clock.advance(to: next)
        next = await clock.nextSleepScheduled()
        #expect(next == .init(offset: .seconds(60)))
        #expect(alerts.kinds.contains(Alert.Kind.sloFastBurn.rawValue))
        // Nobody calls any more: once the failures leave the last 5 minutes, the burn ends.
        for _ in 0..<11 {
            clock.advance(to: next)
            next = await clock.nextSleepScheduled()
        }
        #expect(alerts.alerts.contains { $0.kind == .sloBurnEnded && $0.resolves == .sloFastBurn })
    }

    @Test func percentagesKeepTheDecimalsAnObjectiveNeeds() {
        #expect(SLOWords.percent(0.999) == "99.9%")
        #expect(SLOWords.percent(0.9995) == "99.95%")
        #expect(SLOWords.percent(0.99) == "99%")
        #expect(SLOWords.percent(0.999999) == "99.999%")
        #expect(SLOWords.percent(1) == "100%")
        #expect(UpstreamConfig.SLO.Latency(quantile: 0.999, threshold: .seconds(1)).label == "p99.9")
    }
}

/// `upstreams.<name>.slo`.
@Suite struct SLOConfigTests {
    let loader = ConfigLoader(environment: [:])

    private func config(_ slo: String) -> String {
        """
        upstreams:
          pay:
            endpoints: ["http://127.0.0.1:9"]
            slo: \(slo)
        """
    }

    private func issues(_ slo: String) -> [String] {
        do {
            _ = try loader.load(yaml: config(slo))
            return []
        } catch {
            return error.issues.map(\.description)
        }
    }

    @Test func anSLOSectionLoads() throws {
        let loaded = try loader.load(
            yaml: config("{ availability: 99.9%, latency: { p99: 800ms }, window: 7d, latency_spike: 4 }")
        )
        let slo = try #require(loaded.upstream(named: "pay")?.slo)
        #expect(slo.availability == 0.999)
        #expect(slo.latency == .init(quantile: 0.99, threshold: .milliseconds(800)))
        #expect(slo.window == .seconds(7 * 86_400))
        #expect(slo.latencySpike == 4)
        let defaults = try #require(
            try loader.load(yaml: config("{ availability: 0.995 }")).upstream(named: "pay")?.slo
        )
        #expect(defaults.availability == 0.995 && defaults.latency == nil)
        #expect(defaults.window == .seconds(30 * 86_400) && defaults.latencySpike == 3)
    }

    @Test func badObjectivesAreReportedWithTheirKeyPaths() {
        #expect(
            issues("{ availability: 100% }") == [
                "line 4: upstreams.pay.slo.availability: must be a percentage above 0 and below 100, such as 99.9%, "
                    + "or a ratio such as 0.999 (got '100%'; 100% leaves no error budget)"
            ]
        )
        #expect(issues("{ availability: lots }").first?.hasPrefix("line 4: upstreams.pay.slo.availability: ") == true)
        #expect(issues("{ availability: .nan }").first?.hasPrefix("line 4: upstreams.pay.slo.availability: ") == true)
        #expect(
            issues("{ availability: 99%, window: 90m }") == [
                "line 4: upstreams.pay.slo.window: must be whole hours from 1h to 90d, such as 7d or 30d (got '90m')"
            ]
        )
        #expect(issues("{ availability: 99%, window: 91d }").first?.contains("slo.window: must be whole hours") == true)
        #expect(
            issues("{ latency: { p99: 1s, p95: 2s } }") == [
                "line 4: upstreams.pay.slo.latency: must name one percentile and its bound, such as { p99: 800ms }"
            ]
        )
        #expect(
            issues("{ latency: { q99: 1s } }") == [
                "line 4: upstreams.pay.slo.latency.q99: must be a percentile such as p95, p99 or p99.9 (got 'q99')"
            ]
        )
        #expect(
            issues("{ latency: { p99: soon } }").first?.hasPrefix("line 4: upstreams.pay.slo.latency.p99: ") == true
        )
        #expect(
            issues("{ window: 7d }") == [
                "line 4: upstreams.pay.slo: needs an objective: availability (such as 99.9%) or latency "
                    + "(such as { p99: 800ms }), or both"
            ]
        )
        #expect(
            issues("{ availability: 99%, latency_spike: 1 }") == [
                "line 4: upstreams.pay.slo.latency_spike: must be a number from 1.5 to 100 (got '1')"
            ]
        )
        #expect(issues("{ availibility: 99% }").first?.contains("availability") == true)
    }
}
