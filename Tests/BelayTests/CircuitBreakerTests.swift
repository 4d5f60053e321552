import Belay
import BelayTestKit
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(1))) struct CircuitBreakerTests {
    let clock = ManualClock()

    private func breaker(
        _ configuration: CircuitBreaker<ManualClock>.Configuration
    ) throws -> CircuitBreaker<ManualClock> {
        try CircuitBreaker(configuration, clock: clock)
    }

    private func pipeline(
        _ breaker: CircuitBreaker<ManualClock>,
        events: RecordingEventSink? = nil
    ) throws
        -> ResiliencePipeline<Int>
    {
        var builder = ResiliencePipeline<Int>.Builder(clock: clock).circuitBreaker(breaker)
        if let events { builder = builder.telemetry(events) }
        return try builder.build()
    }

    private func run(_ pipeline: ResiliencePipeline<Int>, failing: Bool) async -> Result<Int, any Error> {
        await pipeline.executeOutcome { _ in
            if failing { throw TestError() }
            return 1
        }
    }

    @Test func doesNotJudgeBelowTheMinimumThroughput() async throws {
        let breaker = try breaker(.init(failureRatio: 0.5, minimumThroughput: 4))
        let pipeline = try pipeline(breaker)
        for _ in 0..<3 { _ = await run(pipeline, failing: true) }
        #expect(breaker.state == .closed)
        _ = await run(pipeline, failing: true)
        #expect(breaker.state == .open)
    }

    @Test func opensExactlyAtTheFailureRatio() async throws {
        let breaker = try breaker(.init(failureRatio: 0.5, minimumThroughput: 4))
        let pipeline = try pipeline(breaker)
        // 1 failure in 3 successes: 0.25 < 0.5, and at 4 calls 1/4 is below the ratio.
        for failing in [false, false, true, false] { _ = await run(pipeline, failing: failing) }
        #expect(breaker.state == .closed)
        // 2 failures in 5 calls: 0.4, one below.
        _ = await run(pipeline, failing: true)
        #expect(breaker.state == .closed)
        // 3 in 6: exactly 0.5 opens.
        _ = await run(pipeline, failing: true)
        #expect(breaker.state == .open)
    }

    @Test func failuresOutsideTheWindowAreForgotten() async throws {
        let breaker = try breaker(.init(failureRatio: 0.5, minimumThroughput: 2, window: .seconds(10)))
        let pipeline = try pipeline(breaker)
        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(10))
        _ = await run(pipeline, failing: true)
        #expect(breaker.state == .closed)  // the first failure slid out: 1 call in the window
        _ = await run(pipeline, failing: true)
        #expect(breaker.state == .open)
    }

    @Test func anOpenBreakerRejectsAtOnceWithTheTimeLeft() async throws {
        let events = RecordingEventSink()
        let breaker = try breaker(.init(minimumThroughput: 1, breakDuration: .seconds(30)))
        let pipeline = try pipeline(breaker, events: events)
        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(12))
        let calls = Tally()
        let outcome = await pipeline.executeOutcome { _ in calls.increment() }
        let error = try #require(outcome.error as? ResilienceError)
        #expect(error.code == .circuitOpen)
        #expect(error.retryAfter == .seconds(18))
        #expect(calls.count == 0)
        #expect(events.names == ["circuit_opened", "rejected"])
    }

    @Test func aSuccessfulProbeClosesTheBreaker() async throws {
        let transitions = Mutex<[String]>([])
        let breaker = try breaker(
            .init(
                minimumThroughput: 1,
                breakDuration: .seconds(5),
                onStateChange: { transition in transitions.withLock { $0.append("\(transition.from)>\(transition.to)") }
                }
            )
        )
        let pipeline = try pipeline(breaker)
        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(4))
        #expect(await run(pipeline, failing: false).resilienceCode == .circuitOpen)
        clock.advance(by: .seconds(1))
        #expect(try await run(pipeline, failing: false).get() == 1)
        #expect(breaker.state == .closed)
        #expect(transitions.withLock { $0 } == ["closed>open", "open>half-open", "half-open>closed"])
    }

    @Test func aFailedProbeReopensForALongerBreakWhenGrowing() async throws {
        let breaker = try breaker(
            .init(
                minimumThroughput: 1,
                breakDuration: .seconds(10),
                breakDurationMultiplier: 2,
                maxBreakDuration: .seconds(25)
            )
        )
        let pipeline = try pipeline(breaker)
        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(10))
        _ = await run(pipeline, failing: true)  // probe fails
        #expect(breaker.state == .open)
        let second = await run(pipeline, failing: false).error as? ResilienceError
        #expect(second?.retryAfter == .seconds(20))
        clock.advance(by: .seconds(20))
        _ = await run(pipeline, failing: true)  // probe fails again: 40 s capped at 25 s
        let third = await run(pipeline, failing: false).error as? ResilienceError
        #expect(third?.retryAfter == .seconds(25))
        clock.advance(by: .seconds(25))
        _ = await run(pipeline, failing: false)  // probe succeeds: closed, growth forgotten
        #expect(breaker.state == .closed)
        _ = await run(pipeline, failing: true)
        #expect((await run(pipeline, failing: false).error as? ResilienceError)?.retryAfter == .seconds(10))
    }

    @Test(arguments: [1, 3]) func halfOpenAdmitsExactlyTheConfiguredProbesUnderLoad(probes: Int) async throws {
        let breaker = try breaker(.init(minimumThroughput: 1, breakDuration: .seconds(5), halfOpenProbes: probes))
        let pipeline = try pipeline(breaker)
        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(5))

        let gate = Gate()
        let callers = 50
        let results = await withTaskGroup(of: Result<Int, any Error>.self) { group in
            for _ in 0..<callers {
                group.addTask {
                    await pipeline.executeOutcome { _ in
                        await gate.wait()
                        return 1
                    }
                }
            }
            var results: [Result<Int, any Error>] = []
            // Every caller but the probes is rejected without waiting at the gate.
            for _ in 0..<(callers - probes) {
                if let result = await group.next() { results.append(result) }
            }
            await gate.waitForArrivals(probes)
            #expect(gate.arrived == probes)
            gate.open()
            for await result in group { results.append(result) }
            return results
        }
        #expect(results.filter { $0.resilienceCode == .circuitOpen }.count == callers - probes)
        #expect(results.filter { (try? $0.get()) == 1 }.count == probes)
        #expect(breaker.state == .closed)
    }

    @Test(arguments: [(Duration.seconds(5), Duration.seconds(1)), (.milliseconds(300), .milliseconds(300))])
    func aCallRefusedWhileTheProbesRunIsToldWhenToComeBack(breakDuration: Duration, expected: Duration) async throws {
        let events = RecordingEventSink()
        let breaker = try breaker(.init(minimumThroughput: 1, breakDuration: breakDuration))
        let pipeline = try pipeline(breaker, events: events)
        _ = await run(pipeline, failing: true)
        clock.advance(by: breakDuration)

        let gate = Gate()
        async let probe = pipeline.executeOutcome { _ in
            await gate.wait()
            return 1
        }
        await gate.waitForArrivals(1)
        let refused = try #require(await run(pipeline, failing: false).error as? ResilienceError)
        #expect(refused.code == .circuitOpen)
        #expect(refused.retryAfter == expected)
        gate.open()
        #expect(try await probe.get() == 1)
        #expect(breaker.state == .closed)
    }

    @Test func oneFailedProbeAmongSeveralReopens() async throws {
        let breaker = try breaker(.init(minimumThroughput: 1, breakDuration: .seconds(5), halfOpenProbes: 2))
        let pipeline = try pipeline(breaker)
        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(5))
        _ = await run(pipeline, failing: false)
        #expect(breaker.state == .halfOpen)
        _ = await run(pipeline, failing: true)
        #expect(breaker.state == .open)
    }

    @Test func consecutiveFailuresOpenBeforeTheRatioIsJudged() async throws {
        let breaker = try breaker(.init(minimumThroughput: 100, consecutiveFailures: 3))
        let pipeline = try pipeline(breaker)
        for failing in [true, true, false, true, true] { _ = await run(pipeline, failing: failing) }
        #expect(breaker.state == .closed)
        _ = await run(pipeline, failing: true)
        #expect(breaker.state == .open)
    }

    @Test func slowCallsOpenTheBreaker() async throws {
        let breaker = try breaker(
            .init(minimumThroughput: 2, slowCallDuration: .seconds(1), slowCallRatio: 0.5)
        )
        let pipeline = try pipeline(breaker)
        _ = await pipeline.executeOutcome { _ in 1 }
        #expect(breaker.state == .closed)
        _ = await pipeline.executeOutcome { _ in
            clock.advance(by: .seconds(1))
            return 1
        }
        #expect(breaker.state == .open)
    }

    @Test func slowSuccessfulProbesReopenWhenSlowCallsAreCounted() async throws {
        let breaker = try breaker(
            .init(minimumThroughput: 1, breakDuration: .seconds(5), slowCallDuration: .seconds(1), halfOpenProbes: 4)
        )
        let pipeline = try pipeline(breaker)
        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(5))
        for _ in 0..<4 {
            _ = await pipeline.executeOutcome { _ in
                clock.advance(by: .seconds(1))
                return 1
            }
        }
        // 4 slow probes of 4 reach the slow-call ratio (1): back to open, as in Resilience4j.
        #expect(breaker.state == .open)
    }

    @Test func probesBelowTheSlowCallRatioClose() async throws {
        let breaker = try breaker(
            .init(minimumThroughput: 1, breakDuration: .seconds(5), slowCallDuration: .seconds(1), halfOpenProbes: 4)
        )
        let pipeline = try pipeline(breaker)
        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(5))
        for slow in [true, true, false, true] {
            _ = await pipeline.executeOutcome { _ in
                if slow { clock.advance(by: .seconds(1)) }
                return 1
            }
        }
        #expect(breaker.state == .closed)  // 3 of 4 slow: 0.75 < 1
    }

    @Test func aCircuitOpenRejectionCarriesTheFailureThatOpenedIt() async throws {
        let breaker = try breaker(.init(failureRatio: 0.5, minimumThroughput: 10, breakDuration: .seconds(5)))
        let pipeline = try pipeline(breaker)
        for _ in 0..<4 { _ = await run(pipeline, failing: false) }
        for id in 1...6 { _ = await pipeline.executeOutcome { _ in throw TestError(id: id) } }
        #expect(breaker.state == .open)
        let rejection = try #require(await run(pipeline, failing: false).error as? ResilienceError)
        #expect(rejection.code == .circuitOpen)
        #expect(rejection.underlying as? TestError == TestError(id: 6))
        #expect(
            rejection.message == "the circuit opened after 6 of 10 calls failed; calls are rejected until it recovers"
        )
        #expect(rejection.circuitOpening == CircuitOpening(trigger: .failureRatio, counted: 6, calls: 10))

        // Kept while half-open with every probe slot taken…
        clock.advance(by: .seconds(5))
        let gate = Gate()
        async let probe = pipeline.executeOutcome { _ in
            await gate.wait()
            throw TestError(id: 7)
        }
        await gate.waitForArrivals(1)
        let meanwhile = try #require(await run(pipeline, failing: false).error as? ResilienceError)
        #expect(meanwhile.underlying as? TestError == TestError(id: 6))
        #expect(meanwhile.circuitOpening?.description == "6 of 10 calls failed")
        // …replaced by the probe's failure when it reopens…
        gate.open()
        _ = await probe
        let reopened = try #require(await run(pipeline, failing: false).error as? ResilienceError)
        #expect(reopened.underlying as? TestError == TestError(id: 7))
        #expect(reopened.message == "the circuit opened after the probe failed; calls are rejected until it recovers")
        // …and forgotten once it closes.
        clock.advance(by: .seconds(5))
        #expect(try await run(pipeline, failing: false).get() == 1)
        breaker.isolate()
        let isolated = try #require(await run(pipeline, failing: false).error as? ResilienceError)
        #expect(isolated.underlying == nil)
        #expect(isolated.circuitOpening == nil)
    }

    @Test func aReturnedValueThatOpenedTheCircuitIsCarriedAsItsDescription() async throws {
        let breaker = try breaker(.init(minimumThroughput: 2))
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .circuitBreaker(
                breaker,
                isFailure: { (try? $0.get()) ?? 500 >= 500 },
                describe: { outcome in (try? outcome.get()).map { "status \($0)" } ?? "an error" }
            )
            .build()
        _ = try await pipeline.execute { _ in 503 }
        _ = try await pipeline.execute { _ in 502 }
        let rejection = try #require(await pipeline.executeOutcome { _ in 200 }.error as? ResilienceError)
        let cause = try #require(rejection.underlying as? ReturnedFailure)
        #expect(cause.description == "status 502")
        #expect(rejection.circuitOpening == CircuitOpening(trigger: .failureRatio, counted: 2, calls: 2))
    }

    @Test func consecutiveFailuresAreNamedAsTheCause() async throws {
        let breaker = try breaker(.init(minimumThroughput: 100, consecutiveFailures: 3))
        let pipeline = try pipeline(breaker)
        for id in 1...3 { _ = await pipeline.executeOutcome { _ in throw TestError(id: id) } }
        let rejection = try #require(await run(pipeline, failing: false).error as? ResilienceError)
        #expect(rejection.underlying as? TestError == TestError(id: 3))
        #expect(rejection.circuitOpening == CircuitOpening(trigger: .consecutiveFailures, counted: 3, calls: 3))
        #expect(rejection.circuitOpening?.description == "3 consecutive calls failed")
    }

    @Test func slowCallsOpeningTheCircuitAreNamedAsTheCause() async throws {
        let breaker = try breaker(.init(minimumThroughput: 2, slowCallDuration: .seconds(1), slowCallRatio: 0.5))
        let pipeline = try pipeline(breaker)
        _ = await pipeline.executeOutcome { _ in 1 }
        _ = await pipeline.executeOutcome { _ in
            clock.advance(by: .seconds(1))
            return 1
        }
        let rejection = try #require(await run(pipeline, failing: false).error as? ResilienceError)
        #expect(rejection.underlying == nil)  // a slow success is no failure
        #expect(rejection.circuitOpening?.description == "1 of 2 calls were slow")
    }

    @Test func theHalfOpenStateMayBeJudgedByTheFailureRatioOfItsProbes() async throws {
        let breaker = try breaker(
            .init(
                failureRatio: 0.5,
                minimumThroughput: 1,
                breakDuration: .seconds(5),
                halfOpenProbes: 4,
                halfOpenJudgment: .failureRatio
            )
        )
        let pipeline = try pipeline(breaker)
        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(5))
        // 1 failed probe of 4: 0.25 < 0.5, closes (the default would have reopened at once).
        for failing in [true, false, false] {
            _ = await run(pipeline, failing: failing)
            #expect(breaker.state == .halfOpen)
        }
        _ = await run(pipeline, failing: false)
        #expect(breaker.state == .closed)

        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(5))
        // 2 of 4 reach the ratio: open again as soon as the second fails.
        _ = await run(pipeline, failing: true)
        #expect(breaker.state == .halfOpen)
        _ = await pipeline.executeOutcome { _ in throw TestError(id: 9) }
        #expect(breaker.state == .open)
        let rejection = try #require(await run(pipeline, failing: false).error as? ResilienceError)
        #expect(rejection.underlying as? TestError == TestError(id: 9))
        #expect(rejection.circuitOpening == CircuitOpening(trigger: .failedProbes, counted: 2, calls: 4))
        #expect(rejection.circuitOpening?.description == "2 of 4 probes failed")
    }

    @Test func slowProbesAreJudgedByTheSlowCallRatioUnderTheFailureRatioJudgment() async throws {
        let breaker = try breaker(
            .init(
                minimumThroughput: 1,
                breakDuration: .seconds(5),
                slowCallDuration: .seconds(1),
                slowCallRatio: 0.5,
                halfOpenProbes: 2,
                halfOpenJudgment: .failureRatio
            )
        )
        let pipeline = try pipeline(breaker)
        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(5))
        _ = await pipeline.executeOutcome { _ in
            clock.advance(by: .seconds(1))
            return 1
        }
        #expect(breaker.state == .open)
        let rejection = try #require(await run(pipeline, failing: false).error as? ResilienceError)
        #expect(rejection.circuitOpening?.description == "1 of 2 probes were slow")
    }

    @Test func returnedValuesCanCountAsFailures() async throws {
        let breaker = try breaker(.init(minimumThroughput: 2))
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .circuitBreaker(breaker, isFailure: { (try? $0.get()) ?? 500 >= 500 })
            .build()
        _ = try await pipeline.execute { _ in 503 }
        _ = try await pipeline.execute { _ in 502 }
        #expect(breaker.state == .open)
    }

    @Test func cancelledCallsAreNotCounted() async throws {
        let breaker = try breaker(.init(minimumThroughput: 1))
        let pipeline = try pipeline(breaker)
        _ = await pipeline.executeOutcome { _ in throw CancellationError() }
        #expect(breaker.state == .closed)
    }

    @Test func ignoredOutcomesAreNeitherCountedNorHoldAProbeSlot() async throws {
        struct CallersFault: Error {}
        let breaker = try breaker(.init(minimumThroughput: 1, breakDuration: .seconds(5)))
        let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
            .circuitBreaker(breaker, isIgnored: { $0.error is CallersFault })
            .build()
        for _ in 0..<3 { _ = await pipeline.executeOutcome { _ in throw CallersFault() } }
        #expect(breaker.state == .closed)

        _ = await run(pipeline, failing: true)
        clock.advance(by: .seconds(5))
        _ = await pipeline.executeOutcome { _ in throw CallersFault() }  // the probe, ignored
        #expect(breaker.state == .halfOpen)
        #expect(try await run(pipeline, failing: false).get() == 1)  // its slot was given back
        #expect(breaker.state == .closed)
    }

    @Test func isolateAndReset() async throws {
        let events = RecordingEventSink()
        let breaker = try breaker(.init())
        let pipeline = try pipeline(breaker, events: events)
        breaker.isolate()
        #expect(breaker.state == .isolated)
        clock.advance(by: .seconds(3600))
        #expect(await run(pipeline, failing: false).resilienceCode == .circuitIsolated)
        breaker.reset()
        #expect(try await run(pipeline, failing: false).get() == 1)
    }

    @Test func lateResultsOfAnOlderStateAreIgnored() async throws {
        let breaker = try breaker(.init(minimumThroughput: 2, breakDuration: .seconds(5)))
        let pipeline = try pipeline(breaker)
        let gate = Gate()
        // A slow call admitted while closed…
        let slow = Task {
            await pipeline.executeOutcome { _ in
                await gate.wait()
                throw TestError()
            }
        }
        await gate.waitForArrivals(1)
        // …the breaker opens and half-opens meanwhile…
        _ = await run(pipeline, failing: true)
        _ = await run(pipeline, failing: true)
        #expect(breaker.state == .open)
        clock.advance(by: .seconds(5))
        let probeGate = Gate()
        let probe = Task {
            await pipeline.executeOutcome { _ in
                await probeGate.wait()
                return 1
            }
        }
        await probeGate.waitForArrivals(1)
        // …and the slow call's failure does not count against the probe.
        gate.open()
        _ = await slow.value
        #expect(breaker.state == .halfOpen)
        probeGate.open()
        _ = await probe.value
        #expect(breaker.state == .closed)
    }

    @Test func innerRejectionsDoNotCountButInnerTimeoutsDo() async throws {
        let breaker = try breaker(.init(minimumThroughput: 1))
        let pipeline = try pipeline(breaker)
        _ = await pipeline.executeOutcome { _ in
            throw ResilienceError(code: .bulkheadFull, strategy: "bulkhead", message: "full")
        }
        _ = await pipeline.executeOutcome { _ in
            throw ResilienceError(code: .rateLimited, strategy: "limiter", message: "slow down")
        }
        #expect(breaker.state == .closed)
        _ = await pipeline.executeOutcome { _ in
            throw ResilienceError(code: .timeout, strategy: "attempt", message: "too slow")
        }
        #expect(breaker.state == .open)
    }

    @Test func invalidOptionsNameTheOption() {
        #expect {
            _ = try CircuitBreaker(.init(failureRatio: 1.5, minimumThroughput: 0, halfOpenProbes: 0), clock: clock)
        } throws: { error in
            (error as? ConfigurationError)?.issues.map(\.option) == [
                "circuit-breaker.failureRatio", "circuit-breaker.minimumThroughput", "circuit-breaker.halfOpenProbes",
            ]
        }
    }
}

/// Only the dependency's own failures count: a caller whose deadline is shorter than the
/// pipeline's must not open a breaker that other callers share (issue 11).
@Suite(.timeLimit(.minutes(1))) struct CallersDeadlineTests {
    let clock = ManualClock()

    private func pipeline(_ breaker: CircuitBreaker<ManualClock>) throws -> ResiliencePipeline<Int> {
        try ResiliencePipeline<Int>.Builder(clock: clock)
            .circuitBreaker(breaker)
            .timeout(.seconds(2), enforcement: .cooperative, name: "attempt")
            .build()
    }

    /// An operation that fails once the deadline it was given has passed, as an HTTP client
    /// handed the deadline does.
    private func slowCall(_ context: ResilienceContext) async throws -> Int {
        let deadline = try #require(context.deadline)
        try await clock.sleep(until: deadline.instant(on: clock), tolerance: nil)
        throw TestError()
    }

    @Test func timeoutsOfTheCallersShorterDeadlineNeverOpenTheBreaker() async throws {
        let breaker = try CircuitBreaker(.init(failureRatio: 0.5, minimumThroughput: 2), clock: clock)
        let pipeline = try pipeline(breaker)
        for _ in 0..<6 {
            let task = Task {
                await Deadline.$current.withValue(Deadline(after: .milliseconds(100), on: clock)) {
                    await pipeline.executeOutcome { try await slowCall($0) }
                }
            }
            let wake = await clock.nextSleepScheduled()
            clock.advance(to: wake)
            let outcome = await task.value
            let error = try #require(outcome.error as? ResilienceError)
            #expect(error.code == .timeout)
            #expect(error.isCallersDeadline)
            #expect(error.deadlineOrigin == .caller)
        }
        #expect(breaker.state == .closed)
    }

    @Test func thePipelinesOwnTimeoutStillCounts() async throws {
        let breaker = try CircuitBreaker(.init(failureRatio: 0.5, minimumThroughput: 2), clock: clock)
        let pipeline = try pipeline(breaker)
        for _ in 0..<2 {
            let task = Task {
                // The caller allows 10 s; the attempt's own 2 s passes first.
                await Deadline.$current.withValue(Deadline(after: .seconds(10), on: clock)) {
                    await pipeline.executeOutcome { try await slowCall($0) }
                }
            }
            let wake = await clock.nextSleepScheduled()
            clock.advance(to: wake)
            let error = try #require(await task.value.error as? ResilienceError)
            #expect(error.code == .timeout)
            #expect(error.deadlineOrigin == .strategy)
            #expect(!error.isCallersDeadline)
        }
        #expect(breaker.state == .open)
    }
}
