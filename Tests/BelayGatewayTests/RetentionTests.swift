import BelayStore
import BelayTestKit
import Foundation
import GRDB
import Logging
import Testing

@testable import BelayGateway
@testable import BelayStore

@Suite struct RetentionTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let day: TimeInterval = 86_400

    static func delivery(_ id: String, upstream: String = "pay", at date: Date) -> NewDelivery {
        NewDelivery(
            id: id,
            upstream: upstream,
            method: "POST",
            path: "/v1/orders",
            headers: [],
            body: Data("{}".utf8),
            idempotencyKey: "k-\(id)",
            keyFromCaller: false,
            fingerprint: id,
            notBefore: date,
            createdAt: date
        )
    }

    /// Marks `id` finished as `status` at `date`, as the worker or an operator would have.
    static func finish(_ store: SQLiteStore, _ id: String, _ status: DeliveryStatus, at date: Date) async throws {
        try await store.pool.write { db in
            try db.execute(
                sql: "UPDATE deliveries SET status = ?, due_at = NULL, updated_at = ? WHERE id = ?",
                arguments: [status.rawValue, date.storeMilliseconds, id]
            )
        }
    }

    @Test func theServicePurgesAtStartThenEveryIntervalOnTheInjectedClock() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-retention-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
        let clock = ManualClock()
        var configuration = RetentionService<ManualClock>.Configuration()
        configuration.deliveries = .seconds(30 * 86_400)
        configuration.webhookEvents = .seconds(7 * 86_400)
        configuration.batchSize = 2
        configuration.interval = .seconds(300)
        let service = RetentionService(
            store: store,
            configuration: configuration,
            wall: WallClock(clock: clock, origin: Self.t0),
            logger: Logger(label: "test")
        )
        // Five dead deliveries from 31 days ago (more than one batch), one from 29 days ago,
        // and a pending one from long ago; an event from 8 days ago with a delivered forward,
        // and one with its forward still pending.
        let old = Self.t0.addingTimeInterval(-31 * Self.day)
        let recent = Self.t0.addingTimeInterval(-30 * Self.day + 200)
        _ = try await store.insert((1...5).map { Self.delivery("dlv_old\($0)", at: old) })
        _ = try await store.insert([Self.delivery("dlv_recent", at: recent), Self.delivery("dlv_pending", at: old)])
        for index in 1...5 { try await Self.finish(store, "dlv_old\(index)", .dead, at: old) }
        try await Self.finish(store, "dlv_recent", .dead, at: recent)
        let eventTime = Self.t0.addingTimeInterval(-8 * Self.day)
        _ = try await store.ingest(
            ["evt_done", "evt_open"].map { id in
                NewWebhookEvent(
                    id: id,
                    source: "gh",
                    eventID: id,
                    headers: [],
                    body: Data("{}".utf8),
                    receivedAt: eventTime,
                    forward: Self.delivery("dlv_\(id)", upstream: "webhook:gh", at: eventTime)
                )
            }
        )
        try await Self.finish(store, "dlv_evt_done", .delivered, at: eventTime)

        let run = Task { try await service.run() }
        defer { run.cancel() }
        let next = await clock.nextSleepScheduled()
        #expect(next == clock.now.advanced(by: .seconds(300)))
        let ids = try await store.deliveries(DeliveryQuery(limit: 500)).deliveries.map(\.id).sorted()
        #expect(ids == ["dlv_evt_done", "dlv_evt_open", "dlv_pending", "dlv_recent"])
        #expect(try await store.events(WebhookEventQuery()).events.map(\.0.id) == ["evt_open"])
        // The forward of the purged event stays until its own retention.
        #expect(try await store.delivery(id: "dlv_evt_done") != nil)

        // Five minutes later the 29-day-old one has turned 30 days old.
        clock.advance(to: next)
        _ = await clock.nextSleepScheduled()
        #expect(try await store.delivery(id: "dlv_recent") == nil)
        #expect(try await store.delivery(id: "dlv_pending") != nil)
    }

    @Test func aPassReportsWhatItDeleted() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("belay-retention-\(UUID())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStore(path: folder.appendingPathComponent("belay.db").path)
        let service = RetentionService(
            store: store,
            wall: WallClock(clock: ManualClock(), origin: Self.t0),
            logger: Logger(label: "test")
        )
        let old = Self.t0.addingTimeInterval(-31 * Self.day)
        _ = try await store.insert([Self.delivery("dlv_1", at: old)])
        try await Self.finish(store, "dlv_1", .cancelled, at: old)
        _ = try await store.ingest([
            NewWebhookEvent(
                id: "evt_1",
                source: "gh",
                eventID: "x",
                headers: [],
                body: Data("{}".utf8),
                receivedAt: old,
                forward: nil,
                bodyDigest: BodyDigest(sha256: "ab", expiresAt: old.addingTimeInterval(Self.day))
            )
        ])
        // A closed incident past its year, one closed yesterday, and an open one from long ago.
        for (index, closed) in [
            Self.t0.addingTimeInterval(-366 * Self.day), Self.t0.addingTimeInterval(-Self.day), nil,
        ]
        .enumerated() {
            let id = "inc_\(index)"
            _ = try await store.openIncident(
                Incident(id: id, upstream: "u\(index)", cause: "down", openedAt: old, detectedAt: old)
            )
            if let closed { try await store.updateIncident(id: id, IncidentChange(closedAt: closed)) }
        }
        var expected = RetentionService<ManualClock>.Pass()
        expected.deliveries = 1
        expected.webhookEvents = 1
        expected.bodyDigests = 1
        expected.incidents = 1
        #expect(await service.purge() == expected)
        #expect(await service.purge() == RetentionService<ManualClock>.Pass())
        #expect(try await store.incidents(IncidentQuery()).incidents.map(\.id) == ["inc_2", "inc_1"])
    }
}

@Suite struct RetentionConfigTests {
    let loader = ConfigLoader(environment: [:])

    func issues(_ yaml: String) -> [ConfigIssue] {
        do {
            _ = try loader.load(yaml: yaml)
            return []
        } catch {
            return error.issues
        }
    }

    static let github = """
        webhooks:
          gh:
            verify: { scheme: github, secret: "s" }
        """

    @Test func retentionDefaultsTo30DaysAndReadsDurations() throws {
        let defaults = try loader.load(yaml: "server: { listen: \"127.0.0.1:8080\" }")
        #expect(defaults.retention.deliveries == .seconds(30 * 86_400))
        #expect(defaults.retention.webhookEvents == .seconds(30 * 86_400))
        #expect(defaults.retention.incidents == .seconds(365 * 86_400))
        let config = try loader.load(
            yaml: "retention: { deliveries: 7d, webhook_events: 36h, incidents: 730d }\n" + Self.github
        )
        #expect(config.retention.incidents == .seconds(2 * 365 * 86_400))
        #expect(config.retention.deliveries == .seconds(7 * 86_400))
        #expect(config.retention.webhookEvents == .seconds(36 * 3_600))
        #expect(config.webhooks[0].replayWindow == .seconds(86_400))
    }

    @Test func badRetentionValuesNameTheirField() {
        let found = issues("retention: { deliveries: forever, webhook_events: 0s, audit: 1d, incidents: x }")
        #expect(
            Set(found.map(\.path)) == [
                "retention.deliveries", "retention.webhook_events", "retention.audit", "retention.incidents",
            ]
        )
        #expect(found.first { $0.path == "retention.deliveries" }?.message.contains("must be a duration") == true)
        #expect(found.first { $0.path == "retention.webhook_events" }?.message.contains("greater than zero") == true)
    }

    @Test func deliveriesAreKeptAtLeastAsLongAsTheirIdempotencyKeys() throws {
        let found = issues("deliveries: { key_retention: 48h }\nretention: { deliveries: 1d }")
        #expect(found.map(\.path) == ["retention.deliveries"])
        #expect(found.first?.message.contains("deliveries.key_retention (2d)") == true)
        // The default adapts to the value written.
        let config = try loader.load(yaml: "deliveries: { key_retention: 40d }")
        #expect(config.retention.deliveries == .seconds(40 * 86_400))
    }

    @Test func theReplayWindowIsADurationForGitHubAndHMACWithinTheEventRetention() throws {
        let config = try loader.load(yaml: Self.github + "\n    replay_window: 2h")
        #expect(config.webhooks[0].replayWindow == .seconds(7_200))
        #expect(issues(Self.github + "\n    replay_window: soon").map(\.path) == ["webhooks.gh.replay_window"])
        let stripe = issues(
            """
            webhooks:
              st:
                verify: { scheme: stripe, secret: "whsec_x" }
                replay_window: 1h
            """
        )
        #expect(stripe.map(\.path) == ["webhooks.st.replay_window"])
        #expect(stripe.first?.message.contains("github and hmac only") == true)
        let longer = issues("retention: { webhook_events: 12h }\n" + Self.github + "\n    replay_window: 1d")
        #expect(longer.map(\.path) == ["webhooks.gh.replay_window"])
        // Unwritten, the window shrinks to the retention.
        let adapted = try loader.load(yaml: "retention: { webhook_events: 12h }\n" + Self.github)
        #expect(adapted.webhooks[0].replayWindow == .seconds(12 * 3_600))
    }
}
