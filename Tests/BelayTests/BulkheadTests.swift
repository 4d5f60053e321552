import Belay
import BelayTestKit
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(1))) struct BulkheadTests {
    @Test func limitsConcurrencyQueuesAndRejectsTheRest() async throws {
        let bulkhead = try Bulkhead(.init(maxConcurrent: 2, maxQueue: 3))
        let events = RecordingEventSink()
        let pipeline = try ResiliencePipeline<Int>.Builder().bulkhead(bulkhead).telemetry(events).build()
        let gate = Gate()
        let callers = 8
        let results = await withTaskGroup(of: Result<Int, any Error>.self) { group in
            for call in 0..<callers {
                group.addTask {
                    await pipeline.executeOutcome { _ in
                        await gate.wait()
                        return call
                    }
                }
            }
            var results: [Result<Int, any Error>] = []
            for _ in 0..<3 {
                if let result = await group.next() { results.append(result) }
            }
            await gate.waitForArrivals(2)
            #expect(bulkhead.active == 2)
            #expect(bulkhead.queued == 3)
            #expect(gate.arrived == 2)
            gate.open()
            for await result in group { results.append(result) }
            return results
        }
        #expect(results.filter { $0.resilienceCode == .bulkheadFull }.count == 3)
        #expect(results.filter { (try? $0.get()) != nil }.count == 5)
        #expect(events.names == ["rejected", "rejected", "rejected"])
        #expect(bulkhead.active == 0)
        #expect(bulkhead.queued == 0)
    }

    @Test func waitersAreServedInArrivalOrder() async throws {
        let bulkhead = try Bulkhead(.init(maxConcurrent: 1, maxQueue: 10))
        let pipeline = try ResiliencePipeline<Int>.Builder().bulkhead(bulkhead).build()
        let gate = Gate()
        let holder = Task {
            await pipeline.executeOutcome { _ in
                await gate.wait()
                return 0
            }
        }
        await gate.waitForArrivals(1)
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
            while bulkhead.queued < call { await Task.yield() }
        }
        gate.open()
        _ = await holder.value
        for waiter in waiters { _ = await waiter.value }
        #expect(order.values == [1, 2, 3, 4, 5])
    }

    @Test func aCancelledWaiterLeavesTheQueue() async throws {
        let bulkhead = try Bulkhead(.init(maxConcurrent: 1, maxQueue: 1))
        let pipeline = try ResiliencePipeline<Int>.Builder().bulkhead(bulkhead).build()
        let gate = Gate()
        let holder = Task {
            await pipeline.executeOutcome { _ in
                await gate.wait()
                return 0
            }
        }
        await gate.waitForArrivals(1)
        let waiter = Task { await pipeline.executeOutcome { _ in 1 } }
        while bulkhead.queued < 1 { await Task.yield() }
        waiter.cancel()
        #expect(await waiter.value.error is CancellationError)
        #expect(bulkhead.queued == 0)
        // The queue has room again.
        let next = Task { await pipeline.executeOutcome { _ in 2 } }
        while bulkhead.queued < 1 { await Task.yield() }
        gate.open()
        _ = await holder.value
        #expect(try await next.value.get() == 2)
        #expect(bulkhead.active == 0)
    }

    @Test func aQueuedCallLeavesTheQueueWhenACooperativeDeadlinePasses() async throws {
        let clock = ManualClock()
        let bulkhead = try Bulkhead(.init(maxConcurrent: 1, maxQueue: 1))
        let events = RecordingEventSink()
        let holding = try ResiliencePipeline<Int>.Builder(clock: clock).bulkhead(bulkhead).build()
        let waiting = try ResiliencePipeline<Int>.Builder(clock: clock)
            .timeout(.seconds(2), enforcement: .cooperative)
            .bulkhead(bulkhead)
            .telemetry(events)
            .build()
        let gate = Gate()
        let holder = Task {
            await holding.executeOutcome { _ in
                await gate.wait()
                return 0
            }
        }
        await gate.waitForArrivals(1)
        let waiter = Task { await waiting.executeOutcome { _ in 1 } }
        // Nothing cancels the queued call: the bulkhead sleeps until its deadline itself.
        let expiry = await clock.nextSleepScheduled()
        #expect(expiry == .at(.seconds(2)))
        #expect(bulkhead.queued == 1)
        clock.advance(to: expiry)
        let outcome = await waiter.value
        // The cooperative timeout reports the call that ended after its deadline.
        #expect(outcome.resilienceCode == .timeout)
        #expect(events.names == ["rejected", "timeout"])
        #expect(bulkhead.queued == 0)
        #expect(bulkhead.active == 1)
        gate.open()
        _ = await holder.value
        #expect(bulkhead.active == 0)
    }

    @Test func aQueuedCallUnderAnEnforcingTimeoutNeedsNoTimerOfItsOwn() async throws {
        let clock = ManualClock()
        let bulkhead = try Bulkhead(.init(maxConcurrent: 1, maxQueue: 1))
        let holding = try ResiliencePipeline<Int>.Builder(clock: clock).bulkhead(bulkhead).build()
        // An inner cooperative timeout whose deadline the outer, cancelling one sets.
        let waiting = try ResiliencePipeline<Int>.Builder(clock: clock)
            .timeout(.seconds(1))
            .timeout(.seconds(5), enforcement: .cooperative, name: "inner")
            .bulkhead(bulkhead)
            .build()
        let gate = Gate()
        let holder = Task {
            await holding.executeOutcome { _ in
                await gate.wait()
                return 0
            }
        }
        await gate.waitForArrivals(1)
        let waiter = Task { await waiting.executeOutcome { _ in 1 } }
        let timer = await clock.nextSleepScheduled()
        #expect(timer == .at(.seconds(1)))
        while bulkhead.queued < 1 { await Task.yield() }
        #expect(clock.unclaimedSleeps == 0)
        clock.advance(to: timer)
        #expect(await waiter.value.resilienceCode == .timeout)
        #expect(bulkhead.queued == 0)
        gate.open()
        _ = await holder.value
    }

    @Test func zeroConcurrencyIsRejected() {
        #expect {
            _ = try Bulkhead(.init(maxConcurrent: 0, maxQueue: -1))
        } throws: { error in
            (error as? ConfigurationError)?.description
                == "invalid resilience configuration: bulkhead.maxConcurrent: must be at least 1 (got 0); "
                + "bulkhead.maxQueue: must be at least 0 (got -1)"
        }
    }
}

final class RecordingOrder: Sendable {
    private let storage = Mutex<[Int]>([])
    func append(_ value: Int) { storage.withLock { $0.append(value) } }
    var values: [Int] { storage.withLock { $0 } }
}
