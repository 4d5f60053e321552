import Belay
import BelayAPI
import BelayClient
import BelayStore
import BelayTestKit
import Foundation
import Logging
import NIOHTTP1
import Synchronization
import Testing

@testable import BelayGateway
@testable import BelayHTTP

/// What the fake health says of each upstream.
final class FakeHealth: Sendable {
    private let states = Mutex<[String: (HealthState, String, Date)]>([:])

    func set(_ upstream: String, _ state: HealthState, _ reason: String = "", since: Date) {
        states.withLock { $0[upstream] = (state, reason, since) }
    }

    func report(_ upstream: String) -> UpstreamHealthReport? {
        guard let (state, reason, since) = states.withLock({ $0[upstream] }) else { return nil }
        return UpstreamHealthReport(
            name: upstream,
            state: state,
            reason: reason,
            since: since,
            windows: [],
            breakerHistory: []
        )
    }
}

/// The incident tracker on the manual clock (issue 15).
@Suite(.timeLimit(.minutes(1))) struct IncidentTrackerTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let endpoint = UpstreamEndpoint(scheme: "https", host: "api.pay.example", port: 443)

    /// A tracker over a fresh SQLite store, its clock, and the fake health of `pay`.
    func withTracker(
        drill: Bool = false,
        _ body: (IncidentTracker<ManualClock>, ManualClock, FakeHealth, SQLiteStore) async throws -> Void
    ) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-incidents-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
        let clock = ManualClock()
        let health = FakeHealth()
        health.set("pay", .healthy, "answering normally", since: Self.t0)
        let counter = Mutex(0)
        let tracker = IncidentTracker(
            store: store,
            wall: WallClock(clock: clock, origin: Self.t0),
            logger: Logger(label: "test"),
            newID: {
                let next = counter.withLock { count in
                    count += 1
                    return count
                }
                return "inc_\(next)"
            }
        )
        tracker.attach(upstreams: { ["pay"] }, health: { health.report($0) }, drill: { _ in drill })
        try await body(tracker, clock, health, store)
    }

    func at(_ seconds: Double) -> Date { Self.t0.addingTimeInterval(seconds) }

    func exchange(at seconds: Double, status: Int, stale: Bool = false, retried: Bool = false) -> ProxyExchange {
        var attempts = [
            AttemptRecord(
                number: 1,
                endpoint: endpoint,
                status: status >= 500 || retried ? 503 : status,
                failure: nil,
                duration: .milliseconds(5)
            )
        ]
        if retried {
            attempts.append(AttemptRecord(number: 2, endpoint: endpoint, status: status, failure: nil, duration: .zero))
        }
        return ProxyExchange(
            requestID: "req",
            upstream: "pay",
            method: "POST",
            path: "/v1/charges",
            receivedAt: at(seconds),
            duration: .milliseconds(10),
            status: stale ? 200 : status,
            staleAge: stale ? .seconds(14) : nil,
            attempts: stale ? [] : attempts
        )
    }

    func alert(_ kind: Alert.Kind, at seconds: Double, summary: String, since: Double? = nil) -> Alert {
        Alert(
            kind: kind,
            severity: kind == .breakerOpened ? "critical" : "info",
            summary: summary,
            upstream: "pay",
            since: since.map(at),
            at: at(seconds)
        )
    }

    @Test func anOutageOpensAtDetectionDatedFromTheFirstFailureThenRecoversAndCloses() async throws {
        try await withTracker { tracker, clock, health, store in
            // Failures from +1 s; the breaker opens at +3 s.
            for second in [1.0, 1.5, 2.0, 3.0] { tracker.observe(exchange(at: second, status: 503)) }
            clock.advance(by: .seconds(3))
            health.set("pay", .down, "circuit open because 4 of 4 calls failed", since: at(3))
            tracker.heard(alert(.breakerOpened, at: 3, summary: "pay: circuit opened at 08:00 UTC", since: 3))
            await tracker.evaluate()
            var incident = try #require(try await store.openIncident(upstream: "pay"))
            #expect(incident.id == "inc_1" && incident.status == .open && !incident.drill)
            #expect(incident.openedAt == at(1) && incident.detectedAt == at(3))
            #expect(incident.timeToDetect == 2)
            #expect(incident.cause == "circuit open because 4 of 4 calls failed")
            #expect(incident.timeline.map(\.event) == ["first_failure", "breaker.opened", "detected"])
            #expect(incident.timeline.first?.detail == "POST answered 503 (server_error)")
            #expect(incident.impact.failed == 4)

            // Refused and stale answers while it is open; an unrelated 2xx counts as nothing.
            tracker.observe(exchange(at: 4, status: 503))
            tracker.observe(exchange(at: 5, status: 200, stale: true))
            tracker.observe(exchange(at: 6, status: 200, stale: true))
            tracker.observe(exchange(at: 7, status: 200))
            clock.advance(by: .seconds(7))
            await tracker.evaluate()
            incident = try #require(try await store.incident(id: "inc_1"))
            #expect(incident.impact == IncidentImpact(failed: 5, stale: 2))
            #expect(incident.timeline.map(\.event).contains("first_stale"))

            // Healthy at +40 s: recovered, still open.
            clock.advance(by: .seconds(30))
            health.set("pay", .healthy, "answering normally", since: at(40))
            tracker.heard(alert(.breakerClosed, at: 40, summary: "pay: circuit closed"))
            await tracker.evaluate()
            incident = try #require(try await store.incident(id: "inc_1"))
            #expect(incident.status == .open && incident.recoveredAt == at(40))
            #expect(incident.timeToRecover == 39)

            // Healthy for 5 minutes: closed.
            clock.advance(by: .seconds(299))
            await tracker.evaluate()
            #expect(try await store.incident(id: "inc_1")?.status == .open)
            clock.advance(by: .seconds(1))
            await tracker.evaluate()
            incident = try #require(try await store.incident(id: "inc_1"))
            #expect(incident.status == .closed && incident.closedAt == at(340))
            #expect(incident.timeline.suffix(3).map(\.event) == ["breaker.closed", "recovered", "closed"])
            #expect(try await store.openIncident(upstream: "pay") == nil)

            // Nothing more happens while it stays healthy.
            clock.advance(by: .seconds(60))
            await tracker.evaluate()
            #expect(try await store.incidents(IncidentQuery()).incidents.count == 1)
        }
    }

    @Test func aRelapseBeforeTheCloseStaysInTheSameIncident() async throws {
        try await withTracker { tracker, clock, health, store in
            health.set("pay", .degraded, "8% of calls needed a retry", since: at(0))
            await tracker.evaluate()
            clock.advance(by: .seconds(10))
            health.set("pay", .healthy, since: at(10))
            await tracker.evaluate()
            #expect(try await store.incident(id: "inc_1")?.recoveredAt == at(10))
            clock.advance(by: .seconds(60))
            health.set("pay", .down, "circuit open", since: at(70))
            await tracker.evaluate()
            var incident = try #require(try await store.incident(id: "inc_1"))
            #expect(incident.status == .open && incident.recoveredAt == nil)
            #expect(incident.timeline.map(\.event) == ["detected", "recovered", "relapsed"])
            // Worse while still open: the state change is on the timeline.
            clock.advance(by: .seconds(5))
            health.set("pay", .stale, "serving cached answers", since: at(75))
            await tracker.evaluate()
            incident = try #require(try await store.incident(id: "inc_1"))
            #expect(incident.timeline.last?.event == "state.stale")
            #expect(incident.timeline.last?.detail == "down → stale: serving cached answers")
            clock.advance(by: .seconds(5))
            health.set("pay", .healthy, since: at(80))
            await tracker.evaluate()
            clock.advance(by: .seconds(300))
            await tracker.evaluate()
            incident = try #require(try await store.incident(id: "inc_1"))
            #expect(incident.status == .closed && incident.recoveredAt == at(80))
            #expect(try await store.incidents(IncidentQuery()).incidents.count == 1)
        }
    }

    @Test func aTrickleOfFailuresOpensNothingAndDoesNotDateALaterIncidentBack() async throws {
        try await withTracker { tracker, clock, health, store in
            // One failure every 30 s for 10 minutes, always healthy.
            for step in 0..<20 {
                tracker.observe(exchange(at: Double(step) * 30, status: 503))
                clock.advance(to: clock.now.advanced(by: .seconds(30)))
                await tracker.evaluate()
            }
            #expect(try await store.incidents(IncidentQuery()).incidents.isEmpty)
            // Then it turns down: the incident begins at the last minute's failures, not 10 minutes ago.
            tracker.observe(exchange(at: 600, status: 503))
            health.set("pay", .down, "circuit open", since: at(601))
            clock.advance(by: .seconds(1))
            await tracker.evaluate()
            let incident = try #require(try await store.openIncident(upstream: "pay"))
            #expect(incident.openedAt >= at(540), "\(incident.openedAt)")
            #expect(incident.detectedAt == at(601))
            #expect(incident.impact.failed <= 3)
        }
    }

    @Test func aRunOfFailuresThatEndsIsForgotten() async throws {
        try await withTracker { tracker, clock, health, store in
            tracker.observe(exchange(at: 0, status: 503))
            tracker.observe(exchange(at: 1, status: 200, retried: true))
            clock.advance(by: .seconds(120))
            await tracker.evaluate()
            health.set("pay", .degraded, "an endpoint is ejected", since: at(120))
            await tracker.evaluate()
            let incident = try #require(try await store.openIncident(upstream: "pay"))
            #expect(incident.openedAt == at(120) && incident.timeToDetect == 0)
            #expect(incident.timeline.map(\.event) == ["detected"])
            #expect(incident.impact.isZero)
        }
    }

    @Test func aFastBurnOpensAnIncidentWhileTheStateIsHealthyAndItsEndLetsItClose() async throws {
        try await withTracker { tracker, clock, _, store in
            tracker.heard(
                Alert(
                    kind: .sloFastBurn,
                    severity: "critical",
                    summary: "pay: the error budget burns 20x",
                    upstream: "pay",
                    since: at(0),
                    at: at(0)
                )
            )
            await tracker.evaluate()
            var incident = try #require(try await store.openIncident(upstream: "pay"))
            #expect(incident.cause == "pay: the error budget burns 20x")
            #expect(incident.timeline.map(\.event) == ["slo.fast_burn", "detected"])
            // Still burning: no recovery however long it is healthy.
            clock.advance(by: .seconds(600))
            await tracker.evaluate()
            #expect(try await store.incident(id: incident.id)?.recoveredAt == nil)
            tracker.heard(
                Alert(
                    kind: .sloBurnEnded,
                    severity: "info",
                    summary: "pay: the burn ended",
                    upstream: "pay",
                    at: at(600),
                    resolves: .sloFastBurn
                )
            )
            await tracker.evaluate()
            clock.advance(by: .seconds(300))
            await tracker.evaluate()
            incident = try #require(try await store.incident(id: incident.id))
            #expect(incident.status == .closed && incident.recoveredAt == at(600))
        }
    }

    @Test func deliveriesDelayedAreCountedOnceWithTheLongestDelay() async throws {
        try await withTracker { tracker, clock, health, store in
            health.set("pay", .down, "circuit open", since: at(0))
            await tracker.evaluate()
            tracker.deliveryRecorded(upstream: "pay", id: "dlv_1", status: .pending, attempted: true, at: at(1))
            tracker.deliveryRecorded(upstream: "pay", id: "dlv_1", status: .pending, attempted: true, at: at(5))
            tracker.deliveryRecorded(upstream: "pay", id: "dlv_2", status: .pending, attempted: true, at: at(2))
            // Not an attempt (held while paused), and another upstream's: nothing.
            tracker.deliveryRecorded(upstream: "pay", id: "dlv_3", status: .pending, attempted: false, at: at(2))
            tracker.deliveryRecorded(upstream: "crm", id: "dlv_4", status: .pending, attempted: true, at: at(2))
            tracker.deliveryRecorded(upstream: "pay", id: "dlv_1", status: .delivered, attempted: true, at: at(31))
            clock.advance(by: .seconds(40))
            health.set("pay", .healthy, since: at(40))
            await tracker.evaluate()
            clock.advance(by: .seconds(300))
            await tracker.evaluate()
            let incident = try #require(try await store.incident(id: "inc_1"))
            #expect(incident.status == .closed)
            #expect(incident.impact.deliveriesDelayed == 2)
            // dlv_2 never got through before the close at +340 s: 338 s.
            #expect(incident.impact.longestDelayMilliseconds == 338_000)
        }
    }

    @Test func anIncidentDuringADrillSaysSo() async throws {
        try await withTracker(drill: true) { tracker, _, health, store in
            tracker.heard(
                Alert(kind: .drillStarted, severity: "info", summary: "drill drl_1 started", upstream: "pay", at: at(0))
            )
            health.set("pay", .down, "circuit open", since: at(0))
            await tracker.evaluate()
            let incident = try #require(try await store.openIncident(upstream: "pay"))
            #expect(incident.drill)
            #expect(incident.timeline.map(\.event) == ["drill.started", "detected"])
        }
    }

    @Test func twoInstancesOnOneStoreShareOneIncidentAndAddTheirImpact() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-incidents-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
        let clock = ManualClock()
        let health = FakeHealth()
        let trackers = ["a", "b"].map { name in
            let tracker = IncidentTracker(
                store: store,
                wall: WallClock(clock: clock, origin: Self.t0),
                logger: Logger(label: "test"),
                newID: { "inc_\(name)" }
            )
            tracker.attach(upstreams: { ["pay"] }, health: { health.report($0) })
            return tracker
        }
        health.set("pay", .down, "circuit open", since: at(1))
        trackers[0].observe(exchange(at: 0, status: 503))
        trackers[1].observe(exchange(at: 0.5, status: 503))
        trackers[1].observe(exchange(at: 0.7, status: 503))
        clock.advance(by: .seconds(1))
        await trackers[0].evaluate()
        await trackers[1].evaluate()
        let incidents = try await store.incidents(IncidentQuery()).incidents
        #expect(incidents.map(\.id) == ["inc_a"])
        #expect(incidents.first?.impact.failed == 3)
        #expect(incidents.first?.timeline.map(\.event) == ["first_failure", "detected", "detected"])
        // One closes it; the other, still seeing trouble, opens the next one.
        health.set("pay", .healthy, since: at(2))
        clock.advance(by: .seconds(1))
        await trackers[0].evaluate()
        clock.advance(by: .seconds(300))
        await trackers[0].evaluate()
        #expect(try await store.incident(id: "inc_a")?.status == .closed)
        health.set("pay", .down, "circuit open", since: at(303))
        await trackers[1].evaluate()
        await trackers[1].evaluate()
        #expect(try await store.openIncident(upstream: "pay")?.id == "inc_b")
    }
}

/// The incident routes' answers and the postmortem draft.
@Suite struct IncidentViewTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static let incident = Incident(
        id: "inc_1",
        upstream: "pay",
        status: .closed,
        cause: "down: circuit open | because <b>4</b> failed",
        drill: true,
        openedAt: t0,
        detectedAt: t0.addingTimeInterval(2.5),
        recoveredAt: t0.addingTimeInterval(70),
        closedAt: t0.addingTimeInterval(370),
        timeline: [
            IncidentEvent(at: t0, event: "first_failure", detail: "POST answered 503"),
            IncidentEvent(at: t0.addingTimeInterval(2.5), event: "breaker.opened", detail: "pay: circuit\nopened"),
        ],
        impact: IncidentImpact(failed: 108, stale: 3, deliveriesDelayed: 2, longestDelayMilliseconds: 45_000)
    )

    @Test func theJSONHasEveryDocumentedKeyAndReadsBack() throws {
        let data = try ManagementJSON.encoder().encode(IncidentJSON(Self.incident))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(
            Set(object.keys) == [
                "id", "upstream", "status", "opened_at", "closed_at", "detected_at", "recovered_at",
                "time_to_detect_s", "time_to_recover_s", "cause", "drill", "timeline", "impact", "link",
            ]
        )
        #expect(object["time_to_detect_s"] as? Double == 2.5 && object["time_to_recover_s"] as? Double == 70)
        #expect(object["opened_at"] as? String == "2027-01-15T08:00:00.000Z")
        let impact = try #require(object["impact"] as? [String: Any])
        #expect(
            Set(impact.keys) == ["failed", "stale", "fallback", "queued", "deliveries_delayed", "longest_delay_s"]
        )
        #expect(try ManagementJSON.decoder().decode(IncidentJSON.self, from: data) == IncidentJSON(Self.incident))
        // An open one writes its nulls.
        var open = Self.incident
        open.status = .open
        open.recoveredAt = nil
        open.closedAt = nil
        let openObject = try #require(
            try JSONSerialization.jsonObject(with: ManagementJSON.encoder().encode(IncidentJSON(open)))
                as? [String: Any]
        )
        #expect(openObject["closed_at"] is NSNull && openObject["time_to_recover_s"] is NSNull)
    }

    @Test func thePostmortemFillsInTheNumbersAndEscapesWhatItQuotes() {
        let markdown = Postmortem.markdown(IncidentJSON(Self.incident))
        #expect(markdown.hasPrefix("# Postmortem draft: pay incident during a failure drill (inc_1)"))
        #expect(markdown.contains("a rehearsal, not the provider failing"))
        #expect(markdown.contains("- **Time to detect:** 2.5 s"))
        #expect(markdown.contains("- **Time to recover:** 1 min 10 s"))
        #expect(markdown.contains("| Calls that failed (5xx, circuit open, timeout) | 108 |"))
        #expect(markdown.contains("| Deliveries delayed | 2 (the longest by 45.0 s) |"))
        #expect(markdown.contains("| 08:00:02.500 | breaker opened | pay: circuit opened |"))
        #expect(markdown.contains("down: circuit open \\| because &lt;b&gt;4&lt;/b&gt; failed"))
        #expect(!markdown.contains("<b>"))
        #expect(markdown.contains("## Action items"))
    }

    @Test(arguments: [
        ("text/markdown", true),
        ("text/markdown;q=0.9, application/json", false),
        ("application/json;q=0.5, text/markdown", true),
        ("*/*", false),
        ("text/markdown;q=0", false),
        ("TEXT/MARKDOWN", true),
    ])
    func acceptChoosesMarkdownOnlyWhenAskedFirst(_ accept: String, _ markdown: Bool) {
        #expect(IncidentService.wantsMarkdown(accept) == markdown)
    }

    @Test func theTablesShowOneLineEach() {
        let page = IncidentListJSON(incidents: [IncidentJSON(Self.incident)], nextCursor: "inc_0")
        let list = IncidentTable.list(page)
        #expect(list.contains("inc_1") && list.contains("pay (drill)") && list.contains("2.5 s"))
        #expect(list.hasSuffix("more: --cursor inc_0"))
        let show = IncidentTable.show(IncidentJSON(Self.incident))
        #expect(show.contains("time to detect 2.5 s") && show.contains("108 failed, 3 stale"))
        #expect(show.contains("pay: circuit opened") && !show.contains("circuit\nopened"))
    }
}

/// Incidents through a running gateway: a drill's outage opens one, read back as JSON and as a
/// postmortem draft.
@Suite(.timeLimit(.minutes(1))) struct IncidentGatewayTests {
    @Test func aDrillOutageOpensAnIncidentReadAsJSONAndMarkdown() async throws {
        try await GatewayHarness.run(config: .pay(policy: DrillGatewayTests.policy)) { gateway in
            let started = try await gateway.send(
                .POST,
                "/v1/upstreams/pay/faults",
                body: #"{"kind": "outage", "duration": "10m"}"#
            )
            #expect(started.status == 201, "\(started.body)")
            for _ in 0..<6 { _ = try await gateway.send(.GET, "/proxy/pay/v1/balance") }
            let page = try await poll(gateway, "/v1/incidents") { page in
                !((page["incidents"] as? [[String: Any]]) ?? []).isEmpty
            }
            #expect(page["next_cursor"] is NSNull)
            let incident = try #require((page["incidents"] as? [[String: Any]])?.first)
            let id = try #require(incident["id"] as? String)
            #expect(id.hasPrefix("inc_") && incident["upstream"] as? String == "pay")
            #expect(incident["status"] as? String == "open" && incident["drill"] as? Bool == true)
            let events = ((incident["timeline"] as? [[String: Any]]) ?? []).compactMap { $0["event"] as? String }
            #expect(
                events.contains("detected") && events.contains("breaker.opened") && events.contains("drill.started")
            )
            #expect(events.first == "drill.started", "\(events)")

            let one = try await gateway.send(.GET, "/v1/incidents/\(id)")
            #expect(one.status == 200 && one.header("Content-Type") == "application/json")
            let markdown = try await gateway.send(.GET, "/v1/incidents/\(id)", headers: [("Accept", "text/markdown")])
            #expect(markdown.status == 200 && markdown.header("Content-Type") == "text/markdown; charset=utf-8")
            #expect(markdown.body.hasPrefix("# Postmortem draft: pay incident during a failure drill (\(id))"))

            let missing = try await gateway.send(.GET, "/v1/incidents/inc_nope")
            #expect(missing.status == 404 && missing.code == "not-found")
            let bad = try await gateway.send(.GET, "/v1/incidents?status=maybe&limit=0")
            #expect(bad.status == 400 && bad.code == "invalid-request")
            let filtered = try await gateway.send(.GET, "/v1/incidents?status=closed")
            #expect(filtered.body.contains(#""incidents":[]"#), "\(filtered.body)")
        }
    }

    @Test func readingIncidentsNeedsTheUpstreamsReadScope() async throws {
        let config = ConfigTemplate.custom { urls in
            """
            server: { listen: "127.0.0.1:0" }
            consumers:
              shop: { key_sha256: "\(sha256Hex("shop-key"))", scopes: ["proxy:pay"] }
              ops: { key_sha256: "\(sha256Hex("ops-key"))", scopes: ["upstreams:read"] }
            upstreams:
              pay: { endpoints: ["\(urls[0])"] }
            """
        }
        try await GatewayHarness.run(config: config) { gateway in
            for path in ["/v1/incidents", "/v1/incidents/inc_nope"] {
                #expect(try await gateway.send(.GET, path).status == 401)
                let refused = try await gateway.send(.GET, path, headers: [("Authorization", "Bearer shop-key")])
                #expect(refused.status == 403 && refused.code == "forbidden", "\(refused.body)")
            }
            let allowed = try await gateway.send(.GET, "/v1/incidents", headers: [("Authorization", "Bearer ops-key")])
            #expect(allowed.status == 200 && allowed.body.contains(#""incidents":[]"#), "\(allowed.body)")
            let missing = try await gateway.send(
                .GET,
                "/v1/incidents/inc_nope",
                headers: [("Authorization", "Bearer ops-key")]
            )
            #expect(missing.status == 404)
        }
    }
}
