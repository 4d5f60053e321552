import Synchronization

/// Suspends until the current task is cancelled, then throws `CancellationError`.
///
/// Stands in for an operation that hangs (a dead upstream) without any real waiting.
public func suspendUntilCancelled() async throws -> Never {
    let gate = CancellationGate()
    try await gate.wait()
    fatalError("CancellationGate.wait() only returns by throwing")
}

private final class CancellationGate: Sendable {
    private let continuation = Mutex<CheckedContinuation<Void, any Error>?>(nil)

    func wait() async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = self.continuation.withLock { stored in
                    if Task.isCancelled { return true }
                    stored = continuation
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let stored = continuation.withLock { stored in
                defer { stored = nil }
                return stored
            }
            stored?.resume(throwing: CancellationError())
        }
    }
}
