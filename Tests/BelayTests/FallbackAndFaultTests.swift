import Belay
import BelayTestKit
import Testing

@Suite(.timeLimit(.minutes(1))) struct FallbackTests {
    @Test func replacesAFailureWithTheSubstitute() async throws {
        let events = RecordingEventSink()
        let pipeline = try ResiliencePipeline<String>.Builder()
            .fallback(.init { outcome, _ in "cached (\(outcome.error is TestError))" })
            .telemetry(events)
            .build()
        #expect(try await pipeline.execute { _ in throw TestError() } == "cached (true)")
        #expect(events.names == ["fallback_used"])
    }

    @Test func leavesSuccessAndCancellationAlone() async throws {
        let pipeline = try ResiliencePipeline<String>.Builder().fallback(.init { _, _ in "fallback" }).build()
        #expect(try await pipeline.execute { _ in "live" } == "live")
        #expect(await pipeline.executeOutcome { _ in throw CancellationError() }.error is CancellationError)
    }

    @Test func canHandleReturnedValues() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .fallback(.init(shouldHandle: { (try? $0.get()) == 503 }) { _, _ in 200 })
            .build()
        #expect(try await pipeline.execute { _ in 503 } == 200)
    }

    @Test func aThrowingFallbackIsTheOutcome() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder()
            .fallback(.init { _, _ in throw TestError(id: 9) })
            .build()
        #expect(await pipeline.executeOutcome { _ in throw TestError() }.error as? TestError == TestError(id: 9))
    }
}

@Suite(.timeLimit(.minutes(1))) struct FaultInjectionTests {
    let clock = ManualClock()

    @Test func isInertUnlessEnabled() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .faultInjection(.init(enabled: false, rate: 1, fault: .outcome { -1 }))
            .build()
        #expect(try await pipeline.execute { _ in 1 } == 1)
    }

    @Test func injectsAtTheConfiguredRate() async throws {
        let random = ScriptedRandom([0.05, 0.5, 0.09, 0.1])
        let events = RecordingEventSink()
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .faultInjection(
                .init(enabled: true, rate: 0.1, fault: .error { TestError(id: 42) }, random: { random.next() })
            )
            .telemetry(events)
            .build()
        var injected = 0
        for _ in 0..<4 where await pipeline.executeOutcome({ _ in 1 }).error as? TestError == TestError(id: 42) {
            injected += 1
        }
        #expect(injected == 2)  // 0.05 and 0.09 are below 0.1; 0.5 and 0.1 are not
        #expect(events.names == ["fault_injected", "fault_injected"])
    }

    @Test func injectsLatencyBeforeTheCall() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .faultInjection(.init(enabled: true, rate: 1, fault: .latency(.seconds(3))))
            .build()
        let calls = Tally()
        let task = Task { try await pipeline.execute { _ in calls.increment() } }
        #expect(await clock.nextSleepScheduled() == .at(.seconds(3)))
        #expect(calls.count == 0)
        clock.advance(by: .seconds(3))
        #expect(try await task.value == 1)
    }

    @Test func injectsOutcomes() async throws {
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .faultInjection(.init(enabled: true, rate: 1, fault: .outcome { 503 }))
            .build()
        #expect(try await pipeline.execute { _ in 200 } == 503)
    }
}
