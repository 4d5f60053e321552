import Belay
import BelayTestKit
import BelayTestUpstream
import Foundation
import Logging
import NIOHTTP1
import Synchronization
import Testing

@testable import BelayGateway

@Suite(.timeLimit(.minutes(1))) struct ProberTests {
    @Test func probesAtStartThenEveryIntervalAndAlertsOnFailingAndRecovery() async throws {
        let clock = ManualClock()
        let alerts = AlertRecorder()
        let origin = Date(timeIntervalSince1970: 1_800_000_000)
        let health = UpstreamHealth(
            upstreams: [.init(name: "pay", probe: ("/health", .seconds(30)))],
            wall: WallClock(clock: clock, origin: origin),
            alert: { alerts.raise($0) }
        )
        let script = Mutex<[Bool]>([true, false, false, true])
        let probed = Mutex<[String]>([])
        let prober = Prober(
            targets: [.init(upstream: "pay", path: "/health", every: .seconds(30))],
            clock: clock,
            health: health,
            logger: .init(label: "test")
        ) { target in
            probed.withLock { $0.append("\(target.upstream) \(target.path)") }
            let passed = script.withLock { $0.isEmpty ? true : $0.removeFirst() }
            return .init(passed: passed, detail: passed ? "HTTP 200 in 1ms" : "HTTP 503 from a.example:80")
        }
        let live = UpstreamLiveState(breaker: .closed, endpoints: [("a.example:80", false)])
        let task = Task { try await prober.run() }
        defer { task.cancel() }

        // The first probe runs at once; the next is due 30 s later.
        var next = await clock.nextSleepScheduled()
        #expect(next == .init(offset: .seconds(30)))
        #expect(probed.withLock { $0 } == ["pay /health"])
        #expect(health.report("pay", live: live)?.probe?.passing == true)
        #expect(health.report("pay", live: live)?.probe?.nextAt == origin.addingTimeInterval(30))

        clock.advance(to: next)
        next = await clock.nextSleepScheduled()
        #expect(next == .init(offset: .seconds(60)))
        #expect(alerts.alerts.isEmpty)  // one failure is not yet "failing"

        clock.advance(to: next)
        next = await clock.nextSleepScheduled()
        #expect(alerts.kinds == ["probe.failing"])
        #expect(alerts.alerts.first?.since == origin.addingTimeInterval(30))
        let failing = try #require(health.report("pay", live: live))
        #expect(failing.state == .degraded)
        #expect(failing.probe?.consecutiveFailures == 2)

        clock.advance(to: next)
        next = await clock.nextSleepScheduled()
        #expect(next == .init(offset: .seconds(120)))
        #expect(alerts.kinds == ["probe.failing", "probe.recovered"])
        #expect(health.report("pay", live: live)?.state == .healthy)
        #expect(probed.withLock { $0.count } == 4)
    }

    @Test func aGatewayProbesItsUpstreamsAndShowsTheResult() async throws {
        try await GatewayHarness.run(
            config: .pay(policy: "retry: { max_attempts: 1 }\nprobe: { path: \"/health?deep=1\", every: 100ms }")
        ) { gateway in
            gateway.upstreams[0].setBehavior(.always(503), for: "/health")
            let failing = try await poll(gateway, "/v1/upstreams/pay") {
                ($0["probe"] as? [String: Any])?["consecutive_failures"] as? Int ?? 0 >= 2
            }
            #expect(failing["state"] as? String == "degraded")
            #expect((failing["reason"] as? String)?.contains("probe GET /health?deep=1 failing since") == true)
            let probe = try #require(failing["probe"] as? [String: Any])
            #expect((probe["last_result"] as? String)?.hasPrefix("HTTP 503 from 127.0.0.1:") == true)
            #expect(gateway.upstreams[0].requests.contains { $0.path == "/health?deep=1" })

            gateway.upstreams[0].setBehavior(.always(200), for: "/health")
            let passing = try await poll(gateway, "/v1/upstreams/pay") {
                ($0["probe"] as? [String: Any])?["passing"] as? Bool == true
            }
            #expect(passing["state"] as? String == "healthy")
            let status = try await poll(gateway, "/v1/status") { status in
                (status["alerts"] as? [[String: Any]])?.contains { $0["kind"] as? String == "probe.recovered" } == true
            }
            // Probes every 100 ms may also eject the endpoint (3 failures) before the 200s come:
            // those alerts depend on timing, the probe's do not.
            let kinds = (status["alerts"] as? [[String: Any]])?.compactMap { $0["kind"] as? String }
            #expect(kinds?.filter { $0.hasPrefix("probe.") } == ["probe.recovered", "probe.failing"])
        }
    }
}

/// GETs `path` from the gateway until `done` holds for its JSON (real time: at most 10 s).
func poll(
    _ gateway: GatewayHarness,
    _ path: String,
    until done: ([String: Any]) -> Bool
) async throws -> [String: Any] {
    let start = ContinuousClock.now
    while true {
        let answer = try await gateway.send(.GET, path)
        let object = (try? JSONSerialization.jsonObject(with: Data(answer.body.utf8))) as? [String: Any] ?? [:]
        if done(object) { return object }
        if start.duration(to: .now) > .seconds(10) {
            Issue.record("\(path) never reached the expected state; last: \(answer.body)")
            return object
        }
        try await Task.sleep(for: .milliseconds(50))
    }
}
