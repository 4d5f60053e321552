import BelayHTTP
import BelayTestKit
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import BelayGateway

/// The graceful stop's drain (`server.drain`), on a manual clock: `serving → draining(until:)
/// → stopping`, and the service behind it (the HTTP server in the gateway) signalled only
/// once the drain is over.
@Suite struct DrainTests {
    typealias ManualDrain = Drain<ManualClock>
    let clock = ManualClock()
    let logger = Logger(label: "drain-test") { _ in SwiftLogNoOpLogHandler() }

    /// Stands in for the HTTP server: notes the drain's phase when it is told to stop.
    final class Server: Service, Sendable {
        let phaseAtStop = Mutex<ManualDrain.Phase?>(nil)
        let drain: ManualDrain

        init(drain: ManualDrain) {
            self.drain = drain
        }

        var stopped: Bool { phaseAtStop.withLock { $0 != nil } }

        func run() async throws {
            try? await gracefulShutdown()
            phaseAtStop.withLock { $0 = drain.phase }
        }
    }

    /// Runs `server` stopped after `drain` in a group; `body` gets the group to stop it.
    private func run(
        _ server: Server,
        after drain: ManualDrain,
        _ body: (ServiceGroup) async throws -> Void
    ) async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server.stoppedAfter(drain, logger: logger))],
                gracefulShutdownSignals: [],
                logger: logger
            )
        )
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await body(group)
            try await tasks.waitForAll()
        }
    }

    @Test func theStateMachineGoesServingDrainingStopping() {
        let drain = ManualDrain(period: .seconds(5), clock: clock, logger: logger)
        #expect(drain.phase == .serving)
        #expect(drain.isReady)
        let until = drain.begin()
        #expect(until == ManualClock.Instant(offset: .seconds(5)))
        #expect(drain.phase == .draining(until: until))
        #expect(!drain.isReady)
        // A second SIGTERM does not move the end.
        clock.advance(by: .seconds(2))
        #expect(drain.begin() == until)
        #expect(drain.phase == .draining(until: until))
        drain.finish()
        #expect(drain.phase == .stopping)
        // Once over, a drain does not begin again.
        #expect(drain.begin() == clock.now)
        #expect(drain.phase == .stopping)
        #expect(!drain.isReady)
    }

    @Test func readyzTurnsIntoADrainingProblemNamingTheInstanceAndTheTimeLeft() throws {
        let drain = ManualDrain(period: .seconds(5), clock: clock, logger: logger)
        #expect(drain.problem(instance: "web-1") == nil)
        drain.begin()
        let draining = try #require(drain.problem(instance: "web-1"))
        #expect(draining.status == 503)
        #expect(draining.code == "draining")
        #expect(draining.type == "https://belay.dev/problems/draining")
        #expect(draining.retryable == true)
        #expect(draining.instance == "/readyz")
        #expect(draining.detail.contains("instance 'web-1' is stopping"))
        #expect(draining.detail.contains("for 5 s more"))
        clock.advance(by: .milliseconds(3_500))
        #expect(drain.problem(instance: "web-1")?.detail.contains("for 2 s more") == true)
        drain.finish()
        let stopping = try #require(drain.problem(instance: "web-1"))
        #expect(stopping.status == 503 && stopping.code == "draining")
        #expect(stopping.detail.contains("listener is closing"))
    }

    /// The order of a graceful stop: the drain begins (readyz 503) while the server still runs,
    /// and the server is told to stop only when the drain period has passed.
    @Test func theServerIsToldToStopOnlyOnceTheDrainIsOver() async throws {
        let drain = ManualDrain(period: .seconds(5), clock: clock, logger: logger)
        let server = Server(drain: drain)
        try await run(server, after: drain) { group in
            #expect(drain.isReady)
            await group.triggerGracefulShutdown()
            let wakeUp = await clock.nextSleepScheduled()
            #expect(wakeUp == clock.now.advanced(by: .seconds(5)))
            #expect(drain.phase == .draining(until: wakeUp))
            #expect(!server.stopped)
            // Just before the end: still draining, the server still running.
            clock.advance(to: wakeUp.advanced(by: .milliseconds(-1)))
            #expect(clock.sleeperCount == 1)
            #expect(!server.stopped)
            clock.advance(to: wakeUp)
        }
        // The server saw the drain over when it was told to stop.
        #expect(server.phaseAtStop.withLock { $0 } == .stopping)
    }

    @Test func aZeroDrainStopsTheServerAtOnce() async throws {
        let drain = ManualDrain(period: .zero, clock: clock, logger: logger)
        let server = Server(drain: drain)
        try await run(server, after: drain) { group in
            await group.triggerGracefulShutdown()
        }
        #expect(server.phaseAtStop.withLock { $0 } == .stopping)
        #expect(clock.now == ManualClock.Instant(offset: .zero))
    }

    @Test func cancelledBeforeAStopTheDrainEndsWithoutWaiting() async throws {
        let drain = ManualDrain(period: .seconds(5), clock: clock, logger: logger)
        let task = Task { try await drain.run() }
        task.cancel()
        try await task.value
        #expect(drain.phase == .stopping)
        #expect(clock.unclaimedSleeps == 0)
    }

    @Test func aCancelledDrainStopsWaiting() async throws {
        let drain = ManualDrain(period: .seconds(5), clock: clock, logger: logger)
        let server = Server(drain: drain)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: server.stoppedAfter(drain, logger: logger))],
                gracefulShutdownSignals: [],
                logger: logger
            )
        )
        let running = Task { try await group.run() }
        await group.triggerGracefulShutdown()
        _ = await clock.nextSleepScheduled()
        running.cancel()
        _ = try? await running.value
        #expect(drain.phase == .stopping)
    }
}

/// `server.drain` in the config.
@Suite struct DrainConfigTests {
    private func load(_ server: String) throws(ConfigError) -> GatewayConfig {
        try ConfigLoader(environment: [:]).load(
            yaml: """
                server: { listen: "127.0.0.1:0"\(server) }
                upstreams: { pay: { endpoints: ["http://127.0.0.1:9"] } }
                """
        )
    }

    @Test func theDrainDefaultsTo5sAndTakesADurationOrZero() throws {
        #expect(GatewayConfig.Server().drain == .seconds(5))
        #expect(try load("").server.drain == .seconds(5))
        #expect(try load(", drain: 2s").server.drain == .seconds(2))
        #expect(try load(", drain: 0s").server.drain == .zero)
        #expect(try load(", drain: 10m").server.drain == .seconds(600))
    }

    @Test(arguments: [
        (
            "drain: 11m",
            "server.drain: must be at most 10m: a stop keeps serving this long before the listener closes (got '11m')"
        ),
        ("drain: soon", "server.drain: must be a duration such as 250ms, 5s, 20m, 4h or 1d (got 'soon')"),
        ("drain: -1s", "server.drain: must be a duration such as 250ms, 5s, 20m, 4h or 1d (got '-1s')"),
    ])
    func aBadDrainIsRefusedNamingTheKey(line: String, expected: String) {
        do {
            _ = try load(", \(line)")
            Issue.record("\(line) was accepted")
        } catch {
            #expect(error.issues.map(\.description) == ["line 1: \(expected)"])
        }
    }
}
