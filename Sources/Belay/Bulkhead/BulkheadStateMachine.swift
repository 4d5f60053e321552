/// The sans-IO core of ``Bulkhead``: slots in use and the queue of waiters.
struct BulkheadStateMachine<Waiter: Sendable>: Sendable {
    enum Acquire {
        case acquired
        case enqueued
        case rejected
    }

    let maxConcurrent: Int
    let maxQueue: Int
    private(set) var active = 0
    private var waiters = FIFOQueue<Waiter>()

    init(maxConcurrent: Int, maxQueue: Int) {
        self.maxConcurrent = maxConcurrent
        self.maxQueue = maxQueue
    }

    var queued: Int { waiters.count }

    mutating func tryAcquire() -> Bool {
        guard active < maxConcurrent else { return false }
        active += 1
        return true
    }

    /// Takes a slot, or queues `waiter` for one, or refuses.
    mutating func acquire(id: UInt64, waiter: Waiter) -> Acquire {
        if tryAcquire() { return .acquired }
        guard waiters.count < maxQueue else { return .rejected }
        waiters.append(id: id, waiter)
        return .enqueued
    }

    /// Gives a slot back; returns the waiter that inherits it, if any.
    mutating func release() -> Waiter? {
        if let next = waiters.popFirst() {
            return next
        }
        active -= 1
        return nil
    }

    /// Removes a waiter that gave up; nil if it already got a slot.
    mutating func cancel(id: UInt64) -> Waiter? {
        waiters.remove(id: id)
    }
}
