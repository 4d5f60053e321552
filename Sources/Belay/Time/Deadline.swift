/// The instant by which an execution must finish: the remaining time budget.
///
/// A ``Timeout`` strategy binds a deadline to ``Deadline/current`` for everything it runs,
/// so inner strategies and nested pipelines (a pipeline called from inside an operation)
/// see the budget that is left and can only shrink it, never extend it.
///
/// ```swift
/// if let remaining = Deadline.current?.remaining(on: ContinuousClock()), remaining < .milliseconds(50) {
///     // not worth starting a call
/// }
/// ```
///
/// Deadlines compare instants of one clock type. A pipeline driven by another clock type
/// sees an outer deadline as its budget less the real (continuous-clock) time elapsed
/// since it was set.
public struct Deadline: Sendable, CustomStringConvertible {
    /// The deadline of the current task, bound by the innermost enclosing ``Timeout``.
    @TaskLocal public static var current: Deadline?

    /// Who set a deadline: whose budget ran out when it passes.
    public enum Origin: Sendable, Hashable {
        /// The caller of the pipeline (a deadline made with ``init(after:on:)`` or
        /// ``init(at:on:)`` and bound to ``Deadline/current``, such as a request's remaining
        /// budget). When it passes first, the caller's budget was too short: a circuit breaker
        /// does not count it against the dependency.
        case caller
        /// A ``Timeout`` strategy: the dependency took longer than the pipeline allows.
        case strategy
    }

    /// Who set this deadline. A ``Timeout`` that adopts an earlier outer deadline keeps the
    /// outer one's origin.
    public let origin: Origin

    /// The deadline on the clock that set it. `ContinuousClock` (the common case) is kept
    /// unboxed so reading it needs no dynamic cast.
    private enum Storage: Sendable {
        case continuous(ContinuousClock.Instant)
        case other(any Sendable)
    }

    private let storage: Storage
    /// The budget this deadline had when it was created.
    public let budget: Duration
    /// When it was created, in real time: converts the deadline for clocks of other types.
    private let createdAt: ContinuousClock.Instant
    /// Whether an enclosing ``Timeout`` cancels the work when this deadline passes
    /// (``Timeout/Enforcement/cancel``). Otherwise the work is trusted to honour it, and a
    /// strategy that waits (a ``Bulkhead``'s queue) stops waiting at the deadline itself.
    let isEnforced: Bool

    /// Creates a deadline `budget` from the clock's current instant.
    /// Its ``origin`` is ``Origin/caller``.
    public init<C: Clock>(after budget: Duration, on clock: C) where C.Duration == Duration {
        self.init(instant: clock.now.advanced(by: budget), budget: budget, origin: .caller)
    }

    /// Creates a deadline at an instant of the given clock. Its ``origin`` is ``Origin/caller``.
    public init<C: Clock>(at instant: C.Instant, on clock: C) where C.Duration == Duration {
        self.init(instant: instant, budget: clock.now.duration(to: instant), origin: .caller)
    }

    init<Instant: InstantProtocol<Duration>>(
        instant: Instant,
        budget: Duration,
        isEnforced: Bool = false,
        origin: Origin
    ) {
        self.isEnforced = isEnforced
        self.origin = origin
        if let continuous = instant as? ContinuousClock.Instant {
            self.storage = .continuous(continuous)
            self.createdAt = continuous.advanced(by: .zero - budget)
        } else {
            self.storage = .other(instant)
            self.createdAt = ContinuousClock.now
        }
        self.budget = budget
    }

    /// The deadline as an instant of `clock`.
    public func instant<C: Clock>(on clock: C) -> C.Instant where C.Duration == Duration {
        switch storage {
        case .continuous(let instant):
            if C.Instant.self == ContinuousClock.Instant.self {
                return unsafeBitCast(instant, to: C.Instant.self)
            }
        case .other(let instant):
            if let own = instant as? C.Instant { return own }
        }
        return clock.now.advanced(by: budget - createdAt.duration(to: ContinuousClock.now))
    }

    /// The time left before the deadline on `clock`; negative once it has passed.
    public func remaining<C: Clock>(on clock: C) -> Duration where C.Duration == Duration {
        clock.now.duration(to: instant(on: clock))
    }

    /// Whether the deadline has passed on `clock`.
    public func hasPassed<C: Clock>(on clock: C) -> Bool where C.Duration == Duration {
        instant(on: clock) <= clock.now
    }

    public var description: String { "Deadline(budget: \(budget), origin: \(origin))" }
}
