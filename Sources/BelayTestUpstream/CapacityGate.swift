import Synchronization

/// A provider's fixed capacity: at most `workers` requests served at once, up to `queue` more
/// waiting in arrival order for one, the rest refused at once (``TestUpstream`` answers them
/// 429). One per behavior's path prefix.
final class CapacityGate: Sendable {
    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var busy = 0
        var waiting: [Waiter] = []
        var nextID = 0
        var refused = 0
        var served = 0
        /// Each served request's time at the provider (waiting and service), the latest
        /// ``CapacityGate/kept`` of them.
        var times: [Duration] = []
        var nextTime = 0
    }

    /// How many times at the provider are kept for the percentiles.
    static let kept = 100_000

    let workers: Int
    let queue: Int
    private let state = Mutex(State())

    init(workers: Int, queue: Int) {
        self.workers = max(workers, 1)
        self.queue = max(queue, 0)
    }

    /// Waits for a worker; false when the queue is full (refused), or the caller was cancelled
    /// while waiting. On true, call ``release()`` once served.
    func acquire() async -> Bool {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let answer = state.withLock { state -> Bool? in
                    if state.busy < workers {
                        state.busy += 1
                        state.served += 1
                        return true
                    }
                    guard state.waiting.count < queue else {
                        state.refused += 1
                        return false
                    }
                    state.waiting.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index)
            }
            waiter?.continuation.resume(returning: false)
        }
    }

    /// Frees a worker: the longest waiting request takes it. `arrivedAt`: when the request
    /// that held it arrived, for its time at the provider.
    func release(arrivedAt: ContinuousClock.Instant? = nil) {
        let took = arrivedAt.map { $0.duration(to: .now) }
        let next = state.withLock { state -> Waiter? in
            if let took {
                if state.times.count < Self.kept {
                    state.times.append(took)
                } else {
                    state.times[state.nextTime] = took
                }
                state.nextTime = (state.nextTime + 1) % Self.kept
            }
            guard !state.waiting.isEmpty else {
                state.busy -= 1
                return nil
            }
            state.served += 1
            return state.waiting.removeFirst()
        }
        next?.continuation.resume(returning: true)
    }

    /// Requests refused because the queue was full, and requests given a worker.
    var counts: (refused: Int, served: Int) { state.withLock { ($0.refused, $0.served) } }

    /// The counts and the percentiles of the times at the provider.
    var statistics: CapacityStatistics {
        let (refused, served, times) = state.withLock { ($0.refused, $0.served, $0.times) }
        let sorted = times.sorted()
        func percentile(_ quantile: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let rank = Int((Double(sorted.count) * quantile).rounded(.up))
            let value = sorted[min(max(rank - 1, 0), sorted.count - 1)]
            return Double(value.components.seconds) * 1_000 + Double(value.components.attoseconds) / 1e15
        }
        return CapacityStatistics(
            served: served,
            refused: refused,
            p50Milliseconds: percentile(0.5),
            p99Milliseconds: percentile(0.99)
        )
    }
}

/// What a provider's capacity did (``TestUpstream/capacityStatistics(for:)``), as
/// `GET /__upstream/capacity` answers it.
public struct CapacityStatistics: Sendable, Codable, Hashable {
    /// Requests given a worker.
    public var served = 0
    /// Requests refused (429) because the waiting line was full.
    public var refused = 0
    /// The median time at the provider of a served request (its wait and service), in ms.
    public var p50Milliseconds: Double = 0
    /// The 99th percentile of the same.
    public var p99Milliseconds: Double = 0
}
