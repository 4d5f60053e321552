import Belay
import BelayTestKit
import Synchronization

struct TestError: Error, Equatable {
    var id = 0
}

/// A thread-safe counter.
final class Tally: Sendable {
    private let value = Mutex(0)

    @discardableResult
    func increment() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }

    var count: Int { value.withLock { $0 } }
}

/// Holds tasks until opened; counts how many arrived.
final class Gate: Sendable {
    private struct State {
        var isOpen = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var arrived = 0
        var arrivalWaiters: [(Int, CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (resumeNow, ready) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                state.arrived += 1
                let arrived = state.arrived
                let ready = state.arrivalWaiters.filter { $0.0 <= arrived }.map(\.1)
                state.arrivalWaiters.removeAll { $0.0 <= arrived }
                if state.isOpen { return (true, ready) }
                state.waiters.append(continuation)
                return (false, ready)
            }
            for waiter in ready { waiter.resume() }
            if resumeNow { continuation.resume() }
        }
    }

    /// Returns once `count` tasks have arrived at the gate.
    func waitForArrivals(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.arrived >= count { return true }
                state.arrivalWaiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    var arrived: Int { state.withLock { $0.arrived } }

    func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// SplitMix64: a small seeded generator for property-style tests.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A sequence of random numbers handed out in order, for deterministic jitter.
final class ScriptedRandom: Sendable {
    private let values: Mutex<[Double]>

    init(_ values: [Double]) {
        self.values = Mutex(values)
    }

    func next() -> Double {
        values.withLock { $0.isEmpty ? 0.5 : $0.removeFirst() }
    }
}

extension ManualClock.Instant {
    static func at(_ offset: Duration) -> Self { .init(offset: offset) }
}

extension Result {
    var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }

    var resilienceCode: ResilienceError.Code? {
        (error as? ResilienceError)?.code
    }
}
