import BelayTestKit
import Synchronization
import Testing

@testable import BelayGateway

/// The adaptive limits' recent past, as the status page draws it: sampled at start and then
/// every `every` on the manual clock, the latest `capacity` samples kept per upstream.
@Suite(.timeLimit(.minutes(1))) struct ConcurrencyHistoryTests {
    typealias Sample = ConcurrencyHistory<ManualClock>.Sample

    @Test func samplesAtStartThenEveryIntervalKeepingTheLatestCapacity() async throws {
        let clock = ManualClock()
        let pay = Mutex(Sample(limit: 20, inFlight: 0))
        let ship = Mutex(Sample(limit: 4, inFlight: 1))
        let history = ConcurrencyHistory(
            sources: [
                .init(upstream: "pay") { pay.withLock { $0 } },
                .init(upstream: "ship") { ship.withLock { $0 } },
            ],
            every: .seconds(5),
            capacity: 3,
            clock: clock
        )
        let task = Task { try await history.run() }
        defer { task.cancel() }

        // The first sample is taken at once; the next is due 5 s later.
        var next = await clock.nextSleepScheduled()
        #expect(next == .init(offset: .seconds(5)))
        #expect(history.series("pay") == [Sample(limit: 20, inFlight: 0)])
        #expect(history.series("ship") == [Sample(limit: 4, inFlight: 1)])

        pay.withLock { $0 = Sample(limit: 18, inFlight: 18) }
        clock.advance(to: next)
        next = await clock.nextSleepScheduled()
        #expect(next == .init(offset: .seconds(10)))
        #expect(history.series("pay") == [Sample(limit: 20, inFlight: 0), Sample(limit: 18, inFlight: 18)])

        pay.withLock { $0 = Sample(limit: 16, inFlight: 3) }
        clock.advance(to: next)
        next = await clock.nextSleepScheduled()
        #expect(next == .init(offset: .seconds(15)))
        pay.withLock { $0 = Sample(limit: 17, inFlight: 2) }
        clock.advance(to: next)
        next = await clock.nextSleepScheduled()
        #expect(next == .init(offset: .seconds(20)))
        // Four samples taken, three kept: the oldest is gone.
        #expect(
            history.series("pay") == [
                Sample(limit: 18, inFlight: 18), Sample(limit: 16, inFlight: 3), Sample(limit: 17, inFlight: 2),
            ]
        )
        #expect(history.series("ship") == Array(repeating: Sample(limit: 4, inFlight: 1), count: 3))
        #expect(history.series("nobody").isEmpty)

        // Woken late (a stalled machine), it samples once and keeps its cadence from now,
        // rather than taking the missed samples in a burst.
        clock.advance(to: .init(offset: .seconds(37)))
        next = await clock.nextSleepScheduled()
        #expect(next == .init(offset: .seconds(42)))
        #expect(history.series("pay").count == 3)
    }

    @Test func withoutSourcesASampleKeepsNothingAndTheDefaultsAreTenMinutesEveryFiveSeconds() async throws {
        let clock = ManualClock()
        let history = ConcurrencyHistory(sources: [], clock: clock)
        history.sample()
        #expect(history.series("pay").isEmpty)
        #expect(history.every == .seconds(5) && history.capacity == 120)
    }

    @Test func theSparklineScalesBothLinesToTheHighestValueShown() {
        let samples = [
            ConcurrencyHistory<ContinuousClock>.Sample(limit: 8, inFlight: 0),
            .init(limit: 4, inFlight: 4),
            .init(limit: 6, inFlight: 2),
        ]
        let svg = StatusPage.sparkline(samples)
        #expect(svg.hasPrefix(#"<svg class="spark" viewBox="0 0 8 40""#))
        #expect(svg.contains(#"<polyline class="limit" vector-effect="non-scaling-stroke" points="0,2 4,20 8,11"/>"#))
        #expect(svg.contains(#"class="in-flight" vector-effect="non-scaling-stroke" points="0,38 4,20 8,29"/>"#))
        #expect(svg.contains("peak 8"))
        // One sample (just started): a flat line across.
        let one = StatusPage.sparkline([.init(limit: 3, inFlight: 0)])
        #expect(one.contains(#"viewBox="0 0 4 40""#) && one.contains(#"points="0,2 4,2""#))
    }
}
