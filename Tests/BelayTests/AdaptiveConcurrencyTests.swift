import BelayTestKit
import Synchronization
import Testing

@testable import Belay

/// The algorithms, driven through the sans-IO state machine with manual-clock instants: every
/// figure below follows from the arithmetic in the algorithms' documentation.
@Suite struct AdaptiveConcurrencyAlgorithmTests {
    /// The state machine, and rounds of calls through it on a clock that moves with them.
    final class Driver {
        var machine: AdaptiveConcurrencyStateMachine<Never>
        /// The time since the limiter's origin.
        var now = Duration.zero

        init(initial: Int, minimum: Int, maximum: Int, _ algorithm: AdaptiveConcurrencyAlgorithm) {
            machine = .init(initial: initial, minimum: minimum, maximum: maximum, maxQueue: 0, algorithm: algorithm)
        }

        /// `count` calls admitted together, each finishing `rtt` later with `signal`, released
        /// in the order they were admitted. Returns the limit afterwards.
        @discardableResult
        func round(
            _ count: Int,
            rtt: Duration = .milliseconds(10),
            _ signal: ConcurrencySignal = .success
        ) throws -> Int {
            var permits: [AdaptiveConcurrencyPermit] = []
            for _ in 0..<count {
                let permit = machine.tryAcquire(now: now)
                permits.append(try #require(permit))
            }
            now += rtt
            for permit in permits {
                _ = machine.release(permit, signal, now: now)
            }
            return machine.limit
        }
    }

    @Test func aimdGrowsByOnePerWindowOfSuccessesAndShrinksByHalfOnADrop() throws {
        let limiter = Driver(initial: 2, minimum: 1, maximum: 4, .aimd(backoff: 0.5))
        // One call at a time uses half of a limit of 2: two successes are a window.
        #expect(try limiter.round(1) == 2)
        #expect(try limiter.round(1) == 3)
        // One call at a time does not use half of 3: the limit is not raised for callers that
        // do not need it.
        for _ in 0..<10 { #expect(try limiter.round(1) == 3) }
        // Three at once: the second and third were admitted with at least half in use.
        #expect(try limiter.round(3) == 3)
        #expect(try limiter.round(3) == 4)
        // The maximum holds however many windows succeed.
        for _ in 0..<5 { #expect(try limiter.round(4) == 4) }
        // Multiplicative decrease, down to the minimum and no further.
        #expect(try limiter.round(1, .dropped) == 2)
        #expect(try limiter.round(1, .dropped) == 1)
        #expect(try limiter.round(1, .dropped) == 1)
        #expect(limiter.machine.inFlight == 0)
    }

    @Test func aDecreaseHappensOncePerRoundTripNotOncePerCallInFlight() throws {
        let limiter = Driver(initial: 8, minimum: 1, maximum: 8, .aimd(backoff: 0.5))
        // Eight calls in flight when the provider overloads: all eight are dropped, but they
        // saw one overload, so the limit halves once.
        #expect(try limiter.round(8, .dropped) == 4)
        // A call admitted after that decrease, dropped too: halves again.
        #expect(try limiter.round(1, .dropped) == 2)
    }

    @Test func aDropDecreasesTheLimitByAtLeastOne() throws {
        let limiter = Driver(initial: 5, minimum: 1, maximum: 10, .aimd(backoff: 0.99))
        #expect(try limiter.round(1, .dropped) == 4)
    }

    @Test func ignoredOutcomesMoveNothing() throws {
        let limiter = Driver(initial: 2, minimum: 1, maximum: 4, .aimd(backoff: 0.5))
        for _ in 0..<10 { #expect(try limiter.round(2, .ignored) == 2) }
        #expect(limiter.machine.smoothedRTT == nil)
    }

    /// The round trip without load is measured first, with the limit held at the minimum;
    /// then 10 ms (the minimum) lets the limit grow, 40 ms shrinks it, 10 ms again lets it grow.
    @Test func gradientShrinksWhenTheRoundTripRisesAboveItsMinimumAndRecoversWhenItFalls() throws {
        let limiter = Driver(
            initial: 6,
            minimum: 4,
            maximum: 8,
            .gradient(smoothing: 0.5, queueAllowance: 1, sampleWindow: 4, minimumRTTSamples: 4)
        )
        #expect(limiter.machine.limit == 4)
        #expect(limiter.machine.isMeasuringMinimumRTT)
        // Four samples at 10 ms: the minimum is 10 ms, and the limit is back at `initial`.
        #expect(try limiter.round(4, rtt: .milliseconds(10)) == 6)
        #expect(!limiter.machine.isMeasuringMinimumRTT)
        #expect(limiter.machine.minimumRTT.map { abs($0 - 0.010) < 1e-9 } == true)

        var limits: [Int] = []
        for _ in 0..<6 { limits.append(try limiter.round(4, rtt: .milliseconds(10))) }
        // At the minimum (gradient 1): each window adds half the allowance, up to the maximum.
        #expect(limits == [6, 7, 7, 8, 8, 8])

        limits = []
        for _ in 0..<5 { limits.append(try limiter.round(4, rtt: .milliseconds(40))) }
        // Four times slower: the gradient is clamped to 0.5 and the limit falls to the minimum.
        #expect(limits == [6, 5, 4, 4, 4])

        limits = []
        for _ in 0..<9 { limits.append(try limiter.round(4, rtt: .milliseconds(10))) }
        // Back to the minimum: the limit climbs back by half the allowance per window.
        #expect(limits == [4, 5, 5, 6, 6, 7, 7, 8, 8])
        // The minimum was never measured again: 60 s have not passed.
        #expect(limiter.machine.minimumRTT.map { abs($0 - 0.010) < 1e-9 } == true)
    }

    @Test func gradientMeasuresTheMinimumAgainEveryIntervalAndLearnsASlowerProvider() throws {
        let limiter = Driver(
            initial: 8,
            minimum: 4,
            maximum: 8,
            .gradient(
                smoothing: 0.5,
                queueAllowance: 1,
                sampleWindow: 4,
                minimumRTTInterval: .seconds(1),
                minimumRTTSamples: 2
            )
        )
        // Two of the four samples end the measurement; the other two were admitted during it
        // and count for nothing after it.
        #expect(try limiter.round(4, rtt: .milliseconds(10)) == 8)
        // The provider is now four times slower for good: the limit falls to the minimum.
        var limits: [Int] = []
        for _ in 0..<5 { limits.append(try limiter.round(4, rtt: .milliseconds(40))) }
        #expect(limits == [6, 5, 4, 4, 4])
        // A second after the first measurement ended, the next success starts another.
        var rounds = 0
        while !limiter.machine.isMeasuringMinimumRTT {
            try limiter.round(4, rtt: .milliseconds(40))
            rounds += 1
        }
        #expect(rounds == 20)
        #expect(limiter.now == .milliseconds(1_010))
        #expect(limiter.machine.limit == 4)
        #expect(try limiter.round(4, rtt: .milliseconds(40)) == 4)
        #expect(limiter.machine.minimumRTT.map { abs($0 - 0.040) < 1e-9 } == true)
        // 40 ms is the minimum now: the limit grows again.
        limits = []
        for _ in 0..<4 { limits.append(try limiter.round(4, rtt: .milliseconds(40))) }
        #expect(limits == [4, 5, 5, 6])
    }

    @Test func gradientLeavesALimitTheCallersDoNotUseAsItIs() throws {
        let limiter = Driver(
            initial: 10,
            minimum: 2,
            maximum: 20,
            .gradient(queueAllowance: 2, sampleWindow: 2, minimumRTTSamples: 2)
        )
        #expect(try limiter.round(2, rtt: .milliseconds(10)) == 10)
        // Two calls in flight at most: less than half of 10, so neither slow nor fast windows
        // move the limit.
        for _ in 0..<10 { #expect(try limiter.round(2, rtt: .milliseconds(10)) == 10) }
        for _ in 0..<10 { #expect(try limiter.round(2, rtt: .milliseconds(500)) == 10) }
    }

    @Test func gradientDecreasesMultiplicativelyOnADropEvenWhileItMeasures() throws {
        let limiter = Driver(initial: 20, minimum: 2, maximum: 40, .gradient(minimumRTTSamples: 1, backoff: 0.5))
        #expect(try limiter.round(1, .dropped) == 2)
        #expect(limiter.machine.estimate == 10)
        #expect(try limiter.round(1, .dropped) == 2)
        // The measurement ends with its one sample: the limit is what the drops left.
        #expect(try limiter.round(1) == 5)
        #expect(try limiter.round(1, .dropped) == 2)
    }
}

/// The limiter and its strategy in a pipeline, on a manual clock: queueing, waiting,
/// rejections, cancellation, what counts as a drop, events.
@Suite(.timeLimit(.minutes(1))) struct AdaptiveConcurrencyTests {
    let clock = ManualClock()

    /// Negative values stand for an overloaded provider's answer (a 503): drops.
    static let classify: AdaptiveConcurrencyStrategy<Int, ManualClock>.Classifier = { outcome in
        if case .success(let value) = outcome, value < 0 { return .dropped }
        return AdaptiveConcurrencyStrategy<Int, ManualClock>.defaultClassify(outcome)
    }

    func limiter(
        _ algorithm: AdaptiveConcurrencyAlgorithm = .aimd(backoff: 0.5),
        initial: Int = 1,
        minimum: Int = 1,
        maximum: Int = 1,
        maxQueue: Int = 10,
        maxWait: Duration = .seconds(1)
    ) throws -> AdaptiveConcurrencyLimit<ManualClock> {
        try AdaptiveConcurrencyLimit(
            .init(
                algorithm: algorithm,
                initial: initial,
                minimum: minimum,
                maximum: maximum,
                maxQueue: maxQueue,
                maxWait: maxWait,
                name: "crm-limit"
            ),
            clock: clock
        )
    }

    func pipeline(
        _ limiter: AdaptiveConcurrencyLimit<ManualClock>,
        events: RecordingEventSink = RecordingEventSink()
    ) throws -> ResiliencePipeline<Int> {
        try ResiliencePipeline<Int>.Builder(clock: clock)
            .adaptiveConcurrencyLimit(limiter, classify: Self.classify)
            .telemetry(events)
            .build()
    }

    /// A call that holds its slot until `gate` opens.
    func holder(_ pipeline: ResiliencePipeline<Int>, _ gate: Gate) async -> Task<Result<Int, any Error>, Never> {
        let task = Task {
            await pipeline.executeOutcome { _ in
                await gate.wait()
                return 0
            }
        }
        await gate.waitForArrivals(1)
        return task
    }

    @Test func theLimitMovesWithOutcomesAndEachChangeIsAnEvent() async throws {
        let limiter = try limiter(initial: 2, maximum: 4)
        let events = RecordingEventSink()
        let pipeline = try pipeline(limiter, events: events)
        #expect(try await pipeline.execute { _ in 1 } == 1)
        #expect(try await pipeline.execute { _ in 1 } == 1)
        #expect(limiter.limit == 3)
        // The provider's overload answer is returned as is; the limit halves.
        #expect(try await pipeline.execute { _ in -1 } == -1)
        #expect(limiter.limit == 1)
        let changes = events.events.compactMap { event -> [Int]? in
            guard case .concurrencyLimitChanged(let from, let to) = event.kind else { return nil }
            #expect(event.strategy == "crm-limit")
            return [from, to]
        }
        #expect(changes == [[2, 3], [3, 1]])
        #expect(events.names == ["concurrency_limit_changed", "concurrency_limit_changed"])
        #expect(limiter.snapshot == (limit: 1, inFlight: 0, queued: 0, rejections: 0))
    }

    @Test func roundTripsAreMeasuredOnTheInjectedClock() async throws {
        let limiter = try limiter()
        let pipeline = try pipeline(limiter)
        let call = Task {
            await pipeline.executeOutcome { _ in
                try await self.clock.sleep(for: .milliseconds(30))
                return 1
            }
        }
        let wake = await clock.nextSleepScheduled()
        clock.advance(to: wake)
        #expect(try await call.value.get() == 1)
        let measured = try #require(limiter.roundTripTime)
        #expect(abs(measured.inSeconds - 0.030) < 1e-9)
    }

    @Test func waitersGetSlotsInArrivalOrder() async throws {
        let limiter = try limiter()
        let pipeline = try pipeline(limiter)
        let gate = Gate()
        let holding = await holder(pipeline, gate)
        let order = RecordingOrder()
        var waiters: [Task<Result<Int, any Error>, Never>] = []
        for call in 1...5 {
            waiters.append(
                Task {
                    await pipeline.executeOutcome { _ in
                        order.append(call)
                        return call
                    }
                }
            )
            while limiter.queued < call { await Task.yield() }
        }
        #expect(limiter.inFlight == 1)
        gate.open()
        _ = await holding.value
        for (index, waiter) in waiters.enumerated() {
            #expect(try await waiter.value.get() == index + 1)
        }
        #expect(order.values == [1, 2, 3, 4, 5])
        #expect(limiter.snapshot == (limit: 1, inFlight: 0, queued: 0, rejections: 0))
    }

    @Test func aWaiterIsRejectedWhenMaxWaitPasses() async throws {
        let limiter = try limiter(maxWait: .milliseconds(250))
        let events = RecordingEventSink()
        let pipeline = try pipeline(limiter, events: events)
        let gate = Gate()
        let holding = await holder(pipeline, gate)
        let waiter = Task { await pipeline.executeOutcome { _ in 1 } }
        let expiry = await clock.nextSleepScheduled()
        #expect(expiry == .at(.milliseconds(250)))
        while limiter.queued < 1 { await Task.yield() }
        clock.advance(to: .at(.milliseconds(249)))
        #expect(limiter.queued == 1)
        clock.advance(to: expiry)
        let rejection = try #require(await waiter.value.error as? ResilienceError)
        #expect(rejection.code == .concurrencyLimited)
        #expect(rejection.code.description == "concurrency-limited")
        #expect(rejection.strategy == "crm-limit")
        #expect(rejection.retryAfter == .seconds(1))
        #expect(
            rejection.message == "the concurrency limit of 1 is reached and no slot freed within 250ms or the deadline"
        )
        #expect(events.names == ["rejected"])
        #expect(limiter.snapshot == (limit: 1, inFlight: 1, queued: 0, rejections: 1))
        gate.open()
        _ = await holding.value
        #expect(limiter.inFlight == 0)
    }

    @Test func aFullQueueOrNoWaitRejectsAtOnce() async throws {
        let limiter = try limiter(maxQueue: 1)
        let pipeline = try pipeline(limiter)
        let gate = Gate()
        let holding = await holder(pipeline, gate)
        let waiter = Task { await pipeline.executeOutcome { _ in 1 } }
        while limiter.queued < 1 { await Task.yield() }
        let refused = await pipeline.executeOutcome { _ in 2 }
        #expect(refused.resilienceCode == .concurrencyLimited)
        #expect(
            (refused.error as? ResilienceError)?.message
                == "the concurrency limit of 1 is reached and 1 calls are already waiting"
        )
        gate.open()
        _ = await holding.value
        #expect(try await waiter.value.get() == 1)
        #expect(limiter.rejections == 1)

        let impatient = try self.limiter(maxWait: .zero)
        let impatientPipeline = try self.pipeline(impatient)
        let gate2 = Gate()
        let holding2 = await holder(impatientPipeline, gate2)
        #expect(await impatientPipeline.executeOutcome { _ in 3 }.resilienceCode == .concurrencyLimited)
        #expect(clock.unclaimedSleeps == 1)  // the first waiter's timer only, none for this one
        gate2.open()
        _ = await holding2.value
    }

    @Test func aCancelledWaiterLeavesTheQueue() async throws {
        let limiter = try limiter(maxQueue: 1)
        let pipeline = try pipeline(limiter)
        let gate = Gate()
        let holding = await holder(pipeline, gate)
        let waiter = Task { await pipeline.executeOutcome { _ in 1 } }
        while limiter.queued < 1 { await Task.yield() }
        waiter.cancel()
        #expect(await waiter.value.error is CancellationError)
        #expect(limiter.queued == 0)
        // Not a rejection, and the queue has room again.
        #expect(limiter.rejections == 0)
        let next = Task { await pipeline.executeOutcome { _ in 2 } }
        while limiter.queued < 1 { await Task.yield() }
        gate.open()
        _ = await holding.value
        #expect(try await next.value.get() == 2)
        #expect(limiter.snapshot == (limit: 1, inFlight: 0, queued: 0, rejections: 0))
    }

    @Test func aQueuedCallLeavesWhenACooperativeDeadlineComesBeforeMaxWait() async throws {
        let limiter = try limiter(maxWait: .seconds(5))
        let holding = try pipeline(limiter)
        let waiting = try ResiliencePipeline<Int>.Builder(clock: clock)
            .timeout(.seconds(2), enforcement: .cooperative)
            .adaptiveConcurrencyLimit(limiter)
            .build()
        let gate = Gate()
        let holder = await holder(holding, gate)
        let waiter = Task { await waiting.executeOutcome { _ in 1 } }
        let expiry = await clock.nextSleepScheduled()
        #expect(expiry == .at(.seconds(2)))
        clock.advance(to: expiry)
        // The cooperative timeout reports the call that ended after its deadline.
        #expect(await waiter.value.resilienceCode == .timeout)
        #expect(limiter.queued == 0)
        gate.open()
        _ = await holder.value
    }

    @Test func onlyTheDependencysOwnTimeoutIsADropSignal() async throws {
        let limiter = try limiter(initial: 4, maximum: 8)
        let pipeline = try pipeline(limiter)
        var callers = ResilienceError(code: .timeout, strategy: "timeout", message: "the caller's budget ran out")
        callers.deadlineOrigin = .caller
        // The caller's own deadline, another strategy's refusal, an error that says nothing
        // about load, a cancellation: none lowers the limit.
        let notDrops: [any Error] = [
            callers,
            ResilienceError(code: .circuitOpen, strategy: "breaker", message: "open"),
            ResilienceError(code: .bulkheadFull, strategy: "bulkhead", message: "full"),
            TestError(),
            CancellationError(),
        ]
        for error in notDrops {
            _ = await pipeline.executeOutcome { _ in throw error }
            #expect(limiter.limit == 4, "\(error)")
        }
        // The dependency's slowness, by the pipeline's own deadline: a drop.
        let own = ResilienceError(code: .timeout, strategy: "attempt-timeout", message: "2s passed")
        _ = await pipeline.executeOutcome { _ in throw own }
        #expect(limiter.limit == 2)
    }

    @Test func invalidOptionsAreReportedWithTheirPaths() {
        #expect {
            _ = try AdaptiveConcurrencyLimit<ContinuousClock>(
                .init(initial: 1, minimum: 0, maximum: -1, maxQueue: -1, maxWait: .seconds(-1))
            )
        } throws: { error in
            (error as? ConfigurationError)?.description
                == "invalid resilience configuration: concurrency-limit.minimum: must be at least 1 (got 0); "
                + "concurrency-limit.maximum: must be at least minimum (0) (got -1); "
                + "concurrency-limit.initial: must be between minimum and maximum (0...-1) (got 1); "
                + "concurrency-limit.maxQueue: must be at least 0 (got -1); "
                + "concurrency-limit.maxWait: must not be negative (got -1.0 seconds)"
        }
        #expect {
            _ = try AdaptiveConcurrencyLimit<ContinuousClock>(
                .init(
                    algorithm: .gradient(
                        tolerance: 0.5,
                        smoothing: 0,
                        minimumRTTInterval: .zero,
                        minimumRTTSamples: 0,
                        backoff: 1
                    )
                )
            )
        } throws: { error in
            (error as? ConfigurationError)?.issues.map(\.option) == [
                "concurrency-limit.algorithm.backoff", "concurrency-limit.algorithm.tolerance",
                "concurrency-limit.algorithm.smoothing", "concurrency-limit.algorithm.minimumRTTInterval",
                "concurrency-limit.algorithm.minimumRTTSamples",
            ]
        }
        #expect {
            _ = try AdaptiveConcurrencyLimit<ContinuousClock>(.init(algorithm: .aimd(increase: 0), initial: 300))
        } throws: { error in
            (error as? ConfigurationError)?.issues.map(\.option) == [
                "concurrency-limit.initial", "concurrency-limit.algorithm.increase",
            ]
        }
    }
}
