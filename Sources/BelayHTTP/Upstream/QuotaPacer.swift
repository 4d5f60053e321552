import Belay
import Synchronization

/// Slows calls down before a provider's quota is spent, from what its rate-limit headers
/// say (`RateLimit`, `RateLimit-Remaining`, `X-RateLimit-Remaining`…).
///
/// While the quota is healthy it does nothing. Once no more than a tenth of it is left
/// (at most `lowWater` requests when the quota is not stated), the remaining requests are
/// spread evenly over the time to reset; with nothing left, calls wait for the reset. A
/// call whose wait would not fit its deadline (or `maxWait`) is refused at once with
/// `rate-limited` and the wait as `retryAfter`, instead of spending the provider's quota.
final class QuotaPacer<C: Clock>: Sendable where C.Duration == Duration {
    private struct State {
        var pacedUntil: Duration = .zero
        var interval: Duration = .zero
        var nextSlot: Duration = .zero
        var quota: Int?
        var window: Duration?
    }

    enum Decision: Equatable {
        case go
        case wait(Duration)
        case refuse(retryAfter: Duration)
    }

    let name: String
    private let clock: C
    private let origin: C.Instant
    private let lowWater: Int
    private let state = Mutex(State())

    init(name: String, clock: C, lowWater: Int = 5) {
        self.name = name
        self.clock = clock
        self.origin = clock.now
        self.lowWater = lowWater
    }

    private func elapsed() -> Duration { origin.duration(to: clock.now) }

    /// Learns from an answer's rate-limit headers.
    func observe(_ headers: RateLimitHeaders) {
        guard let remaining = headers.remaining, let reset = headers.resetAfter, reset > .zero else { return }
        let threshold = headers.limit.map { max($0 / 10, 1) } ?? lowWater
        let now = elapsed()
        state.withLock { state in
            guard remaining <= threshold else {
                state.pacedUntil = .zero
                return
            }
            state.pacedUntil = now + reset
            state.interval = reset / (remaining + 1)
            state.quota = headers.limit
            state.window = headers.window
            if remaining == 0 {
                state.nextSlot = max(state.nextSlot, now + reset)
            } else {
                state.nextSlot = max(state.nextSlot, now)
            }
        }
    }

    /// Takes the next paced slot if it comes within `maxWait`.
    func decide(maxWait: Duration) -> Decision {
        let now = elapsed()
        return state.withLock { state in
            guard now < state.pacedUntil else { return .go }
            let slot = max(now, state.nextSlot)
            let wait = slot - now
            guard wait <= maxWait else { return .refuse(retryAfter: wait) }
            state.nextSlot = slot + state.interval
            return wait == .zero ? .go : .wait(wait)
        }
    }

    /// The policy to state when refusing: the provider's quota and window when its headers
    /// gave both, otherwise the pace Belay keeps (one call per interval).
    var statedPolicy: (quota: Int, window: Int) {
        state.withLock { state in
            if let quota = state.quota, let window = state.window, window > .zero {
                return (quota, window.wholeSecondsRoundedUp)
            }
            return (1, state.interval.wholeSecondsRoundedUp)
        }
    }

    var isPacing: Bool {
        let now = elapsed()
        return state.withLock { now < $0.pacedUntil }
    }
}

/// Applies a ``QuotaPacer`` inside an upstream's pipeline (each attempt takes a slot).
struct QuotaPacingStrategy<C: Clock>: ResilienceStrategy where C.Duration == Duration {
    typealias Output = UpstreamResponse

    let pacer: QuotaPacer<C>
    let clock: C
    let maxWait: Duration

    func execute(
        _ context: ResilienceContext,
        next: ResiliencePipeline<UpstreamResponse>.Next
    ) async -> Result<UpstreamResponse, any Error> {
        var allowed = maxWait
        if let deadline = context.deadline {
            allowed = min(allowed, deadline.remaining(on: clock))
        }
        switch pacer.decide(maxWait: allowed) {
        case .go:
            return await next(context)
        case .wait(let delay):
            context.emit(.rateLimitDelayed(delay: delay), strategy: pacer.name)
            do {
                try await clock.sleep(for: delay)
            } catch {
                return .failure(CancellationError())
            }
            return await next(context)
        case .refuse(let retryAfter):
            context.emit(.rejected(.rateLimited, retryAfter: retryAfter), strategy: pacer.name)
            return .failure(
                ResilienceError(
                    code: .rateLimited,
                    strategy: pacer.name,
                    message: "the provider's quota is nearly spent; pacing calls until it resets",
                    retryAfter: retryAfter
                )
            )
        }
    }
}
