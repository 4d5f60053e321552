import Synchronization

/// Recent latencies of successful calls, for percentile-based hedging delays.
///
/// Keeps the last `capacity` samples in a ring and recomputes percentiles at most once
/// every `capacity / 8` new samples, so reading a percentile is cheap on the hot path.
public final class LatencyTracker: Sendable {
    private struct State: Sendable {
        var samples: [Duration] = []
        var next = 0
        var sorted: [Duration] = []
        var sinceSort = 0
    }

    /// Samples kept.
    public let capacity: Int
    private let state: Mutex<State>

    /// Creates a tracker keeping the last `capacity` samples (default 256).
    public init(capacity: Int = 256) {
        self.capacity = max(capacity, 1)
        self.state = Mutex(State())
    }

    /// Adds one sample.
    public func record(_ latency: Duration) {
        let capacity = self.capacity
        state.withLock { state in
            if state.samples.count < capacity {
                state.samples.append(latency)
            } else {
                state.samples[state.next] = latency
            }
            state.next = (state.next + 1) % capacity
            state.sinceSort += 1
        }
    }

    /// Samples recorded, up to the capacity.
    public var count: Int { state.withLock { $0.samples.count } }

    /// The `quantile` (`0...1`) of the recent samples, or nil with fewer than `minimumSamples`.
    public func percentile(_ quantile: Double, minimumSamples: Int = 1) -> Duration? {
        let refresh = max(capacity / 8, 1)
        return state.withLock { state in
            guard state.samples.count >= max(minimumSamples, 1) else { return nil }
            if state.sorted.isEmpty || state.sinceSort >= refresh {
                state.sorted = state.samples.sorted()
                state.sinceSort = 0
            }
            // Nearest rank: the smallest sample with at least `quantile` of samples at or below it.
            let rank = Int((Double(state.sorted.count) * min(max(quantile, 0), 1)).rounded(.up))
            return state.sorted[min(max(rank - 1, 0), state.sorted.count - 1)]
        }
    }
}
