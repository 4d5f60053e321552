import Synchronization

/// Batches concurrent submissions into one write (one transaction, one fsync): group commit.
///
/// No background task: the first caller to find no write in progress becomes the leader
/// and writes every submission waiting at that moment, its own included. Callers that
/// arrive while a write runs queue up; when it ends, the leader answers the batch it
/// wrote and hands the lead to the oldest queued caller, which writes everything queued
/// so far. Each caller returns only after the write holding its item committed, so a
/// caller told "done" is durable. Writes never overlap.
///
/// Cancellation: a waiting caller is not interrupted. A write run by a cancelled leader may
/// be refused by the database layer (GRDB checks cancellation); the whole batch then fails
/// and every caller in it is told so — nothing is reported durable that is not.
final class GroupCommit<Item: Sendable, Output: Sendable>: Sendable {
    /// Writes a batch; returns one result per item, in order (or throws for the whole batch).
    typealias Write = @Sendable ([Item]) async throws(StoreError) -> [Output]

    private enum Signal: Sendable {
        case done(Result<Output, StoreError>)
        case lead
        case retry
    }

    private struct Waiter {
        var item: Item
        var continuation: CheckedContinuation<Signal, Never>
    }

    private struct State {
        var writing = false
        var queue: [Waiter] = []
    }

    private let write: Write
    private let maxBatch: Int
    private let state = Mutex(State())

    /// - Parameters:
    ///   - maxBatch: the most items one write takes (the rest wait for the next one).
    ///   - write: writes one batch durably.
    init(maxBatch: Int = 1_024, write: @escaping Write) {
        self.maxBatch = max(maxBatch, 1)
        self.write = write
    }

    /// Submissions waiting for the write in progress to end.
    var queuedCount: Int { state.withLock { $0.queue.count } }

    /// Submits `item` and returns its result once the write holding it has committed.
    func submit(_ item: Item) async throws(StoreError) -> Output {
        while true {
            let lead = state.withLock { state -> Bool in
                guard !state.writing else { return false }
                state.writing = true
                return true
            }
            if lead { return try await self.lead(with: item).get() }
            let signal = await withCheckedContinuation { (continuation: CheckedContinuation<Signal, Never>) in
                let queued = state.withLock { state -> Bool in
                    // The write in progress may have ended since we looked: try again.
                    guard state.writing else { return false }
                    state.queue.append(Waiter(item: item, continuation: continuation))
                    return true
                }
                if !queued { continuation.resume(returning: .retry) }
            }
            switch signal {
            case .done(let result): return try result.get()
            case .lead: return try await self.lead(with: item).get()
            case .retry: continue
            }
        }
    }

    /// Writes `own` with everything queued, answers the batch and passes the lead on.
    private func lead(with own: Item) async -> Result<Output, StoreError> {
        let waiters = state.withLock { state -> [Waiter] in
            let count = min(state.queue.count, maxBatch - 1)
            let taken = Array(state.queue.prefix(count))
            state.queue.removeFirst(count)
            return taken
        }
        let results: [Result<Output, StoreError>]
        do throws(StoreError) {
            let outputs = try await write([own] + waiters.map(\.item))
            if outputs.count == waiters.count + 1 {
                results = outputs.map { .success($0) }
            } else {
                let error = StoreError(
                    .io,
                    "a batch write returned \(outputs.count) results for \(waiters.count + 1) items"
                )
                results = Array(repeating: .failure(error), count: waiters.count + 1)
            }
        } catch {
            results = Array(repeating: .failure(error), count: waiters.count + 1)
        }
        let next = state.withLock { state -> Waiter? in
            guard !state.queue.isEmpty else {
                state.writing = false
                return nil
            }
            return state.queue.removeFirst()
        }
        next?.continuation.resume(returning: .lead)
        for (waiter, result) in zip(waiters, results.dropFirst()) {
            waiter.continuation.resume(returning: .done(result))
        }
        return results.first ?? .failure(StoreError(.io, "the write returned no result"))
    }
}
