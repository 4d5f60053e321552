import BelayTestKit
import Foundation
import Logging
import Synchronization
import Testing

@testable import BelayGateway

/// Answers posts from a script of statuses (nil: no answer) and records them.
final class ScriptedTransport: AlertTransport {
    private struct State {
        var script: [Int?]
        var posts: [(url: String, body: Data)] = []
        var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    struct NoAnswer: Error {}

    private let state: Mutex<State>

    init(_ script: [Int?] = []) {
        state = Mutex(State(script: script))
    }

    var posts: [(url: String, body: Data)] { state.withLock { $0.posts } }

    func post(_ body: Data, to url: String) async throws -> Int {
        let (status, ready) = state.withLock { state -> (Int?, [CheckedContinuation<Void, Never>]) in
            state.posts.append((url, body))
            let status = state.script.isEmpty ? 200 : state.script.removeFirst()
            let ready = state.waiters.filter { $0.count <= state.posts.count }.map(\.continuation)
            state.waiters.removeAll { $0.count <= state.posts.count }
            return (status, ready)
        }
        for continuation in ready { continuation.resume() }
        guard let status else { throw NoAnswer() }
        return status
    }

    func waitForPosts(_ count: Int) async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.posts.count >= count { return true }
                state.waiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}

@Suite struct AlerterTests {
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    func alert(_ subject: String, kind: Alert.Kind = .dead) -> Alert {
        Alert(
            kind: kind,
            severity: "critical",
            summary: "delivery \(subject) is dead",
            upstream: "pay",
            subject: subject,
            at: at
        )
    }

    @Test func everySinkGetsTheAlertAsJSON() async throws {
        let transport = ScriptedTransport()
        let alerter = Alerter(
            sinks: ["http://a.example/hook", "http://b.example/hook"],
            transport: transport,
            clock: ManualClock(),
            logger: Logger(label: "test")
        )
        await alerter.send(alert("dlv_1"))
        #expect(transport.posts.map(\.url) == ["http://a.example/hook", "http://b.example/hook"])
        let json = try #require(try JSONSerialization.jsonObject(with: transport.posts[0].body) as? [String: Any])
        #expect(json["kind"] as? String == "delivery.dead")
        #expect(json["subject"] as? String == "dlv_1")
        #expect(json["at"] as? String == "2027-01-15T08:00:00Z")
    }

    @Test func eachAlertIsLoggedAtALevelMatchingItsSeverity() {
        let logs = LogStore()
        let logger = Logger(label: "test") { _ in LogStore.Handler(store: logs) }
        let alerter = Alerter(sinks: [], clock: ManualClock(), throttle: .seconds(600), logger: logger)
        for (index, severity) in ["info", "warning", "critical"].enumerated() {
            var raised = alert("dlv_\(index)")
            raised.severity = severity
            alerter.raise(raised)
        }
        var resolve = alert("dlv_9")
        resolve.severity = "info"
        resolve.resolves = .dead
        alerter.raise(resolve)
        // An informational alert (a replayed delivery got through) is not a warning in the log.
        #expect(logs.records.map(\.level) == [.notice, .warning, .error, .notice])
    }

    @Test func recentAlertsKeepTheLatestFiftyAndCountRepeatsWithinTheWindow() {
        let alerter = Alerter(sinks: [], clock: ManualClock(), throttle: .seconds(600), logger: Logger(label: "test"))
        var repeated = alert("dlv_1")
        alerter.raise(repeated)
        repeated.at = at.addingTimeInterval(60)
        alerter.raise(repeated)
        var other = alert("dlv_2")
        other.at = at.addingTimeInterval(30)
        alerter.raise(other)
        #expect(alerter.recentAlerts.map(\.alert.subject) == ["dlv_1", "dlv_2"])  // latest first
        #expect(alerter.recentAlerts.map(\.repeats) == [1, 0])
        // Past the throttle window, the same alert is a new entry.
        repeated.at = at.addingTimeInterval(60 + 600)
        alerter.raise(repeated)
        #expect(alerter.recentAlerts.map(\.repeats) == [0, 1, 0])
        for index in 0..<60 {
            var filler = alert("dlv_f\(index)")
            filler.at = at.addingTimeInterval(Double(1_000 + index))
            alerter.raise(filler)
        }
        #expect(alerter.recentAlerts.count == Alerter<ManualClock>.recentLimit)
        #expect(alerter.recentAlerts.first?.alert.subject == "dlv_f59")
    }

    @Test func theSameAlertIsSentOncePerWindowOthersStillGo() async throws {
        let clock = ManualClock()
        let transport = ScriptedTransport()
        let alerter = Alerter(
            sinks: ["http://a.example/hook"],
            transport: transport,
            clock: clock,
            throttle: .seconds(600),
            logger: Logger(label: "test")
        )
        await alerter.send(alert("dlv_1"))
        await alerter.send(alert("dlv_1"))
        await alerter.send(alert("dlv_2"))
        await alerter.send(alert("dlv_1", kind: .stillTrying))
        #expect(transport.posts.count == 3)
        #expect(alerter.suppressedCount == 1)
        clock.advance(by: .seconds(599))
        await alerter.send(alert("dlv_1"))
        #expect(transport.posts.count == 3)
        clock.advance(by: .seconds(1))
        await alerter.send(alert("dlv_1"))
        #expect(transport.posts.count == 4)
    }

    @Test func aFailingSinkIsRetriedAfterOneAndFiveSeconds() async throws {
        let clock = ManualClock()
        let transport = ScriptedTransport([500, nil, 204])
        let alerter = Alerter(
            sinks: ["http://a.example/hook"],
            transport: transport,
            clock: clock,
            logger: Logger(label: "test")
        )
        let sending = Task { await alerter.send(alert("dlv_1")) }
        #expect(await clock.nextSleepScheduled() == .init(offset: .seconds(1)))
        clock.advance(by: .seconds(1))
        #expect(await clock.nextSleepScheduled() == .init(offset: .seconds(6)))
        clock.advance(by: .seconds(5))
        await sending.value
        #expect(transport.posts.count == 3)
    }

    @Test func raisingNeverWaitsAndTheServiceSendsInOrder() async throws {
        let transport = ScriptedTransport()
        let alerter = Alerter(
            sinks: ["http://a.example/hook"],
            transport: transport,
            clock: ManualClock(),
            logger: Logger(label: "test")
        )
        // Raised before the service runs: held in the buffer, not blocking the caller.
        for index in 1...3 { alerter.raise(alert("dlv_\(index)")) }
        let running = Task { try await alerter.run() }
        await transport.waitForPosts(3)
        running.cancel()
        let subjects = try transport.posts.map {
            try #require(try JSONSerialization.jsonObject(with: $0.body) as? [String: Any])["subject"] as? String
        }
        #expect(subjects == ["dlv_1", "dlv_2", "dlv_3"])
    }
}
