import AsyncHTTPClient
import Belay
import NIOCore

extension Deadline {
    /// The deadline as AsyncHTTPClient takes it, which enforces it until the response head
    /// has arrived: `NIODeadline.now()` plus the time left on the continuous clock, rounded up
    /// to the next microsecond so that it never fires before this deadline has passed.
    var nioDeadline: NIODeadline {
        let remaining = self.remaining(on: ContinuousClock())
        guard remaining > .zero else { return .now() }
        let (seconds, attoseconds) = remaining.components
        let microseconds = seconds * 1_000_000 + (attoseconds + 999_999_999_999) / 1_000_000_000_000
        return .now() + .microseconds(microseconds)
    }

    /// Runs `operation`, cancelling it when this deadline passes; then throws
    /// `HTTPClientError.deadlineExceeded` (as AsyncHTTPClient does for the response head).
    ///
    /// For reading an answer's body into memory, which AsyncHTTPClient's deadline does not
    /// cover. Costs a child task and a timer: use it off the hot path only.
    func enforce<Value: Sendable>(
        _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        let instant = instant(on: ContinuousClock())
        return try await withThrowingTaskGroup(of: Value?.self, returning: Value.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await ContinuousClock().sleep(until: instant, tolerance: nil)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else { throw CancellationError() }
            guard let value = first else { throw HTTPClientError.deadlineExceeded }
            return value
        }
    }
}
