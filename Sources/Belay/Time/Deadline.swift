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

    private let instant: any InstantProtocol<Duration>
    /// The budget this deadline had when it was created.
    public let budget: Duration
    /// When it was created, in real time: converts the deadline for clocks of other types.
    private let createdAt: ContinuousClock.Instant

    /// Creates a deadline `budget` from the clock's current instant.
    public init<C: Clock>(after budget: Duration, on clock: C) where C.Duration == Duration {
        self.instant = clock.now.advanced(by: budget)
        self.budget = budget
        self.createdAt = ContinuousClock.now
    }

    /// Creates a deadline at an instant of the given clock.
    public init<C: Clock>(at instant: C.Instant, on clock: C) where C.Duration == Duration {
        self.instant = instant
        self.budget = clock.now.duration(to: instant)
        self.createdAt = ContinuousClock.now
    }

    /// The deadline as an instant of `clock`.
    public func instant<C: Clock>(on clock: C) -> C.Instant where C.Duration == Duration {
        if let own = instant as? C.Instant {
            return own
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

    public var description: String { "Deadline(budget: \(budget))" }
}
