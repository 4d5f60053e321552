import Synchronization

/// A clock that moves only when told to, for deterministic tests of time-dependent code.
///
/// Every call to ``sleep(until:tolerance:)`` is recorded; a test waits for the next one
/// with ``nextSleepScheduled()`` and releases it by advancing the clock:
///
/// ```swift
/// let clock = ManualClock()
/// let pipeline = try ResiliencePipeline<Int>.Builder(clock: clock)
///     .retry(.init(backoff: .exponential(base: .milliseconds(100), cap: .seconds(5))))
///     .build()
/// let task = Task { try await pipeline.execute { _ in try await flaky() } }
/// let wakeUp = await clock.nextSleepScheduled()   // the retry's backoff
/// #expect(wakeUp == clock.now.advanced(by: .milliseconds(100)))
/// clock.advance(to: wakeUp)
/// ```
public final class ManualClock: Clock, Sendable {
    /// An instant of a manual clock: a duration since the clock's zero.
    public struct Instant: InstantProtocol, Sendable, CustomStringConvertible {
        /// Time since the clock's zero.
        public var offset: Duration

        /// Creates an instant `offset` after zero.
        public init(offset: Duration) {
            self.offset = offset
        }

        /// The instant `duration` later.
        public func advanced(by duration: Duration) -> Instant {
            Instant(offset: offset + duration)
        }

        /// The time from this instant to `other`.
        public func duration(to other: Instant) -> Duration {
            other.offset - offset
        }

        /// Whether `lhs` comes before `rhs`.
        public static func < (lhs: Instant, rhs: Instant) -> Bool {
            lhs.offset < rhs.offset
        }

        public var description: String { "t+\(offset)" }
    }

    private struct Sleeper {
        var id: UInt64
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Instant
        var sleepers: [Sleeper] = []
        var scheduled: [Instant] = []
        var scheduledWaiters: [CheckedContinuation<Instant, Never>] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    /// Creates a clock reading `now` (default zero).
    public init(now: Instant = Instant(offset: .zero)) {
        self.state = Mutex(State(now: now))
    }

    public var now: Instant { state.withLock { $0.now } }

    public var minimumResolution: Duration { .zero }

    /// Sleeps until the clock is advanced to `deadline` (returns at once if it already has).
    /// Every call is recorded for ``nextSleepScheduled()``.
    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Action {
                    case resume
                    case cancel
                    case wait
                }
                let (action, waiter): (Action, CheckedContinuation<Instant, Never>?) = state.withLock { state in
                    var waiter: CheckedContinuation<Instant, Never>?
                    if state.scheduledWaiters.isEmpty {
                        state.scheduled.append(deadline)
                    } else {
                        waiter = state.scheduledWaiters.removeFirst()
                    }
                    if Task.isCancelled { return (.cancel, waiter) }
                    if deadline <= state.now { return (.resume, waiter) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return (.wait, waiter)
                }
                waiter?.resume(returning: deadline)
                switch action {
                case .resume: continuation.resume()
                case .cancel: continuation.resume(throwing: CancellationError())
                case .wait: break
                }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Waits for the next call to `sleep` (or returns the oldest one not yet taken) and
    /// returns the instant it sleeps until.
    public func nextSleepScheduled() async -> Instant {
        await withCheckedContinuation { (continuation: CheckedContinuation<Instant, Never>) in
            let ready: Instant? = state.withLock { state in
                if state.scheduled.isEmpty {
                    state.scheduledWaiters.append(continuation)
                    return nil
                }
                return state.scheduled.removeFirst()
            }
            if let ready {
                continuation.resume(returning: ready)
            }
        }
    }

    /// Sleeps recorded but not yet taken by ``nextSleepScheduled()``.
    public var unclaimedSleeps: Int { state.withLock { $0.scheduled.count } }

    /// Tasks sleeping now.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// Moves the clock forward to `instant` (never backwards) and wakes every sleeper whose
    /// deadline has come, earliest first.
    public func advance(to instant: Instant) {
        let due: [Sleeper] = state.withLock { state in
            if instant > state.now { state.now = instant }
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due {
            sleeper.continuation.resume()
        }
    }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Duration) {
        advance(to: now.advanced(by: duration))
    }
}
