import Synchronization

/// A provider's fixed capacity: at most `workers` requests served at once, up to `queue` more
/// waiting in arrival order for one, the rest refused at once (``TestUpstream`` answers them
/// 429). One per behavior's path prefix.
final class CapacityGate: Sendable {
    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var busy = 0
        var waiting: [Waiter] = []
        var nextID = 0
        var refused = 0
        var served = 0
    }

    let workers: Int
    let queue: Int
    private let state = Mutex(State())

    init(workers: Int, queue: Int) {
        self.workers = max(workers, 1)
        self.queue = max(queue, 0)
    }

    /// Waits for a worker; false when the queue is full (refused), or the caller was cancelled
    /// while waiting. On true, call ``release()`` once served.
    func acquire() async -> Bool {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let answer = state.withLock { state -> Bool? in
                    if state.busy < workers {
                        state.busy += 1
                        state.served += 1
                        return true
                    }
                    guard state.waiting.count < queue else {
                        state.refused += 1
                        return false
                    }
                    state.waiting.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index)
            }
            waiter?.continuation.resume(returning: false)
        }
    }

    /// Frees a worker: the longest waiting request takes it.
    func release() {
        let next = state.withLock { state -> Waiter? in
            guard !state.waiting.isEmpty else {
                state.busy -= 1
                return nil
            }
            state.served += 1
            return state.waiting.removeFirst()
        }
        next?.continuation.resume(returning: true)
    }

    /// Requests refused because the queue was full, and requests given a worker.
    var counts: (refused: Int, served: Int) { state.withLock { ($0.refused, $0.served) } }
}
