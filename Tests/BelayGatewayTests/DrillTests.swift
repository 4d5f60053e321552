import Belay
import BelayAPI
import BelayClient
import BelayTestKit
import BelayTestUpstream
import Foundation
import Logging
import NIOHTTP1
import Synchronization
import Testing

@testable import BelayGateway
@testable import BelayHTTP

@Suite(.timeLimit(.minutes(1))) struct DrillRequestTests {
    func parse(_ json: String) -> Result<DrillRequest, DrillRequest.Problem> {
        DrillRequest.parse(Data(json.utf8))
    }

    @Test func readsEachKindWithItsDefaults() throws {
        let outage = try parse(#"{"kind": "outage", "duration": "60s"}"#).get()
        #expect(outage.kind == .outage && outage.duration == .seconds(60) && outage.ratio == 1)
        let errors = try parse(#"{"kind": "error", "ratio": 0.2, "status": 429, "duration": "5m"}"#).get()
        #expect(errors.kind == .error && errors.ratio == 0.2 && errors.status == 429)
        #expect(try parse(#"{"kind": "error", "duration": "1h"}"#).get().status == 503)
        let slow = try parse(#"{"kind": "latency", "latency": "500ms", "duration": "30s"}"#).get()
        #expect(slow.latency == .milliseconds(500))
        #expect(try parse(#"{"kind": "reset", "ratio": 1, "duration": "1s"}"#).get().kind == .reset)
        let both = try parse(#"{"kind": "error", "ratio": 0.2, "latency": "500ms", "duration": "1m"}"#).get()
        #expect(both.latency == .milliseconds(500) && both.ratio == 0.2)
        let drill = FaultDrill(id: "drl_x", kind: .error, ratio: 0.2, latency: .milliseconds(500))
        #expect(DrillWords.fault(drill) == "HTTP 503 answered to 20% of attempts, 500ms added to every attempt")
    }

    @Test(arguments: [
        (#"[1]"#, "/"),
        (#"not json"#, "/"),
        (#"{"duration": "60s"}"#, "/kind"),
        (#"{"kind": "flood", "duration": "60s"}"#, "/kind"),
        (#"{"kind": "outage"}"#, "/duration"),
        (#"{"kind": "outage", "duration": "forever"}"#, "/duration"),
        (#"{"kind": "outage", "duration": "2h"}"#, "/duration"),
        (#"{"kind": "outage", "duration": "0s"}"#, "/duration"),
        (#"{"kind": "outage", "duration": 60}"#, "/duration"),
        (#"{"kind": "outage", "duration": "60s", "ratio": 0}"#, "/ratio"),
        (#"{"kind": "outage", "duration": "60s", "ratio": 1.5}"#, "/ratio"),
        (#"{"kind": "outage", "duration": "60s", "ratio": true}"#, "/ratio"),
        (#"{"kind": "outage", "duration": "60s", "ratio": "20%"}"#, "/ratio"),
        (#"{"kind": "outage", "duration": "60s", "status": 503}"#, "/status"),
        (#"{"kind": "error", "duration": "60s", "status": 200}"#, "/status"),
        (#"{"kind": "error", "duration": "60s", "status": 503.5}"#, "/status"),
        (#"{"kind": "latency", "duration": "60s"}"#, "/latency"),
        (#"{"kind": "latency", "duration": "60s", "latency": "2m"}"#, "/latency"),
        (#"{"kind": "outage", "duration": "60s", "until": "never"}"#, "/until"),
    ])
    func namesTheFieldAtFault(body: String, field: String) {
        guard case .failure(let problem) = parse(body) else {
            Issue.record("\(body) was accepted")
            return
        }
        #expect(problem.field == field, "\(body): \(problem.detail)")
        #expect(!problem.detail.isEmpty)
    }

    @Test func theLibrarysFaultInjectionDrawsTheDrillsShareOfAttempts() async throws {
        let draws = Mutex<[Double]>([0.1, 0.5, 0.19, 0.9])
        let drills = FaultDrillSwitch(random: { draws.withLock { $0.isEmpty ? 0 : $0.removeFirst() } })
        let events = RecordingEventSink()
        let context = ResilienceContext(eventSink: events)
        #expect(await drills.apply(context)?.drill == nil)  // nothing in force: no draw taken
        try drills.start(FaultDrill(id: "drl_a", kind: .error, ratio: 0.2, status: 502))
        var effects: [FaultDrill.Effect?] = []
        for _ in 0..<4 { effects.append(try await drills.apply(context)?.effect.get()) }
        #expect(effects == [.answer(status: 502), .proceed, .answer(status: 502), .proceed])
        #expect(events.events.map(\.strategy) == ["drill drl_a", "drill drl_a"])
        #expect(events.events.allSatisfy { if case .faultInjected(.outcome) = $0.kind { true } else { false } })

        try drills.start(FaultDrill(id: "drl_b", kind: .reset))
        let reset = await drills.apply(context)
        #expect(throws: FaultDrill.Failure.reset) { try reset?.effect.get() }
        let last = try #require(events.events.last)
        guard case .faultInjected(.error) = last.kind else {
            Issue.record("a reset is not an injected error: \(last.kind)")
            return
        }
        #expect(!drills.stop("drl_a"))
        #expect(drills.stop("drl_b"))
        #expect(drills.drill == nil)
        #expect(throws: ConfigurationError.self) { try drills.start(FaultDrill(id: "drl_c", kind: .error, ratio: 2)) }
    }
}

@Suite(.timeLimit(.minutes(1))) struct DrillServiceTests {
    static let origin = Date(timeIntervalSince1970: 1_800_000_000)
    let clock = ManualClock()
    let alerts = AlertRecorder()
    let pay = FaultDrillSwitch()

    func service() -> DrillService<ManualClock> {
        let pay = self.pay
        let alerts = self.alerts
        let counter = Mutex(0)
        return DrillService(
            switches: { $0 == "pay" ? pay : nil },
            wall: WallClock(clock: clock, origin: Self.origin),
            logger: Logger(label: "test"),
            alert: { alerts.raise($0) },
            newID: {
                let next = counter.withLock { count in
                    count += 1
                    return count
                }
                return "drl_\(next)"
            }
        )
    }

    @Test func aDrillIsInForceUntilItsDurationRunsOutThenEndsByItself() async throws {
        let drills = service()
        let request = DrillRequest(kind: .outage, duration: .seconds(60))
        let started = try drills.start(request, upstream: "pay", by: "ops").get()
        #expect(started.drill.id == "drl_1" && started.startedBy == "ops" && started.active)
        #expect(started.endsAt == Self.origin.addingTimeInterval(60))
        #expect(pay.drill?.id == "drl_1")
        #expect(alerts.kinds == ["drill.started"])
        let announced = try #require(alerts.alerts.first)
        #expect(announced.severity == "info" && announced.upstream == "pay" && announced.subject == "drl_1")
        #expect(announced.summary.contains("a full outage") && announced.summary.contains("rehearsal"))

        // One drill at a time per upstream; an unknown upstream is refused.
        guard case .failure(.running(let running)) = drills.start(request, upstream: "pay", by: "ops") else {
            Issue.record("a second drill started")
            return
        }
        #expect(running.drill.id == "drl_1")
        guard case .failure(.unknownUpstream) = drills.start(request, upstream: "ship", by: "ops") else {
            Issue.record("a drill started on an unknown upstream")
            return
        }

        let task = Task { try await drills.run() }
        defer { task.cancel() }
        for _ in 0..<60 {
            let next = await clock.nextSleepScheduled()
            #expect(drills.current("pay") != nil)
            clock.advance(to: next)
        }
        _ = await clock.nextSleepScheduled()
        #expect(drills.current("pay") == nil)
        #expect(pay.drill == nil)
        let ended = try #require(drills.drills("pay").first)
        #expect(ended.ending == .expired && ended.endedAt == Self.origin.addingTimeInterval(60) && !ended.active)
        #expect(alerts.kinds == ["drill.started", "drill.ended"])
        #expect(alerts.alerts.last?.resolves == .drillStarted)
        #expect(alerts.alerts.last?.summary.contains("its duration ran out after 1 min") == true)
    }

    @Test func deleteEndsItEarlyAndTheHistoryKeepsTheLastTwenty() throws {
        let drills = service()
        #expect(drills.stop(upstream: "pay", by: "ops") == nil)
        for round in 1...22 {
            _ = try drills.start(
                DrillRequest(kind: .error, ratio: 0.5, status: 502, duration: .seconds(600)),
                upstream: "pay",
                by: "ops"
            ).get()
            clock.advance(by: .seconds(5))
            let ended = try #require(drills.stop(upstream: "pay", by: "lead"))
            #expect(ended.drill.id == "drl_\(round)")
            #expect(ended.ending == .deleted && ended.endedBy == "lead")
            #expect(pay.drill == nil)
        }
        let history = drills.drills("pay")
        #expect(history.count == 20)
        #expect(history.first?.drill.id == "drl_22" && history.last?.drill.id == "drl_3")
        #expect(alerts.alerts.last?.summary.contains("ended early by lead after 5 s") == true)
        #expect(DrillWords.fault(history[0].drill) == "HTTP 502 answered to 50% of attempts")
    }

    @Test func theGatewaysStopEndsWhateverIsInForce() async throws {
        let drills = service()
        _ = try drills.start(DrillRequest(kind: .reset, duration: .seconds(600)), upstream: "pay", by: "ops").get()
        let task = Task { try await drills.run() }
        _ = await clock.nextSleepScheduled()
        task.cancel()
        try await task.value
        #expect(pay.drill == nil)
    }
}

@Suite(.timeLimit(.minutes(1))) struct DrillGatewayTests {
    static let policy = """
        retry: { max_attempts: 2, base: 1ms, cap: 2ms }
        circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 4, window: 10s, break: 30s }
        """

    func json(_ answer: GatewayHarness.Answer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any], "\(answer.body)")
    }

    @Test func anOutageDrillNeverReachesTheUpstreamOpensTheBreakerAndEndsOnDelete() async throws {
        try await GatewayHarness.run(config: .pay(policy: Self.policy)) { gateway in
            let started = try await gateway.send(
                .POST,
                "/v1/upstreams/pay/faults",
                headers: [("Content-Type", "application/json")],
                body: #"{"kind": "outage", "duration": "10m"}"#
            )
            #expect(started.status == 201, "\(started.body)")
            #expect(started.header("Location") == "/v1/upstreams/pay/faults")
            let drill = try json(started)
            let id = try #require(drill["id"] as? String)
            #expect(id.hasPrefix("drl_") && drill["kind"] as? String == "outage" && drill["active"] as? Bool == true)
            #expect(drill["started_by"] as? String == "anonymous" && drill["duration_seconds"] as? Double == 600)

            var answers: [GatewayHarness.Answer] = []
            for _ in 0..<6 { answers.append(try await gateway.send(.GET, "/proxy/pay/v1/balance")) }
            #expect(answers.allSatisfy { $0.status >= 500 }, "\(answers.map(\.status))")
            #expect(answers.last?.code == "circuit-open", "\(answers.last?.body ?? "")")
            // The drill is injected in place of the connection: the upstream saw nothing.
            #expect(gateway.upstreams[0].requests.isEmpty)

            // The first call's trail names the drill in its decisions.
            let firstID = try #require(answers[0].header("Belay-Request-Id"))
            let record = try json(try await gateway.send(.GET, "/v1/requests/\(firstID)"))
            let decisions = (record["decisions"] as? [[String: Any]] ?? []).compactMap { $0["description"] as? String }
            #expect(
                decisions.contains("drill \(id) injected a connection failure (a rehearsal, not the upstream)"),
                "\(decisions)"
            )

            // The status shows it as a drill, in JSON and on the page.
            let status = try json(try await gateway.send(.GET, "/v1/status"))
            let pay = try #require((status["upstreams"] as? [[String: Any]])?.first)
            #expect((pay["drill"] as? [String: Any])?["id"] as? String == id)
            let page = try await gateway.send(.GET, "/").body
            #expect(page.contains("<p class=\"drill\">Drill \(id) in progress: a full outage"), "\(page)")

            // One at a time.
            let again = try await gateway.send(
                .POST,
                "/v1/upstreams/pay/faults",
                body: #"{"kind": "error", "duration": "1m"}"#
            )
            #expect(again.status == 409 && again.code == "conflict", "\(again.body)")
            #expect(again.problem?["detail"] as? String ?? "" != "")

            let ended = try await gateway.send(.DELETE, "/v1/upstreams/pay/faults")
            #expect(ended.status == 200, "\(ended.body)")
            let endedDrill = try json(ended)
            #expect(endedDrill["ending"] as? String == "deleted" && endedDrill["active"] as? Bool == false)
            let listed = try json(try await gateway.send(.GET, "/v1/upstreams/pay/faults"))
            #expect(listed["active"] is NSNull)
            #expect((listed["drills"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            let none = try await gateway.send(.DELETE, "/v1/upstreams/pay/faults")
            #expect(none.status == 404 && none.code == "not-found")
            let afterStatus = try json(try await gateway.send(.GET, "/v1/status"))
            #expect((afterStatus["upstreams"] as? [[String: Any]])?.first?["drill"] is NSNull)
        }
    }

    @Test func anErrorDrillAnswersItsStatusAndIsRetriedLikeTheUpstreamsOwn() async throws {
        try await GatewayHarness.run(config: .pay(policy: "retry: { max_attempts: 3, base: 1ms, cap: 2ms }")) {
            gateway in
            let started = try await gateway.send(
                .POST,
                "/v1/upstreams/pay/faults",
                body: #"{"kind": "error", "status": 502, "duration": "1m"}"#
            )
            #expect(started.status == 201, "\(started.body)")
            let answer = try await gateway.send(.GET, "/proxy/pay/v1/balance")
            #expect(answer.status == 502, "\(answer.body)")
            #expect(gateway.upstreams[0].requests.isEmpty)
            let id = try #require(answer.header("Belay-Request-Id"))
            let record = try json(try await gateway.send(.GET, "/v1/requests/\(id)"))
            let attempts = try #require(record["attempts"] as? [[String: Any]])
            #expect(attempts.map { $0["status"] as? Int } == [502, 502, 502])
            _ = try await gateway.send(.DELETE, "/v1/upstreams/pay/faults")
            let healthy = try await gateway.send(.GET, "/proxy/pay/v1/balance")
            #expect(healthy.status == 200)
            #expect(gateway.upstreams[0].requests.count == 1)
        }
    }

    @Test func badRequestsNameTheFieldAndUnknownUpstreamsAre404() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let bad = try await gateway.send(
                .POST,
                "/v1/upstreams/pay/faults",
                body: #"{"kind": "outage", "duration": "3h"}"#
            )
            #expect(bad.status == 400 && bad.code == "invalid-request", "\(bad.body)")
            #expect(bad.problem?["field"] as? String == "/duration")
            #expect(bad.header("Content-Type")?.hasPrefix("application/problem+json") == true)
            let unknown = try await gateway.send(
                .POST,
                "/v1/upstreams/nobody/faults",
                body: #"{"kind": "outage", "duration": "1m"}"#
            )
            #expect(unknown.status == 404 && unknown.code == "not-found")
            #expect(try await gateway.send(.GET, "/v1/upstreams/nobody/faults").status == 404)
            let huge = try await gateway.send(
                .POST,
                "/v1/upstreams/pay/faults",
                body: String(repeating: " ", count: 20_000) + "{}"
            )
            #expect(huge.status == 413, "\(huge.body)")
            #expect(try await gateway.send(.GET, "/proxy/pay/v1/balance").status == 200)
        }
    }

    @Test func startingAndEndingADrillNeedsTheAdminScope() async throws {
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              shop: { key_sha256: "\(sha256Hex("shop-key"))", scopes: ["proxy:pay", "upstreams:read"] }
              ops: { key_sha256: "\(sha256Hex("ops-key"))", scopes: ["admin"] }
            upstreams:
              pay: { endpoints: ["\(urls[0])"] }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            let body = #"{"kind": "latency", "latency": "5ms", "duration": "1m"}"#
            let refused = try await gateway.send(
                .POST,
                "/v1/upstreams/pay/faults",
                headers: [("Authorization", "Bearer shop-key")],
                body: body
            )
            #expect(refused.status == 403, "\(refused.body)")
            #expect(try await gateway.send(.POST, "/v1/upstreams/pay/faults", body: body).status == 401)
            let started = try await gateway.send(
                .POST,
                "/v1/upstreams/pay/faults",
                headers: [("Authorization", "Bearer ops-key")],
                body: body
            )
            #expect(started.status == 201, "\(started.body)")
            #expect(try json(started)["started_by"] as? String == "ops")
            let read = try await gateway.send(
                .GET,
                "/v1/upstreams/pay/faults",
                headers: [("Authorization", "Bearer shop-key")]
            )
            #expect(read.status == 200)
            let active = try json(read)["active"] as? [String: Any]
            #expect(active?["latency_ms"] as? Double == 5)
            let stop = try await gateway.send(
                .DELETE,
                "/v1/upstreams/pay/faults",
                headers: [("Authorization", "Bearer shop-key")]
            )
            #expect(stop.status == 403)
        }
    }
}

@Suite(.timeLimit(.minutes(1))) struct DrillReportTests {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    func at(_ seconds: Double) -> Date { Self.start.addingTimeInterval(seconds) }

    static let outage = DrillView(
        id: "drl_1",
        upstream: "pay",
        kind: "outage",
        ratio: 1,
        summary: "a full outage (every attempt fails to connect)",
        durationSeconds: 60,
        startedAt: start,
        startedBy: "ops",
        endsAt: start.addingTimeInterval(60),
        active: true
    )

    func drill() -> DrillReport { DrillReport(drill: Self.outage) }

    /// The upstream as `GET /v1/upstreams/pay` shows it, with what the report reads.
    func upstream(
        _ state: String,
        since: Double = 0,
        reason: String = "",
        breaker: String,
        drill: DrillView?,
        history: [(Double, String, String)] = []
    ) -> UpstreamHealthView {
        var view = UpstreamHealthView(
            name: "pay",
            breaker: breaker,
            endpoints: [],
            retryBudget: .init(requests: 0, retries: 0),
            quotaPacing: false,
            state: state,
            reason: reason,
            since: at(since),
            windows: [:],
            breakerHistory: history.map { .init(at: at($0.0), from: $0.1, to: $0.2) },
            criticality: "critical",
            degradation: .init(level: "full", summary: "")
        )
        view.drill = drill
        return view
    }

    func alert(
        _ kind: String,
        _ severity: String,
        _ upstream: String,
        _ seconds: Double,
        _ summary: String
    )
        -> StatusView.Alert
    {
        .init(
            kind: kind,
            severity: severity,
            summary: summary,
            upstream: upstream,
            since: nil,
            at: at(seconds),
            lastAt: at(seconds),
            repeats: 1,
            link: nil
        )
    }

    func request(_ outcome: String, _ seconds: Double) -> AuditRequestView {
        AuditRequestView(
            id: "r-\(seconds)",
            upstream: "pay",
            method: "GET",
            path: "/",
            receivedAt: at(seconds),
            durationMs: 1,
            status: 200,
            outcome: outcome,
            attempts: [],
            decisions: []
        )
    }

    @Test func readsTheTimelineDetectionBreakerAndRecoveryFromWhatTheGatewayShows() throws {
        var report = drill()
        let active = Self.outage
        #expect(
            report.observe(upstream: upstream("healthy", breaker: "closed", drill: active), at: Self.start).isEmpty
        )
        // An alert before the state changed is the detection.
        let alerts = [
            alert("upstream.down", "critical", "pay", 3.5, "pay is down"),
            alert("drill.started", "info", "pay", 0, "drill"),
            alert("upstream.down", "critical", "ship", 2, "other"),
            alert("upstream.down", "critical", "pay", -30, "before"),
        ]
        #expect(report.observe(alerts: alerts).map(\.text) == ["alert upstream.down (critical): pay is down"])
        #expect(report.observe(alerts: alerts).isEmpty)  // seen once
        let down = upstream(
            "down",
            since: 4,
            reason: "down — circuit open",
            breaker: "open",
            drill: active,
            history: [(4, "closed", "open"), (-100, "open", "closed")]
        )
        let seen = report.observe(upstream: down, at: Self.start.addingTimeInterval(5))
        #expect(seen.map(\.text) == ["breaker closed → open", "state down: down — circuit open"])
        #expect(report.detectedAt == Self.start.addingTimeInterval(3.5))
        #expect(report.breakerOpenedAt == Self.start.addingTimeInterval(4))
        #expect(report.observe(upstream: down, at: Self.start.addingTimeInterval(6)).isEmpty)

        // The drill ends (no drill in force any more); not yet recovered.
        var ended = down
        ended.drill = nil
        ended.breaker = "half_open"
        #expect(report.observe(upstream: ended, at: Self.start.addingTimeInterval(61)).map(\.text) == ["drill ended"])
        #expect(report.endedAt == Self.start.addingTimeInterval(60) && !report.settled)
        let healthy = upstream(
            "healthy",
            since: 70,
            breaker: "closed",
            drill: nil,
            history: [(4, "closed", "open"), (69, "half_open", "closed")]
        )
        report.observe(upstream: healthy, at: Self.start.addingTimeInterval(71))
        #expect(report.recoveredAt == Self.start.addingTimeInterval(71) && report.settled)

        report.count(requests: [
            request("success", 75), request("circuit-open", 30), request("circuit-open", 20),
            request("upstream-unreachable", 1), request("stale", 2),
        ])
        #expect(report.outcomes == ["success": 1, "circuit-open": 2, "upstream-unreachable": 1, "stale": 1])
        #expect(report.firstFailureAt == Self.start.addingTimeInterval(1))
        let text = report.render()
        #expect(text.contains("Drill drl_1 on pay: a full outage"))
        #expect(text.contains("5 calls:"))
        #expect(text.contains("     2  refused by Belay: circuit-open"))
        #expect(text.contains("     1  served stale from the cache"))
        #expect(text.contains("first failed answer +1.0 s"))
        #expect(text.contains("breaker: opened +4.0 s"))
        #expect(text.contains("alerts: 1 raised, the first +3.5 s"))
        #expect(text.contains("time to detect: 3.5 s"))
        #expect(text.contains("time to recover: 11.0 s after the drill ended"))
        // The timeline is in time order.
        let timeline = text.components(separatedBy: "Timeline\n")[1].split(separator: "\n").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        #expect(timeline.first?.hasPrefix("+0.0 s  drill drl_1 started") == true, "\(timeline)")
        #expect(timeline.last?.hasPrefix("+71.0 s  recovered") == true, "\(timeline)")
    }

    @Test func saysWhatItCouldNotSee() throws {
        var report = drill()
        report.outcomesIncomplete()
        let text = report.render()
        #expect(text.contains("not counted: the audit trail could not be read"))
        #expect(text.contains("breaker: stayed closed"))
        #expect(text.contains("alerts: none raised"))
        #expect(text.contains("time to detect: not detected"))
        #expect(text.contains("time to recover: not recovered yet"))
    }

    @Test func theCommandLinesOptionsBecomeTheDrillsBody() throws {
        typealias Run = DrillRun<ContinuousClock>
        func body(
            outage: String? = nil,
            errors: String? = nil,
            resets: String? = nil,
            latency: String? = nil,
            status: Int? = nil,
            duration: String? = nil
        ) -> String {
            switch Run.request(
                outage: outage,
                errors: errors,
                resets: resets,
                latency: latency,
                status: status,
                duration: duration
            ) {
            case .success(let data): String(decoding: data, as: UTF8.self)
            case .failure(let failure): "error: \(failure)"
            }
        }
        #expect(body(outage: "60s") == #"{"duration":"60s","kind":"outage"}"#)
        #expect(
            body(errors: "20%", latency: "500ms", duration: "5m")
                == #"{"duration":"5m","kind":"error","latency":"500ms","ratio":0.2}"#
        )
        #expect(body(errors: "0.1", status: 429) == #"{"duration":"60s","kind":"error","ratio":0.1,"status":429}"#)
        #expect(body(resets: "5%") == #"{"duration":"60s","kind":"reset","ratio":0.05}"#)
        #expect(body(latency: "2s", duration: "30s") == #"{"duration":"30s","kind":"latency","latency":"2s"}"#)
        #expect(body().hasPrefix("error: say what to inject"))
        #expect(body(outage: "60s", errors: "5%").hasPrefix("error: --outage and --errors cannot be combined"))
        #expect(body(outage: "60s", duration: "2m").hasPrefix("error: --outage takes"))
        #expect(body(errors: "120%").hasPrefix("error: --errors must be a share"))
        #expect(body(errors: "lots").hasPrefix("error: --errors must be a share"))
        #expect(body(resets: "0%").hasPrefix("error: --resets must be a share"))
        #expect(body(latency: "1s", status: 503).hasPrefix("error: --status applies to --errors only"))
    }
}

@Suite(.timeLimit(.minutes(1))) struct DrillRunTests {
    @Test func aDrillRunAgainstAGatewayReportsTheBreakerTheDetectionAndWhatCallersSaw() async throws {
        let policy = """
            retry: { max_attempts: 1 }
            circuit_breaker: { failure_ratio: 0.5, minimum_throughput: 4, window: 10s, break: 30s }
            """
        try await GatewayHarness.run(config: .pay(policy: policy)) { gateway in
            // Callers keep calling until Belay refuses one with its breaker open, then end the
            // drill early: the test does not depend on how many calls a busy machine manages
            // in a fixed outage. The breaker stays open (30 s) for the run to see it.
            let traffic = Task {
                while !Task.isCancelled {
                    let answer = try? await gateway.send(.GET, "/proxy/pay/v1/balance")
                    if answer?.code == "circuit-open" {
                        _ = try? await gateway.send(.DELETE, "/v1/upstreams/pay/faults")
                        return
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            defer { traffic.cancel() }
            let lines = Mutex<[String]>([])
            let run = DrillRun(
                upstream: "pay",
                request: try DrillRun<ContinuousClock>.request(
                    outage: "40s",
                    errors: nil,
                    resets: nil,
                    latency: nil,
                    status: nil,
                    duration: nil
                ).get(),
                recovery: .milliseconds(500),
                every: .milliseconds(100),
                client: ManagementClient(baseURL: "http://127.0.0.1:\(gateway.port)", apiKey: nil),
                clock: ContinuousClock(),
                progress: { line in lines.withLock { $0.append(line) } }
            )
            let report = try await run.run()
            traffic.cancel()
            #expect(report.upstream == "pay" && report.drillID.hasPrefix("drl_"))
            #expect(report.endedAt != nil)
            let opened = try #require(report.breakerOpenedAt, "\(report.render())")
            let detected = try #require(report.detectedAt)
            #expect(detected <= opened.addingTimeInterval(1))
            #expect((report.outcomes["circuit-open"] ?? 0) > 0, "\(report.outcomes)")
            #expect((report.outcomes["upstream-unreachable"] ?? 0) > 0, "\(report.outcomes)")
            let text = report.render()
            #expect(text.contains("breaker: opened +"), "\(text)")
            #expect(text.contains("refused by Belay: circuit-open"), "\(text)")
            let progress = lines.withLock { $0 }
            #expect(progress.first?.hasPrefix("drill \(report.drillID) started on pay: a full outage") == true)
            #expect(progress.contains { $0.hasSuffix("breaker closed → open") }, "\(progress)")
            #expect(progress.contains { $0.hasSuffix("drill ended") }, "\(progress)")
        }
    }

    @Test func aRefusedDrillSaysWhy() async throws {
        try await GatewayHarness.run(config: .pay()) { gateway in
            let run = DrillRun(
                upstream: "nobody",
                request: Data(#"{"kind": "outage", "duration": "1s"}"#.utf8),
                client: ManagementClient(baseURL: "http://127.0.0.1:\(gateway.port)", apiKey: nil),
                clock: ContinuousClock()
            )
            await #expect(throws: DrillRun<ContinuousClock>.Failure.self) { try await run.run() }
            do {
                _ = try await run.run()
            } catch {
                #expect("\(error)".hasPrefix("not-found: no upstream named 'nobody'"))
            }
        }
    }
}
