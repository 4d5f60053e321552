import Synchronization

/// Limits how many calls run at once, with a bounded queue of calls waiting for a slot.
///
/// A call that finds every slot taken waits in FIFO order if the queue has room, and is
/// rejected at once with ``ResilienceError/Code/bulkheadFull`` otherwise. A waiting call
/// that is cancelled (by an enclosing ``Timeout``, say) leaves the queue; so does one whose
/// deadline (``ResilienceContext/deadline``) passes when no enclosing timeout cancels it (a
/// cooperative ``Timeout``), with ``ResilienceError/Code/bulkheadFull``.
///
/// ```swift
/// let bulkhead = try Bulkhead(.init(maxConcurrent: 100, maxQueue: 50))
/// let pipeline = try ResiliencePipeline<Int>.Builder().bulkhead(bulkhead).build()
/// ```
public final class Bulkhead: Sendable {
    /// Options of a bulkhead.
    public struct Configuration: Sendable, Hashable {
        /// The bulkhead's name in events and errors. Default `bulkhead`.
        public var name: String
        /// Calls that may run at once. At least 1; default 100.
        public var maxConcurrent: Int
        /// Calls that may wait for a slot. At least 0; default 0 (reject at once).
        public var maxQueue: Int

        /// Creates a configuration.
        public init(maxConcurrent: Int = 100, maxQueue: Int = 0, name: String = "bulkhead") {
            self.name = name
            self.maxConcurrent = maxConcurrent
            self.maxQueue = maxQueue
        }

        func validate() throws(ConfigurationError) {
            var validator = OptionValidator(prefix: name)
            validator.name(name)
            validator.atLeast(maxConcurrent, 1, "maxConcurrent")
            validator.atLeast(maxQueue, 0, "maxQueue")
            try validator.check()
        }
    }

    private typealias Waiter = CheckedContinuation<Void, any Error>

    /// The options in force.
    public let configuration: Configuration
    private let machine: Mutex<BulkheadStateMachine<Waiter>>
    private let nextWaiterID = Atomic<UInt64>(0)

    /// Creates a bulkhead, validating its options.
    public init(_ configuration: Configuration) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.machine = Mutex(
            BulkheadStateMachine(maxConcurrent: configuration.maxConcurrent, maxQueue: configuration.maxQueue)
        )
    }

    /// Calls running now.
    public var active: Int { machine.withLock { $0.active } }
    /// Calls waiting for a slot now.
    public var queued: Int { machine.withLock { $0.queued } }

    /// Takes a free slot if there is one, without waiting.
    func tryAcquire() -> Bool {
        machine.withLock { $0.tryAcquire() }
    }

    /// Takes a slot, waiting in the queue if needed. Throws ``ResilienceError`` when the
    /// queue is full, `CancellationError` when cancelled while waiting.
    func acquire(context: ResilienceContext) async throws {
        if machine.withLock({ $0.tryAcquire() }) { return }
        let id = nextWaiterID.wrappingAdd(1, ordering: .relaxed).newValue
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: Waiter) in
                let decision: BulkheadStateMachine<Waiter>.Acquire = machine.withLock { machine in
                    if Task.isCancelled { return .rejected }
                    return machine.acquire(id: id, waiter: continuation)
                }
                switch decision {
                case .acquired:
                    continuation.resume()
                case .enqueued:
                    break
                case .rejected:
                    if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        continuation.resume(throwing: rejection(context: context))
                    }
                }
            }
        } onCancel: {
            let waiter = machine.withLock { $0.cancel(id: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private enum QueuedWait: Sendable {
        case acquired
        case failed(any Error)
        case deadlinePassed
        case timerCancelled
    }

    /// Takes a slot like ``acquire(context:)``, but leaves the queue when `deadline` passes
    /// (`sleep` returns), throwing ``ResilienceError/Code/bulkheadFull``. For deadlines that
    /// no enclosing timeout enforces by cancellation; the wait costs a child task and a timer,
    /// the fast path (a free slot) neither.
    func acquire(
        context: ResilienceContext,
        before deadline: Deadline,
        sleep: @escaping @Sendable (Deadline) async throws -> Void
    ) async throws {
        if machine.withLock({ $0.tryAcquire() }) { return }
        let outcome = await withTaskGroup(of: QueuedWait.self, returning: Result<Void, any Error>.self) { group in
            group.addTask {
                do {
                    try await self.acquire(context: context)
                    return .acquired
                } catch {
                    return .failed(error)
                }
            }
            group.addTask {
                do {
                    try await sleep(deadline)
                    return .deadlinePassed
                } catch {
                    return .timerCancelled
                }
            }
            var deadlinePassed = false
            while let event = await group.next() {
                switch event {
                case .acquired:
                    group.cancelAll()
                    guard !deadlinePassed else {
                        // The slot came as the deadline passed: too late, hand it on.
                        release()
                        return .failure(expired(context: context, deadline: deadline))
                    }
                    return .success(())
                case .failed(let error):
                    group.cancelAll()
                    if deadlinePassed, error is CancellationError {
                        return .failure(expired(context: context, deadline: deadline))
                    }
                    return .failure(error)
                case .deadlinePassed:
                    // Cancelling the waiter takes it out of the queue; its outcome comes next.
                    deadlinePassed = true
                    group.cancelAll()
                case .timerCancelled:
                    // This task was cancelled: the waiter reports how it ended.
                    continue
                }
            }
            return .failure(CancellationError())
        }
        try outcome.get()
    }

    /// Gives a slot back, handing it to the first waiter if there is one.
    func release() {
        let waiter = machine.withLock { $0.release() }
        waiter?.resume()
    }

    private func expired(context: ResilienceContext, deadline: Deadline) -> ResilienceError {
        context.emit(.rejected(.bulkheadFull, retryAfter: nil), strategy: configuration.name)
        return ResilienceError(
            code: .bulkheadFull,
            strategy: configuration.name,
            message:
                "all \(configuration.maxConcurrent) slots stayed busy until the deadline "
                + "(\(deadline.budget.formattedForHumans) after it was set)"
        )
    }

    private func rejection(context: ResilienceContext) -> ResilienceError {
        context.emit(.rejected(.bulkheadFull, retryAfter: nil), strategy: configuration.name)
        return ResilienceError(
            code: .bulkheadFull,
            strategy: configuration.name,
            message:
                "all \(configuration.maxConcurrent) slots are busy and the queue of \(configuration.maxQueue) is full"
        )
    }
}
