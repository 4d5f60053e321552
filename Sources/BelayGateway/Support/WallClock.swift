public import Foundation

/// Calendar time read through an injected `Clock`: the wall-clock date at a fixed origin
/// plus the clock's elapsed time since then.
///
/// Durable records need dates; time-dependent code needs an injectable clock. With a
/// `ManualClock` and a fixed `origin`, every date is exact in tests.
///
/// ```swift
/// let wall = WallClock(clock: ContinuousClock())          // real time
/// let test = WallClock(clock: manual, origin: fixedDate)  // tests
/// ```
public struct WallClock<C: Clock>: Sendable where C.Duration == Duration {
    /// The clock time is read from and slept on.
    public let clock: C
    private let start: C.Instant
    private let origin: Date

    /// Creates a wall clock that reads `origin` now.
    public init(clock: C, origin: Date = Date()) {
        self.clock = clock
        self.start = clock.now
        self.origin = origin
    }

    /// The date now.
    public func now() -> Date {
        origin.adding(start.duration(to: clock.now))
    }

    /// The clock's instant at `date`.
    public func instant(at date: Date) -> C.Instant {
        start.advanced(by: .milliseconds(Int64((date.timeIntervalSince(origin) * 1_000).rounded())))
    }
}
