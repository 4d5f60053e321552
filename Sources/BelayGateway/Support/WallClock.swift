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
    private let readDate: (@Sendable () -> Date)?

    /// Creates a wall clock that reads `origin` now and then moves with `clock` alone
    /// (tests: with a `ManualClock`, every date is exact).
    public init(clock: C, origin: Date = Date()) {
        self.clock = clock
        self.start = clock.now
        self.origin = origin
        self.readDate = nil
    }

    private init(clock: C, readDate: @escaping @Sendable () -> Date) {
        self.clock = clock
        self.start = clock.now
        self.origin = readDate()
        self.readDate = readDate
    }

    /// The system's calendar time, read afresh each time (so it follows NTP corrections),
    /// with `clock` for sleeping: what a running gateway uses.
    public static func system(_ clock: C) -> WallClock {
        WallClock(clock: clock, readDate: { Date() })
    }

    /// The date now.
    public func now() -> Date {
        if let readDate { return readDate() }
        return origin.adding(start.duration(to: clock.now))
    }

    /// The clock's instant at `date`.
    public func instant(at date: Date) -> C.Instant {
        let reference = readDate.map { (clock.now, $0()) } ?? (start, origin)
        let milliseconds = (date.timeIntervalSince(reference.1) * 1_000).rounded()
        let bounded = min(max(milliseconds, -1e15), 1e15)
        return reference.0.advanced(by: .milliseconds(Int64(bounded)))
    }
}
