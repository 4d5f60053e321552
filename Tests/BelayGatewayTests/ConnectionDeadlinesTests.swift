import BelayTestKit
import Testing

@testable import BelayGateway

/// The deadlines of one connection, on a manual clock.
@Suite struct ConnectionDeadlinesTests {
    typealias Deadlines = ConnectionDeadlines<ManualClock.Instant>
    let clock = ManualClock()
    let timeouts = Deadlines.Timeouts(header: .seconds(10), body: .seconds(30), idle: .seconds(60))

    @Test func theFirstHeadIsTimedFromTheOpening() {
        var deadlines = Deadlines(timeouts: timeouts, openedAt: clock.now)
        clock.advance(by: .seconds(9))
        deadlines.received(at: clock.now)
        #expect(deadlines.expiry(at: clock.now) == nil)
        clock.advance(by: .seconds(1))
        #expect(deadlines.expiry(at: clock.now) == .header)
    }

    @Test func aBodyIsTimedFromItsHeadAndNothingWhileTheAnswerIsMade() {
        var deadlines = Deadlines(timeouts: timeouts, openedAt: clock.now)
        deadlines.headRead(at: clock.now)
        clock.advance(by: .seconds(29))
        deadlines.received(at: clock.now)
        #expect(deadlines.expiry(at: clock.now) == nil)
        clock.advance(by: .seconds(1))
        #expect(deadlines.expiry(at: clock.now) == .body)
        deadlines.endRead(at: clock.now)
        #expect(deadlines.deadline == nil)
        clock.advance(by: .seconds(3_600))
        #expect(deadlines.expiry(at: clock.now) == nil)
    }

    @Test func aKeepAliveConnectionIdlesForTheIdleTimeoutThenTheNextHeadHasTheHeaderTimeout() {
        var deadlines = Deadlines(timeouts: timeouts, openedAt: clock.now)
        deadlines.headRead(at: clock.now)
        deadlines.endRead(at: clock.now)
        deadlines.answerEnded(at: clock.now)
        // Longer than the header timeout, shorter than the idle one: still open.
        clock.advance(by: .seconds(50))
        #expect(deadlines.expiry(at: clock.now) == nil)
        deadlines.received(at: clock.now)
        clock.advance(by: .seconds(9))
        deadlines.received(at: clock.now)
        #expect(deadlines.expiry(at: clock.now) == nil)
        clock.advance(by: .seconds(1))
        #expect(deadlines.expiry(at: clock.now) == .header)
    }

    @Test func anIdleConnectionExpiresAfterTheIdleTimeout() {
        var deadlines = Deadlines(timeouts: timeouts, openedAt: clock.now)
        deadlines.headRead(at: clock.now)
        deadlines.endRead(at: clock.now)
        clock.advance(by: .seconds(5))
        deadlines.answerEnded(at: clock.now)
        clock.advance(by: .seconds(59))
        #expect(deadlines.expiry(at: clock.now) == nil)
        clock.advance(by: .seconds(1))
        #expect(deadlines.expiry(at: clock.now) == .idle)
    }

    @Test func anEarlyAnswerLeavesTheBodyOnItsDeadline() {
        var deadlines = Deadlines(timeouts: timeouts, openedAt: clock.now)
        deadlines.headRead(at: clock.now)
        clock.advance(by: .seconds(1))
        deadlines.answerEnded(at: clock.now)
        clock.advance(by: .seconds(29))
        #expect(deadlines.expiry(at: clock.now) == .body)
    }

    @Test func aPipelinedHeadIsTimedFromTheAnswerBeforeIt() {
        var deadlines = Deadlines(timeouts: timeouts, openedAt: clock.now)
        deadlines.headRead(at: clock.now)
        deadlines.endRead(at: clock.now)
        deadlines.received(at: clock.now)
        // The first answer takes a minute: the second head is not read meanwhile.
        clock.advance(by: .seconds(60))
        #expect(deadlines.expiry(at: clock.now) == nil)
        deadlines.answerEnded(at: clock.now)
        clock.advance(by: .seconds(9))
        #expect(deadlines.expiry(at: clock.now) == nil)
        clock.advance(by: .seconds(1))
        #expect(deadlines.expiry(at: clock.now) == .header)
    }

    @Test func aPipelinedBodyIsTimedFromTheAnswerBeforeIt() {
        var deadlines = Deadlines(timeouts: timeouts, openedAt: clock.now)
        deadlines.headRead(at: clock.now)
        deadlines.endRead(at: clock.now)
        deadlines.headRead(at: clock.now)
        clock.advance(by: .seconds(45))
        #expect(deadlines.expiry(at: clock.now) == nil)
        deadlines.answerEnded(at: clock.now)
        clock.advance(by: .seconds(29))
        #expect(deadlines.expiry(at: clock.now) == nil)
        clock.advance(by: .seconds(1))
        #expect(deadlines.expiry(at: clock.now) == .body)
    }

    @Test func theServerTimeoutsDefaultAndParse() throws {
        let defaults = GatewayConfig.Server()
        #expect(defaults.headerTimeout == .seconds(10))
        #expect(defaults.idleTimeout == .seconds(60))
        #expect(defaults.bodyTimeout == .seconds(30))
        let config = try ConfigLoader(environment: [:]).load(
            yaml: """
                server: { listen: "127.0.0.1:0", header_timeout: 2s, idle_timeout: 5m, body_timeout: 1500ms }
                upstreams: { pay: { endpoints: ["http://127.0.0.1:9"] } }
                """
        )
        #expect(config.server.headerTimeout == .seconds(2))
        #expect(config.server.idleTimeout == .seconds(300))
        #expect(config.server.bodyTimeout == .milliseconds(1500))
    }

    @Test(arguments: ["header_timeout: 0s", "idle_timeout: soon", "body_timeout: 99999d"])
    func aBadServerTimeoutIsRefused(line: String) {
        let yaml = """
            server: { listen: "127.0.0.1:0", \(line) }
            upstreams: { pay: { endpoints: ["http://127.0.0.1:9"] } }
            """
        #expect(throws: (any Error).self) { try ConfigLoader(environment: [:]).load(yaml: yaml) }
    }
}
