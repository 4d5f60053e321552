import Testing

@testable import Belay

/// A provider with a fixed capacity — `workers` serving one call each for `service`, a waiting
/// line of `line` calls, an immediate 429 beyond — and `callers` that call again as soon as
/// their call ends, through the limiter's state machine, in simulated time: the shape of
/// `scripts/bench-capacity.sh`, where the real gateway and provider are measured.
struct CapacitySimulation {
    /// What a stretch of simulated time showed.
    struct Figures {
        var duration: Duration
        var served = 0
        var refused = 0
        /// Each served call's time at the provider, its wait in the line included.
        var timesAtProvider: [Duration] = []
        var limits: [Int] = []

        var servedPerSecond: Double { Double(served) / duration.inSeconds }
        var refusedShare: Double { Double(refused) / Double(max(served + refused, 1)) }
        var medianTimeAtProvider: Duration {
            let sorted = timesAtProvider.sorted()
            return sorted.isEmpty ? .zero : sorted[sorted.count / 2]
        }
        var highestLimit: Int { limits.max() ?? 0 }
        var lowestLimit: Int { limits.min() ?? 0 }
    }

    private struct Call {
        var end: Duration
        var permit: AdaptiveConcurrencyPermit
        var signal: ConcurrencySignal
        var timeAtProvider: Duration?
    }

    var machine: AdaptiveConcurrencyStateMachine<Never>
    /// When each worker is free again.
    private var workers: [Duration]
    var line: Int
    var service: Duration
    let callers: Int
    /// The round trip outside the provider (the network, the gateway), half each way.
    let overhead = Duration.microseconds(500)
    private(set) var now = Duration.zero
    private var calls: [Call] = []
    /// When the calls waiting in the line start being served.
    private var lineStarts: [Duration] = []

    init(
        _ algorithm: AdaptiveConcurrencyAlgorithm,
        workers: Int = 8,
        line: Int = 8,
        service: Duration = .milliseconds(20),
        callers: Int = 64
    ) {
        machine = .init(initial: 20, minimum: 2, maximum: 200, maxQueue: 0, algorithm: algorithm)
        self.workers = Array(repeating: .zero, count: workers)
        self.line = line
        self.service = service
        self.callers = callers
    }

    /// The provider's capacity in calls per second.
    var capacity: Double { Double(workers.count) / service.inSeconds }

    /// Adds or takes away workers (a worker taken away finishes the call it holds).
    mutating func setWorkers(_ count: Int) {
        if count > workers.count {
            workers += Array(repeating: now, count: count - workers.count)
        } else {
            workers.removeLast(workers.count - count)
        }
    }

    /// Runs for `duration` of simulated time and says what it saw.
    mutating func run(for duration: Duration) -> Figures {
        let end = now + duration
        var figures = Figures(duration: duration)
        while true {
            while calls.count < callers, let permit = machine.tryAcquire(now: now) {
                arrive(permit)
            }
            guard let next = calls.indices.min(by: { calls[$0].end < calls[$1].end }), calls[next].end <= end else {
                break
            }
            let call = calls.remove(at: next)
            now = call.end
            _ = machine.release(call.permit, call.signal, now: now)
            if let time = call.timeAtProvider {
                figures.served += 1
                figures.timesAtProvider.append(time)
            } else {
                figures.refused += 1
            }
            figures.limits.append(machine.limit)
        }
        now = end
        return figures
    }

    private mutating func arrive(_ permit: AdaptiveConcurrencyPermit) {
        let arrival = now + overhead / 2
        lineStarts.removeAll { $0 <= arrival }
        let worker = workers.indices.min { workers[$0] < workers[$1] }!
        let start: Duration
        if workers[worker] <= arrival {
            start = arrival
        } else if lineStarts.count < line {
            start = workers[worker]
            lineStarts.append(start)
        } else {
            calls.append(Call(end: arrival + overhead / 2, permit: permit, signal: .dropped))
            return
        }
        workers[worker] = start + service
        let done = start + service
        calls.append(
            Call(end: done + overhead / 2, permit: permit, signal: .success, timeAtProvider: done - arrival)
        )
    }
}

/// Both algorithms against a provider of known capacity, and after it doubles or halves.
@Suite struct AdaptiveConcurrencyConvergenceTests {
    /// After `warmUp`, the next `measure` of simulated time.
    static func settled(
        _ simulation: inout CapacitySimulation,
        warmUp: Duration = .seconds(10),
        measure: Duration = .seconds(20)
    ) -> CapacitySimulation.Figures {
        _ = simulation.run(for: warmUp)
        return simulation.run(for: measure)
    }

    /// Settled at 8 workers, then (for another count) at `workers`: the capacity doubles or
    /// halves under way.
    static func settled(
        _ algorithm: AdaptiveConcurrencyAlgorithm,
        at workers: Int
    ) -> (CapacitySimulation, CapacitySimulation.Figures) {
        var simulation = CapacitySimulation(algorithm)
        var figures = settled(&simulation)
        if workers != 8 {
            simulation.setWorkers(workers)
            figures = settled(&simulation)
        }
        return (simulation, figures)
    }

    @Test(arguments: [8, 16, 4])
    func theGradientKeepsTheProviderBusyAndItsLineEmpty(workers: Int) {
        let (simulation, figures) = Self.settled(.gradient(), at: workers)
        #expect(figures.servedPerSecond >= 0.9 * simulation.capacity)
        #expect(figures.refusedShare <= 0.05)
        // The limit settles at the workers plus the allowance (half the square root of the
        // limit) waiting in the provider's line, not at the workers plus the whole line.
        let allowance = Int((Double(figures.highestLimit).squareRoot() / 2).rounded(.up))
        #expect(figures.lowestLimit >= workers)
        #expect(figures.highestLimit <= workers + allowance + 1)
        // That allowance is at most half the workers from 2 workers up: the median call waits
        // at most half a service time.
        #expect(figures.medianTimeAtProvider <= simulation.service * 3 / 2)
    }

    @Test(arguments: [8, 16, 4])
    func aimdKeepsTheProviderBusyAndLearnsWhereItRefuses(workers: Int) {
        let (simulation, figures) = Self.settled(.aimd(), at: workers)
        #expect(figures.servedPerSecond >= 0.9 * simulation.capacity)
        #expect(figures.refusedShare <= 0.05)
        // AIMD reads no latency: it climbs until the line is full and the provider refuses,
        // then backs off by 10 %: the limit stays between 90 % of workers + line and one above.
        let places = workers + simulation.line
        #expect(figures.lowestLimit >= places * 9 / 10 - 1)
        #expect(figures.highestLimit <= places + 1)
    }

    @Test func theGradientLearnsAProviderThatBecameSlowerAtItsNextMeasurement() {
        var simulation = CapacitySimulation(.gradient())
        _ = Self.settled(&simulation)
        simulation.service = .milliseconds(40)
        // The next measurement of the minimum comes within 60 s.
        let figures = Self.settled(&simulation, warmUp: .seconds(70))
        #expect(figures.servedPerSecond >= 0.9 * simulation.capacity)
        #expect(figures.refusedShare <= 0.05)
        #expect(figures.medianTimeAtProvider <= simulation.service * 3 / 2)
    }
}
