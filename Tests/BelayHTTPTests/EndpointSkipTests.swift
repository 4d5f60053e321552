import BelayTestKit
import Testing

@testable import BelayHTTP

/// Which endpoints an attempt reports as skipped because they are ejected.
@Suite struct EndpointSkipTests {
    @Test func nothingEjectedSkipsNothing() {
        let health = EndpointHealth(endpointCount: 3, ejectAfter: 1, ejection: .seconds(10), clock: ManualClock())
        let (order, ejected) = health.order()
        #expect(order == [0, 1, 2] && ejected == 0)
        let choice = AttemptLog().chooseEndpoint(from: order, ejected: ejected)
        #expect(choice.chosen == 0 && choice.skipped.isEmpty)
    }

    @Test func anEjectedPrimaryIsSkippedAndAnEjectedBackupIsNot() {
        let clock = ManualClock()
        let health = EndpointHealth(endpointCount: 3, ejectAfter: 1, ejection: .seconds(10), clock: clock)
        _ = health.record(endpoint: 0, success: false)
        _ = health.record(endpoint: 2, success: false)
        let (order, ejected) = health.order()
        #expect(order == [1, 0, 2] && ejected == 2)
        let log = AttemptLog()
        // Endpoint 0 would have come first; endpoint 2 would have come after 1 anyway.
        let first = log.chooseEndpoint(from: order, ejected: ejected)
        #expect(first.chosen == 1 && first.skipped == [0])
        // Every endpoint is tried once before any twice: the ejected primary comes next, skipping nothing.
        let second = log.chooseEndpoint(from: order, ejected: ejected)
        #expect(second.chosen == 0 && second.skipped.isEmpty)
    }

    @Test func whenEveryEndpointIsEjectedNoneIsReportedSkipped() {
        let health = EndpointHealth(endpointCount: 2, ejectAfter: 1, ejection: .seconds(10), clock: ManualClock())
        _ = health.record(endpoint: 0, success: false)
        _ = health.record(endpoint: 1, success: false)
        let (order, ejected) = health.order()
        #expect(ejected == 2)
        let choice = AttemptLog().chooseEndpoint(from: order, ejected: ejected)
        #expect(choice.chosen == 0 && choice.skipped.isEmpty)
    }
}
